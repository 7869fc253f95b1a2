package storage

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"
)

// Binary encodings of the metadata records (see meta.go for where each
// lives). A digest is one byte naming its algorithm followed by the raw
// hash; any digest not in canonical form (which checkDigest lets through
// to no record) is kept as text behind a 0 byte and its length, so every
// string round-trips. Times are Unix nanoseconds, 8 bytes big-endian.
const (
	digestText = iota
	digestSHA256
	digestSHA384
	digestSHA512
)

var digestAlgs = [...]struct {
	alg  digest.Algorithm
	size int
}{
	digestSHA256: {digest.SHA256, 32},
	digestSHA384: {digest.SHA384, 48},
	digestSHA512: {digest.SHA512, 64},
}

// appendDigest appends the encoding of d to b.
func appendDigest(b []byte, d digest.Digest) []byte {
	alg, enc := splitDigest(d)
	for code, a := range digestAlgs {
		if code == digestText || a.alg != alg || len(enc) != 2*a.size || !lowerHex(enc) {
			continue
		}
		out, err := hex.AppendDecode(append(b, byte(code)), []byte(enc))
		if err == nil {
			return out
		}
	}
	b = append(b, digestText)
	b = binary.AppendUvarint(b, uint64(len(d)))
	return append(b, d...)
}

func splitDigest(d digest.Digest) (digest.Algorithm, string) {
	for i := 0; i < len(d); i++ {
		if d[i] == ':' {
			return digest.Algorithm(d[:i]), string(d[i+1:])
		}
	}
	return "", string(d)
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// digestKey is the encoding of d alone, as blob records are keyed.
func digestKey(d digest.Digest) []byte { return appendDigest(make([]byte, 0, 65), d) }

// cutDigest splits the digest at the start of b from the rest. raw is
// its encoding, still in b's memory.
func cutDigest(b []byte) (raw, rest []byte, ok bool) {
	if len(b) == 0 {
		return nil, nil, false
	}
	if code := b[0]; code != digestText && int(code) < len(digestAlgs) {
		n := 1 + digestAlgs[code].size
		if len(b) < n {
			return nil, nil, false
		}
		return b[:n], b[n:], true
	}
	if b[0] != digestText {
		return nil, nil, false
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || uint64(len(b)-1-k) < n {
		return nil, nil, false
	}
	end := 1 + k + int(n)
	return b[:end], b[end:], true
}

// digestString returns the digest an encoding names; raw must be whole
// (as cutDigest returns it).
func digestString(raw []byte) digest.Digest {
	if raw[0] == digestText {
		_, k := binary.Uvarint(raw[1:])
		return digest.Digest(raw[1+k:])
	}
	var buf [7 + 2*64]byte // sha512: and its hex
	out := append(append(buf[:0], digestAlgs[raw[0]].alg...), ':')
	return digest.Digest(hex.AppendEncode(out, raw[1:]))
}

// decodeDigest decodes a digest that fills b, as in a key's last part.
func decodeDigest(b []byte) (digest.Digest, bool) {
	raw, rest, ok := cutDigest(b)
	if !ok || len(rest) != 0 {
		return "", false
	}
	return digestString(raw), true
}

func appendTime(b []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
}

// decodeTime decodes 8 bytes of appendTime, zero if malformed.
func decodeTime(v []byte) time.Time {
	if len(v) != 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v)))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// cutField splits the length-prefixed field at the start of b.
func cutField(b []byte) (field, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

// Media types common enough to take one byte. Codes are never reused or
// renumbered: records on disk hold them.
var mediaTypes = [...]string{
	1: "application/vnd.oci.image.manifest.v1+json",
	2: "application/vnd.oci.image.index.v1+json",
	3: "application/vnd.docker.distribution.manifest.v2+json",
	4: "application/vnd.docker.distribution.manifest.list.v2+json",
}

func appendMediaType(b []byte, mt string) []byte {
	if i := slices.Index(mediaTypes[1:], mt); i >= 0 {
		return append(b, byte(i+1))
	}
	return appendString(append(b, 0), mt)
}

func cutMediaType(b []byte) (string, []byte, bool) {
	if len(b) == 0 {
		return "", nil, false
	}
	if c := int(b[0]); c != 0 {
		if c >= len(mediaTypes) {
			return "", nil, false
		}
		return mediaTypes[c], b[1:], true
	}
	f, rest, ok := cutField(b[1:])
	return string(f), rest, ok
}

// A tag record is the push time followed by the digest the tag names;
// tag check records (tagcheck.go) share the layout.
func encodeTag(d digest.Digest, pushed time.Time) []byte {
	return appendDigest(appendTime(make([]byte, 0, 8+65), pushed), d)
}

// decodeTagRaw returns the digest of a tag record still encoded, and its
// push time.
func decodeTagRaw(v []byte) ([]byte, time.Time, bool) {
	if len(v) < 9 {
		return nil, time.Time{}, false
	}
	raw, rest, ok := cutDigest(v[8:])
	if !ok || len(rest) != 0 {
		return nil, time.Time{}, false
	}
	return raw, decodeTime(v[:8]), true
}

func decodeTag(v []byte) (digest.Digest, time.Time, bool) {
	raw, t, ok := decodeTagRaw(v)
	if !ok {
		return "", t, false
	}
	return digestString(raw), t, true
}

// A manifest record is its media type, then the length of its metadata
// and the metadata (push time, subject, blobs and child manifests), then
// the manifest bytes: a GET reads the media type and slices the bytes
// without decoding the rest. Annotations and artifact type, which only
// the referrers API reports, are kept in the referrer record.
func encodeManifest(m Manifest) []byte {
	meta := appendTime(make([]byte, 0, 16+65*(1+len(m.Blobs)+len(m.Manifests))), m.Pushed)
	if m.Subject != "" {
		meta = appendDigest(append(meta, 1), m.Subject)
	} else {
		meta = append(meta, 0)
	}
	meta = appendDigests(meta, m.Blobs)
	meta = appendDigests(meta, m.Manifests)
	out := appendMediaType(make([]byte, 0, len(m.MediaType)+len(meta)+len(m.Content)+8), m.MediaType)
	out = binary.AppendUvarint(out, uint64(len(meta)))
	out = append(out, meta...)
	return append(out, m.Content...)
}

func appendDigests(b []byte, ds []digest.Digest) []byte {
	b = binary.AppendUvarint(b, uint64(len(ds)))
	for _, d := range ds {
		b = appendDigest(b, d)
	}
	return b
}

func cutDigests(b []byte) ([]digest.Digest, []byte, bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, nil, false
	}
	b = b[k:]
	var out []digest.Digest
	for range n {
		raw, rest, ok := cutDigest(b)
		if !ok {
			return nil, nil, false
		}
		out, b = append(out, digestString(raw)), rest
	}
	return out, b, true
}

// manifestRecord is a record split into its parts, still in bbolt's memory.
type manifestRecord struct {
	mediaType     string
	meta, content []byte
}

func splitManifest(d digest.Digest, rec []byte) (manifestRecord, error) {
	var r manifestRecord
	var ok bool
	if r.mediaType, rec, ok = cutMediaType(rec); !ok {
		return r, fmt.Errorf("manifest %s: corrupt record", d)
	}
	if r.meta, r.content, ok = cutField(rec); !ok {
		return r, fmt.Errorf("manifest %s: corrupt record", d)
	}
	return r, nil
}

// decodeManifestMeta fills m's push time, subject, blobs and child
// manifests from a record's metadata.
func decodeManifestMeta(d digest.Digest, meta []byte, m *Manifest) error {
	bad := fmt.Errorf("manifest %s: corrupt record", d)
	if len(meta) < 9 {
		return bad
	}
	m.Pushed = decodeTime(meta[:8])
	rest := meta[9:]
	if meta[8] == 1 {
		raw, r, ok := cutDigest(rest)
		if !ok {
			return bad
		}
		m.Subject, rest = digestString(raw), r
	}
	var ok bool
	if m.Blobs, rest, ok = cutDigests(rest); !ok {
		return bad
	}
	if m.Manifests, rest, ok = cutDigests(rest); !ok || len(rest) != 0 {
		return bad
	}
	return nil
}

// A referrer record holds what the referrers API reports of a manifest
// beyond its digest: media type, size, artifact type and annotations.
func encodeReferrer(m Manifest) []byte {
	v := appendMediaType(nil, m.MediaType)
	v = binary.AppendUvarint(v, uint64(m.Size))
	v = appendString(v, m.ArtifactType)
	v = binary.AppendUvarint(v, uint64(len(m.Annotations)))
	for _, k := range slices.Sorted(maps.Keys(m.Annotations)) {
		v = appendString(appendString(v, k), m.Annotations[k])
	}
	return v
}

// decodeReferrer fills m's media type, size, artifact type and
// annotations.
func decodeReferrer(v []byte, m *Manifest) bool {
	var ok bool
	if m.MediaType, v, ok = cutMediaType(v); !ok {
		return false
	}
	size, k := binary.Uvarint(v)
	if k <= 0 {
		return false
	}
	m.Size = int64(size)
	at, v, ok := cutField(v[k:])
	if !ok {
		return false
	}
	m.ArtifactType = string(at)
	n, k := binary.Uvarint(v)
	if k <= 0 || n > uint64(len(v)) {
		return false
	}
	v = v[k:]
	for range n {
		var key, val []byte
		if key, v, ok = cutField(v); !ok {
			return false
		}
		if val, v, ok = cutField(v); !ok {
			return false
		}
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations[string(key)] = string(val)
	}
	return len(v) == 0
}

type blobRecord struct {
	Size    int64
	Created int64 // Unix nanoseconds
	// Key is where the bytes are when not at the blob's key: on S3, the
	// upload that received them (see Sealer). "" for the blob's key.
	Key string
}

// A blob record is its size (uvarint) and creation time, then its
// location key, length-prefixed, if it has one. Fields added later go
// after these (a record that has them has every earlier one);
// decoders ignore what follows the fields they know.
func encodeBlobRecord(r blobRecord) []byte {
	v := binary.BigEndian.AppendUint64(binary.AppendUvarint(make([]byte, 0, 18), uint64(r.Size)), uint64(r.Created))
	if r.Key != "" {
		v = appendString(v, r.Key)
	}
	return v
}

func decodeBlobRecord(v []byte) (blobRecord, bool) {
	size, k := binary.Uvarint(v)
	if k <= 0 || len(v) < k+8 {
		return blobRecord{}, false
	}
	r := blobRecord{Size: int64(size), Created: int64(binary.BigEndian.Uint64(v[k:]))}
	if rest := v[k+8:]; len(rest) > 0 {
		key, _, ok := cutField(rest)
		if !ok {
			return blobRecord{}, false
		}
		r.Key = string(key)
	}
	return r, true
}

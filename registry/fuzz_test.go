package registry

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// FuzzParsePath checks that whatever the path, parsePath either rejects it
// or yields a valid name and reference whose rewrite ServeMux can route.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"team/app/manifests/v1", "a/blobs/sha256:" + strings.Repeat("a", 64), "a/b/c/blobs/uploads/", "a/blobs/uploads",
		"a/blobs/uploads/0123456789abcdef0123456789abcdef", "a/tags/list", "a/referrers/sha512:" + strings.Repeat("b", 128),
		"../a/manifests/x", "a%2Fb/manifests/x", "A/manifests/x", "a//b/tags/list", "a/manifests/", "manifests/manifests/manifests",
		"a/blobs/uploads/../../meta.db", "_catalog", "", "/", "a/manifests/sha256:zz", "a/tags/nope",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		ap, ok, err := parsePath(p)
		if err != nil {
			if asError(err).Code.Status != 400 && asError(err).Code.Status != 404 {
				t.Fatalf("parsePath(%q) error %v has status %d", p, err, asError(err).Code.Status)
			}
			return
		}
		if !ok {
			return
		}
		if !validName(ap.name) || strings.Contains(ap.name, "..") || strings.ContainsAny(ap.name, "%\\") {
			t.Fatalf("parsePath(%q) accepted name %q", p, ap.name)
		}
		if strings.ContainsAny(ap.last, "/%") || ap.last == ".." {
			t.Fatalf("parsePath(%q) accepted reference %q", p, ap.last)
		}
		path, raw := ap.rewrite()
		if un, err := url.PathUnescape(raw); err != nil || un != path {
			t.Fatalf("rewrite(%q) = %q, %q: raw does not unescape to path", p, path, raw)
		}
	})
}

var (
	nameRE = regexp.MustCompile(nameRegexp)
	tagRE  = regexp.MustCompile(tagRegexp)
)

// FuzzValidName holds validName and validTag to the spec's regular
// expressions.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"a", "a/b", "a.b", "a..b", "a_b", "a__b", "a___b", "a-b", "a--b", "a_-b", "a-_b", "_a", "a_", "a._b",
		"a/_b", "a//b", "A", "a.b_c__d-e--f/g", "v1.0", ".v", "-v", "_v", "V_1", "a__", "__a", "a_.b", "a._.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validName(s), len(s) <= maxNameLength && nameRE.MatchString(s); got != want {
			t.Fatalf("validName(%q) = %v, want %v", s, got, want)
		}
		if got, want := validTag(s), tagRE.MatchString(s); got != want {
			t.Fatalf("validTag(%q) = %v, want %v", s, got, want)
		}
	})
}

// FuzzParseDigest checks that parseDigest's check of the canonical form
// gives digest.Parse's answer, whatever the string.
func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{"sha256:" + strings.Repeat("a", 64), "sha512:" + strings.Repeat("0", 128),
		"sha256:" + strings.Repeat("A", 64), "sha256:" + strings.Repeat("a", 63), "sha384:" + strings.Repeat("a", 96),
		"sha256:" + strings.Repeat("g", 64), "sha256" + strings.Repeat("a", 65), ":", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseDigest(s)
		want, werr := digest.Parse(s)
		if werr == nil && want.Algorithm() != digest.SHA256 && want.Algorithm() != digest.SHA512 {
			werr = digest.ErrDigestUnsupported
		}
		if (err == nil) != (werr == nil) || (err == nil && got != want) {
			t.Fatalf("parseDigest(%q) = %q, %v; digest.Parse says %q, %v", s, got, err, want, werr)
		}
	})
}

// FuzzParseManifest checks that parseManifest never panics, and that what it
// accepts is valid JSON with valid digests to check.
func FuzzParseManifest(f *testing.F) {
	f.Add(ociManifest, []byte(imageManifest(digest.Digest("sha256:"+strings.Repeat("a", 64)), digest.Digest("sha256:"+strings.Repeat("b", 64)), 2, 3, "")))
	f.Add(ociIndex, []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:`+strings.Repeat("c", 64)+`","size":1}]}`))
	f.Add("", []byte(`{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha512:`+strings.Repeat("d", 128)+`","size":0},"layers":[]}`))
	f.Add(mediaTypeDockerList, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}`))
	f.Add(ociManifest, []byte(`{"schemaVersion":2,`))
	f.Add("text/plain", []byte(`null`))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		m, err := parseManifest(contentType, body)
		if err != nil {
			if c := asError(err).Code; c != CodeManifestInvalid {
				t.Fatalf("parseManifest error code = %s, want MANIFEST_INVALID", c.Value)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("parseManifest accepted invalid JSON %q", body)
		}
		if _, ok := manifestKinds[m.MediaType]; !ok {
			t.Fatalf("parseManifest accepted media type %q", m.MediaType)
		}
		for _, d := range append(m.Blobs, m.Manifests...) {
			if _, err := parseDigest(string(d)); err != nil {
				t.Fatalf("parseManifest accepted reference %q", d)
			}
		}
	})
}

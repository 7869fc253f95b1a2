package storage

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/nora-registry/nora/trust"
)

// S3 is a Driver that keeps blob bytes in an S3 bucket.
//
// A key is stored as its object, as a run of segment objects named
// key + ".seg." + an 8-digit number, or as both (the object first). A new
// key written in one go (one write of known length streamed as one PUT,
// or a multipart upload of unknown length completed at Commit) is its own
// object, which Seal leaves where it is: a chunked upload's bytes then
// become its blob without a copy. Appends are spooled on local disk and
// sent as segments of part_size_mib, so no blob is held in memory and an
// interrupted upload resumes from its last committed segment, after a
// restart too. Every segment but the last is at least 5 MiB, the S3
// minimum part size, so Seal and Move assemble one object with a
// server-side multipart copy. Segment keys never collide with Store's
// keys, which are hex digits and slashes.
type S3 struct {
	client   *minio.Client
	core     minio.Core
	bucket   string
	prefix   string
	spool    string
	partSize int64
	redirect time.Duration // zero: no presigned redirects
	endpoint string
	metrics  *s3Metrics

	// journal records multipart uploads until they end, when the driver
	// serves a Store (see AbortMultipartUploads); live are those this
	// process is sending.
	journal   multipartJournal
	live      liveUploads
	beginning sync.RWMutex // see beginUpload

	// composing says when blobs in pieces are next composed into one
	// object each, for redirects (s3compose.go).
	composing *composeQueue
}

const (
	segMarker  = ".seg."
	minSegment = 5 << 20 // S3's minimum size of every part but the last
)

// NewS3 connects to the bucket cfg names and checks that it is usable.
// spool is a local directory for parts on their way up. The error names
// the problem: endpoint unreachable, credentials refused, bucket missing.
func NewS3(ctx context.Context, cfg S3Config, spool string) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr, err := minio.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, err
	}
	tr.ResponseHeaderTimeout = cfg.timeout()
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.MaxIdleConnsPerHost = 64
	if cfg.CAFile != "" {
		pool, err := trust.Pool(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("storage.s3.ca_file: %w", err)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	metrics := newS3Metrics()
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       cfg.Secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    metrics.transport(tr),
		MaxRetries:   cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("storage.s3.endpoint: %w", err)
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	if err := os.MkdirAll(spool, 0o750); err != nil {
		return nil, fmt.Errorf("storage.s3: spool directory: %w", err)
	}
	// Spool files belong to writers of an earlier process: their bytes
	// were never committed.
	if old, _ := filepath.Glob(filepath.Join(spool, "part-*")); len(old) > 0 {
		for _, f := range old {
			os.Remove(f)
		}
	}
	s := &S3{
		client: client, core: minio.Core{Client: client}, bucket: cfg.Bucket,
		prefix: prefix, spool: spool, partSize: cfg.PartSizeMiB << 20, endpoint: cfg.Endpoint,
		metrics: metrics, composing: newComposeQueue(cfg.composeDelay()),
	}
	if cfg.Redirect {
		s.redirect = cfg.redirectExpiry()
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

// check makes one request that fails for each way the bucket can be
// unusable, and turns the failure into a sentence. A listing is a GET, so
// a refusal comes with its error code.
func (s *S3) check() error {
	_, err := s.core.ListObjectsV2(s.bucket, s.prefix, "", "", "/", 1)
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "NoSuchBucket":
		return fmt.Errorf("storage.s3.bucket: bucket %q does not exist at %s", s.bucket, s.endpoint)
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken",
		"XAdminUserNotFound": // versitygw's word for an unknown access key
		return fmt.Errorf("storage.s3.access_key: %s refused the credentials: %s", s.endpoint, resp.Code)
	case "":
		var ne net.Error
		if errors.As(err, &ne) {
			return fmt.Errorf("storage.s3.endpoint: %s unreachable: %v", s.endpoint, err)
		}
	}
	if resp.StatusCode == 401 || resp.StatusCode == 403 {
		return fmt.Errorf("storage.s3.access_key: %s refused the credentials: %s", s.endpoint, resp.Message)
	}
	return fmt.Errorf("storage.s3: %s: %v", s.endpoint, err)
}

func (s *S3) object(key string) string { return s.prefix + key }

func segName(key string, n int) string { return fmt.Sprintf("%s%s%08d", key, segMarker, n) }

// s3Error turns a client error into ErrNotFound, ErrUnavailable or itself,
// naming the operation and key.
func s3Error(op, key string, err error) error {
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey" || resp.Code == "NoSuchUpload":
		return fmt.Errorf("%w: s3 %s %s", ErrNotFound, op, key)
	case resp.StatusCode >= 500 || resp.Code == "SlowDown" || resp.Code == "RequestTimeout":
		return fmt.Errorf("%w: s3 %s %s: %v", ErrUnavailable, op, key, err)
	case resp.Code == "":
		// No answer from the server: refused, reset, timed out.
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("%w: s3 %s %s: %v", ErrUnavailable, op, key, err)
	}
	return fmt.Errorf("s3 %s %s: %w", op, key, err)
}

// piece is one object holding a run of a key's bytes.
type piece struct {
	name string // object name, prefix included
	size int64
	seg  int // segment number; 0 for the key's own object
}

// layout lists the objects holding key, in order. An empty result means
// the key does not exist.
func (s *S3) layout(ctx context.Context, key string) ([]piece, error) {
	var ps []piece
	info, err := s.client.StatObject(ctx, s.bucket, s.object(key), minio.StatObjectOptions{})
	switch err := s3Error("stat", key, err); {
	case err == nil:
		ps = append(ps, piece{name: info.Key, size: info.Size})
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	segs, err := s.segments(ctx, key)
	return append(ps, segs...), err
}

// segments lists key's segment objects in order.
func (s *S3) segments(ctx context.Context, key string) ([]piece, error) {
	var ps []piece
	base := s.object(key) + segMarker
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: base, Recursive: true}) {
		if obj.Err != nil {
			return nil, s3Error("list", key, obj.Err)
		}
		var n int
		if _, err := fmt.Sscanf(strings.TrimPrefix(obj.Key, base), "%08d", &n); err != nil || n <= 0 {
			continue
		}
		ps = append(ps, piece{name: obj.Key, size: obj.Size, seg: n})
	}
	return ps, nil
}

func total(ps []piece) int64 {
	var n int64
	for _, p := range ps {
		n += p.size
	}
	return n
}

// Stat implements Driver.
func (s *S3) Stat(ctx context.Context, key string) (int64, error) {
	ps, err := s.layout(ctx, key)
	if err != nil {
		return 0, err
	}
	if len(ps) == 0 {
		return 0, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return total(ps), nil
}

// Reader implements Driver. A whole object, the usual case for blobs, costs
// one request.
func (s *S3) Reader(ctx context.Context, key string, offset int64) (io.ReadCloser, error) {
	rc, err := s.openRange(ctx, s.object(key), key, offset)
	if err == nil {
		return rc, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	ps, err := s.segments(ctx, key)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return &pieceReader{ctx: ctx, s: s, key: key, pieces: ps, offset: offset, pos: offset}, nil
}

// openRange opens object from offset. An offset at or past the end reads
// nothing.
func (s *S3) openRange(ctx context.Context, object, key string, offset int64) (io.ReadCloser, error) {
	opts := minio.GetObjectOptions{}
	if offset > 0 {
		opts.SetRange(offset, 0)
	}
	rc, _, _, err := s.core.GetObject(ctx, s.bucket, object, opts)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "InvalidRange" {
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, s3Error("get", key, err)
	}
	return rc, nil
}

// pieceReader reads a key's pieces one after another, opening each only
// when the previous one is done. A segment gone when its turn comes was
// composed into the key's own object (composeSegments), which is read
// from there on.
type pieceReader struct {
	ctx    context.Context
	s      *S3
	key    string
	pieces []piece
	offset int64 // into the first remaining piece
	pos    int64 // of the next byte in the key
	cur    io.ReadCloser
}

func (r *pieceReader) Read(p []byte) (int, error) {
	for {
		if r.cur == nil {
			if err := r.next(); err != nil {
				return 0, err
			}
		}
		n, err := r.cur.Read(p)
		r.pos += int64(n)
		if err == io.EOF {
			r.cur.Close()
			r.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// next opens the piece holding the key's byte at r.pos.
func (r *pieceReader) next() error {
	for len(r.pieces) > 0 && r.offset >= r.pieces[0].size {
		r.offset -= r.pieces[0].size
		r.pieces = r.pieces[1:]
	}
	if len(r.pieces) == 0 {
		return io.EOF
	}
	rc, err := r.s.openRange(r.ctx, r.pieces[0].name, r.key, r.offset)
	if errors.Is(err, ErrNotFound) && r.pieces[0].seg != 0 {
		rc, err = r.s.openRange(r.ctx, r.s.object(r.key), r.key, r.pos)
		r.pieces = nil
	}
	if err != nil {
		return err
	}
	r.cur, r.offset = rc, 0
	if r.pieces != nil {
		r.pieces = r.pieces[1:]
	}
	return nil
}

func (r *pieceReader) Close() error {
	if r.cur != nil {
		return r.cur.Close()
	}
	return nil
}

// Move implements Driver: a server-side copy of the pieces into one object,
// then the pieces are deleted. The copy becomes visible all at once; an
// error means it did not land, or may have landed whole.
func (s *S3) Move(ctx context.Context, from, to string) error {
	ps, err := s.layout(ctx, from)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, from)
	}
	if err := s.copyPieces(ctx, to, ps); err != nil {
		return s3Error("move", from+" to "+to, err)
	}
	// The copy is whole: pieces a failure leaves under from are an
	// orphan for GC, not a failed Move that a caller would undo.
	s.removePieces(ctx, from, ps)
	return nil
}

// copyPieces copies ps, in order, into key's own object.
func (s *S3) copyPieces(ctx context.Context, key string, ps []piece) error {
	full := slices.DeleteFunc(slices.Clone(ps), func(p piece) bool { return p.size == 0 })
	if len(full) == 0 {
		full = ps[:1]
	}
	if len(full) > 1 || full[0].size > maxPut {
		return s.compose(ctx, key, full)
	}
	// One piece is one CopyObject: ComposeObject copies a single source
	// whole only when its Start is -1, and otherwise starts a multipart
	// copy, which a crash would leave unfinished.
	_, err := s.client.CopyObject(ctx, minio.CopyDestOptions{Bucket: s.bucket, Object: s.object(key)},
		minio.CopySrcOptions{Bucket: s.bucket, Object: full[0].name})
	return err
}

// Seal implements Sealer. A key written in one piece, by one write of
// known length or one write from offset 0, is its own object already and
// costs one request. A key in several segments (a chunked upload) stays
// as it is, read segment after segment, and Seal reports it is not one
// object: a presigned URL serves one object, so the segments are copied
// into the key's own object later, in the background (composeSegments),
// never on the push's path.
func (s *S3) Seal(ctx context.Context, key string) (int64, bool, error) {
	ps, err := s.layout(ctx, key)
	if err != nil {
		return 0, false, err
	}
	if len(ps) == 0 {
		return 0, false, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if len(ps) == 1 && ps[0].seg == 0 {
		return ps[0].size, true, nil
	}
	if ps[0].seg != 0 {
		return total(ps), false, nil
	}
	// The key's own object followed by segments: no writer leaves that
	// once it has committed, but a plain GET would read the object alone.
	if err := s.copyPieces(ctx, key, ps); err != nil {
		return 0, false, s3Error("seal", key, err)
	}
	// Segments left by a failure are read after the whole object, and
	// so never; the next orphan scan counts them with it.
	s.removePieces(ctx, key, slices.DeleteFunc(ps, func(p piece) bool { return p.seg == 0 }))
	return total(ps), true, nil
}

func (s *S3) removePieces(ctx context.Context, key string, ps []piece) error {
	for _, p := range ps {
		if err := s.client.RemoveObject(ctx, s.bucket, p.name, minio.RemoveObjectOptions{}); err != nil {
			if err := s3Error("delete", key, err); !errors.Is(err, ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

// Delete implements Driver.
func (s *S3) Delete(ctx context.Context, key string) error {
	ps, err := s.layout(ctx, key)
	if err != nil {
		return err
	}
	return s.removePieces(ctx, key, ps)
}

// Walk implements Driver. A key stored as several pieces is reported once,
// with its whole size.
func (s *S3) Walk(ctx context.Context, prefix string, fn func(key string, size int64) error) error {
	p := s.object(strings.TrimSuffix(prefix, "/") + "/")
	var cur string
	var size int64
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: p, Recursive: true}) {
		if obj.Err != nil {
			return s3Error("list", prefix, obj.Err)
		}
		key := strings.TrimPrefix(obj.Key, s.prefix)
		if i := strings.Index(key, segMarker); i >= 0 {
			key = key[:i]
		}
		if key == cur {
			size += obj.Size
			continue
		}
		if cur != "" {
			if err := fn(cur, size); err != nil {
				return err
			}
		}
		cur, size = key, obj.Size
	}
	if cur != "" {
		return fn(cur, size)
	}
	return nil
}

// RedirectURL returns a presigned GET URL for key when redirects are on,
// or "" when they are off.
func (s *S3) RedirectURL(ctx context.Context, key string) (string, error) {
	if s.redirect == 0 {
		return "", nil
	}
	u, err := s.client.PresignedGetObject(ctx, s.bucket, s.object(key), s.redirect, nil)
	if err != nil {
		return "", s3Error("presign", key, err)
	}
	return u.String(), nil
}

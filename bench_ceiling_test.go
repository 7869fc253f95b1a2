//go:build bench

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchCeiling is the machine's ceiling: a bare net/http handler on
// loopback, in the test process, that answers the same URLs as the
// registry while doing only the work no registry can avoid. Blob pushes
// hash the body, write it to a file on the same filesystem and fsync it;
// pulls are http.ServeContent of that file; manifest PUTs append to one
// log file made durable by group commit; manifest GETs and tag lists are
// served from memory. No validation, no metadata store, no atomic rename.
type benchCeiling struct {
	dir  string
	base string
	next atomic.Int64

	mu        sync.Mutex
	uploads   map[string]*benchCeilUpload
	blobs     map[string]string // digest → file
	manifests map[string]benchCeilManifest
	tagLists  map[string][]byte // path → body

	log           *os.File
	logMu, syncMu sync.Mutex
	written       int64 // records appended to log, under logMu
	synced        int64 // records known durable, under syncMu
}

type benchCeilUpload struct {
	f   *os.File
	h   hash.Hash
	off int64
}

type benchCeilManifest struct {
	body        []byte
	contentType string
	digest      string
}

func newBenchCeiling(t *testing.T, dir string) *benchCeiling {
	log, err := os.Create(filepath.Join(dir, "manifests.log"))
	if err != nil {
		t.Fatal(err)
	}
	c := &benchCeiling{
		dir:       dir,
		log:       log,
		uploads:   map[string]*benchCeilUpload{},
		blobs:     map[string]string{},
		manifests: map[string]benchCeilManifest{},
		tagLists:  map[string][]byte{},
	}
	srv := httptest.NewServer(c)
	c.base = srv.URL
	t.Cleanup(func() { srv.Close(); log.Close() })
	return c
}

func (c *benchCeiling) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := c.serve(w, r); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

func (c *benchCeiling) serve(w http.ResponseWriter, r *http.Request) error {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/blobs/uploads/"):
		id := strconv.FormatInt(c.next.Add(1), 10)
		f, err := os.Create(filepath.Join(c.dir, "upload-"+id))
		if err != nil {
			return err
		}
		up := &benchCeilUpload{f: f, h: sha256.New()}
		if d := r.URL.Query().Get("digest"); d != "" {
			if err := up.append(r.Body); err != nil {
				return err
			}
			return c.finish(w, up, d)
		}
		c.mu.Lock()
		c.uploads[id] = up
		c.mu.Unlock()
		w.Header().Set("Location", p+id)
		w.WriteHeader(http.StatusAccepted)
	case strings.Contains(p, "/blobs/uploads/"):
		c.mu.Lock()
		up := c.uploads[path.Base(p)]
		c.mu.Unlock()
		if up == nil {
			return errors.New("no such upload")
		}
		if cr := r.Header.Get("Content-Range"); cr != "" && !strings.HasPrefix(cr, strconv.FormatInt(up.off, 10)+"-") {
			return fmt.Errorf("Content-Range %s does not start at %d", cr, up.off)
		}
		if err := up.append(r.Body); err != nil {
			return err
		}
		if r.Method == http.MethodPut {
			return c.finish(w, up, r.URL.Query().Get("digest"))
		}
		w.Header().Set("Location", p)
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodGet && strings.Contains(p, "/blobs/"):
		c.mu.Lock()
		name := c.blobs[path.Base(p)]
		c.mu.Unlock()
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		http.ServeContent(w, r, "", time.Time{}, f)
	case r.Method == http.MethodPut && strings.Contains(p, "/manifests/"):
		return c.putManifest(w, r)
	case r.Method == http.MethodGet && strings.Contains(p, "/manifests/"):
		c.mu.Lock()
		m, ok := c.manifests[p]
		c.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return nil
		}
		hd := w.Header()
		hd.Set("Content-Type", m.contentType)
		hd.Set("Docker-Content-Digest", m.digest)
		hd.Set("Content-Length", strconv.Itoa(len(m.body)))
		w.Write(m.body)
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/tags/list"):
		c.mu.Lock()
		body := c.tagLists[p]
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	default:
		http.NotFound(w, r)
	}
	return nil
}

var benchCopyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// append hashes and writes body in full buffers: socket reads return a
// few dozen KiB at a time, and hashing and writing each of those costs
// more syscalls and calls than the registry makes.
func (up *benchCeilUpload) append(body io.Reader) error {
	bp := benchCopyBuffers.Get().(*[]byte)
	defer benchCopyBuffers.Put(bp)
	buf := *bp
	for {
		k, err := io.ReadFull(body, buf)
		if k > 0 {
			up.h.Write(buf[:k])
			if _, werr := up.f.Write(buf[:k]); werr != nil {
				return werr
			}
			up.off += int64(k)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// finish makes the upload durable and checks its digest.
func (c *benchCeiling) finish(w http.ResponseWriter, up *benchCeilUpload, want string) error {
	defer up.f.Close()
	if err := up.f.Sync(); err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(up.h.Sum(nil)); got != want {
		return fmt.Errorf("digest %s, want %s", got, want)
	}
	c.mu.Lock()
	c.blobs[want] = up.f.Name()
	c.mu.Unlock()
	w.Header().Set("Docker-Content-Digest", want)
	w.WriteHeader(http.StatusCreated)
	return nil
}

// forget deletes a blob's file, to keep the ceiling's disk use small.
func (c *benchCeiling) forget(digest string) {
	c.mu.Lock()
	name := c.blobs[digest]
	delete(c.blobs, digest)
	c.mu.Unlock()
	if name != "" {
		os.Remove(name)
	}
}

func (c *benchCeiling) putManifest(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	m := benchCeilManifest{body: body, contentType: r.Header.Get("Content-Type"), digest: "sha256:" + hex.EncodeToString(sum[:])}
	if err := c.appendLog(r.URL.Path, body); err != nil {
		return err
	}
	byDigest := path.Dir(r.URL.Path) + "/" + m.digest
	c.mu.Lock()
	c.manifests[r.URL.Path] = m
	c.manifests[byDigest] = m
	c.mu.Unlock()
	w.Header().Set("Location", byDigest)
	w.Header().Set("Docker-Content-Digest", m.digest)
	w.WriteHeader(http.StatusCreated)
	return nil
}

// appendLog writes a record and returns once it is durable. Concurrent
// callers share fsyncs: whoever syncs makes every record written so far
// durable (group commit).
func (c *benchCeiling) appendLog(key string, body []byte) error {
	c.logMu.Lock()
	_, err := fmt.Fprintf(c.log, "%s %d\n%s\n", key, len(body), body)
	c.written++
	mine := c.written
	c.logMu.Unlock()
	if err != nil {
		return err
	}
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	if c.synced >= mine {
		return nil
	}
	c.logMu.Lock()
	upto := c.written
	c.logMu.Unlock()
	if err := c.log.Sync(); err != nil {
		return err
	}
	c.synced = upto
	return nil
}

// setTagList makes the ceiling serve body for path, a tags/list URL path.
func (c *benchCeiling) setTagList(path string, body []byte) {
	c.mu.Lock()
	c.tagLists[path] = body
	c.mu.Unlock()
}

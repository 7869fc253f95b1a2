// Package s3test runs a real S3 server over a temporary directory, for
// tests of the S3 driver and of the registry on S3: versitygw, or MinIO,
// the server most users run, whose multipart listing differs.
//
// The servers are installed with
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
//	go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
//
// and found on PATH or in $(go env GOPATH)/bin. Without one a test is
// skipped with a message saying so, except under CI=true, where it fails.
package s3test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Server is a running S3 server with one empty bucket.
type Server struct {
	Kind      string // "versitygw" or "minio"
	Endpoint  string // 127.0.0.1:port
	AccessKey string
	SecretKey string
	Bucket    string

	t    testing.TB
	bin  string
	dir  string
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

// Binary returns the path of the server kind ("versitygw" or "minio"),
// or "" if it is not installed.
func Binary(kind string) string {
	if p, err := exec.LookPath(kind); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return ""
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "bin", kind)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

var installs = map[string]string{
	"versitygw": "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0",
	"minio":     "go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c",
}

// Start runs versitygw on a free loopback port with an empty bucket, and
// stops it when the test ends.
func Start(t testing.TB) *Server { return StartKind(t, "versitygw") }

// StartMinIO is Start with MinIO.
func StartMinIO(t testing.TB) *Server { return StartKind(t, "minio") }

// StartKind is Start with the server kind, "versitygw" or "minio".
func StartKind(t testing.TB, kind string) *Server {
	t.Helper()
	bin := Binary(kind)
	if bin == "" {
		hint := kind + " not installed: " + installs[kind]
		if os.Getenv("CI") == "true" {
			t.Fatal(hint)
		}
		t.Skip(hint)
	}
	s := &Server{
		Kind:      kind,
		AccessKey: "nora-test-access",
		SecretKey: "nora-test-secret-key-0123456789",
		Bucket:    "nora",
		t:         t,
		bin:       bin,
		dir:       t.TempDir(),
	}
	s.Endpoint = freePort(t)
	s.Start()
	t.Cleanup(s.Stop)
	if err := s.Client().MakeBucket(context.Background(), s.Bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("%s: make bucket %s: %v\n%s", kind, s.Bucket, err, s.logs)
	}
	return s
}

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Start starts the server again after Stop, on the same port and data.
func (s *Server) Start() {
	s.t.Helper()
	s.logs = new(bytes.Buffer)
	if s.Kind == "minio" {
		s.cmd = exec.Command(s.bin, "server", "--quiet", "--address", s.Endpoint, s.dir)
		s.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+s.AccessKey, "MINIO_ROOT_PASSWORD="+s.SecretKey,
			"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	} else {
		s.cmd = exec.Command(s.bin, "--port", s.Endpoint, "posix", s.dir)
		s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	}
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", s.Kind, err)
	}
	c := s.Client()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.ListBuckets(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatalf("%s on %s not ready: %v\n%s", s.Kind, s.Endpoint, err, s.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server; its data stays for Start.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	resume(s.cmd.Process)
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Client returns a minio-go client for the server.
func (s *Server) Client() *minio.Client {
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		BucketLookup: minio.BucketLookupPath,
		Region:       "us-east-1",
		MaxRetries:   1,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// TOML is the [storage] section that points the registry at the server,
// with root as its data directory and extra lines appended to
// [storage.s3].
func (s *Server) TOML(root string, extra ...string) string {
	return fmt.Sprintf(`[storage]
driver = "s3"
root = %q

[storage.s3]
endpoint = %q
bucket = %q
access_key = %q
secret_key = %q
secure = false
path_style = true
%s
`, root, s.Endpoint, s.Bucket, s.AccessKey, s.SecretKey, strings.Join(extra, "\n"))
}

// Pause freezes the server (SIGSTOP): connections stay open and nothing
// answers, as with a server too slow to reply.
func (s *Server) Pause() {
	pause(s.t, s.cmd.Process)
	// The signal takes effect asynchronously: a request sent before the
	// server stops would still be answered.
	stat := fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid)
	for range 1000 {
		b, err := os.ReadFile(stat)
		if err != nil {
			return // no /proc: the best this system allows
		}
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && bytes.HasPrefix(b[i+1:], []byte(" T")) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// Resume undoes Pause.
func (s *Server) Resume() { resume(s.cmd.Process) }

// MultipartUploads returns the multipart uploads the bucket holds, as
// "key upload-id" for versitygw and as the upload's directory for MinIO,
// whose listing shows only exact keys and only uploads begun since it
// started: its data directory is read instead.
func (s *Server) MultipartUploads() []string {
	s.t.Helper()
	var ups []string
	if s.Kind == "minio" {
		dirs, _ := filepath.Glob(filepath.Join(s.dir, ".minio.sys", "multipart", "*", "*"))
		for _, d := range dirs {
			ups = append(ups, filepath.Base(filepath.Dir(d))+"/"+filepath.Base(d))
		}
		return ups
	}
	for up := range s.Client().ListIncompleteUploads(context.Background(), s.Bucket, "", true) {
		if up.Err != nil {
			s.t.Fatalf("list multipart uploads: %v", up.Err)
		}
		ups = append(ups, up.Key+" "+up.UploadID)
	}
	return ups
}

package cmd

import (
	"io"
	"net/http"
	"strings"
	"time"
)

// guardBodies bounds what a request body can cost the server, for every
// route (the registry, the token endpoints, metrics):
//
//   - each read of the body must bring bytes within idle, or the read
//     fails and the request ends; the deadline moves forward as bytes
//     arrive, so a slow upload survives and a stalled one is cut;
//   - a deadline is in force from the start, so net/http's read of an
//     unread body after the handler returns (up to 256 KiB, to reuse the
//     connection) cannot hang either;
//   - an error answer to a request whose body was not read to its end
//     closes the connection instead of reading the rest, so refused and
//     unauthenticated clients cannot make the server read anything.
//
// It must wrap the handler given to http.Server: it hands net/http's own
// ResponseWriter to http.MaxBytesReader (see refuseBody).
func guardBodies(next http.Handler, idle time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Now().Add(idle))
		b := &idleBody{ReadCloser: r.Body, rc: rc, idle: idle, length: r.ContentLength}
		// A shallow copy: net/http keeps inspecting the body it gave us.
		r = r.WithContext(r.Context())
		r.Body = b
		gw := &guardedWriter{ResponseWriter: w, body: b, http1: r.ProtoMajor == 1}
		next.ServeHTTP(gw, r)
		// HTTP/2 resets the stream without reading the rest. A success
		// that left the body unread is rare and its read stays bounded by
		// the deadline.
		if r.ProtoMajor == 1 && gw.status >= 400 && b.unread() {
			refuseBody(w, rc)
		}
	})
}

// refuseBody makes net/http close the connection after the answer without
// reading the rest of the request body. The past read deadline makes its
// post-handler read fail at once. A MaxBytesReader whose limit is crossed
// is net/http's public way to say "the body is refused": the server then
// sends Connection: close, half-closes and waits briefly before closing,
// so the client reads the answer rather than a connection reset. The
// one-byte reader crosses a limit of 0 without touching the connection.
func refuseBody(w http.ResponseWriter, rc *http.ResponseController) {
	rc.SetReadDeadline(time.Unix(1, 0))
	http.MaxBytesReader(w, io.NopCloser(strings.NewReader("x")), 0).Read(make([]byte, 1))
}

// idleBody is a request body whose every read must make progress within
// idle.
type idleBody struct {
	io.ReadCloser
	rc     *http.ResponseController
	idle   time.Duration
	length int64 // Content-Length, -1 when unknown
	n      int64 // bytes read
	eof    bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	// Once the body is read, net/http clears the deadline and waits on the
	// connection for the client to go away, cancelling the request if that
	// read fails: a deadline set then would cancel handlers that run long
	// after the upload, such as an S3 copy.
	if !b.eof {
		b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// unread reports whether part of the body was never read.
func (b *idleBody) unread() bool {
	return !b.eof && (b.length < 0 || b.n < b.length)
}

// guardedWriter adds Connection: close to an error answer sent while part
// of the request body is unread: the connection is closed after it (see
// refuseBody), and the client must not send another request on it.
type guardedWriter struct {
	http.ResponseWriter
	body   *idleBody
	http1  bool
	status int
}

func (w *guardedWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		if code >= 400 && w.http1 && w.body.unread() {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *guardedWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *guardedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

package registry

import (
	"io"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/auth"
)

// maxUserAgentLen bounds the user agent written to the access log.
const maxUserAgentLen = 256

// logIdentity adds the caller to an access log line: the name and kind
// wrap authenticated, or anonymous when the registry is open. A request
// that never reached wrap, or whose credentials were refused, has
// neither field.
func logIdentity(ev *zerolog.Event, id *auth.Identity, open bool) *zerolog.Event {
	switch {
	case id != nil:
		name, kind := id.Who()
		if name != "" {
			ev = ev.Str("identity", name)
		}
		return ev.Str("identity_kind", string(kind))
	case open:
		return ev.Str("identity_kind", string(auth.KindAnonymous))
	}
	return ev
}

// NoteIdentity names the caller in the access log line of the request w
// answers, for a handler mounted with WithHandler that authenticates
// callers itself, as the dashboard does.
func NoteIdentity(w http.ResponseWriter, id *auth.Identity) {
	if rw, ok := w.(*responseWriter); ok {
		rw.id = id
	}
}

// requestLog returns the logger for what a handler logs about the request
// w answers: the registry's logger with the request id. A writer observe
// did not make, as in tests of a bare handler, gets zerolog's context
// logger of r.
func requestLog(w http.ResponseWriter, r *http.Request) *zerolog.Logger {
	if rw, ok := w.(*responseWriter); ok {
		return rw.logger()
	}
	return zerolog.Ctx(r.Context())
}

// userAgent returns r's User-Agent, cut to maxUserAgentLen bytes.
func userAgent(r *http.Request) string {
	ua := r.UserAgent()
	if len(ua) > maxUserAgentLen {
		ua = ua[:maxUserAgentLen]
	}
	return ua
}

// countingBody counts the request body bytes the handlers read, for
// nora_http_request_bytes_total and the access log.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

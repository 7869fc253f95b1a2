package registry

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/storage"
)

// TestWithHandler: a handler mounted next to the API answers its patterns
// with the registry's request id and access log, and the API is unchanged.
func TestWithHandler(t *testing.T) {
	st, err := storage.Open(t.Context(), storage.Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var buf bytes.Buffer
	other := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		NoteIdentity(w, &auth.Identity{Name: "alice", Kind: auth.KindUser})
		w.Write([]byte("dashboard"))
	})
	h := New(st, WithLogger(zerolog.New(&buf)), WithHandler(other, "/{$}", "/ui/"))
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/", 200, "dashboard"},
		{"/ui/x/y", 200, "dashboard"},
		{"/v2/", 200, "{}"},
		{"/elsewhere", 404, ""},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", tc.path, nil))
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) || w.Header().Get(requestIDHeader) == "" {
			t.Errorf("GET %s = %d %q (request id %q), want %d %q with a request id", tc.path, w.Code, w.Body, w.Header().Get(requestIDHeader), tc.status, tc.body)
		}
	}
	if !strings.Contains(buf.String(), `"route":"/ui/","path":"/ui/x/y","status":200,"bytes":9,"identity":"alice","identity_kind":"user"`) {
		t.Errorf("access log lacks the mounted request:\n%s", &buf)
	}
}

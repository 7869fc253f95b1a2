package replicate

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/rs/zerolog"
)

// TestPusherDelete: a delete of what the target lacks is done, as is one
// a target that refuses deletes answers with 405; other failures are
// retried.
func TestPusherDelete(t *testing.T) {
	target := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	status := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete && status != 0 {
			w.WriteHeader(status)
			return
		}
		target.ServeHTTP(w, r)
	}))
	defer srv.Close()
	pe, err := newPeer(Remote{Name: "t", URL: srv.URL, Insecure: true}, "push", zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &pusher{peer: pe, deletes: true}
	for _, tt := range []struct {
		status  int
		wantErr bool
	}{{0, false}, {http.StatusMethodNotAllowed, false}, {http.StatusForbidden, true}} {
		status = tt.status
		if err := p.delete(context.Background(), "team/app", "v1"); (err != nil) != tt.wantErr {
			t.Errorf("delete with the target answering %d = %v, want an error: %t", tt.status, err, tt.wantErr)
		}
	}
}

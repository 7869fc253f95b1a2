package auth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestCatalogWithBearerToken: a client that lists the catalog through the
// token dance (go-containerregistry asks for registry:catalog:*) sees
// every repository its user may pull, and none it may not; the catalog
// token authorizes no pull by itself.
func TestCatalogWithBearerToken(t *testing.T) {
	srv, _ := newAuthRegistry(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	alice := remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-pw"})
	for _, repo := range []string{"team/a", "team/b", "public/c"} {
		img, _ := random.Image(64, 1)
		ref, _ := name.ParseReference(host+"/"+repo+":v1", name.Insecure)
		if err := remote.Write(ref, img, alice); err != nil {
			t.Fatal(err)
		}
	}
	reg, _ := name.NewRegistry(host, name.Insecure)
	bob := remote.WithAuth(&authn.Basic{Username: "bob", Password: "bob-pw"})
	repos, err := remote.Catalog(context.Background(), reg, bob)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"public/c", "team/a", "team/b"}; !slices.Equal(repos, want) {
		t.Errorf("bob's catalog = %v, want %v", repos, want)
	}

	req, _ := http.NewRequest("GET", srv.URL+"/auth/token?service=nora&scope=registry:catalog:*", nil)
	req.SetBasicAuth("bob", "bob-pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	req, _ = http.NewRequest("GET", srv.URL+"/v2/team/a/tags/list", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if tok.Token == "" || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("tags list with the catalog token = %d, want 401 (a token for the repository is needed)", resp.StatusCode)
	}
}

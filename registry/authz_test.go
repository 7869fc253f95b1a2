package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/storage"
)

// staticAuthz lets the bearer of "Bearer ok" do what grants allows and
// nobody else anything; it checks the registry asks for the right action
// on the right repository, whatever the Authorizer behind it.
type staticAuthz struct{ grants map[string]auth.Action }

// staticGrants is what staticAuthz grants, as an identity carries it.
type staticGrants map[string]auth.Action

func (g staticGrants) Allows(repo string, action auth.Action) bool {
	a, ok := g[repo]
	return ok && (a == action || a == auth.ActionAll)
}

func (s staticAuthz) Authenticate(r *http.Request) (*auth.Identity, error) {
	switch r.Header.Get("Authorization") {
	case "":
		return &auth.Identity{Kind: auth.KindAnonymous}, nil
	case "Bearer ok":
		return &auth.Identity{Name: "ci", Kind: auth.KindToken, Grants: staticGrants(s.grants)}, nil
	}
	return nil, &auth.Error{Status: 401, Challenge: `Bearer realm="x"`, Message: "bad token"}
}

func (s staticAuthz) Authorize(r *http.Request, id *auth.Identity, repo string, action auth.Action) error {
	if id.Kind == auth.KindAnonymous {
		return &auth.Error{Status: 401, Challenge: `Bearer realm="x",scope="repository:` + repo + `:` + string(action) + `"`, Message: "authentication required"}
	}
	if repo == "" && action == "" {
		return nil
	}
	if staticGrants(s.grants).Allows(repo, action) {
		return nil
	}
	return &auth.Error{Status: 403, Message: "denied"}
}

func TestAuthorizerGuardsEveryRoute(t *testing.T) {
	st, err := storage.Open(context.Background(), storage.Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	open := httptest.NewServer(New(st))
	defer open.Close()
	seed(t, open.URL)
	guarded := httptest.NewServer(New(st, WithAuthorizer(staticAuthz{grants: map[string]auth.Action{"team/app": auth.ActionPull, "other/repo": auth.ActionAll}})))
	defer guarded.Close()
	ok := map[string]string{"Authorization": "Bearer ok"}
	runCalls(t, guarded.URL, []call{
		{name: "base anonymous", method: "GET", path: "/v2/", wantStatus: 401, wantCode: "UNAUTHORIZED", wantHeader: map[string]string{"WWW-Authenticate": "*"}},
		{name: "base with token", method: "GET", path: "/v2/", header: ok, wantStatus: 200},
		{name: "bad token", method: "GET", path: "/v2/team/app/manifests/v1", header: map[string]string{"Authorization": "Bearer bad"}, wantStatus: 401, wantCode: "UNAUTHORIZED"},
		{name: "anonymous pull", method: "GET", path: "/v2/team/app/manifests/v1", wantStatus: 401,
			wantHeader: map[string]string{"WWW-Authenticate": `Bearer realm="x",scope="repository:team/app:pull"`}},
		{name: "pull allowed", method: "GET", path: "/v2/team/app/manifests/v1", header: ok, wantStatus: 200},
		{name: "push denied", method: "POST", path: "/v2/team/app/blobs/uploads/", header: ok, wantStatus: 403, wantCode: "DENIED"},
		{name: "delete denied", method: "DELETE", path: "/v2/team/app/manifests/v1", header: ok, wantStatus: 403},
		{name: "other repo denied", method: "GET", path: "/v2/third/repo/tags/list", header: ok, wantStatus: 403},
		{name: "catalog filtered", method: "GET", path: "/v2/_catalog", header: ok, wantStatus: 200, wantBody: `{"repositories":["other/repo","team/app"]}`},
		{name: "catalog page", method: "GET", path: "/v2/_catalog?n=1", header: ok, wantStatus: 200, wantBody: `{"repositories":["other/repo"]}`},
	})
	// A mount needs pull on the source: other/repo may push but not read
	// from a repository it has no rights on, so the mount falls back.
	d := pushBlob(t, open.URL, "secret/repo", "secret")
	call{method: "POST", path: "/v2/other/repo/blobs/uploads/?mount=" + string(d) + "&from=secret/repo", header: ok, wantStatus: 202}.run(t, guarded.URL)
	call{method: "POST", path: "/v2/other/repo/blobs/uploads/?mount=" + string(d), header: ok, wantStatus: 202}.run(t, guarded.URL)
	call{method: "HEAD", path: "/v2/other/repo/blobs/" + string(d), header: ok, wantStatus: 404}.run(t, guarded.URL)
	if strings.Contains(call{method: "GET", path: "/v2/_catalog", header: ok, wantStatus: 200}.run(t, guarded.URL).Header.Get("Link"), "secret") {
		t.Error("catalog Link names a repository the caller cannot pull")
	}
}

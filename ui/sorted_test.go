package ui

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"

	"github.com/nora-registry/nora/registry"
)

// TestSortedRepositories: the list sorts by size, last push and last
// pull, pages by offset, keeps to what the caller may pull, and the
// overview counts what sharing blobs saves.
func TestSortedRepositories(t *testing.T) {
	f := newFixture(t)
	reg := httptest.NewServer(registry.New(f.store))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	if err := crane.Copy(host+"/team/app:v1", host+"/team/copy:v1", crane.Insecure); err != nil {
		t.Fatal(err)
	}
	list := func(base, query string, header map[string]string) RepoList {
		t.Helper()
		resp, body := send(t, "GET", base+"/api/v1/repositories?"+query, nil, nil, header)
		var l RepoList
		if err := json.Unmarshal([]byte(body), &l); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET ?%s = %d %s", query, resp.StatusCode, body)
		}
		return l
	}
	if l := list(f.open.URL, "sort=size", nil); len(l.Summaries) != 4 || l.Summaries[0].Name != "team/app" || l.Summaries[0].Size < l.Summaries[1].Size {
		t.Errorf("sort=size = %+v, want team/app, the largest, first", l.Summaries)
	}
	if l := list(f.open.URL, "sort=pushed", nil); l.Repositories[0] != "team/copy" {
		t.Errorf("sort=pushed = %v, want team/copy, the last pushed, first", l.Repositories)
	}
	if l := list(f.open.URL, "sort=size&n=3&offset=1", nil); len(l.Repositories) != 3 || l.NextOffset != 0 || l.Offset != 1 {
		t.Errorf("sort=size from offset 1 = %+v", l)
	}
	if l := list(f.open.URL, "sort=size&n=2", nil); l.NextOffset != 2 {
		t.Errorf("sort=size&n=2 next offset = %d, want 2", l.NextOffset)
	}
	if l := list(f.authed.URL, "sort=pulled", basic("bob", "bob-pw")); strings.Join(l.Repositories, " ") != "other/tool public/base" {
		t.Errorf("bob's sort=pulled = %v, want only other/tool and public/base", l.Repositories)
	}
	if resp, body := send(t, "GET", f.open.URL+"/api/v1/repositories?sort=colour", nil, nil, nil); resp.StatusCode != 400 || !strings.Contains(body, "INVALID") {
		t.Errorf("sort=colour = %d %s, want 400 INVALID", resp.StatusCode, body)
	}
	_, body := send(t, "GET", f.open.URL+"/api/v1/overview", nil, nil, nil)
	var o Overview
	json.Unmarshal([]byte(body), &o)
	if o.DedupBytes <= 0 {
		t.Errorf("overview dedupBytes = %d, want the copy's shared blobs", o.DedupBytes)
	}
	if _, page := send(t, "GET", f.open.URL+"/ui/repositories?sort=size", nil, nil, nil); !strings.Contains(page, "<th scope=\"col\">Last pull</th>") {
		t.Errorf("sorted page without its table:\n%s", page)
	}
}

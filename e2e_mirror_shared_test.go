package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestE2EMirrorFaultSharedLayer: three images in three repositories share
// a base layer. Pulled through the cache, one after another and then the
// third by 20 clients at once, the layer is downloaded once; the other
// repositories have it linked after one HEAD upstream each. A blob the
// cache holds only in a local repository is not served through a
// mirrored name whose upstream lacks it.
func TestE2EMirrorFaultSharedLayer(t *testing.T) {
	up, proxy, cache := faultSetup(t, "")
	base, err := random.Layer(1<<20, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	bd := digestOf(t, base)
	for i := range 3 {
		own, err := random.Layer(64<<10, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(empty.Image, base, own)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(up.ref(t, fmt.Sprintf("sh/app%d:v1", i)), img); err != nil {
			t.Fatal(err)
		}
		ref := cache.ref(t, fmt.Sprintf("up.example/sh/app%d:v1", i))
		clients := 1
		if i == 2 {
			clients = 20
		}
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				if err := pullCheck(ref, img); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	gets := 0
	for i := range 3 {
		gets += proxy.count("GET", fmt.Sprintf("/v2/sh/app%d/blobs/%s", i, bd))
	}
	if gets != 1 {
		t.Errorf("upstream GETs of the shared layer by 3 repositories = %d, want 1", gets)
	}
	for i := 1; i < 3; i++ {
		if n := proxy.count("HEAD", fmt.Sprintf("/v2/sh/app%d/blobs/%s", i, bd)); n != 1 {
			t.Errorf("upstream HEADs of the shared layer for sh/app%d = %d, want 1", i, n)
		}
	}

	local := pushRandom(t, cache, "local/app:v1", 4096, 1)
	ld, _ := layerOf(t, local, 0)
	resp, body := cache.do(t, "GET", "/v2/up.example/sh/app0/blobs/"+ld.String(), nil, nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "BLOB_UNKNOWN") {
		t.Errorf("GET through a mirrored name of a blob only a local repository has = %s %s, want 404 BLOB_UNKNOWN", resp.Status, body)
	}
}

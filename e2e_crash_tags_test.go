package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestE2ETagPushesSurviveKill kills the server with SIGKILL while 8
// clients push tags of one manifest, three times. After each restart every
// tag whose PUT was answered 201 is listed and resolves to the manifest:
// an acknowledged push was committed, whatever shared its commit.
func TestE2ETagPushesSurviveKill(t *testing.T) {
	s := startServer(t)
	const repo = "crash/tags"
	layer, config := randomBytes(t, 1024), []byte(`{"architecture":"amd64","os":"linux"}`)
	for _, b := range [][]byte{layer, config} {
		if resp, body := s.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+sha256of(b), octet(len(b)), b); resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST blob = %s: %s", resp.Status, body)
		}
	}
	manifest := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
		sha256of(config), len(config), sha256of(layer), len(layer))
	hc := &http.Client{Timeout: 10 * time.Second}

	var mu sync.Mutex
	var acked []string
	for round := range 3 {
		ctx, cancel := context.WithCancel(t.Context())
		base := s.url("/v2/" + repo + "/manifests/")
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					tag := fmt.Sprintf("r%d-w%d-%d", round, w, i)
					req, _ := http.NewRequestWithContext(ctx, http.MethodPut, base+tag, bytes.NewReader(manifest))
					req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
					resp, err := hc.Do(req)
					if err != nil {
						return // the server died: this PUT was never acknowledged
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusCreated {
						mu.Lock()
						acked = append(acked, tag)
						mu.Unlock()
					}
				}
			})
		}
		time.Sleep(time.Duration(400+200*round) * time.Millisecond)
		s.kill()
		cancel()
		wg.Wait()
		s.start()

		resp, body := s.do(t, http.MethodGet, "/v2/"+repo+"/tags/list", nil, nil)
		var list struct{ Tags []string }
		if err := json.Unmarshal(body, &list); resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("round %d: GET tags/list = %s (%v): %s", round, resp.Status, err, body)
		}
		listed := map[string]bool{}
		for _, tag := range list.Tags {
			listed[tag] = true
		}
		missing := 0
		for _, tag := range acked {
			if !listed[tag] {
				missing++
				if missing <= 5 {
					t.Errorf("round %d: tag %s was acknowledged but is gone after SIGKILL", round, tag)
				}
			}
		}
		if missing > 0 {
			t.Fatalf("round %d: %d of %d acknowledged tags lost", round, missing, len(acked))
		}
		// A sample resolves to the manifest.
		for _, tag := range acked[max(0, len(acked)-3):] {
			if resp, got := s.do(t, http.MethodGet, "/v2/"+repo+"/manifests/"+tag, nil, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(got, manifest) {
				t.Errorf("round %d: GET manifest %s = %s, %d bytes; want the pushed manifest", round, tag, resp.Status, len(got))
			}
		}
		t.Logf("round %d: %d tags acknowledged so far, all present", round, len(acked))
	}
	if len(acked) == 0 {
		t.Fatal("no tag PUT was acknowledged")
	}
}

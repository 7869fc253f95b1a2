package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/nora-registry/nora/replicate"
)

var anon = remote.WithAuth(authn.Anonymous)

// pushTarget is a [[replicate.push]] table for the nora at host, with
// alice's credentials.
func pushTarget(name, host string) string {
	return fmt.Sprintf(`
[[replicate.push]]
name = %q
url = "http://%s"
insecure = true
repositories = ["team/**"]
username = "alice"
password = "alice-secret"
`, name, host)
}

// pinPort makes s listen on the port it has now across restarts, so
// that a remote configured with its address finds it again.
func pinPort(t *testing.T, s *e2eServer) {
	t.Helper()
	cfg, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte(`listen = "127.0.0.1:0"`), []byte(fmt.Sprintf("listen = %q", s.host())), 1)
	if err := os.WriteFile(s.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
}

// eventually retries check every 100ms for up to 15s, failing with its
// last error.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	eventuallyWithin(t, what, 15*time.Second, check)
}

// eventuallyWithin is eventually for up to limit.
func eventuallyWithin(t *testing.T, what string, limit time.Duration, check func() error) {
	t.Helper()
	start := time.Now()
	defer func() { t.Logf("%s: %v", what, time.Since(start)) }()
	var err error
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = check(); err == nil {
			return
		}
	}
	t.Fatalf("%s: still failing after %v: %v", what, limit.Round(time.Second), err)
}

// sameImage checks that dst's ref is src's, byte for byte, with every
// blob there and matching its digest.
func sameImage(t *testing.T, src, dst *e2eServer, ref, dstPrefix string, dstAuth remote.Option) error {
	s, err := remote.Get(refIn(t, src.host(), "")(ref), anon)
	if err != nil {
		return fmt.Errorf("source %s: %v", ref, err)
	}
	d, err := remote.Get(refIn(t, dst.host(), dstPrefix)(ref), dstAuth)
	if err != nil {
		return fmt.Errorf("target %s%s: %v", dstPrefix, ref, err)
	}
	if d.Digest != s.Digest || !bytes.Equal(d.Manifest, s.Manifest) {
		return fmt.Errorf("target %s%s = %s, want %s byte for byte", dstPrefix, ref, d.Digest, s.Digest)
	}
	img, err := d.Image()
	if err != nil {
		return err
	}
	return validate.Image(img)
}

// gone checks that dst no longer has ref.
func gone(t *testing.T, dst *e2eServer, ref string, auth remote.Option) error {
	_, err := remote.Head(refIn(t, dst.host(), "")(ref), auth)
	if err == nil {
		return fmt.Errorf("target still has %s", ref)
	}
	if !strings.Contains(err.Error(), "404") {
		return err
	}
	return nil
}

// TestE2EReplicateContinuous: a registry with a [[replicate.push]]
// target sends pushes (indexes, referrers and cosign tags too) and tag
// deletes as they happen; events queued
// while the target is down, and across a kill -9 of the source, are
// delivered when it comes back; a target added later first gets
// everything; and a [[replicate.pull]] source is polled for new tags.
func TestE2EReplicateContinuous(t *testing.T) {
	b := startAuthServer(t)
	pinPort(t, b)
	c := startServer(t)
	a := startServerWith(t, pushTarget("central", b.host()))

	// An index with a referrer and a cosign tag, an image sharing its
	// blobs, another image: pushed one by one, each arrives.
	want := seedReplication(t, a)
	pushRandom(t, a, "public/app:v1", 16<<10, 2) // not under team/: stays
	// Tags replicate side by side, not in the order they were pushed:
	// each must be there, not just the last one pushed.
	eventually(t, "the seeded images on the target", func() error {
		for _, ref := range append(want.tags, "team/app:"+want.cosignTag) {
			if _, err := remote.Head(refIn(t, b.host(), "")(ref), alice); err != nil {
				return err
			}
		}
		return nil
	})
	sameContent(t, want, refIn(t, a.host(), ""), refIn(t, b.host(), ""), alice, alice)

	pushRandom(t, a, "team/app:old", 16<<10, 2)
	eventually(t, "team/app:old on the target", func() error { return sameImage(t, a, b, "team/app:old", "", alice) })
	if resp, _ := a.do(t, http.MethodDelete, "/v2/team/app/manifests/old", nil, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE team/app:old = %s, want 202", resp.Status)
	}
	eventually(t, "team/app:old deleted on the target", func() error { return gone(t, b, "team/app:old", alice) })
	if err := gone(t, b, "public/app:v1", alice); err != nil {
		t.Errorf("public/app:v1, outside the target's repositories: %v", err)
	}

	b.stop()
	down := time.Now()
	pushRandom(t, a, "team/app:v2", 16<<10, 2)
	eventually(t, "status of a target that is down", func() error {
		st := replicationStatus(t, a)["central"]
		if st.Queued != 1 || st.Lag <= 0 || !strings.Contains(st.LastError, "connection refused") {
			return fmt.Errorf("central's status = %+v, want 1 event queued and the refused connection", st)
		}
		return nil
	})
	b.start()
	// Each retry delay is at most about twice the time the target has
	// been down (backoff doubling from 0.5s), so the source's next try
	// may come that long after the target is back: on a slow machine,
	// more than 15s.
	eventuallyWithin(t, "team/app:v2 on the target after it came back", 15*time.Second+2*time.Since(down), func() error {
		if err := sameImage(t, a, b, "team/app:v2", "", alice); err != nil {
			return fmt.Errorf("%v (the source's status: %+v)", err, replicationStatus(t, a)["central"])
		}
		return nil
	})

	// kill -9 with an event queued for a target that is down; the
	// restarted source also has a new target, c, which first gets
	// everything already there.
	b.stop()
	pushRandom(t, a, "team/lib:v3", 16<<10, 2)
	a.kill()
	if st := replicationStatus(t, a)["central"]; st.Queued != 1 {
		t.Errorf("central's status from the store = %+v, want 1 event queued", st)
	}
	cfg, _ := os.ReadFile(a.config)
	os.WriteFile(a.config, append(cfg, pushTarget("late", c.host())...), 0o644)
	a.start()
	b.start()
	eventually(t, "team/lib:v3 on the target after the source's kill -9", func() error { return sameImage(t, a, b, "team/lib:v3", "", alice) })
	for _, ref := range []string{"team/base:v1", "team/app:v2", "team/lib:v3"} {
		eventually(t, ref+" on the target added later", func() error { return sameImage(t, a, c, ref, "", anon) })
	}

	d := startServerWith(t, fmt.Sprintf(`
[[replicate.pull]]
name = "centre"
url = "http://%s"
insecure = true
repositories = ["team/app"]
to_prefix = "edge"
interval = "1s"
`, a.host()))
	eventually(t, "team/app:v2 pulled", func() error { return sameImage(t, a, d, "team/app:v2", "edge/", anon) })
	pushRandom(t, a, "team/app:v4", 16<<10, 2)
	eventually(t, "team/app:v4 pulled at the next poll", func() error { return sameImage(t, a, d, "team/app:v4", "edge/", anon) })

	if st := replicationStatus(t, d)["centre"]; st.Items < 2 || st.Bytes == 0 || st.LastSuccess.IsZero() {
		t.Errorf("centre's status = %+v, want the 2 tags pulled", st)
	}
	_, metrics := a.do(t, http.MethodGet, "/metrics", nil, nil)
	for series, least := range map[string]float64{
		`nora_replicate_items_total{remote="late"}`:     3, // the initial sync, and maybe team/app:v4
		`nora_replicate_bytes_total{remote="late"}`:     3 * 32 << 10,
		`nora_replicate_queue_length{remote="central"}`: 0,
	} {
		if v, ok := metric(string(metrics), series); !ok || v < least {
			t.Errorf("metric %s = %v (found %t), want at least %v", series, v, ok, least)
		}
	}
}

// metric returns the value of series in a Prometheus text exposition.
func metric(text, series string) (float64, bool) {
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// replicationStatus runs `registry replicate status --json` for s.
func replicationStatus(t *testing.T, s *e2eServer) map[string]replicate.RemoteStatus {
	t.Helper()
	out, err := exec.Command(registryBin, "replicate", "status", "--json", "--config", s.config).Output()
	if err != nil {
		t.Fatalf("registry replicate status = %v", err)
	}
	var sts []replicate.RemoteStatus
	if err := json.Unmarshal(out, &sts); err != nil {
		t.Fatalf("registry replicate status --json: %v\n%s", err, out)
	}
	m := map[string]replicate.RemoteStatus{}
	for _, st := range sts {
		m[st.Name] = st
	}
	return m
}

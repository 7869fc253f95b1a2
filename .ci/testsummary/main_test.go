package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

const run = `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestOK"}
{"Action":"output","Package":"p","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"p","Test":"TestOK","Output":"    a_test.go:5: chatter\n"}
{"Action":"pass","Package":"p","Test":"TestOK"}
{"Action":"run","Package":"p","Test":"TestTool"}
{"Action":"output","Package":"p","Test":"TestTool","Output":"=== RUN   TestTool\n"}
{"Action":"output","Package":"p","Test":"TestTool","Output":"    a_test.go:9: skopeo not found; install it\n"}
{"Action":"output","Package":"p","Test":"TestTool","Output":"--- SKIP: TestTool (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestTool"}
{"Action":"run","Package":"p","Test":"TestBad"}
{"Action":"output","Package":"p","Test":"TestBad","Output":"=== RUN   TestBad\n"}
{"Action":"output","Package":"p","Test":"TestBad","Output":"    a_test.go:12: got 1, want 2\n"}
{"Action":"output","Package":"p","Test":"TestBad","Output":"--- FAIL: TestBad (0.00s)\n"}
{"Action":"fail","Package":"p","Test":"TestBad"}
{"Action":"output","Package":"p","Output":"FAIL\n"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t0.01s\n"}
{"Action":"fail","Package":"p"}
{"Action":"output","Package":"q","Output":"PASS\n"}
{"Action":"output","Package":"q","Output":"ok  \tq\t0.01s\n"}
{"Action":"pass","Package":"q"}
`

func TestSummary(t *testing.T) {
	var out bytes.Buffer
	s := newSummary(&out, "race")
	if err := s.read(strings.NewReader(run)); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"a_test.go:12: got 1, want 2", "--- FAIL: TestBad", "FAIL\tp\t0.01s", "ok  \tq\t0.01s"} {
		if !strings.Contains(got, want) {
			t.Errorf("output has no %q:\n%s", want, got)
		}
	}
	for _, noise := range []string{"chatter", "=== RUN", "PASS\n", "skopeo"} {
		if strings.Contains(got, noise) {
			t.Errorf("output has %q, which plain go test does not show:\n%s", noise, got)
		}
	}
	if !s.failed {
		t.Error("failed = false after a failing package")
	}
	want := []string{"TestTool (p, race): a_test.go:9: skopeo not found; install it"}
	if len(s.skips) != 1 || s.skips[0] != want[0] {
		t.Errorf("skips = %q, want %q", s.skips, want)
	}

	// A second pass lists the skips of both.
	file := filepath.Join(t.TempDir(), "skips")
	if _, err := accumulate(file, s.skips); err != nil {
		t.Fatal(err)
	}
	all, err := accumulate(file, []string{"TestS3 (p, s3): needs versitygw"})
	if err != nil || len(all) != 2 || all[0] != want[0] {
		t.Errorf("accumulate = %q, %v, want both passes' skips", all, err)
	}
}

func TestSummaryNotJSON(t *testing.T) {
	var out bytes.Buffer
	s := newSummary(&out, "")
	s.read(strings.NewReader("go: unknown flag -x\n"))
	if !s.failed || !strings.Contains(out.String(), "unknown flag") {
		t.Errorf("a line that is not an event: failed %v, output %q; want it shown and the run failed", s.failed, out.String())
	}
}

// Command testsummary reads `go test -json` on stdin and writes what a
// plain `go test` run shows (build errors, the output of failing tests,
// one result line per package), then the list of tests that were skipped
// and why, so a green run cannot hide a client that was not installed.
//
//	go test -json ./... | go run ./.ci/testsummary [-pass NAME] [-skips FILE]
//
// With -skips, the skips are appended to FILE and the list printed is
// the whole file: the last of several passes lists the skips of all of
// them. It exits 1 if a package failed or a line was not a test event,
// so a pipeline with pipefail fails as `go test` would.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	pass := flag.String("pass", "", "name of this pass, shown next to its skips")
	skipsFile := flag.String("skips", "", "`file` collecting the skips of every pass")
	flag.Parse()
	s := newSummary(os.Stdout, *pass)
	if err := s.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	skips := s.skips
	if *skipsFile != "" {
		var err error
		if skips, err = accumulate(*skipsFile, s.skips); err != nil {
			fmt.Fprintln(os.Stderr, "testsummary:", err)
			os.Exit(1)
		}
	}
	printSkips(os.Stdout, skips)
	if s.failed {
		os.Exit(1)
	}
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output and build-fail
	Test       string
	Output     string
}

type testKey struct{ pkg, test string }

// summary turns events into plain output, remembering skips.
type summary struct {
	out    io.Writer
	pass   string
	output map[testKey][]string // output of tests still running
	skips  []string
	failed bool
}

func newSummary(out io.Writer, pass string) *summary {
	return &summary{out: out, pass: pass, output: map[testKey][]string{}}
}

func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			// go test's own errors (a bad flag, a missing package).
			fmt.Fprintln(s.out, sc.Text())
			s.failed = true
			continue
		}
		s.event(e)
	}
	return sc.Err()
}

func (s *summary) event(e event) {
	k := testKey{e.Package, e.Test}
	switch {
	case e.Action == "build-output":
		fmt.Fprint(s.out, e.Output)
	case e.Action == "build-fail":
		s.failed = true
	case e.Test == "" && e.Action == "output":
		if e.Output != "PASS\n" {
			fmt.Fprint(s.out, e.Output)
		}
	case e.Test == "" && e.Action == "fail":
		s.failed = true
		s.flush(e.Package) // a panic or a timeout ended tests mid-run
	case e.Test == "":
	case e.Action == "output":
		if !strings.HasPrefix(e.Output, "=== ") {
			s.output[k] = append(s.output[k], e.Output)
		}
	case e.Action == "fail":
		fmt.Fprint(s.out, strings.Join(s.output[k], ""))
		delete(s.output, k)
	case e.Action == "skip":
		s.skips = append(s.skips, s.skipLine(e, s.output[k]))
		delete(s.output, k)
	case e.Action == "pass":
		delete(s.output, k)
	}
}

// flush writes the output of pkg's unfinished tests.
func (s *summary) flush(pkg string) {
	for k, lines := range s.output {
		if k.pkg == pkg {
			fmt.Fprint(s.out, strings.Join(lines, ""))
			delete(s.output, k)
		}
	}
}

// skipLine is one entry of the list: the test, its package and pass,
// and the reason it gave, the lines t.Skip wrote.
func (s *summary) skipLine(e event, lines []string) string {
	var reason []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--- SKIP") {
			reason = append(reason, l)
		}
	}
	where := e.Package
	if s.pass != "" {
		where += ", " + s.pass
	}
	r := strings.Join(reason, " ")
	if r == "" {
		r = "(no reason given)"
	}
	return fmt.Sprintf("%s (%s): %s", e.Test, where, r)
}

// accumulate appends skips to the file at path and returns every line
// the file holds.
func accumulate(path string, skips []string) ([]string, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	for _, l := range skips {
		if _, err := fmt.Fprintln(f, l); err != nil {
			return nil, err
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' }), nil
}

func printSkips(w io.Writer, skips []string) {
	if len(skips) == 0 {
		fmt.Fprintln(w, "\nno test skipped")
		return
	}
	fmt.Fprintf(w, "\n%d tests skipped:\n", len(skips))
	for _, l := range skips {
		fmt.Fprintln(w, "  "+l)
	}
}

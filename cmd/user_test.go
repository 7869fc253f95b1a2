package cmd

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// hashFrom runs `registry user hash --cost 4` with stdin a pipe holding
// input, as `echo ... | registry user hash` does, and returns stdout,
// stderr and the error.
func hashFrom(t *testing.T, input string) (string, string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		io.WriteString(w, input)
		w.Close()
	}()
	return runHash(t, r)
}

// runHash runs `registry user hash --cost 4` with stdin in, and returns
// stdout, stderr and the error.
func runHash(t *testing.T, in *os.File) (string, string, error) {
	t.Helper()
	root := NewRoot()
	var out, errs bytes.Buffer
	root.SetIn(in)
	root.SetOut(&out)
	root.SetErr(&errs)
	root.SetArgs([]string{"user", "hash", "--cost", "4"})
	err := root.ExecuteContext(t.Context())
	return out.String(), errs.String(), err
}

// TestUserHashPiped checks the piped path: the first line is the
// password, with no prompt, and an empty input is an error.
func TestUserHashPiped(t *testing.T) {
	for _, input := range []string{"s3cret\n", "s3cret", "s3cret\r\nignored\n"} {
		out, errs, err := hashFrom(t, input)
		if err != nil || errs != "" {
			t.Fatalf("user hash <<%q = %v, stderr %q", input, err, errs)
		}
		hash, ok := strings.CutPrefix(strings.TrimSpace(out), `password = "`)
		hash, _ = strings.CutSuffix(hash, `"`)
		if !ok || bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cret")) != nil {
			t.Errorf("user hash <<%q printed %q, want password = \"<bcrypt of s3cret>\"", input, out)
		}
	}
	for _, input := range []string{"", "\n"} {
		if out, _, err := hashFrom(t, input); err == nil || out != "" {
			t.Errorf("user hash <<%q = %q, %v; want an error and nothing printed", input, out, err)
		}
	}
}

// typed is a terminal whose user types lines.
type typed struct{ lines []string }

func (t *typed) ReadSecret() ([]byte, error) {
	if len(t.lines) == 0 {
		return nil, io.EOF
	}
	l := t.lines[0]
	t.lines = t.lines[1:]
	return []byte(l), nil
}

// TestPromptPassword checks the terminal path's logic behind the
// secretReader a terminal provides: two prompts, and an error when the
// passwords differ, one is empty or the terminal closes.
func TestPromptPassword(t *testing.T) {
	tests := []struct {
		lines   []string
		want    string
		wantErr string
	}{
		{lines: []string{"s3cret", "s3cret"}, want: "s3cret"},
		{lines: []string{"s3cret", "s3cre"}, wantErr: errPasswordMismatch.Error()},
		{lines: []string{"", ""}, wantErr: "empty password"},
		{lines: []string{"s3cret"}, wantErr: "reading the password from the terminal: EOF"},
	}
	for _, tt := range tests {
		var prompt bytes.Buffer
		got, err := promptPassword(&typed{lines: tt.lines}, &prompt)
		if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && err.Error() != tt.wantErr) {
			t.Errorf("promptPassword(%q) = %q, %v, want %q, %q", tt.lines, got, err, tt.want, tt.wantErr)
		}
		if tt.want != "" && prompt.String() != "Password: \nPassword (again): \n" {
			t.Errorf("promptPassword(%q) prompted %q", tt.lines, prompt.String())
		}
		if strings.Contains(prompt.String(), "s3cret") {
			t.Errorf("promptPassword(%q) echoed the password: %q", tt.lines, prompt.String())
		}
	}
}

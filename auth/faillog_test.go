package auth

import (
	"bytes"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestFailedLoginLogsNoUnknownName: a user name that is no user's, as a
// password typed into the user field, never reaches the log; a known
// user's name does.
func TestFailedLoginLogsNoUnknownName(t *testing.T) {
	var logs bytes.Buffer
	cfg := newService(t).cfg
	s, err := New(cfg, t.TempDir(), zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	const secret = "Tr0ub4dor&3-alice"
	basic := httptest.NewRequest("GET", "/v2/", nil)
	basic.SetBasicAuth(secret, "x")
	if _, err := s.Authenticate(basic); statusOf(err) != 401 {
		t.Fatalf("Authenticate(unknown user) = %v, want 401", err)
	}
	if code, _ := getToken(t, s, secret, "x", "repository:team/app:pull"); code != 401 {
		t.Fatalf("token for an unknown user = %d, want 401", code)
	}
	form := url.Values{"grant_type": {"password"}, "username": {secret}, "password": {"x"}}
	r := httptest.NewRequest("POST", "/auth/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	s.TokenHandler().ServeHTTP(w, r)
	if w.Code != 401 {
		t.Fatalf("password grant for an unknown user = %d, want 401", w.Code)
	}
	if code, _ := getToken(t, s, "alice", "wrong", "repository:team/app:pull"); code != 401 {
		t.Fatalf("token with a wrong password = %d, want 401", code)
	}
	out := logs.String()
	if strings.Contains(out, secret) || strings.Contains(out, "Tr0ub4dor") {
		t.Errorf("log holds the unknown user name:\n%s", out)
	}
	if n := strings.Count(out, `"user_unknown":true`); n != 3 || strings.Count(out, `"user_hash":"`+s.signer.mac("user", secret)+`"`) != 3 {
		t.Errorf("log has %d user_unknown lines with the name's hash, want 3:\n%s", n, out)
	}
	if !strings.Contains(out, `"user":"alice"`) {
		t.Errorf("log lacks the known user alice:\n%s", out)
	}
}

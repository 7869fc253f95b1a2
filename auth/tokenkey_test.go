package auth

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLoadSignerAfterPowerCut: an empty token.key, which a release that
// wrote the key without syncing it could leave after a power cut, is
// replaced by a new key; one that is not a key is still refused.
func TestLoadSignerAfterPowerCut(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token.key")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := loadSigner(dir)
	if err != nil {
		t.Fatalf("loadSigner over an empty token.key = %v", err)
	}
	if again, err := loadSigner(dir); err != nil {
		t.Errorf("loadSigner after the new key was written = %v", err)
	} else if again.kid != s.kid {
		t.Errorf("loadSigner after the new key was written: key id %s, want %s", again.kid, s.kid)
	}
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadSigner(dir); err == nil {
		t.Error("loadSigner of a file that is not a key succeeded, want an error")
	}
}

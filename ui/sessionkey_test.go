package ui

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLoadKeyAfterPowerCut: an empty ui.key, which a release that wrote
// the key without syncing it could leave after a power cut, is replaced by
// a new key rather than refusing to start; a key of the wrong size is
// still refused.
func TestLoadKeyAfterPowerCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ui.key")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := loadKey(path)
	if err != nil || len(key) != 32 {
		t.Fatalf("loadKey of an empty file = %d bytes, %v; want a new 32-byte key", len(key), err)
	}
	if again, err := loadKey(path); err != nil || string(again) != string(key) {
		t.Errorf("loadKey after the new key was written = %x, %v; want %x", again, err, key)
	}
	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadKey(path); err == nil {
		t.Error("loadKey of a 5-byte key succeeded, want an error")
	}
}

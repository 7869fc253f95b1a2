package auth

import (
	"testing"

	"github.com/nora-registry/nora/storage"
)

// OpenTestStore opens a store on the filesystem in a temporary directory,
// closed when the test ends. It is exported for the package's external
// tests too.
func OpenTestStore(t testing.TB) *storage.Store {
	t.Helper()
	store, err := storage.Open(t.Context(), storage.Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

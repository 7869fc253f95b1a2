package storage

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Repository returns one repository's tags, manifests and links as
// ScanRepos reads them, in one read transaction, or ErrRepositoryNotFound.
// Tags come in lexical order.
func (s *Store) Repository(ctx context.Context, name string) (*GCRepo, error) {
	var r *GCRepo
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		r, err = s.scanRepo(tx, name)
		return err
	})
	s.releaseMapped()
	if err == nil && r == nil {
		err = fmt.Errorf("%w: %s", ErrRepositoryNotFound, name)
	}
	return r, err
}

//go:build !linux

package storage

// releaseMapped does nothing off Linux.
func (s *Store) releaseMapped() {}

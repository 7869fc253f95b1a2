//go:build !linux

package storage

import bolt "go.etcd.io/bbolt"

// releaseMapped does nothing off Linux.
func (s *Store) releaseMapped() {}

// releaseMappedNow does nothing off Linux.
func (s *Store) releaseMappedNow() {}

// releaseMappedIn does nothing off Linux.
func (s *Store) releaseMappedIn(*bolt.Tx) {}

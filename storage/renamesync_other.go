//go:build !linux

package storage

// syncKeepsRename reports false: the directory a file is renamed into is
// synced for its new name to be durable.
func syncKeepsRename(string) bool { return false }

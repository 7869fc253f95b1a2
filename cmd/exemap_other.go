//go:build !linux

package cmd

// releaseExecutable does nothing off Linux.
func releaseExecutable() {}

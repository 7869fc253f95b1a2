//go:build !unix

package cmd

// openFileLimit is unknown off Unix.
func openFileLimit() int { return 0 }

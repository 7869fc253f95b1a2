//go:build !linux

package main

import "testing"

// unmountUnder does nothing: only Linux runs the docker harness's dockerd.
func unmountUnder(t *testing.T, dir string) {}

//go:build !unix

package s3test

import (
	"os"
	"testing"
)

// pause skips the test: freezing a process needs SIGSTOP.
func pause(t testing.TB, p *os.Process) {
	t.Helper()
	t.Skip("pausing the S3 server needs SIGSTOP, which this system lacks")
}

// resume does nothing: nothing was paused.
func resume(p *os.Process) {}

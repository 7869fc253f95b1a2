//go:build unix

package s3test

import (
	"os"
	"syscall"
	"testing"
)

// pause stops p (SIGSTOP).
func pause(t testing.TB, p *os.Process) { p.Signal(syscall.SIGSTOP) }

// resume continues p (SIGCONT).
func resume(p *os.Process) { p.Signal(syscall.SIGCONT) }

package cmd

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestConsoleColour: format = "console" colours its lines on a terminal
// only, and not at all under NO_COLOR.
func TestConsoleColour(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(LogConfig{Level: "info", Format: "console"}, &buf)
	log.Info().Str("k", "v").Msg("hello")
	if !strings.Contains(buf.String(), "hello") || strings.Contains(buf.String(), "\x1b[") {
		t.Errorf("console log to a buffer = %q, want the message without escape codes", buf.String())
	}

	tty := openTerminal(t)
	if !isTerminal(tty) {
		t.Fatal("isTerminal(a pseudo-terminal) = false")
	}
	t.Setenv("NO_COLOR", "")
	if consoleWriter(tty).NoColor {
		t.Error("consoleWriter(a terminal).NoColor = true, want colour")
	}
	t.Setenv("NO_COLOR", "1")
	if !consoleWriter(tty).NoColor {
		t.Error("consoleWriter(a terminal) under NO_COLOR=1: NoColor = false, want no colour")
	}
}

// openTerminal returns the client side of a new pseudo-terminal.
func openTerminal(t *testing.T) *os.File {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	return pts
}

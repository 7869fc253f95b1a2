package cmd

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: what is written to master is typed on
// the terminal slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	go io.Copy(io.Discard, master) // what the terminal shows
	return master, slave
}

// TestUserHashTerminal runs `registry user hash` with a terminal as
// stdin: it prompts twice on stderr, and prints the hash only when both
// passwords match.
func TestUserHashTerminal(t *testing.T) {
	for _, tt := range []struct {
		typed   string
		wantErr error
	}{
		{"s3cret\ns3cret\n", nil},
		{"s3cret\ns3cre\n", errPasswordMismatch},
	} {
		master, slave := openPTY(t)
		if _, err := master.WriteString(tt.typed); err != nil {
			t.Fatal(err)
		}
		out, prompt, err := runHash(t, slave)
		if err != tt.wantErr || prompt != "Password: \nPassword (again): \n" {
			t.Errorf("user hash typing %q = %v, prompted %q; want %v and two prompts", tt.typed, err, prompt, tt.wantErr)
		}
		hash, ok := strings.CutPrefix(strings.TrimSpace(out), `password = "`)
		hash, _ = strings.CutSuffix(hash, `"`)
		if matched := ok && bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cret")) == nil; matched != (tt.wantErr == nil) || (!ok && out != "") {
			t.Errorf("user hash typing %q printed %q", tt.typed, out)
		}
	}
}

package cmd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"
)

func newUserCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "user",
		Short: "Manage registry users",
	}
	c.AddCommand(newUserHashCmd())
	return c
}

func newUserHashCmd() *cobra.Command {
	var cost int
	c := &cobra.Command{
		Use:   "hash",
		Short: "Read a password and print its bcrypt hash for [[auth.users]]",
		Long: `Read a password and print its bcrypt hash, as password = "..." for
[[auth.users]].

On a terminal it asks for the password twice, without echoing it, and
prints nothing if the two differ. Otherwise it reads the first line of
standard input (echo -n 'secret' | registry user hash).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var password string
			var err error
			if tty, ok := terminalIn(cmd.Context(), cmd.InOrStdin()); ok {
				password, err = promptPassword(tty, cmd.ErrOrStderr())
			} else {
				password, err = readPasswordLine(cmd.InOrStdin())
			}
			if err != nil {
				return err
			}
			hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "password = %q\n", hash)
			return nil
		},
	}
	c.Flags().IntVar(&cost, "cost", bcrypt.DefaultCost, "bcrypt cost")
	return c
}

// secretReader reads one line typed without echo.
type secretReader interface {
	ReadSecret() ([]byte, error)
}

// ttyIn is a terminal on standard input.
type ttyIn struct {
	ctx context.Context
	fd  int
}

// ReadSecret reads a line with echo off. When ctx ends first (Ctrl-C),
// it turns echo back on and returns: the process is about to exit, and
// must not leave the terminal without echo.
func (t ttyIn) ReadSecret() ([]byte, error) {
	state, err := term.GetState(t.fd)
	if err != nil {
		return nil, err
	}
	type line struct {
		p   []byte
		err error
	}
	read := make(chan line, 1)
	go func() {
		p, err := term.ReadPassword(t.fd)
		read <- line{p, err}
	}()
	select {
	case l := <-read:
		return l.p, l.err
	case <-t.ctx.Done():
		term.Restore(t.fd, state)
		return nil, t.ctx.Err()
	}
}

// terminalIn returns in as a secretReader if it is a terminal.
func terminalIn(ctx context.Context, in io.Reader) (secretReader, bool) {
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, false
	}
	return ttyIn{ctx: ctx, fd: int(f.Fd())}, true
}

// errPasswordMismatch is the answer when the two passwords typed differ.
var errPasswordMismatch = errors.New("the two passwords differ; nothing printed, run it again")

// promptPassword asks on prompt for the password and then again, reading
// both from tty.
func promptPassword(tty secretReader, prompt io.Writer) (string, error) {
	ask := func(label string) ([]byte, error) {
		fmt.Fprint(prompt, label)
		p, err := tty.ReadSecret()
		fmt.Fprintln(prompt) // the user's Enter was not echoed either
		if err != nil {
			return nil, fmt.Errorf("reading the password from the terminal: %w", err)
		}
		return p, nil
	}
	first, err := ask("Password: ")
	if err != nil {
		return "", err
	}
	if len(first) == 0 {
		return "", errors.New("empty password")
	}
	again, err := ask("Password (again): ")
	if err != nil {
		return "", err
	}
	if !bytes.Equal(first, again) {
		return "", errPasswordMismatch
	}
	return string(first), nil
}

// readPasswordLine reads the password as the first line of in, piped.
func readPasswordLine(in io.Reader) (string, error) {
	line, err := bufio.NewReader(in).ReadString('\n')
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		if err != nil {
			return "", fmt.Errorf("reading the password from stdin: %w", errors.Join(err, errors.New("no password given")))
		}
		return "", errors.New("empty password")
	}
	return password, nil
}

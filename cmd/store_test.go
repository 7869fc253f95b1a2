package cmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nora-registry/nora/storage"
)

// runCmdSay is runCmd that also returns what the command wrote on stderr.
func runCmdSay(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := NewRoot()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

// createStore creates an empty store at root, as `registry serve` does.
func createStore(t *testing.T, root string) {
	t.Helper()
	s, err := storage.Open(context.Background(), storage.Config{Driver: "filesystem", Root: root})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

var storeCommands = [][]string{
	{"gc"},
	{"gc", "--dry-run"},
	{"retention", "--dry-run"},
	{"compact"},
	{"token", "list"},
	{"token", "create", "--name", "ci", "--permissions", "pull:**"},
	{"token", "revoke", "ci"},
}

// retentionRules is a [retention] section for the commands that need one.
const retentionRules = "[[retention.rules]]\nrepositories = [\"**\"]\nolder_than = \"30d\"\n"

// TestCommandsCreateNoStore: without a store where the configuration
// points, the commands fail naming the data directory and create nothing.
func TestCommandsCreateNoStore(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("NORA_CONFIG", "")
	config := filepath.Join(dir, "nora.toml")
	os.WriteFile(config, fmt.Appendf(nil, "[storage]\nroot = %q\n%s", filepath.Join(dir, "elsewhere"), retentionRules), 0o600)
	for _, args := range storeCommands {
		withConfig := append(args, "-c", config)
		runs := [][]string{withConfig, args}
		if args[0] == "retention" {
			runs = runs[:1] // with no configuration it has no rules
		}
		for _, run := range runs {
			_, say, err := runCmdSay(t, run...)
			if err == nil || !strings.Contains(err.Error(), "no registry store in") {
				t.Errorf("%q = %v, want an error naming the missing store", run, err)
				continue
			}
			if len(run) == len(args) && !strings.Contains(err.Error(), "--config") {
				t.Errorf("%q = %v, want it to suggest --config", run, err)
			}
			if strings.Contains(say, "offline") {
				t.Errorf("%q said %q, want nothing opened", run, say)
			}
		}
	}
	for _, d := range []string{"data", "elsewhere"} {
		if _, err := os.Stat(filepath.Join(dir, d)); !os.IsNotExist(err) {
			t.Errorf("%s after the commands: %v, want not created", d, err)
		}
	}
}

// TestCommandsSayWhichStore: offline, each command says which store it
// acted on; with a server, that it used the server.
func TestCommandsSayWhichStore(t *testing.T) {
	dir := t.TempDir()
	config := authConfig(t, dir)
	f, _ := os.OpenFile(config, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(retentionRules)
	f.Close()
	root := filepath.Join(dir, "data")
	createStore(t, root)
	for _, args := range storeCommands {
		_, say, err := runCmdSay(t, append(args, "-c", config)...)
		if want := fmt.Sprintf("store %s (offline)", root); err != nil || !strings.HasPrefix(say, want) {
			t.Errorf("%q = %v and said %q, want it to start with %q", args, err, say, want)
		}
	}

	_, stop := serveConfig(t, config)
	defer stop()
	sock := filepath.Join(root, "admin.sock")
	for _, args := range storeCommands {
		_, say, err := runCmdSay(t, append(args, "-c", config)...)
		want := "using the running server on " + sock
		if err != nil || !strings.HasPrefix(say, want) {
			t.Errorf("%q with a server = %v and said %q, want it to start with %q", args, err, say, want)
		}
		switch applies := strings.Contains(say, "settings apply, not those of "+config); args[0] {
		case "gc", "retention":
			if !applies {
				t.Errorf("%q with a server said %q, want it to say the server's settings apply", args, say)
			}
		default:
			if strings.Contains(say, "settings apply") {
				t.Errorf("%q with a server said %q: no settings of the configuration apply to it", args, say)
			}
		}
	}
}

// serveConfig runs `registry serve --config config` until stop, and
// returns its "listening" log line once it listens. stop returns what
// serve returned.
func serveConfig(t *testing.T, config string) (listening map[string]any, stop func() error) {
	t.Helper()
	cmd := NewRoot()
	logs := &syncBuffer{}
	cmd.SetErr(logs)
	cmd.SetArgs([]string{"serve", "--config", config})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	return logs.waitLog(t, "listening"), func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			t.Fatal("serve did not stop")
			return nil
		}
	}
}

// TestOpenOfflineAdvice: a store held by another process gets the advice
// to stop the server or wait; any other failure is reported as it is,
// without that advice.
func TestOpenOfflineAdvice(t *testing.T) {
	root := filepath.Join(t.TempDir(), "data")
	createStore(t, root)
	f := DefaultFile()
	f.Storage.Root = root

	held, err := storage.Open(t.Context(), f.Storage)
	if err != nil {
		t.Fatal(err)
	}
	_, err = openOffline(t.Context(), f, "nora.toml", io.Discard)
	held.Close()
	if err == nil || !strings.Contains(err.Error(), "another process holds it; if a registry server uses") {
		t.Errorf("openOffline(a held store) = %v, want the advice to stop the server or wait", err)
	}

	if err := os.Remove(filepath.Join(root, "metadata.db")); err != nil {
		t.Fatal(err)
	}
	_, err = openOffline(t.Context(), f, "nora.toml", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "restore it from a backup") || strings.Contains(err.Error(), "registry server") {
		t.Errorf("openOffline(metadata.db missing) = %v, want the restore advice alone", err)
	}
}

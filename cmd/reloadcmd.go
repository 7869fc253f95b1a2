package cmd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"

	"github.com/nora-registry/nora/auth"
)

func newReloadCmd() *cobra.Command {
	var configPath string
	c := &cobra.Command{
		Use:   "reload",
		Short: "Make the running server re-read its configuration file",
		Long: `Ask the server that holds storage.root, over its admin socket, to re-read
the configuration file it was started with, as SIGHUP does. It prints the
changed keys that apply only after a restart, and fails with every problem
of a file that does not pass ` + "`registry config check`" + `: the server then
keeps its running settings.

--config (or NORA_CONFIG) names the file whose storage.root locates the
server; the server re-reads its own file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			root, loadErr := storageRoot(configPath)
			// The reply ends with the error line on failure: the error
			// alone is printed then.
			var reply bytes.Buffer
			err := askServer(cmd.Context(), root, configPath, "", "/reload", &reply, io.Discard)
			if err == nil {
				_, err = reply.WriteTo(cmd.OutOrStdout())
			}
			if errors.Is(err, errNoServer) {
				if loadErr != nil {
					return loadErr
				}
				hint := ""
				if configPath == "" {
					hint = " (pass --config, or set NORA_CONFIG, with the server's file)"
				}
				return fmt.Errorf("no server answers on %s: is `registry serve` running with storage.root %q%s?", absPath(filepath.Join(root, auth.AdminSocket)), root, hint)
			}
			return err
		},
	}
	c.Flags().StringVarP(&configPath, "config", "c", os.Getenv("NORA_CONFIG"), "configuration `file` (default: $NORA_CONFIG, else built-in defaults)")
	return c
}

// storageRoot returns the storage.root of the file at path, and why the
// file does not load. A file that fails its check still names the server
// to reach when its storage.root can be read: the server, not this
// command, reports the problems of the file it re-reads.
func storageRoot(path string) (string, error) {
	f, err := loadConfig(path)
	if err == nil {
		return f.Storage.Root, nil
	}
	var raw struct {
		Storage struct {
			Root string `toml:"root"`
		} `toml:"storage"`
	}
	if _, derr := toml.DecodeFile(path, &raw); derr == nil && raw.Storage.Root != "" {
		if root, xerr := expand(raw.Storage.Root); xerr == nil {
			return root, err
		}
	}
	return DefaultFile().Storage.Root, err
}

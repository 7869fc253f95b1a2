package cmd

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version and commit are set at build time:
//
//	go build -ldflags "-X github.com/nora-registry/nora/cmd.version=v1.0.0 -X github.com/nora-registry/nora/cmd.commit=abc123"
var (
	version = "dev"
	commit  = "dev"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := version
			if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version // go install …@vX.Y.Z sets no ldflags
			}
			fmt.Fprintf(cmd.OutOrStdout(), "version: %s\ncommit:  %s\ngo:      %s %s/%s\n",
				v, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

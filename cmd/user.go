package cmd

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
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
		Short: "Read a password from stdin and print its bcrypt hash for [[auth.users]]",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			password := strings.TrimRight(line, "\r\n")
			if password == "" {
				if err != nil {
					return fmt.Errorf("reading the password from stdin: %w", errors.Join(err, errors.New("no password given")))
				}
				return errors.New("empty password")
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

package main

import (
	"fmt"

	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/spf13/cobra"
)

func newValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate PATH...",
		Short: "Check scenario files without building anything (no root needed)",
		Long: `validate parses and validates every scenario in PATH (files, or directories
searched recursively) and prints each problem as file:line:column: field: what
is wrong. It creates nothing and needs no privileges. Exit code 2 on any
problem.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			scs, err := scenario.LoadContext(cmd.Context(), args...)
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			for _, sc := range scs {
				fmt.Fprintf(cmd.OutOrStdout(), "ok  %-24s %s (%d namespaces, %d links, %d checks)\n",
					sc.Name, sc.File, len(sc.Namespaces), len(sc.Links), len(sc.Checks))
			}
			return nil
		},
	}
}

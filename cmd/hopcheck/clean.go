package main

import (
	"fmt"

	"github.com/hopcheck/hopcheck/harness/build"
	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/spf13/cobra"
)

func newCleanCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "clean",
		Short: "Remove what killed runs left behind, and only that",
		Long: `clean removes the namespaces (and with them their links, routes and rules)
of hopcheck runs whose process is gone, for example after SIGKILL. It
recognises hopcheck's objects by their names (hc<run-id>-<ns>) and keeps
those of runs still in progress and of topologies kept with 'up' or
'run --keep'. It never touches anything else.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireRoot("clean"); err != nil {
				return err
			}
			store := runs.Open()
			recs, err := store.List()
			if err != nil {
				return err
			}
			alive := map[string]bool{}
			for _, r := range recs {
				if r.Alive() {
					alive[r.RunID] = true
				}
			}
			removed, err := build.Clean(cmd.Context(), func(runID string) bool { return alive[runID] })
			for _, n := range removed {
				fmt.Fprintf(cmd.OutOrStdout(), "removed namespace %s\n", n)
			}
			for _, r := range recs {
				if !alive[r.RunID] {
					if rerr := store.Remove(r.RunID); rerr != nil && err == nil {
						err = rerr
					}
				}
			}
			if len(removed) == 0 && err == nil {
				fmt.Fprintln(cmd.OutOrStdout(), "nothing to clean")
			}
			return err
		},
	}
}

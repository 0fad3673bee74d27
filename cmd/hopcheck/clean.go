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
removes only runs recorded in the state directory (/run/hopcheck, or
$HOPCHECK_STATE_DIR) and recognises their namespaces by name
(hc<run-id>-<ns>); it keeps runs still in progress, topologies kept with
'up' or 'run --keep', and every namespace it has no record of. It never
touches anything else.`,
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
			// Only a run recorded here whose owner is gone is a leftover.
			// A namespace with no record here may be in use by someone this
			// store cannot see (a run with another HOPCHECK_STATE_DIR, a
			// test that builds in-process), so it is kept.
			dead := map[string]bool{}
			for _, r := range recs {
				if !r.Alive() {
					dead[r.RunID] = true
				}
			}
			removed, err := build.Clean(cmd.Context(), func(runID string) bool { return !dead[runID] })
			for _, n := range removed {
				fmt.Fprintf(cmd.OutOrStdout(), "removed namespace %s\n", n)
			}
			for _, r := range recs {
				if !dead[r.RunID] {
					continue
				}
				// A namespace that could not be deleted keeps its record,
				// so that the next clean tries again.
				if _, rerr := store.RemoveIfGone(r); rerr != nil && err == nil {
					err = rerr
				}
			}
			if len(removed) == 0 && err == nil {
				fmt.Fprintln(cmd.OutOrStdout(), "nothing to clean")
			}
			return err
		},
	}
}

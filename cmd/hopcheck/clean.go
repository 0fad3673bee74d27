package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/trace"
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
touches anything else. A run killed while 'up' was building it is not
kept, so clean removes it. A 'trace' with clsact that was killed leaves
its filters in namespaces hopcheck did not make: clean removes those
filters (hopcheck's priority and handle only) and the clsact qdiscs the
trace added, if they hold nothing else. Records that hopcheck did not write as they
stand (wrong owner or mode, a name that is not the run's, namespaces
not named hc<run-id>-<ns>) are ignored with a warning, and a state
directory others may write is refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireRoot("clean"); err != nil {
				return err
			}
			store := runs.Open()
			removed, skipped, err := store.Clean(cmd.Context())
			warnSkipped(cmd, skipped)
			for _, n := range removed {
				fmt.Fprintf(cmd.OutOrStdout(), "removed namespace %s\n", n)
			}
			detached, skipped, derr := store.CleanAttached(cmd.Context(), trace.DetachStale)
			warnSkipped(cmd, skipped)
			for _, n := range detached {
				fmt.Fprintf(cmd.OutOrStdout(), "removed the tc filters a killed trace left in %s\n", n)
			}
			err = errors.Join(err, derr)
			if len(removed) == 0 && len(detached) == 0 && err == nil {
				fmt.Fprintln(cmd.OutOrStdout(), "nothing to clean")
			}
			return err
		},
	}
}

// warnSkipped says which files in the state directory were not trusted as
// records, and why.
func warnSkipped(cmd *cobra.Command, skipped []error) {
	for _, err := range skipped {
		fmt.Fprintf(cmd.ErrOrStderr(), "hopcheck: ignored: %v\n", err)
	}
}

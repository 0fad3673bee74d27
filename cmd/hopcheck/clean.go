package main

import (
	"fmt"

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
touches anything else. A run killed while 'up' was building it is not
kept, so clean removes it. Records that hopcheck did not write as they
stand (wrong owner or mode, a name that is not the run's, namespaces
not named hc<run-id>-<ns>) are ignored with a warning, and a state
directory others may write is refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireRoot("clean"); err != nil {
				return err
			}
			removed, skipped, err := runs.Open().Clean(cmd.Context())
			warnSkipped(cmd, skipped)
			for _, n := range removed {
				fmt.Fprintf(cmd.OutOrStdout(), "removed namespace %s\n", n)
			}
			if len(removed) == 0 && err == nil {
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

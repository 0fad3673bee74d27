package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/hopcheck/hopcheck/harness/build"
	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/spf13/cobra"
)

func newUpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "up FILE",
		Short: "Build a scenario and keep it up (no checks)",
		Long: `up builds the topology of one scenario and leaves it up so you can explore
it: it prints how to enter each namespace. Remove it with 'hopcheck down NAME'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			scs, err := scenario.LoadContext(cmd.Context(), args[0])
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			if len(scs) != 1 {
				return &exitError{code: exitBadInput, err: fmt.Errorf("up takes one scenario file; %s holds %d", args[0], len(scs))}
			}
			if err := requireRoot("up"); err != nil {
				return err
			}
			sc := scs[0]
			rec, err := buildKept(cmd, sc)
			if err != nil {
				return err
			}
			printEnter(cmd.OutOrStdout(), rec)
			return nil
		},
	}
}

// buildKept builds sc and records it as kept.
func buildKept(cmd *cobra.Command, sc *scenario.Scenario) (*runs.Record, error) {
	store := runs.Open()
	rec, err := recordRun(store, sc, true)
	if err != nil {
		return nil, err
	}
	bopts := build.Options{RunID: rec.RunID}
	if progress := newProgressLine().callback(); progress != nil {
		bopts.Progress = func(phase string, done, total int) { progress(sc.Name, phase, done, total) }
	}
	topo, err := build.Up(cmd.Context(), sc, bopts)
	if err != nil {
		// Up tore down what it made; a record stays only if that failed.
		if gone, _ := store.RemoveIfGone(rec); !gone {
			err = fmt.Errorf("%w (some namespaces remain: hopcheck clean removes them)", err)
		}
		return nil, &exitError{code: exitBadInput, err: err}
	}
	// The namespaces are named (bind-mounted), so they outlive this
	// process; only the handles are closed here.
	topo.Release()
	// Kept only now that the build is complete: an up killed mid-build
	// leaves a record that clean removes.
	if err := store.MarkKept(rec); err != nil {
		return nil, &exitError{code: exitBadInput, err: fmt.Errorf("%w (the topology is up as run %s; hopcheck clean removes it)", err, rec.RunID)}
	}
	return rec, nil
}

func printEnter(w io.Writer, rec *runs.Record) {
	fmt.Fprintf(w, "%s is up (run %s). Enter a namespace with:\n", rec.Scenario, rec.RunID)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, ns := range rec.NamespaceNames() {
		fmt.Fprintf(tw, "  %s\tsudo ip netns exec %s bash\t# or: hopcheck exec %s %s -- bash (network namespace only; /sys stays the host's)\n", ns, rec.Namespaces[ns], rec.Scenario, ns)
	}
	tw.Flush()
	fmt.Fprintf(w, "Remove it with: sudo hopcheck down %s\n", rec.Scenario)
}

func newDownCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "down NAME | --all",
		Short: "Remove a topology left up by 'up' or 'run --keep'",
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case all && len(args) > 0:
				return fmt.Errorf("give a scenario NAME or --all, not both")
			case !all && len(args) != 1:
				return fmt.Errorf("give one scenario NAME (see 'hopcheck list') or --all")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireRoot("down"); err != nil {
				return err
			}
			store := runs.Open()
			var recs []*runs.Record
			if all {
				list, skipped, err := store.Scan()
				warnSkipped(cmd, skipped)
				if err != nil {
					return err
				}
				for _, r := range list {
					if r.Kept {
						recs = append(recs, r)
					}
				}
			} else {
				r, err := store.Find(args[0])
				if err != nil {
					return &exitError{code: exitBadInput, err: err}
				}
				recs = append(recs, r)
			}
			var errs []error
			for _, r := range recs {
				if err := store.Down(r); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s (run %s)\n", r.Scenario, r.RunID)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "remove every kept topology")
	return cmd
}

func newListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the topologies that are up and the runs in progress",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			recs, skipped, err := runs.Open().Scan()
			warnSkipped(cmd, skipped)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tRUN\tSTATE\tNAMESPACES\tFILE\tCREATED")
			for _, r := range recs {
				state := "kept"
				switch {
				case !r.Kept && r.Keep && r.Alive():
					state = fmt.Sprintf("building (pid %d)", r.PID)
				case !r.Kept && r.Alive():
					state = fmt.Sprintf("running (pid %d)", r.PID)
				case !r.Kept:
					state = "left over (hopcheck clean)"
				}
				missing := 0
				for _, k := range r.Namespaces {
					if !netns.Exists(k) {
						missing++
					}
				}
				nss := fmt.Sprint(len(r.Namespaces))
				if missing > 0 {
					nss += fmt.Sprintf(" (%d gone)", missing)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.RunID, state, nss, r.File, r.Created.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
}

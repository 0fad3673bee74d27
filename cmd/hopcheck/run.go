package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/report"
	"github.com/hopcheck/hopcheck/harness/runner"
	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/trace"
	"github.com/spf13/cobra"
)

type runFlags struct {
	json, junit, pcap string
	parallel          int
	keep, verbose     bool
	traceMode         string
	tcAttach          string
	shard             string
	vm                vmFlags
	kernel            kernelFlags
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run PATH...",
		Short: "Build each scenario, run its checks, report, and tear down",
		Long: `run builds every scenario found in PATH (files, or directories searched
recursively for .yaml/.yml) in sandbox network namespaces, runs its checks in
order with every probe traced hop by hop, prints a report, and tears down.

Exit codes: 0 all checks passed, 1 a check failed, 2 bad input or build error.`,
		Example: `  hopcheck run scenarios/
  hopcheck run --json report.json --junit junit.xml --pcap captures/ scenarios/
  hopcheck run --shard 1/3 scenarios/       # the first of three CI slices
  hopcheck run --vm hopcheck scenarios/     # inside a Multipass VM
  hopcheck run --kernel linux-image-6.1.0-50-cloud-amd64_6.1.176-1_amd64.deb scenarios/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.kernel.path != "" {
				return runUnderKernel(cmd, f, args)
			}
			if f.vm.name != "" {
				return runInVM(cmd, f, args)
			}
			return runLocal(cmd, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.json, "json", "", "write the JSON report to `FILE`")
	fl.StringVar(&f.junit, "junit", "", "write a JUnit XML report to `FILE`")
	fl.StringVar(&f.pcap, "pcap", "", "write one pcapng capture per scenario into `DIR`")
	fl.IntVar(&f.parallel, "parallel", 0, "scenarios to run at once (default: number of CPUs)")
	fl.BoolVar(&f.keep, "keep", false, "leave the topologies up after the checks (remove with 'hopcheck down')")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "show details and hops under every check")
	fl.StringVar(&f.traceMode, "trace", "on-failure", "trace probes: always (show hops for every check), on-failure, off")
	fl.StringVar(&f.tcAttach, "tc-attach", "auto", "tc attach method: auto, tcx, clsact")
	fl.StringVar(&f.shard, "shard", "", "run only slice `K/N` of the scenarios: every N-th, from the K-th, in path order")
	addVMFlags(fl, &f.vm)
	addKernelFlags(fl, &f.kernel)
	return cmd
}

func runLocal(cmd *cobra.Command, f runFlags, paths []string) error {
	mode, attach, err := traceOptions(f.traceMode, f.tcAttach)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	scs, err := scenario.Load(paths...)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	shard, err := parseShard(f.shard)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	scs = shard.pick(scs)
	if len(scs) == 0 {
		// A CI matrix wider than the suite: nothing to run is not a failure.
		fmt.Fprintf(cmd.OutOrStdout(), "shard %s selects no scenario; nothing to run\n", f.shard)
	}
	if err := requireRoot("run"); err != nil {
		return err
	}
	// Report files are opened before the run, so an unwritable path fails
	// at once instead of after every scenario has run.
	reports, err := createReports(f.json, f.junit)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}

	stdout := cmd.OutOrStdout()
	text := report.NewText(stdout, report.TextOptions{
		Color:       report.ColorEnabled(os.Stdout),
		Verbose:     f.verbose,
		TraceAlways: mode == runner.TraceAlways,
	})
	text.Plan(planned(scs))
	res := runner.Run(cmd.Context(), scs, runner.Options{
		Parallel: f.parallel,
		Keep:     f.keep,
		Trace:    mode,
		Attach:   attach,
		PcapDir:  f.pcap,
		Store:    runs.Open(),
		Observer: text,
	})
	res.Shard = f.shard
	text.Summary(res)
	if err := reports.write(res); err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	if f.keep {
		printKept(stdout, res)
	}
	return resultError(res)
}

// planned lists the scenarios and check names about to run, so the text
// report can align its columns from the first line.
func planned(scs []*scenario.Scenario) []report.Scenario {
	out := make([]report.Scenario, len(scs))
	for i, sc := range scs {
		out[i].Name = sc.Name
		for _, c := range sc.Checks {
			out[i].Checks = append(out[i].Checks, report.Check{Name: c.Name})
		}
	}
	return out
}

// resultError maps a run to its exit code: 2 when a scenario could not be
// built, 1 when a check failed.
func resultError(res report.Run) error {
	for _, s := range res.Scenarios {
		if s.BuildError {
			return &exitError{code: exitBadInput}
		}
	}
	if !res.Passed {
		return &exitError{code: exitCheckFailed}
	}
	return nil
}

// reportFiles are the --json and --junit files of a run, created before it.
type reportFiles struct {
	json, junit *os.File
}

func createReports(jsonPath, junitPath string) (reportFiles, error) {
	var r reportFiles
	var err error
	if jsonPath != "" {
		if r.json, err = os.Create(jsonPath); err != nil {
			return r, fmt.Errorf("--json: %w", err)
		}
	}
	if junitPath != "" {
		if r.junit, err = os.Create(junitPath); err != nil {
			if r.json != nil {
				r.json.Close()
			}
			return r, fmt.Errorf("--junit: %w", err)
		}
	}
	return r, nil
}

// write writes both reports, each whatever happened to the other, and
// closes the files.
func (r reportFiles) write(res report.Run) error {
	var errs []error
	for _, w := range []struct {
		f  *os.File
		fn func(io.Writer, report.Run) error
	}{{r.json, report.WriteJSON}, {r.junit, report.WriteJUnit}} {
		if w.f == nil {
			continue
		}
		if err := w.fn(w.f, res); err != nil {
			errs = append(errs, fmt.Errorf("write %s: %w", w.f.Name(), err))
		}
		if err := w.f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func printKept(w io.Writer, res report.Run) {
	var kept []string
	for _, s := range res.Scenarios {
		// Only scenarios that were built and checked are up.
		if !s.BuildError && len(s.Checks) > 0 {
			kept = append(kept, s.Name)
		}
	}
	if len(kept) == 0 {
		return
	}
	fmt.Fprintln(w, "\nKept up (enter with 'hopcheck exec NAME NS -- CMD'; remove with 'hopcheck down NAME' or 'hopcheck down --all'):")
	for _, name := range kept {
		fmt.Fprintf(w, "  %s\n", name)
	}
}

func traceOptions(mode, attach string) (runner.TraceMode, trace.AttachMode, error) {
	var m runner.TraceMode
	switch mode {
	case "always", "on-failure", "off":
		m = runner.TraceMode(mode)
	default:
		return "", 0, fmt.Errorf("--trace %q: want always, on-failure or off", mode)
	}
	a, err := trace.ParseAttachMode(attach)
	if err != nil {
		return "", 0, fmt.Errorf("--tc-attach: %w", err)
	}
	return m, a, nil
}

func requireRoot(what string) error {
	if os.Geteuid() != 0 {
		return &exitError{code: exitBadInput, err: fmt.Errorf("%s needs root (network namespaces, iptables, BPF): run it with sudo", what)}
	}
	return nil
}

// shardSpec selects the K-th of N slices of the scenarios.
type shardSpec struct{ k, n int }

func parseShard(s string) (shardSpec, error) {
	if s == "" {
		return shardSpec{1, 1}, nil
	}
	ks, ns, ok := strings.Cut(s, "/")
	k, err1 := strconv.Atoi(ks)
	n, err2 := strconv.Atoi(ns)
	if !ok || err1 != nil || err2 != nil || n < 1 || k < 1 || k > n {
		return shardSpec{}, fmt.Errorf("--shard %q: want K/N with 1 <= K <= N, e.g. 2/4", s)
	}
	return shardSpec{k, n}, nil
}

// pick keeps every N-th scenario starting at K, in the order Load gives
// (sorted by path), so every shard of the same tree is the same set on
// every machine and the shards together cover it exactly once.
func (sh shardSpec) pick(scs []*scenario.Scenario) []*scenario.Scenario {
	if sh.n == 1 {
		return scs
	}
	var out []*scenario.Scenario
	for i, sc := range scs {
		if i%sh.n == sh.k-1 {
			out = append(out, sc)
		}
	}
	return out
}

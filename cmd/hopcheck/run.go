package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/graph"
	"github.com/hopcheck/hopcheck/harness/report"
	"github.com/hopcheck/hopcheck/harness/runner"
	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/safefile"
	"github.com/hopcheck/hopcheck/trace"
	"github.com/spf13/cobra"
)

type runFlags struct {
	json, junit, pcap string
	html              string
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
				if f.html != "" {
					return &exitError{code: exitBadInput, err: errors.New("--html does not work with --vm yet; write --json and render it locally later")}
				}
				return runInVM(cmd, f, args)
			}
			return runLocal(cmd, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.json, "json", "", "write the JSON report to `FILE`")
	fl.StringVar(&f.junit, "junit", "", "write a JUnit XML report to `FILE`")
	fl.StringVar(&f.html, "html", "", "write a self-contained HTML report (topology pictures need Graphviz's dot) to `FILE`")
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
	shard, err := parseShard(f.shard)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	// An invalid file does not stop the run: its problems are printed now,
	// the valid scenarios run, and the reports list the file as an errored
	// testcase, so CI still gets its --json and --junit. The exit code is 2
	// all the same.
	loaded := shard.pick(scenario.LoadEach(cmd.Context(), paths...))
	if len(loaded) == 0 {
		// A CI matrix wider than the suite: nothing to run is not a failure.
		fmt.Fprintf(cmd.OutOrStdout(), "shard %s selects no scenario; nothing to run\n", f.shard)
	}
	var scs []*scenario.Scenario
	var files []string
	var inputErrs scenario.ErrorList
	for _, l := range loaded {
		files = append(files, l.File)
		if l.Err != nil {
			inputErrs = append(inputErrs, l.Err...)
			continue
		}
		scs = append(scs, l.Scenario)
	}
	if inputErrs != nil {
		printError(inputErrs)
	}
	if err := checkOutputs(f, scs, files); err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	if len(scs) == 0 && inputErrs != nil {
		// Nothing valid to run: the reports need no root.
		return writeInvalidOnly(f, loaded)
	}
	if err := requireRoot("run"); err != nil {
		return err
	}
	// Report files are opened before the run, so an unwritable path fails
	// at once instead of after every scenario has run.
	reports, err := createReports(f, f.pcap)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	defer reports.abort()

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
		PcapDir:  reports.pcapDir(),
		Store:    runs.Open(),
		Observer: text,
		Progress: newProgressLine().callback(),
	})
	res.Shard = f.shard
	res = withInvalid(res, loaded)
	text.Summary(res)
	if err := reports.write(res, pictures(cmd.Context(), scs)); err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	if f.keep {
		printKept(stdout, res)
	}
	return resultError(res)
}

// invalidScenario is the report of a scenario file that is not valid.
func invalidScenario(l scenario.Loaded) report.Scenario {
	return report.Scenario{Name: l.File, File: l.File, InputError: true, Error: l.Err.Error()}
}

// withInvalid puts the invalid files of loaded into res, in the order they
// were loaded; res holds the valid ones' reports in that order.
func withInvalid(res report.Run, loaded []scenario.Loaded) report.Run {
	valid := res.Scenarios
	res.Scenarios = nil
	for _, l := range loaded {
		if l.Err != nil {
			res.Scenarios = append(res.Scenarios, invalidScenario(l))
			res.Passed = false
			continue
		}
		res.Scenarios = append(res.Scenarios, valid[0])
		valid = valid[1:]
	}
	return res
}

// writeInvalidOnly writes the --json and --junit reports of a run whose
// every file was invalid, and exits 2. The problems are already printed.
func writeInvalidOnly(f runFlags, loaded []scenario.Loaded) error {
	reports, err := createReports(f, "")
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	defer reports.abort()
	res := withInvalid(report.Run{Shard: f.shard}, loaded)
	if err := reports.write(res, nil); err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	return &exitError{code: exitBadInput}
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

// resultError maps a run to its exit code: 2 when a scenario file was
// invalid or a scenario could not be built, 1 when a check failed.
func resultError(res report.Run) error {
	for _, s := range res.Scenarios {
		if s.BuildError || s.InputError {
			return &exitError{code: exitBadInput}
		}
	}
	if !res.Passed {
		return &exitError{code: exitCheckFailed}
	}
	return nil
}

// reportFiles are the --json and --junit files of a run and the staging
// directory of its --pcap captures, created before it. Each is written as
// a new file and renamed into place, so a symbolic link planted at a
// report's path is replaced, never written through.
type reportFiles struct {
	json, junit, html *safefile.File
	pcap              *safefile.Staging
}

func createReports(f runFlags, pcapDir string) (reportFiles, error) {
	var r reportFiles
	var err error
	for _, o := range []struct {
		flag, path string
		file       **safefile.File
	}{{"--json", f.json, &r.json}, {"--junit", f.junit, &r.junit}, {"--html", f.html, &r.html}} {
		if o.path == "" {
			continue
		}
		if *o.file, err = safefile.Create(o.path, 0o644); err != nil {
			r.abort()
			return r, fmt.Errorf("%s: %w", o.flag, err)
		}
	}
	if pcapDir != "" {
		err := os.MkdirAll(pcapDir, 0o755)
		if err == nil {
			r.pcap, err = safefile.NewStaging(pcapDir)
		}
		if err != nil {
			r.abort()
			return r, fmt.Errorf("--pcap: %w", err)
		}
	}
	return r, nil
}

// pcapDir is where the runner writes captures: the private staging
// directory, moved into --pcap DIR by write.
func (r reportFiles) pcapDir() string {
	if r.pcap == nil {
		return ""
	}
	return r.pcap.Dir
}

// write writes the reports (the HTML one with pics, which may be nil) and
// moves the captures into place, each whatever happened to the others.
func (r reportFiles) write(res report.Run, pics report.Picture) error {
	var errs []error
	html := func(w io.Writer, res report.Run) error {
		return report.WriteHTML(w, res, report.HTMLOptions{Picture: pics})
	}
	for _, w := range []struct {
		f  *safefile.File
		fn func(io.Writer, report.Run) error
	}{{r.json, report.WriteJSON}, {r.junit, report.WriteJUnit}, {r.html, html}} {
		if w.f == nil {
			continue
		}
		if err := w.fn(w.f, res); err != nil {
			w.f.Abort()
			errs = append(errs, fmt.Errorf("write %s: %w", w.f.Name(), err))
			continue
		}
		if err := w.f.Commit(); err != nil {
			errs = append(errs, err)
		}
	}
	if r.pcap != nil {
		if err := r.pcap.Commit(); err != nil {
			errs = append(errs, fmt.Errorf("--pcap: %w", err))
		}
	}
	return errors.Join(errs...)
}

// abort removes whatever of the reports was not committed.
func (r reportFiles) abort() {
	for _, f := range []*safefile.File{r.json, r.junit, r.html} {
		if f != nil {
			f.Abort()
		}
	}
	if r.pcap != nil {
		r.pcap.Abort()
	}
}

// checkOutputs refuses output paths that would overwrite something the run
// needs, before anything is built: the same file for two outputs, an
// output that is one of the scenario files read, a --pcap that exists and
// is not a directory, or a capture that would land on another output.
// files are every scenario file named, valid or not.
func checkOutputs(f runFlags, scs []*scenario.Scenario, files []string) error {
	pcapDir := f.pcap
	type output struct{ flag, path string }
	var outs []output
	for _, o := range []output{{"--json", f.json}, {"--junit", f.junit}, {"--html", f.html}} {
		if o.path != "" {
			outs = append(outs, o)
		}
	}
	if pcapDir != "" {
		if fi, err := os.Stat(pcapDir); err == nil && !fi.IsDir() {
			return fmt.Errorf("--pcap %s: not a directory (--pcap takes a directory that receives one .pcapng file per scenario)", pcapDir)
		}
		for _, sc := range scs {
			outs = append(outs, output{"--pcap", filepath.Join(pcapDir, sc.Name+".pcapng")})
		}
	}
	for i, o := range outs {
		for _, p := range outs[:i] {
			if safefile.Same(o.path, p.path) {
				return fmt.Errorf("%s %s and %s %s are the same file; give each output its own path", p.flag, p.path, o.flag, o.path)
			}
		}
		for _, file := range files {
			if safefile.Same(o.path, file) {
				return fmt.Errorf("%s %s is the scenario file %s; writing the report there would destroy it", o.flag, o.path, file)
			}
		}
	}
	return nil
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
func (sh shardSpec) pick(scs []scenario.Loaded) []scenario.Loaded {
	if sh.n == 1 {
		return scs
	}
	var out []scenario.Loaded
	for i, sc := range scs {
		if i%sh.n == sh.k-1 {
			out = append(out, sc)
		}
	}
	return out
}

// pictures draws the topologies of scs for the HTML report with
// harness/graph and Graphviz's dot; without dot, the report says so in
// place of each picture.
func pictures(ctx context.Context, scs []*scenario.Scenario) report.Picture {
	byName := map[string]*scenario.Scenario{}
	for _, sc := range scs {
		byName[sc.Name] = sc
	}
	return func(name string, path []string, drop string) ([]byte, error) {
		sc := byName[name]
		if sc == nil {
			return nil, fmt.Errorf("no scenario %q", name)
		}
		return graph.SVG(ctx, graph.DOT(sc, graph.Options{Path: path, Drop: drop}))
	}
}

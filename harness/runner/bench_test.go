package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/harness/plan"
	"github.com/hopcheck/hopcheck/harness/report"
	"github.com/hopcheck/hopcheck/harness/runner"
	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// benchRunDeadline bounds one child process (a shell recipe or a
// `hopcheck run`), so that a hung run ends the benchmark instead of
// holding the machine.
const benchRunDeadline = 15 * time.Minute

// bridgeSizes are the container counts of the bridge benchmarks.
var bridgeSizes = []int{10, 100, 500}

// bridgeYAML writes the benchmark's scenario in the scenario format: a host
// namespace with bridge br0 10.0.0.1/16 and n containers c1..cn, each
// with a veth to the host enslaved to br0, an address in 10.0.0.0/16 and
// a default route via the bridge, and one ping from each container to the
// bridge address. Being YAML, the same text feeds both runner.Run (through
// scenario.Parse) and the `hopcheck run` child.
//
// Every namespace turns IPv6 off for the interfaces it gets (as Docker
// does in containers). With it on, each new interface sends a few IPv6
// multicast frames (duplicate address detection, MLD reports, router
// solicitations) that br0 floods to every port: O(n²) frames, 1.5 million
// at n = 500, each queued on the CPU's backlog (net.core.netdev_max_backlog,
// 1000 packets), which overflows and drops the pings' ARP requests at
// random. The shell recipe pays the same extra step.
func bridgeYAML(n int) []byte {
	const noIPv6 = "    sysctls: {net.ipv6.conf.default.disable_ipv6: 1}\n"
	var b bytes.Buffer
	fmt.Fprintf(&b, "name: bench-bridge-%d\n", n)
	fmt.Fprintf(&b, "description: %d containers on one bridge, each pinging the bridge.\n", n)
	b.WriteString("namespaces:\n  host:\n" + noIPv6 + "    interfaces:\n")
	b.WriteString("      br0: {type: bridge, addresses: [10.0.0.1/16]}\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "      vc%d: {master: br0}\n", i)
	}
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  c%d:\n"+noIPv6+"    interfaces:\n      eth0: {addresses: [%s/16]}\n", i, containerAddr(i))
		b.WriteString("    routes:\n      - default via 10.0.0.1\n")
	}
	b.WriteString("links:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  - [c%d/eth0, host/vc%d]\n", i, i)
	}
	b.WriteString("checks:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  - ping: {from: c%d, to: 10.0.0.1, timeout: %s}\n", i, pingTimeout)
	}
	return b.Bytes()
}

// pingTimeout is the benchmark pings' timeout. A reply takes milliseconds;
// the slack is for a lost ARP request, which the kernel repeats after 1 s
// (neigh retrans_time), so that one packet dropped on a busy machine does
// not end a benchmark of minutes. Only a lost packet waits for it.
const pingTimeout = 3 * time.Second

// containerAddr is container i's address: host number i+1 of 10.0.0.0/16
// (host number 1 is the bridge), which leaves room for 65,533 containers.
func containerAddr(i int) string {
	h := i + 1
	return fmt.Sprintf("10.0.%d.%d", h/256, h%256)
}

// bridgeScenario parses bridgeYAML(n) as `hopcheck run` would read it.
func bridgeScenario(tb testing.TB, n int) *scenario.Scenario {
	tb.Helper()
	sc, err := scenario.Parse(fmt.Sprintf("bench-bridge-%d.yaml", n), bridgeYAML(n))
	if err != nil {
		tb.Fatalf("generated scenario does not parse: %v", err)
	}
	return sc
}

// TestBridgeYAML keeps the generator honest without root: the scenario it
// writes parses, has the topology the benchmark claims, and plans to one
// shell step list that names every container.
func TestBridgeYAML(t *testing.T) {
	for _, n := range []int{1, 10, 300} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			sc := bridgeScenario(t, n)
			if got := len(sc.Namespaces); got != n+1 {
				t.Errorf("namespaces: got %d, want %d", got, n+1)
			}
			if got := len(sc.Links); got != n {
				t.Errorf("links: got %d, want %d", got, n)
			}
			seen := map[string]bool{}
			for _, c := range sc.Checks {
				if c.Ping == nil || c.Ping.To.Addr.String() != "10.0.0.1" || c.Ping.Timeout != pingTimeout {
					t.Fatalf("check %q: want a ping to 10.0.0.1 with timeout %v", c.Name, pingTimeout)
				}
				seen[c.Ping.From] = true
			}
			if len(seen) != n {
				t.Errorf("pings from %d distinct containers, want %d", len(seen), n)
			}
			host := sc.Namespace("host")
			if host == nil || host.Interface("br0") == nil {
				t.Fatal("no host/br0")
			}
			// Every container address is distinct and inside the /16.
			addrs := map[string]bool{}
			for i := 1; i <= n; i++ {
				eth := sc.Namespace(fmt.Sprintf("c%d", i)).Interface("eth0")
				a := eth.Addresses[0]
				if a.Bits() != 16 || !strings.HasPrefix(a.Addr().String(), "10.0.") || addrs[a.String()] {
					t.Errorf("c%d/eth0: address %v duplicate or outside 10.0.0.0/16", i, a)
				}
				addrs[a.String()] = true
			}
			build, teardown := shellRecipe(t, sc, func(ns string) string { return "x-" + ns })
			script := build + teardown
			for _, want := range []string{
				"ip netns add x-c1\n",
				fmt.Sprintf("ip netns exec x-c%d sysctl -q -w net.ipv6.conf.default.disable_ipv6=1\n", n),
				fmt.Sprintf("ip netns exec x-c%d ping -c1 -W3 10.0.0.1\n", n),
				fmt.Sprintf("ip netns del x-c%d", n),
			} {
				if !strings.Contains(script, want) {
					t.Errorf("shell recipe lacks %q", want)
				}
			}
			// IPv6 must be off before the container's veth end exists.
			off := strings.Index(script, "ip netns exec x-c1 sysctl")
			made := strings.Index(script, "link add eth0 type veth peer name vc1 ")
			if off < 0 || made < 0 || off > made {
				t.Errorf("c1 turns IPv6 off at byte %d, after its veth is made (byte %d)", off, made)
			}
		})
	}
}

// shellRecipe is the tutorials' way of doing what runner.Run does for sc:
// the plan's build steps as one ip process each, then one `ping` process
// per ping check; teardown is `ip netns del` per namespace. Both are bash
// scripts; teardown may run more than once.
func shellRecipe(tb testing.TB, sc *scenario.Scenario, nsName func(string) string) (build, teardown string) {
	tb.Helper()
	p, err := plan.New(sc)
	if err != nil {
		tb.Fatalf("plan %s: %v", sc.Name, err)
	}
	var b strings.Builder
	b.WriteString(p.Script(nsName))
	for _, c := range sc.Checks {
		if c.Ping == nil {
			tb.Fatalf("check %q: the shell recipe knows pings only", c.Name)
		}
		// ping -W takes whole seconds.
		wait := int((c.Ping.Timeout + time.Second - 1) / time.Second)
		fmt.Fprintf(&b, "ip netns exec %s ping -c1 -W%d %s\n", nsName(c.Ping.From), wait, c.Ping.To.Addr)
	}
	return b.String(), p.TeardownScript(nsName)
}

// runShell runs build and then teardown with bash, and returns how long
// both took. b.Cleanup runs teardown again, so that a failure half way
// leaves nothing behind.
func runShell(b *testing.B, build, teardown string) time.Duration {
	b.Helper()
	b.Cleanup(func() {
		if out, err := exec.Command("bash", "-c", teardown).CombinedOutput(); err != nil {
			b.Errorf("shell teardown: %v\n%s", err, out)
		}
	})
	// A file, not bash -c: at N = 500 the script is longer than one
	// argument may be (MAX_ARG_STRLEN, 128 KiB).
	file := filepath.Join(b.TempDir(), "recipe.sh")
	if err := os.WriteFile(file, []byte(build+teardown), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), benchRunDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", file)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("shell recipe: %v\n%s", err, tail(out.String(), 2000))
	}
	return d
}

// requireShellTools ends b unless ip and ping can run the shell recipe.
func requireShellTools(b *testing.B) {
	b.Helper()
	for _, tool := range []string{"ip", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			// A missing tool is a set-up problem of this machine, not a
			// kernel feature, so it fails in CI and outside it alike.
			b.Fatalf("the shell baseline needs %s (apt-get install iproute2 iputils-ping): %v", tool, err)
		}
	}
}

// BenchmarkBridge builds, pings and tears down bridge scenarios of 10, 100
// and 500 containers six ways, in this order, in the same run:
//
//   - shell: the tutorials' recipe, one ip/ping process per step;
//   - hopcheck: runner.Run in this process, tracing off;
//   - hopcheck-traced: runner.Run with every interface traced;
//   - cli, cli-traced: `bin/hopcheck run` with --trace off and on, in a
//     child process whose peak resident memory is the honest figure for
//     the memory goal.
//
// Each reports ms/container; the hopcheck variants also x-faster against
// the shell figure of the same N, when it was measured in this run.
func BenchmarkBridge(b *testing.B) {
	privtest.Require(b)
	for _, n := range bridgeSizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			sc := bridgeScenario(b, n)
			var shellPerCtr time.Duration // from the shell sub-benchmark
			reportPer := func(b *testing.B, total time.Duration, count int) {
				per := total / time.Duration(count*n)
				b.ReportMetric(msf(per), "ms/container")
				if shellPerCtr > 0 && per > 0 {
					b.ReportMetric(float64(shellPerCtr)/float64(per), "x-faster")
				}
			}

			b.Run("shell", func(b *testing.B) {
				requireShellTools(b)
				var total time.Duration
				runsDone := 0
				for b.Loop() {
					runID, err := netns.NewRunID()
					if err != nil {
						b.Fatal(err)
					}
					build, teardown := shellRecipe(b, sc, func(ns string) string { return netns.Name(runID, ns) })
					total += runShell(b, build, teardown)
					runsDone++
				}
				shellPerCtr = total / time.Duration(runsDone*n)
				b.ReportMetric(msf(shellPerCtr), "ms/container")
			})
			for _, v := range []struct {
				name  string
				trace runner.TraceMode
			}{{"hopcheck", runner.TraceOff}, {"hopcheck-traced", runner.TraceOnFailure}} {
				b.Run(v.name, func(b *testing.B) {
					store := runs.Store{Dir: b.TempDir()}
					var total time.Duration
					var lost uint64
					runsDone := 0
					for b.Loop() {
						start := time.Now()
						res := runner.Run(context.Background(), []*scenario.Scenario{sc},
							runner.Options{Parallel: 1, Trace: v.trace, Store: store})
						total += time.Since(start)
						runsDone++
						requirePassed(b, res)
						if v.trace != runner.TraceOff && !res.Tracing.Enabled {
							privtest.Unavailable(b, "tracing ("+res.Tracing.Reason+")")
						}
						lost += res.LostEvents
					}
					reportPer(b, total, runsDone)
					if v.trace != runner.TraceOff {
						b.ReportMetric(float64(lost)/float64(runsDone), "lost-events")
					}
				})
			}
			file := filepath.Join(b.TempDir(), fmt.Sprintf("bench-bridge-%d.yaml", n))
			if err := os.WriteFile(file, bridgeYAML(n), 0o644); err != nil {
				b.Fatal(err)
			}
			for _, v := range []struct {
				name  string
				trace runner.TraceMode
			}{{"cli", runner.TraceOff}, {"cli-traced", runner.TraceOnFailure}} {
				b.Run(v.name, func(b *testing.B) {
					var total time.Duration
					var maxRSS int64
					runsDone := 0
					for b.Loop() {
						r := runCLI(b, "run", "--trace", string(v.trace), file)
						total += r.Wall
						maxRSS = max(maxRSS, r.MaxRSSKB)
						runsDone++
					}
					reportPer(b, total, runsDone)
					b.ReportMetric(float64(maxRSS)/1024, "MB-maxrss")
				})
			}
		})
	}
}

// BenchmarkLibrary runs the scenario library end to end as a user does
// (tracing on, the default) and reports its wall time, peak resident
// memory and the trace events it lost (goal: none):
//
//   - all: `hopcheck run scenarios/`, the seed scenarios and, recursively,
//     the deliberately broken ones under scenarios/broken/;
//   - seed: only the files directly in scenarios/.
func BenchmarkLibrary(b *testing.B) {
	privtest.Require(b)
	lib := filepath.Join(moduleRoot(b), "scenarios")
	seed, err := filepath.Glob(filepath.Join(lib, "*.yaml"))
	if err != nil || len(seed) == 0 {
		b.Fatalf("no scenarios in %s (%v)", lib, err)
	}
	for _, v := range []struct {
		name  string
		paths []string
	}{{"all", []string{lib}}, {"seed", seed}} {
		b.Run(v.name, func(b *testing.B) {
			var total time.Duration
			var maxRSS int64
			var lost uint64
			runsDone := 0
			for b.Loop() {
				jsonFile := filepath.Join(b.TempDir(), "report.json")
				r := runCLI(b, append([]string{"run", "--json", jsonFile}, v.paths...)...)
				total += r.Wall
				maxRSS = max(maxRSS, r.MaxRSSKB)
				runsDone++
				rep := readReport(b, jsonFile)
				lost += rep.LostEvents
				if !rep.Tracing.Enabled {
					privtest.Unavailable(b, "tracing ("+rep.Tracing.Reason+")")
				}
				b.ReportMetric(float64(len(rep.Scenarios)), "scenarios")
			}
			b.ReportMetric(msf(total/time.Duration(runsDone)), "ms/run")
			b.ReportMetric(float64(maxRSS)/1024, "MB-maxrss")
			b.ReportMetric(float64(lost)/float64(runsDone), "lost-events")
		})
	}
}

// cliRun is what one `hopcheck` child process cost.
type cliRun struct {
	Wall     time.Duration `json:"wall_ns"`
	MaxRSSKB int64         `json:"maxrss_kib"` // ru_maxrss, in KiB on Linux
	Exit     int           `json:"exit"`
}

// childEnv carries the JSON argv of the hopcheck command that
// TestHopcheckChild runs.
const childEnv = "HOPCHECK_BENCH_CHILD"

// childResult starts the line on which TestHopcheckChild prints its
// cliRun.
const childResult = "hopcheck-bench-child: "

// runCLI runs bin/hopcheck with args, with the run records in a temporary
// directory so that nothing outside the benchmark sees them, and fails b
// unless it exits 0.
//
// The command is not started from this process but from a fresh copy of
// the test binary (TestHopcheckChild): Go starts children with vfork, and
// exec records the parent's memory high-water mark in the child's
// ru_maxrss, so a child of a benchmark that has just built 500 containers
// in-process would report the benchmark's peak, not its own.
func runCLI(b *testing.B, args ...string) cliRun {
	b.Helper()
	return runCLIExit(b, false, args...)
}

// runCLIExit is runCLI; with failedChecksOK, an exit status of 1 (some
// check failed) is returned rather than fatal.
func runCLIExit(b *testing.B, failedChecksOK bool, args ...string) cliRun {
	b.Helper()
	bin := filepath.Join(moduleRoot(b), "bin", "hopcheck")
	if _, err := os.Stat(bin); err != nil {
		b.Fatalf("%s: %v (run `make build` first; `make bench` does)", bin, err)
	}
	argv, err := json.Marshal(append([]string{bin}, args...))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), benchRunDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHopcheckChild$", "-test.count=1",
		"-test.timeout="+benchRunDeadline.String())
	cmd.Env = append(os.Environ(), childEnv+"="+string(argv), runs.DirEnv+"="+b.TempDir(), "NO_COLOR=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("helper process: %v\n%s%s", err, tail(stdout.String(), 1000), tail(stderr.String(), 3000))
	}
	for line := range strings.Lines(stdout.String()) {
		if rest, ok := strings.CutPrefix(line, childResult); ok {
			var r cliRun
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				b.Fatalf("helper process result %q: %v", rest, err)
			}
			if r.Exit != 0 && !(failedChecksOK && r.Exit == 1) {
				b.Fatalf("hopcheck %s: exit status %d\n%s", strings.Join(args, " "), r.Exit, tail(stderr.String(), 3000))
			}
			return r
		}
	}
	b.Fatalf("helper process printed no result:\n%s", tail(stdout.String(), 1000))
	return cliRun{}
}

// TestHopcheckChild is the helper process of runCLI, not a test: with
// childEnv set, it runs that command, its output going to stderr, and
// prints the command's wall time, peak resident memory and exit status.
// Without childEnv it skips.
func TestHopcheckChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("helper process of the benchmarks; runs only when they start it")
	}
	var argv []string
	if err := json.Unmarshal([]byte(spec), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("%s=%q: want a JSON argv (%v)", childEnv, spec, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	err := cmd.Run()
	r := cliRun{Wall: time.Since(start)}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatal(err) // did not start
	}
	r.Exit = cmd.ProcessState.ExitCode()
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatal("no rusage for the child")
	}
	r.MaxRSSKB = ru.Maxrss
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%s\n", childResult, out)
}

// readReport reads a --json report.
func readReport(b *testing.B, path string) report.Run {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var r report.Run
	if err := json.Unmarshal(data, &r); err != nil {
		b.Fatalf("%s: %v", path, err)
	}
	return r
}

// requirePassed fails b with the first failure of res, so that a benchmark
// never reports the speed of a run that did not do its job.
func requirePassed(b *testing.B, res report.Run) {
	b.Helper()
	if res.Passed {
		return
	}
	for _, s := range res.Scenarios {
		if s.Error != "" {
			b.Fatalf("%s: %s", s.Name, s.Error)
		}
		for _, c := range s.Checks {
			if !c.Passed {
				b.Fatalf("%s: %s: %s", s.Name, c.Name, c.Error)
			}
		}
	}
	b.Fatal("run did not pass")
}

// moduleRoot is the directory holding go.mod, above the package directory
// the benchmark runs in.
func moduleRoot(b *testing.B) string {
	b.Helper()
	dir, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		} else if !errors.Is(err, os.ErrNotExist) {
			b.Fatal(err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			b.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// tail returns the last n bytes of s, where a failing command says why.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

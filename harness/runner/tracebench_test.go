package runner_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/internal/privtest"
)

// tracingVariant is one way BenchmarkTracingCost runs a workload.
type tracingVariant struct {
	name string
	args []string // before the scenario paths; --json is added
}

// BenchmarkTracingCost measures what tracing and captures cost, each
// variant side by side with the untraced run of the same workload in every
// iteration, so load on the machine falls on both (`bin/hopcheck run` in a
// child process, as a user runs it):
//
//   - library: `hopcheck run scenarios/` untraced, traced (--trace always,
//     the attach path auto picks) and traced with --tc-attach tcx;
//   - bridge n=200 and n=1000: containers on one bridge, each pinging it,
//     untraced, traced, and untraced with --pcap.
//
// It reports each variant's wall time, its ratio to the untraced run
// (x-untraced), the trace events it lost and the frames its capture lost.
// Goals (issue 8): traced library <= 1.3x; 1000 containers traced <= 2x
// with no event lost; 200 containers with --pcap <= 2x.
func BenchmarkTracingCost(b *testing.B) {
	privtest.Require(b)
	lib := filepath.Join(moduleRoot(b), "scenarios")
	workloads := []struct {
		name     string
		paths    func(b *testing.B) []string
		variants []tracingVariant
	}{
		{"library", func(*testing.B) []string { return []string{lib} }, []tracingVariant{
			{"traced", []string{"--trace", "always"}},
			{"traced-tcx", []string{"--trace", "always", "--tc-attach", "tcx"}},
		}},
	}
	for _, n := range []int{200, 1000} {
		workloads = append(workloads, struct {
			name     string
			paths    func(b *testing.B) []string
			variants []tracingVariant
		}{fmt.Sprintf("bridge-n=%d", n), func(b *testing.B) []string {
			file := filepath.Join(b.TempDir(), fmt.Sprintf("bench-bridge-%d.yaml", n))
			if err := os.WriteFile(file, bridgeYAML(n), 0o644); err != nil {
				b.Fatal(err)
			}
			return []string{file}
		}, []tracingVariant{
			{"traced", []string{"--trace", "always"}},
			{"pcap", []string{"--trace", "off", "--pcap", "PCAPDIR"}},
		}})
	}
	for _, w := range workloads {
		b.Run(w.name, func(b *testing.B) {
			paths := w.paths(b)
			untraced := tracingVariant{"untraced", []string{"--trace", "off"}}
			wall := map[string]time.Duration{}
			var lost, captureLost uint64
			failed := 0
			runsDone := 0
			for b.Loop() {
				for _, v := range append([]tracingVariant{untraced}, w.variants...) {
					dir := b.TempDir()
					args := []string{"run", "--json", filepath.Join(dir, "report.json")}
					for _, a := range v.args {
						if a == "PCAPDIR" {
							a = filepath.Join(dir, "pcap")
						}
						args = append(args, a)
					}
					// A thousand containers and their host need more
					// neighbor entries than the kernel's default limit
					// for all namespaces together (gc_thresh3, 1024,
					// settable in the root namespace only), so a few
					// pings may fail with NEIGH_CREATEFAIL, traced or
					// not: counted, not fatal.
					r := runCLIExit(b, true, append(args, paths...)...)
					wall[v.name] += r.Wall
					rep := readReport(b, filepath.Join(dir, "report.json"))
					for _, s := range rep.Scenarios {
						for _, c := range s.Checks {
							if !c.Passed {
								failed++
							}
						}
					}
					if v.name != "untraced" && v.name != "pcap" {
						if !rep.Tracing.Enabled {
							privtest.Unavailable(b, "tracing ("+rep.Tracing.Reason+")")
						}
						lost += rep.LostEvents
					}
					captureLost += rep.CaptureLost
				}
				runsDone++
			}
			base := wall["untraced"]
			b.ReportMetric(msf(base/time.Duration(runsDone)), "untraced-ms")
			for _, v := range w.variants {
				b.ReportMetric(msf(wall[v.name]/time.Duration(runsDone)), v.name+"-ms")
				b.ReportMetric(float64(wall[v.name])/float64(base), "x-"+v.name)
			}
			b.ReportMetric(float64(lost)/float64(runsDone), "lost-events")
			b.ReportMetric(float64(captureLost)/float64(runsDone), "capture-lost")
			b.ReportMetric(float64(failed)/float64(runsDone), "failed-checks")
		})
	}
}

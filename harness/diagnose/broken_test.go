package diagnose_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/harness/build"
	"github.com/hopcheck/hopcheck/harness/diagnose"
	"github.com/hopcheck/hopcheck/harness/report"
	"github.com/hopcheck/hopcheck/harness/runner"
	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/hopcheck/hopcheck/trace"
)

// brokenDir is the library of deliberately broken scenarios.
const brokenDir = "../../scenarios/broken"

// brokenPlaces is where each broken scenario's `cause:` check must be
// diagnosed, by scenario name and check name. The cause itself is the
// scenario's own `cause:`; the place is stated here because the format
// has no field for it.
var brokenPlaces = map[string]map[string]string{
	"no-default-route":          {"ns1 without a default route cannot reach the internet": "ns1"},
	"no-ip-forward":             {"the host does not forward the container's packets": "host/br0"},
	"no-masquerade":             {"the reply cannot find its way back to the unmasqueraded container": "internet/wan0"},
	"forward-policy-drop":       {"the FORWARD policy drops the container's packets": "host/br0"},
	"bridge-port-down":          {"ns1 cannot reach the bridge through a port that is down": "host/veth1", "nor can its neighbour reach ns1": "host/veth1"},
	"forgot-bridge-master":      {"ns1 cannot reach ns2, whose host end is not on the bridge": "host/veth2"},
	"wrong-gateway":             {"ns1's gateway does not answer ARP": "ns1/veth_1"},
	"address-typo":              {"nobody on the bridge holds 10.0.0.3": "ns1/veth_1"},
	"strict-rp-filter":          {"the server drops requests that arrive where its route back does not leave": "server/eth0"},
	"dnat-wrong-port":           {"the published port leads to a port nobody listens on": "ns1/eth0"},
	"loopback-down":             {"ns1 cannot reach its own address with lo down": "ns1/lo"},
	"ipv6-only-ipv4-default":    {"the dual-stack client has no IPv6 default route": "client"},
	"wrong-mac":                 {"ns1's permanent neighbor entry holds the gateway's old MAC": "ns1/veth_1"},
	"vxlan-vni-mismatch":        {"the tunnel ends disagree on the VNI": "node2/vxlan0"},
	"proxy-arp-missing":         {"pod2's host end does not answer ARP for the gateway": "node/cali2"},
	"host-gw-missing-route":     {"n3 has no route to n1's pod subnet": "n3/eth0"},
	"forward-rule-public-port":  {"the FORWARD rule accepts the public port, which DNAT has already changed": "host/eth0"},
	"nft-netavark-forward-drop": {"a rule in netavark's isolation chain drops the container's packets": "host/br0"},
	"nft-docker-no-masquerade":  {"the container's packets leave unmasqueraded and the reply cannot come back": "internet/wan0"},
	"nft-firewalld-reject":      {"firewalld rejects what no zone allows to forward": "host/br0"},
	"policy-rule-table-missing-route": {
		"the rule sends the first LAN to table 100, which has no route to the second": "router/lan1",
		"the router's replies from its first-LAN address take table 100 too":          "router",
	},
	"nft-docker-distro-forward-drop": {
		"the distribution's forward policy drops what Docker accepts": "host/docker0",
	},
	"mtu-router-link": {
		"a full-size packet with DF does not fit the router's link to the server": "router/eth1",
		"without DF the full-size reply is dropped by the router's smaller end":   "router/eth1",
		"a full-size datagram with DF gets fragmentation needed from the router":  "router/eth1",
		"a jumbo ping does not fit the client's own link":                         "client/eth0",
	},
}

// TestBrokenLibraryCoversEveryCause checks, without root, that the broken
// library states every cause code but unknown, and that every `cause:`
// check in it has its place in brokenPlaces.
func TestBrokenLibraryCoversEveryCause(t *testing.T) {
	scs := loadBroken(t)
	seen := map[string]bool{}
	for _, sc := range scs {
		for _, c := range sc.Checks {
			if c.Cause == "" {
				continue
			}
			seen[c.Cause] = true
			if _, ok := brokenPlaces[sc.Name][c.Name]; !ok {
				t.Errorf("%s: check %q states cause %s but brokenPlaces has no place for it", sc.Name, c.Name, c.Cause)
			}
		}
	}
	for _, code := range diagnose.Causes() {
		// A full neighbor table is a limit of the whole machine: a
		// scenario reaching it would fail every other test running
		// beside it. TestDiagnose covers it from the trace.
		if code == diagnose.NeighborTableFull {
			continue
		}
		if code != diagnose.Unknown && !seen[code] {
			t.Errorf("no scenario in %s states cause %s", brokenDir, code)
		}
	}
}

// TestBrokenLibrary runs every broken scenario through the runner on both
// tc attach paths and with tracing off, and checks that each `cause:`
// check passes (the probe failed and was diagnosed with its cause) at the
// right ns/if, from the trace or, with tracing off, from state alone.
func TestBrokenLibrary(t *testing.T) {
	privtest.Require(t)
	if _, err := exec.LookPath("iptables-save"); err != nil {
		privtest.Unavailable(t, "iptables-save")
	}
	scs := loadBroken(t)
	for _, mode := range []struct {
		name   string
		trace  runner.TraceMode
		attach trace.AttachMode
	}{
		{"tcx", runner.TraceOnFailure, trace.AttachTCX},
		{"clsact", runner.TraceOnFailure, trace.AttachClsact},
		{"trace-off", runner.TraceOff, trace.AttachAuto},
	} {
		t.Run(mode.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			rep := runner.Run(ctx, scs, runner.Options{
				Parallel: 2,
				Trace:    mode.trace,
				Attach:   mode.attach,
				Store:    runs.Store{Dir: t.TempDir()},
			})
			traced := mode.trace != runner.TraceOff
			if traced && (!rep.Tracing.Enabled || rep.Tracing.Mode != mode.name) {
				privtest.Unavailable(t, "tracing with "+mode.name+" ("+rep.Tracing.Reason+")")
			}
			for _, s := range rep.Scenarios {
				t.Run(s.Name, func(t *testing.T) {
					if s.Error != "" {
						t.Fatalf("scenario error: %s", s.Error)
					}
					for _, c := range s.Checks {
						want, stated := brokenPlaces[s.Name][c.Name]
						if !c.Passed {
							t.Errorf("check %q failed: %s%s", c.Name, c.Error, diagnosisText(c.Diagnosis))
							continue
						}
						if !stated {
							continue
						}
						d := c.Diagnosis
						if d == nil {
							t.Errorf("check %q: no diagnosis", c.Name)
							continue
						}
						got := d.NS
						if d.If != "" {
							got += "/" + d.If
						}
						if d.Cause != c.Cause || got != want {
							t.Errorf("check %q: diagnosed %s at %s, want %s at %s%s", c.Name, d.Cause, got, c.Cause, want, diagnosisText(d))
						}
						if d.FromStateOnly == traced {
							t.Errorf("check %q: from_state_only = %v with tracing %v", c.Name, d.FromStateOnly, traced)
						}
						if d.Summary == "" || len(d.Evidence) == 0 {
							t.Errorf("check %q: diagnosis without summary or evidence: %+v", c.Name, *d)
						}
					}
				})
			}
		})
	}
}

// TestCauseJudged runs, with tracing off, a broken scenario whose check
// names the wrong cause, the same probe expected to succeed, and the same
// probe expected to fail with no cause stated: the first must fail with the
// diagnosis named, the second and third must carry their diagnosis.
func TestCauseJudged(t *testing.T) {
	privtest.Require(t)
	if _, err := exec.LookPath("iptables-save"); err != nil {
		privtest.Unavailable(t, "iptables-save")
	}
	const yaml = `
name: lo-judged
namespaces:
  ns1:
    interfaces:
      lo: {up: false}
      eth0: {addresses: [10.0.0.2/24]}
  ns2:
    interfaces:
      eth0: {addresses: [10.0.0.3/24]}
links:
  - [ns1/eth0, ns2/eth0]
checks:
  - ping: {from: ns1, to: 10.0.0.2}
    name: wrong cause
    expect: fail
    cause: no-route
  - ping: {from: ns1, to: 10.0.0.2}
    name: expected to work
  - ping: {from: ns1, to: 10.0.0.2}
    name: expected to fail, no cause stated
    expect: fail
`
	sc, err := scenario.Parse("lo-judged.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep := runner.Run(ctx, []*scenario.Scenario{sc}, runner.Options{Trace: runner.TraceOff, Store: runs.Store{Dir: t.TempDir()}})
	if len(rep.Scenarios) != 1 || len(rep.Scenarios[0].Checks) != 3 {
		t.Fatalf("report: %+v", rep)
	}
	wrong, plain, nocause := rep.Scenarios[0].Checks[0], rep.Scenarios[0].Checks[1], rep.Scenarios[0].Checks[2]
	if wrong.Passed || !strings.Contains(wrong.Error, "probe failed as expected, but diagnosed as loopback-down, not no-route") {
		t.Errorf("wrong cause: passed %v, error %q", wrong.Passed, wrong.Error)
	}
	if plain.Passed || plain.Diagnosis == nil || plain.Diagnosis.Cause != diagnose.LoopbackDown || plain.Diagnosis.Fix != "ip link set lo up  # in ns1" {
		t.Errorf("expect success: passed %v, diagnosis %+v", plain.Passed, plain.Diagnosis)
	}
	// Every failed probe is explained, also one that was expected to fail
	// and states no cause.
	if !nocause.Passed || nocause.Diagnosis == nil || nocause.Diagnosis.Cause != diagnose.LoopbackDown {
		t.Errorf("expect fail without cause: passed %v, diagnosis %+v", nocause.Passed, nocause.Diagnosis)
	}
}

func loadBroken(t *testing.T) []*scenario.Scenario {
	t.Helper()
	scs, err := scenario.Load(brokenDir)
	if err != nil {
		t.Fatalf("load %s: %v", brokenDir, err)
	}
	var names []string
	for _, sc := range scs {
		names = append(names, strings.TrimSuffix(filepath.Base(sc.File), ".yaml"))
		if _, ok := brokenPlaces[sc.Name]; !ok {
			t.Errorf("%s: not in brokenPlaces", sc.File)
		}
	}
	for name := range brokenPlaces {
		if !slices.Contains(names, name) {
			t.Errorf("brokenPlaces names %s, which %s does not hold", name, brokenDir)
		}
	}
	return scs
}

func diagnosisText(d *report.Diagnosis) string {
	if d == nil {
		return ""
	}
	return "\n  cause: " + d.Cause + " at " + d.NS + "/" + d.If + ": " + d.Summary + "\n    " + strings.Join(d.Evidence, "\n    ") + "\n  fix: " + d.Fix
}

// fixNotRepairing lists the broken scenarios whose printed fix is known
// not to make the probe pass by itself, with the reason; every other
// scenario's fix is applied and the probe must then pass.
var fixNotRepairing = map[string]string{
	"address-typo": "address-missing prints no fix: which address was meant is the author's to say",
}

// TestBrokenFixes builds each broken scenario, diagnoses its `cause:`
// check with tracing off, runs the printed fix inside the namespace it
// names, and probes again expecting success: a fix is only worth printing
// if it works.
func TestBrokenFixes(t *testing.T) {
	privtest.Require(t)
	if _, err := exec.LookPath("iptables-save"); err != nil {
		privtest.Unavailable(t, "iptables-save")
	}
	for _, sc := range loadBroken(t) {
		t.Run(sc.Name, func(t *testing.T) {
			if why, ok := fixNotRepairing[sc.Name]; ok {
				t.Skip(why)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			topo := up(ctx, t, sc)
			opts := runner.Options{Trace: runner.TraceOff}
			for _, c := range sc.Checks {
				if c.Cause == "" {
					continue
				}
				rc, _ := runner.Probe(ctx, topo, sc, &c, opts)
				if !rc.Passed || rc.Diagnosis == nil || rc.Diagnosis.Fix == "" {
					t.Fatalf("check %q: passed %v, no fix to apply%s", c.Name, rc.Passed, diagnosisText(rc.Diagnosis))
				}
				cmd, ns := diagnose.SplitFix(rc.Diagnosis.Fix)
				if !slices.Contains(topo.Namespaces(), ns) {
					t.Fatalf("fix %q names no namespace of the scenario", rc.Diagnosis.Fix)
				}
				if out, err := runIn(topo.NS(ns), cmd); err != nil {
					t.Fatalf("fix %q: %v\n%s", rc.Diagnosis.Fix, err, out)
				}
				again := c
				again.Expect, again.Cause = scenario.ExpectSuccess, ""
				// The failed probe leaves FAILED neighbor entries and
				// unreplied conntrack entries behind, which the kernel
				// retries or drops on its own timers; give it a moment.
				time.Sleep(time.Second)
				if rc2, _ := runner.Probe(ctx, topo, sc, &again, opts); !rc2.Passed {
					t.Errorf("after the fix %q the probe still fails: %s%s", rc.Diagnosis.Fix, rc2.Error, diagnosisText(rc2.Diagnosis))
				}
				break // the fix repairs the scenario: its other cause checks no longer fail
			}
		})
	}
}

// runIn runs a shell command line (a diagnosis's fix, written by this
// package) inside namespace ns, and returns its output. The output goes to
// a file, so that starting the command inside the namespace starts no
// goroutine there.
// up builds sc in fresh namespaces and tears them down when the test
// ends.
func up(ctx context.Context, t *testing.T, sc *scenario.Scenario) *build.Topology {
	t.Helper()
	topo, err := build.Up(ctx, sc, build.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := topo.Down(context.Background()); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	return topo
}

func runIn(ns netns.Handle, line string) (string, error) {
	out, err := os.CreateTemp("", "fix-")
	if err != nil {
		return "", err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.Command("sh", "-c", line)
	cmd.Stdout, cmd.Stderr = out, out
	if err := netns.Do(ns, cmd.Start); err != nil {
		return "", err
	}
	err = cmd.Wait()
	b, _ := os.ReadFile(out.Name())
	return string(b), err
}

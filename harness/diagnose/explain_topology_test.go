package diagnose_test

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/harness/diagnose"
	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
	"github.com/hopcheck/hopcheck/harness/probe"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// dropYAML is a ping that host's INPUT chain drops.
const dropYAML = `
name: drop
namespaces:
  host:
    interfaces:
      br0:   {type: bridge, addresses: [10.9.0.1/24]}
      veth1: {master: br0}
    iptables:
      - -A INPUT -d 10.9.0.1 -p icmp -j DROP
  ns1:
    interfaces:
      eth0: {addresses: [10.9.0.2/24]}
links:
  - [ns1/eth0, host/veth1]
`

// TestExplainTopology lets a ping be dropped in real namespaces and
// explains it as the runner does (the topology it built, with its
// scenario) and as `hopcheck why --netns` does (namespaces given by name,
// the veth peers and bridge ports known from the kernel alone): each
// takes the snapshot itself and names the DROP rule whose counter the
// ping moved.
func TestExplainTopology(t *testing.T) {
	privtest.Require(t)
	if _, err := exec.LookPath("iptables-save"); err != nil {
		privtest.Unavailable(t, "iptables-save")
	}
	sc, err := scenario.Parse("drop.yaml", []byte(dropYAML))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topo := up(ctx, t, sc)
	before, err := snapshot.TakeCounters(ctx, topo)
	if err != nil {
		t.Fatalf("TakeCounters: %v", err)
	}
	if _, err := probe.Ping(ctx, topo.NS("ns1"), netip.MustParseAddr("10.9.0.1"), probe.PingOptions{Count: 1, Timeout: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  snapshot.Env
		sc   *scenario.Scenario
	}{
		{"built", topo, sc},
		{"named", snapshot.Named{{Name: "ns1", Handle: topo.NS("ns1")}, {Name: "host", Handle: topo.NS("host")}}, nil},
	} {
		d := diagnose.Explain(ctx, tc.env, diagnose.Input{Scenario: tc.sc, Probe: diagnose.Probe{Proto: "icmp", From: "ns1", Dst: netip.MustParseAddrPort("10.9.0.1:0"), Outcome: diagnose.OutcomeTimeout}, Before: before})
		if d.Cause != diagnose.NetfilterDrop || d.Place() != "host/br0" {
			t.Errorf("%s: got %s at %s (%s), want netfilter-drop at host/br0\n  %s", tc.name, d.Cause, d.Place(), d.Summary, strings.Join(d.Evidence, "\n  "))
		}
	}
}

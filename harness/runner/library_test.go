package runner

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"
	"github.com/hopcheck/hopcheck/harness/report"
	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/hopcheck/hopcheck/trace"
)

// TestLibraryTraces runs the scenario library on both tc attach paths and
// checks what the reports say about the probes, against the real kernel:
// every probe that got through has request and reply hops, the NAT
// scenarios show their translations where they happen, and the firewall
// scenario shows the kernel's drop in the namespace that dropped it.
func TestLibraryTraces(t *testing.T) {
	privtest.Require(t)
	if testing.Short() {
		t.Skip("skipped with -short: builds the whole library twice")
	}
	f := trace.ProbeFeatures()
	seed, err := filepath.Glob("../../scenarios/*.yaml")
	if err != nil || len(seed) == 0 {
		t.Fatalf("no library scenarios found: %v", err)
	}
	scs, err := scenario.Load(append(seed, "../../scenarios/broken/forward-policy-drop.yaml")...)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []trace.AttachMode{trace.AttachTCX, trace.AttachClsact} {
		t.Run(mode.String(), func(t *testing.T) {
			switch {
			case mode == trace.AttachTCX && !f.HasTCX:
				privtest.Unavailable(t, "TCX ("+f.Missing[trace.FeatureTCX]+")")
			case mode == trace.AttachClsact && !f.HasClsact:
				privtest.Unavailable(t, "clsact ("+f.Missing[trace.FeatureClsact]+")")
			}
			res := Run(context.Background(), scs, Options{Attach: mode, Store: runs.Store{Dir: t.TempDir()}})
			if !res.Tracing.Enabled || res.Tracing.Mode != mode.String() {
				t.Fatalf("tracing %+v, want on with %s", res.Tracing, mode)
			}
			if res.LostEvents != 0 {
				t.Errorf("%d trace events lost", res.LostEvents)
			}
			for _, s := range res.Scenarios {
				if !s.Passed {
					t.Errorf("%s failed: %s", s.Name, s.Error)
				}
				for _, c := range s.Checks {
					if !c.Passed {
						t.Errorf("%s: %s: %s", s.Name, c.Name, c.Error)
					}
					probe := c.Kind == "ping" || c.Kind == "tcp" || c.Kind == "udp"
					if probe && c.Expect == "success" && (!hasLeg(c, report.LegRequest) || !hasLeg(c, report.LegReply)) {
						t.Errorf("%s: %s got through but its trace has no request or no reply hops: %+v", s.Name, c.Name, c.Hops)
					}
					// A probe that got through lost nothing on the way:
					// packets freed after delivery (a reply's original
					// after a raw socket's copy, data unread when a
					// socket closes) are not drops.
					if probe && c.Expect == "success" && c.Drop != nil {
						t.Errorf("%s: %s got through but reports a drop: %+v", s.Name, c.Name, *c.Drop)
					}
					if c.TraceIncomplete {
						t.Errorf("%s: %s: %s", s.Name, c.Name, c.TraceNote)
					}
				}
			}
			byName := map[string]report.Scenario{}
			for _, s := range res.Scenarios {
				byName[s.Name] = s
			}
			wantTranslation(t, byName["nat-egress"], "SNAT 10.0.0.2 -> 198.51.100.2 at host/eth0")
			wantTranslation(t, byName["dnat-ingress"], "DNAT 198.51.100.2:8080 -> 10.0.0.2:80 at host/")
			var drop *report.Drop
			for _, c := range byName["forward-policy-drop"].Checks {
				if c.Drop != nil {
					drop = c.Drop
				}
			}
			if drop == nil || drop.NS != "host" || drop.Reason != "NETFILTER_DROP" {
				t.Errorf("forward-policy-drop: drop %+v, want NETFILTER_DROP in host", drop)
			}
		})
	}
}

func hasLeg(c report.Check, leg string) bool {
	for _, h := range c.Hops {
		if h.Leg == leg {
			return true
		}
	}
	return false
}

// wantTranslation fails unless some check of s shows a translation that
// starts with want.
func wantTranslation(t *testing.T, s report.Scenario, want string) {
	t.Helper()
	var seen []string
	for _, c := range s.Checks {
		for _, x := range c.Translations {
			if strings.HasPrefix(x, want) {
				return
			}
			seen = append(seen, x)
		}
	}
	t.Errorf("%s: no translation %q among %q", s.Name, want, seen)
}

// TestNATCapture runs the NAT scenario with --pcap and reads the capture
// back: one interface block per ns/if of the topology, and the probe to the
// simulated internet at every hop of its request, translated after
// host/eth0.
func TestNATCapture(t *testing.T) {
	privtest.Require(t)
	scs, err := scenario.Load("../../scenarios/nat-egress.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res := Run(context.Background(), scs, Options{Trace: TraceOff, PcapDir: dir, Store: runs.Store{Dir: t.TempDir()}})
	if !res.Passed {
		t.Fatalf("nat-egress failed: %+v", res.Scenarios[0])
	}
	f, err := os.Open(filepath.Join(dir, "nat-egress.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	// Echo requests to 203.0.113.8 by interface, with their source.
	seen := map[string]map[string]bool{}
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		intf, err := r.Interface(ci.InterfaceIndex)
		if err != nil {
			t.Fatal(err)
		}
		p, err := trace.Decode(trace.Event{Layer: trace.LayerEthernet, Data: data})
		if err != nil || !p.EchoRequest() || p.Dst.String() != "203.0.113.8" || !p.Tagged {
			continue
		}
		if seen[intf.Name] == nil {
			seen[intf.Name] = map[string]bool{}
		}
		seen[intf.Name][p.Src.String()] = true
	}
	var names []string
	for i := range r.NInterfaces() {
		intf, err := r.Interface(i)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, intf.Name)
	}
	// host: lo br0 veth1 veth2 eth0; ns1, ns2: lo + one veth; internet: lo wan0.
	for _, want := range []string{"host/br0", "host/veth1", "host/eth0", "ns1/veth_1", "ns2/veth_2", "internet/wan0", "internet/lo"} {
		if !slices.Contains(names, want) {
			t.Errorf("capture has no interface %s (has %v)", want, names)
		}
	}
	if len(names) != 11 {
		t.Errorf("capture has %d interfaces, want 11 (every ns/if of the topology): %v", len(names), names)
	}
	for ifc, src := range map[string]string{
		"ns1/veth_1": "10.0.0.2", "host/veth1": "10.0.0.2", "host/br0": "10.0.0.2",
		"host/eth0": "198.51.100.2", "internet/wan0": "198.51.100.2",
	} {
		if !seen[ifc][src] {
			t.Errorf("%s: no tagged echo request from %s to 203.0.113.8 (saw sources %v)", ifc, src, seen[ifc])
		}
	}
}

package diagnose

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
	"github.com/hopcheck/hopcheck/trace"
)

// mtu sets the MTU of links of the namespace: name, mtu, name, mtu ...
func (b *nsFx) mtu(kv ...any) *nsFx {
	for i := 0; i+1 < len(kv); i += 2 {
		b.link(kv[i].(string)).MTU = kv[i+1].(int)
	}
	return b
}

// mtuState is dualStack with every link's MTU 1500 but those edit sets.
func mtuState(t *testing.T, edit func(f *fx)) *snapshot.State {
	return dualStack(t, func(f *fx) {
		f.ns("client").mtu("eth0", 1500)
		f.ns("router").mtu("e1", 1500, "e2", 1500)
		f.ns("server").mtu("eth0", 1500)
		if edit != nil {
			edit(f)
		}
	})
}

func sized(p Probe, size int, df bool) Probe {
	p.Size, p.DF = size, df
	return p
}

func TestDiagnoseMTU(t *testing.T) {
	routerSmall := func(f *fx) { f.ns("router").mtu("e2", 1400) }
	runLayerCases(t, []layerCase{{
		name:  "a router's link with a smaller MTU than its peer: fragmentation needed at the router",
		state: mtuState(t, routerSmall),
		probe: sized(ping("client", "10.2.0.2"), 1500, true),
		cause: MTU, ns: "router", ifname: "e2",
		fix:     "ip link set dev e2 mtu 1500  # in router",
		summary: []string{"MTU is 1400", "fragmentation needed (mtu 1400)"},
	}, {
		name:  "the same over IPv6: packet too big, whatever DF says",
		state: mtuState(t, routerSmall),
		probe: sized(ping("client", "2001:db8:2::2"), 1500, false),
		cause: MTU, ns: "router", ifname: "e2",
		fix:     "ip link set dev e2 mtu 1500  # in router",
		summary: []string{"ICMPv6 packet too big"},
	}, {
		name:  "the sender's own link is smaller: EMSGSIZE at send",
		state: mtuState(t, func(f *fx) { f.ns("client").mtu("eth0", 1400) }),
		probe: sized(ping("client", "10.2.0.2"), 1500, true),
		cause: MTU, ns: "client", ifname: "eth0",
		fix:     "ip link set dev eth0 mtu 1500  # in client",
		summary: []string{"EMSGSIZE"},
	}, {
		name:  "a link small at both ends has no one-command fix",
		state: mtuState(t, func(f *fx) { f.ns("router").mtu("e2", 1400); f.ns("server").mtu("eth0", 1400) }),
		probe: sized(ping("client", "10.2.0.2"), 1500, true),
		cause: MTU, ns: "router", ifname: "e2",
		fix:     "-",
		summary: []string{"at most 1400 bytes pass (size: 1400)"},
	}, {
		name:  "fragments of a packet without DF are dropped by a receiving end with a smaller MTU than its sender",
		state: mtuState(t, func(f *fx) { f.ns("server").mtu("eth0", 1400) }),
		probe: sized(ping("client", "10.2.0.2"), 1500, false),
		cause: MTU, ns: "server", ifname: "eth0",
		fix:     "ip link set dev eth0 mtu 1500  # in server",
		summary: []string{"without an ICMP error"},
	}, {
		name:  "a reply too big for the router's smaller receiving end",
		state: mtuState(t, routerSmall),
		probe: sized(ping("client", "10.2.0.2"), 1500, false),
		cause: MTU, ns: "router", ifname: "e2",
		fix:     "ip link set dev e2 mtu 1500  # in router",
		summary: []string{"router/e2 has MTU 1400", "router drops the frame it receives"},
	}, {
		name:  "a packet within the slack of a VLAN header passes",
		state: mtuState(t, func(f *fx) { f.ns("server").mtu("eth0", 1496) }),
		probe: sized(ping("client", "10.2.0.2"), 1500, false),
		cause: Unknown, ns: "client",
	}, {
		name:  "without a size nothing is compared",
		state: mtuState(t, func(f *fx) { f.ns("router").mtu("e2", 68) }),
		probe: ping("client", "10.2.0.2"),
		cause: Unknown, ns: "client",
	}})
}

// The trace confirms a router's drop: its PKT_TOO_BIG drop and the ICMP
// error it sent agree with the state's finding.
func TestMTUFromTrace(t *testing.T) {
	st := mtuState(t, func(f *fx) { f.ns("router").mtu("e2", 1400) })
	pr := sized(ping("client", "10.2.0.2"), 1500, true)
	pr.Outcome = OutcomeTooBig
	tr := &trace.Trace{
		Request: []trace.Hop{{NS: "client", If: "eth0", Dir: trace.Egress}, {NS: "router", If: "e1", Dir: trace.Ingress}},
		Drop:    &trace.Drop{NS: "router", If: "e1", Reason: "PKT_TOO_BIG"},
		ICMPErrors: []trace.ICMPError{{NS: "router", If: "e1", Dir: trace.Egress, Proto: trace.ProtoICMP, Type: 3, Code: 4,
			From: netip.MustParseAddr("10.1.0.1"), To: netip.MustParseAddr("10.1.0.2")}},
	}
	d := Diagnose(Input{Probe: pr, After: st, Trace: tr})
	if d.Cause != MTU || d.Place() != "router/e2" {
		t.Fatalf("got %s at %s: %s", d.Cause, d.Place(), d.Summary)
	}
	for _, e := range d.Evidence {
		if slices.Contains([]string{e}, "the trace and the state disagree") {
			t.Errorf("evidence: %s", e)
		}
	}
	// The trace alone names the router when the state shows no MTU
	// problem (a snapshot taken after someone fixed it, say).
	tr.Drop = nil
	d = Diagnose(Input{Probe: pr, After: mtuState(t, nil), Trace: tr})
	if d.Cause != MTU || d.NS != "router" {
		t.Errorf("from the ICMP error alone: %s at %s", d.Cause, d.Place())
	}
}

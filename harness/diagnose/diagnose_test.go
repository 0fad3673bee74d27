package diagnose

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/harness/diagnose/iptrules"
	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/trace"
)

// zeroCounters returns what TakeCounters would have seen before the
// probe: the same rules with every counter at 0.
func zeroCounters(st *snapshot.State) *snapshot.State {
	out := &snapshot.State{}
	for _, n := range st.Namespaces {
		c := &snapshot.NSState{Name: n.Name}
		for _, t := range n.IPTables {
			nt := iptrules.Table{Name: t.Name}
			for _, ch := range t.Chains {
				nc := iptrules.Chain{Name: ch.Name, Policy: ch.Policy}
				for _, r := range ch.Rules {
					nc.Rules = append(nc.Rules, iptrules.Rule{Spec: r.Spec})
				}
				nt.Chains = append(nt.Chains, nc)
			}
			c.IPTables = append(c.IPTables, nt)
		}
		out.Namespaces = append(out.Namespaces, c)
	}
	return out
}

func ping(from, to string) Probe {
	return Probe{Proto: "icmp", From: from, Dst: netip.AddrPortFrom(netip.MustParseAddr(to), 0), Outcome: OutcomeTimeout}
}

func conn(proto, from, to, listen string) Probe {
	p := Probe{Proto: proto, From: from, Dst: netip.MustParseAddrPort(to), Outcome: OutcomeRefused}
	if listen != "" {
		ns, port, _ := strings.Cut(listen, ":")
		ap := netip.MustParseAddrPort("0.0.0.0:" + port)
		p.ListenNS, p.ListenPort = ns, ap.Port()
	}
	return p
}

// TestDiagnose is the core of the package: one hand-built broken state per
// cause code (several for the codes with more than one shape), each
// diagnosed with its cause at the right ns/if, with the fix it suggests.
func TestDiagnose(t *testing.T) {
	nat := natEgressScenario(t)
	// The same scenario with the master of veth2 forgotten in the YAML
	// itself: the intent is inferred.
	noMaster, err := scenario.Parse("nat-egress.yaml", []byte(strings.Replace(natEgressYAML, "      veth2: {master: br0}\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	rpSC, rpStrict := rpState(t, "1")
	_, rpLoose := rpState(t, "2")

	dnatTo9090 := `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
[1:60] -A PREROUTING -d 198.51.100.2/32 -i eth0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.2:9090
[1:60] -A POSTROUTING -s 10.0.0.0/24 ! -o br0 -j MASQUERADE
COMMIT
`
	tests := []struct {
		name     string
		sc       *scenario.Scenario
		state    *snapshot.State
		counters bool // take Before as the state with counters zeroed
		probe    Probe
		trace    *trace.Trace

		cause, ns, ifname string
		fix               string   // substring of Fix; "-" for no fix
		summary           string   // substring of Summary
		evidence          []string // substrings, each in some evidence line
		noEvidence        []string // substrings in no evidence line
	}{{
		name:  "no default route in the container",
		sc:    nat,
		state: natEgress(t, func(f *fx) { f.static["ns1"] = nil }),
		probe: ping("ns1", "203.0.113.8"),
		cause: NoRoute, ns: "ns1",
		fix:      "ip route add default via 10.0.0.1 dev veth_1  # in ns1",
		evidence: []string{"ns1: ip route get 203.0.113.8 -> no route (table main has no default route)", "ns1: table main: 10.0.0.0/24 dev veth_1"},
	}, {
		name:  "no route on the router",
		sc:    nat,
		state: natEgress(t, func(f *fx) { f.static["host"] = nil }),
		probe: ping("ns1", "203.0.113.8"),
		cause: NoRoute, ns: "host", ifname: "br0",
		fix:      "ip route add default via 198.51.100.1 dev eth0  # in host",
		evidence: []string{"host: ip route get 203.0.113.8 -> no route"},
	}, {
		name:  "unreachable route",
		sc:    nat,
		state: natEgress(t, func(f *fx) { f.ns("ns1").route("unreachable 203.0.113.0/24") }),
		probe: ping("ns1", "203.0.113.8"),
		cause: NoRoute, ns: "ns1",
		fix: "ip route del 203.0.113.0/24  # in ns1",
	}, {
		name: "forgot MASQUERADE: the internet cannot route the reply back",
		sc:   nat,
		state: natEgress(t, func(f *fx) {
			f.ns("host").ipt(hostFilterAccept)
		}),
		probe: ping("ns1", "203.0.113.8"),
		cause: NoReturnRoute, ns: "internet", ifname: "wan0",
		fix:      "iptables -t nat -A POSTROUTING -s 10.0.0.0/24 -o eth0 -j MASQUERADE  # in host",
		evidence: []string{"internet: ip route get 10.0.0.2 -> no route", "no SNAT or MASQUERADE"},
	}, {
		name:  "forgot ip_forward on the host",
		sc:    nat,
		state: natEgress(t, func(f *fx) { f.ns("host").sysctl("net.ipv4.ip_forward", "0") }),
		probe: ping("ns1", "203.0.113.8"),
		cause: ForwardingDisabled, ns: "host", ifname: "br0",
		fix:      "sysctl -w net.ipv4.ip_forward=1  # in host",
		evidence: []string{"host: net.ipv4.ip_forward = 0"},
	}, {
		name: "FORWARD policy DROP, counted during the probe",
		sc:   nat,
		state: natEgress(t, func(f *fx) {
			f.ns("host").ipt(strings.Replace(hostFilterAccept, ":FORWARD ACCEPT [0:0]", ":FORWARD DROP [3:252]", 1) + hostNATMasq)
		}),
		counters: true,
		probe:    ping("ns1", "203.0.113.8"),
		cause:    NetfilterDrop, ns: "host", ifname: "br0",
		fix:      "iptables -t filter -I FORWARD -i br0 -o eth0 -j ACCEPT && iptables -t filter -I FORWARD -i eth0 -o br0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT  # in host",
		evidence: []string{"host: filter/FORWARD policy DROP: 3 packets during the probe"},
	}, {
		name: "a DROP rule in FORWARD",
		sc:   nat,
		state: natEgress(t, func(f *fx) {
			f.ns("host").ipt(strings.Replace(hostFilterAccept, ":OUTPUT ACCEPT [0:0]\n", ":OUTPUT ACCEPT [0:0]\n[0:0] -A FORWARD -d 192.0.2.0/24 -j DROP\n[1:84] -A FORWARD -d 203.0.113.8/32 -j DROP\n", 1) + hostNATMasq)
		}),
		counters: true,
		probe:    ping("ns1", "203.0.113.8"),
		cause:    NetfilterDrop, ns: "host", ifname: "br0",
		fix:      "iptables -t filter -D FORWARD 2  # in host",
		evidence: []string{"rule 2 `-d 203.0.113.8/32 -j DROP`: 1 packet during the probe"},
	}, {
		name: "the reply dropped by FORWARD policy DROP without ESTABLISHED",
		sc:   nat,
		state: natEgress(t, func(f *fx) {
			f.ns("host").ipt(`*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [1:84]
:OUTPUT ACCEPT [0:0]
[1:84] -A FORWARD -i br0 -o eth0 -j ACCEPT
COMMIT
` + hostNATMasq)
		}),
		counters: true,
		probe:    ping("ns1", "203.0.113.8"),
		cause:    NetfilterDrop, ns: "host", ifname: "eth0",
		fix: "iptables -t filter -I FORWARD -i eth0 -o br0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT  # in host",
	}, {
		name: "a REJECT in INPUT refuses the tcp probe",
		sc:   nat,
		state: natEgress(t, func(f *fx) {
			f.ns("ns2").ipt(`*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
[1:60] -A INPUT -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable
COMMIT
`)
		}),
		counters: true,
		probe:    conn("tcp", "ns1", "10.0.0.3:80", "ns2:80"),
		cause:    NetfilterDrop, ns: "ns2", ifname: "veth_2",
		fix: "iptables -t filter -D INPUT 1  # in ns2",
	}, {
		name:  "forgot to bring the bridge-side veth up",
		sc:    nat,
		state: natEgress(t, func(f *fx) { f.ns("host").down("veth1") }),
		probe: ping("ns1", "10.0.0.3"),
		cause: LinkDown, ns: "host", ifname: "veth1",
		fix:      "ip link set veth1 up  # in host",
		evidence: []string{"host/veth1 is administratively down"},
	}, {
		name:  "the container's own veth is down",
		sc:    nat,
		state: natEgress(t, func(f *fx) { f.ns("ns1").down("veth_1") }),
		probe: ping("ns1", "10.0.0.3"),
		cause: LinkDown, ns: "ns1", ifname: "veth_1",
		fix: "ip link set veth_1 up  # in ns1",
	}, {
		name:  "the bridge is down",
		sc:    nat,
		state: natEgress(t, func(f *fx) { f.ns("host").down("br0") }),
		probe: ping("ns1", "10.0.0.3"),
		cause: LinkDown, ns: "host", ifname: "br0",
		fix: "ip link set br0 up  # in host",
	}, {
		name:  "forgot master br0",
		sc:    nat,
		state: natEgress(t, func(f *fx) { f.ns("host").link("veth2").Master = "" }),
		probe: ping("ns1", "10.0.0.3"),
		cause: NotBridged, ns: "host", ifname: "veth2",
		fix:      "ip link set veth2 master br0  # in host",
		evidence: []string{"host/veth2 is not a port of bridge br0 (it has no master)"},
	}, {
		name:  "forgot master br0 in the scenario itself",
		sc:    noMaster,
		state: natEgress(t, func(f *fx) { f.ns("host").link("veth2").Master = "" }),
		probe: ping("ns1", "10.0.0.3"),
		cause: NotBridged, ns: "host", ifname: "veth2",
		fix:      "ip link set veth2 master br0  # in host",
		evidence: []string{"host/veth2 has no address and no master, and its peer is on the subnet of bridge br0"},
	}, {
		name: "an on-link route to an address on the far side's lo is answered (weak host ARP)",
		sc:   nat,
		state: natEgress(t, func(f *fx) {
			f.static["host"] = []string{"203.0.113.0/24 dev eth0"}
			f.ns("internet").route("10.0.0.0/24 via 198.51.100.2")
		}),
		probe: ping("ns1", "203.0.113.8"),
		cause: Unknown, ns: "ns1",
		evidence: []string{"host: 203.0.113.8 is held by internet/wan0"},
	}, {
		name: "the same with arp_ignore=1: nobody answers for the address",
		sc:   nat,
		state: natEgress(t, func(f *fx) {
			f.static["host"] = []string{"203.0.113.0/24 dev eth0"}
			f.ns("internet").sysctl("net.ipv4.conf.all.arp_ignore", "1")
		}),
		probe: ping("ns1", "203.0.113.8"),
		// Named where the mistake is: the holder that keeps quiet.
		cause: AddressMissing, ns: "internet", ifname: "wan0",
		fix: "sysctl -w net.ipv4.conf.all.arp_ignore=0  # in internet",
	}, {
		name: "gateway nobody holds",
		sc:   nat,
		state: natEgress(t, func(f *fx) {
			f.static["ns1"] = []string{"default via 10.0.0.254"}
			f.ns("ns1").neigh("10.0.0.254", "veth_1", "FAILED")
		}),
		probe: ping("ns1", "203.0.113.8"),
		cause: ARPFailed, ns: "ns1", ifname: "veth_1",
		fix:      "ip route replace default via 10.0.0.1 dev veth_1  # in ns1",
		evidence: []string{"ns1: neighbor 10.0.0.254 dev veth_1 FAILED"},
	}, {
		name:  "on-link destination nobody holds",
		sc:    nat,
		state: natEgress(t, nil),
		probe: ping("ns1", "10.0.0.99"),
		cause: AddressMissing, ns: "ns1", ifname: "veth_1",
		fix:      "-",
		evidence: []string{"no interface reachable from ns1/veth_1 holds 10.0.0.99"},
	}, {
		name:  "on-link destination missing behind a router",
		sc:    nat,
		state: natEgress(t, nil),
		probe: ping("internet", "198.51.100.77"),
		cause: AddressMissing, ns: "internet", ifname: "wan0",
	}, {
		name:  "strict rp_filter with asymmetric routes",
		sc:    rpSC,
		state: rpStrict,
		probe: ping("client", "10.2.0.2"),
		cause: RPFilter, ns: "server", ifname: "eth0",
		fix:      "sysctl -w net.ipv4.conf.all.rp_filter=2  # in server",
		evidence: []string{"server: ip route get 10.1.0.2 -> 10.1.0.0/24 via 10.3.0.2 dev eth1", "server: net.ipv4.conf.all.rp_filter = 1"},
	}, {
		name:  "loose rp_filter accepts the asymmetric route; the reply still goes the other way and arrives",
		sc:    rpSC,
		state: rpLoose,
		probe: ping("client", "10.2.0.2"),
		cause: Unknown, ns: "client",
	}, {
		name: "DNAT to a port nobody listens on",
		sc:   nat,
		state: natEgress(t, func(f *fx) {
			f.ns("host").ipt(hostFilterAccept + dnatTo9090)
		}),
		counters: true,
		probe:    conn("tcp", "internet", "198.51.100.2:8080", "ns1:80"),
		cause:    NoListener, ns: "ns1", ifname: "veth_1",
		fix:      "iptables -t nat -R PREROUTING 1 -d 198.51.100.2/32 -i eth0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.2:80  # in host",
		evidence: []string{"host: DNAT 198.51.100.2:8080 -> 10.0.0.2:9090 sent the request there"},
	}, {
		name:  "udp to a port with a listener elsewhere",
		sc:    nat,
		state: natEgress(t, func(f *fx) { f.ns("ns2").listen("udp", "0.0.0.0:53") }),
		probe: conn("udp", "ns1", "10.0.0.3:5353", ""),
		cause: NoListener, ns: "ns2", ifname: "veth_2",
		evidence: []string{"ns2: udp sockets listening: 0.0.0.0:53"},
	}, {
		name:  "a listener in the snapshot serves the port",
		sc:    nat,
		state: natEgress(t, func(f *fx) { f.ns("ns2").listen("tcp", "0.0.0.0:22") }),
		probe: conn("tcp", "ns1", "10.0.0.3:22", ""),
		cause: Unknown, ns: "ns1",
	}, {
		name:  "lo left down, pinging its own address",
		sc:    nat,
		state: natEgress(t, func(f *fx) { f.ns("ns1").down("lo") }),
		probe: ping("ns1", "10.0.0.2"),
		cause: LoopbackDown, ns: "ns1", ifname: "lo",
		fix: "ip link set lo up  # in ns1",
	}, {
		name:  "healthy topology: nothing explains the failure",
		sc:    nat,
		state: natEgress(t, nil),
		probe: ping("ns1", "203.0.113.8"),
		cause: Unknown, ns: "ns1",
		evidence: []string{"host: forwards 10.0.0.2 > 203.0.113.8 icmp from br0", "host: rule 1 of nat/POSTROUTING `-s 10.0.0.0/24 ! -o br0 -j MASQUERADE`: SNAT 10.0.0.2 -> 198.51.100.2"},
	}, {
		name:  "healthy state, but the trace shows a netfilter drop",
		sc:    nat,
		state: natEgress(t, nil),
		probe: ping("ns1", "203.0.113.8"),
		trace: &trace.Trace{
			Request: []trace.Hop{hop("ns1", "veth_1", trace.Egress), hop("host", "veth1", trace.Ingress)},
			Drop:    &trace.Drop{NS: "host", Reason: "NETFILTER_DROP", Location: "nf_hook_slow+0x9c"},
		},
		cause: NetfilterDrop, ns: "host",
		evidence: []string{"trace: request crossed ns1/veth_1 -> host/veth1; last seen at host/veth1 ingress", "trace: dropped in host at nf_hook_slow: NETFILTER_DROP"},
	}, {
		name:  "healthy state, the trace shows the neighbor table full",
		sc:    nat,
		state: natEgress(t, nil),
		probe: ping("ns1", "203.0.113.8"),
		trace: &trace.Trace{
			Request: []trace.Hop{hop("ns1", "veth_1", trace.Egress), hop("host", "veth1", trace.Ingress)},
			Drop:    &trace.Drop{NS: "host", Reason: "NEIGH_CREATEFAIL", Location: "__neigh_create+0x5c1"},
		},
		cause: NeighborTableFull, ns: "host", fix: "-",
		summary:  "net.ipv4.neigh.default.gc_thresh3",
		evidence: []string{"trace: dropped in host at __neigh_create: NEIGH_CREATEFAIL"},
	}, {
		name:  "healthy state, the trace shows an unanswered ARP for the destination",
		sc:    nat,
		state: natEgress(t, nil),
		probe: ping("ns1", "10.0.0.3"),
		trace: &trace.Trace{
			Request: []trace.Hop{hop("ns1", "veth_1", trace.Egress)},
			ARP:     []trace.ARPExchange{{NS: "ns1", If: "veth_1", Sender: netip.MustParseAddr("10.0.0.2"), Target: netip.MustParseAddr("10.0.0.3"), Requests: 3}},
		},
		cause: AddressMissing, ns: "ns1", ifname: "veth_1",
	}, {
		name:  "state and trace disagree: the state's cause wins, the disagreement is evidence",
		sc:    nat,
		state: natEgress(t, func(f *fx) { f.ns("host").sysctl("net.ipv4.ip_forward", "0") }),
		probe: ping("ns1", "203.0.113.8"),
		trace: &trace.Trace{
			Request: []trace.Hop{hop("ns1", "veth_1", trace.Egress), hop("host", "veth1", trace.Ingress)},
			Drop:    &trace.Drop{NS: "host", If: "br0", Reason: "IP_RPFILTER"},
		},
		cause: ForwardingDisabled, ns: "host", ifname: "br0",
		evidence: []string{"the trace and the state disagree: the trace points at rp-filter at host/br0"},
	}, {
		name:  "link down; the trace's unanswered ARP agrees, and DAD is not the probe's",
		sc:    nat,
		state: natEgress(t, func(f *fx) { f.ns("host").down("veth1") }),
		probe: ping("ns1", "10.0.0.3"),
		trace: &trace.Trace{ARP: []trace.ARPExchange{
			{NS: "ns1", If: "veth_1", Sender: netip.IPv6Unspecified(), Target: netip.MustParseAddr("fe80::1"), Requests: 1},
			{NS: "ns1", If: "veth_1", Sender: netip.MustParseAddr("10.0.0.2"), Target: netip.MustParseAddr("10.0.0.3"), Requests: 1},
		}},
		cause: LinkDown, ns: "host", ifname: "veth1",
		evidence:   []string{"trace: who-has 10.0.0.3 tell 10.0.0.2 at ns1/veth_1: no reply (1 request)", "trace: the request was not seen on any interface"},
		noEvidence: []string{"disagree", "fe80::1"},
	}, {
		name:  "without a scenario the snapshot's peers and masters are used",
		sc:    nil,
		state: natEgress(t, func(f *fx) { f.ns("host").down("veth1") }),
		probe: ping("ns1", "10.0.0.3"),
		cause: LinkDown, ns: "host", ifname: "veth1",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Scenario: tc.sc, Probe: tc.probe, Trace: tc.trace, After: tc.state}
			if tc.counters {
				in.Before = zeroCounters(tc.state)
			}
			d := Diagnose(in)
			if d.Cause != tc.cause || d.NS != tc.ns || d.If != tc.ifname {
				t.Fatalf("got %s at %s, want %s at %s\nsummary: %s\nevidence:\n  %s", d.Cause, d.Place(), tc.cause, place(tc.ns, tc.ifname),
					d.Summary, strings.Join(d.Evidence, "\n  "))
			}
			t.Logf("cause: %s at %s: %s\n  %s\nfix: %s", d.Cause, d.Place(), d.Summary, strings.Join(d.Evidence, "\n  "), d.Fix)
			if d.Summary == "" || !strings.Contains(d.Summary, tc.summary) {
				t.Errorf("summary %q, want it to contain %q", d.Summary, tc.summary)
			}
			switch {
			case tc.fix == "-" && d.Fix != "":
				t.Errorf("fix %q, want none", d.Fix)
			case tc.fix != "" && tc.fix != "-" && !strings.Contains(d.Fix, tc.fix):
				t.Errorf("fix %q, want it to contain %q", d.Fix, tc.fix)
			}
			for _, want := range tc.evidence {
				if !slices.ContainsFunc(d.Evidence, func(e string) bool { return strings.Contains(e, want) }) {
					t.Errorf("no evidence line contains %q; evidence:\n  %s", want, strings.Join(d.Evidence, "\n  "))
				}
			}
			for _, bad := range tc.noEvidence {
				if slices.ContainsFunc(d.Evidence, func(e string) bool { return strings.Contains(e, bad) }) {
					t.Errorf("an evidence line contains %q; evidence:\n  %s", bad, strings.Join(d.Evidence, "\n  "))
				}
			}
			if d.FromStateOnly != (tc.trace == nil) {
				t.Errorf("FromStateOnly = %v with trace %v", d.FromStateOnly, tc.trace != nil)
			}
		})
	}
}

func hop(ns, ifname string, dir trace.Direction) trace.Hop {
	return trace.Hop{NS: ns, If: ifname, Dir: dir, T: time.Microsecond}
}

// TestDiagnoseWithoutSnapshot: a failure with no snapshot is still a
// diagnosis, never nil.
func TestDiagnoseWithoutSnapshot(t *testing.T) {
	d := Diagnose(Input{Probe: ping("ns1", "10.0.0.3")})
	if d == nil || d.Cause != Unknown || d.NS != "ns1" || !d.FromStateOnly {
		t.Fatalf("got %+v", d)
	}
}

// TestCausesMatchFormat keeps the codes Diagnose names equal to the codes
// the scenario format accepts.
func TestCausesMatchFormat(t *testing.T) {
	if got, want := Causes(), scenario.CauseCodes(); !slices.Equal(got, want) {
		t.Fatalf("diagnose.Causes() = %v\nscenario.CauseCodes() = %v", got, want)
	}
}

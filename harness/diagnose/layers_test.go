package diagnose

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

// layerCase is one hand-built state for the rules of one layer: the cause
// and place Diagnose must name, and the fix it must suggest.
type layerCase struct {
	name              string
	state             *snapshot.State
	probe             Probe
	cause, ns, ifname string
	fix               string   // substring of Fix; "-" for none
	summary           []string // substrings of Summary
}

func runLayerCases(t *testing.T, cases []layerCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Diagnose(Input{Probe: tc.probe, After: tc.state})
			if d.Cause != tc.cause || d.NS != tc.ns || d.If != tc.ifname {
				t.Fatalf("got %s at %s, want %s at %s\nsummary: %s\nevidence:\n  %s\nfix: %s", d.Cause, d.Place(), tc.cause, place(tc.ns, tc.ifname),
					d.Summary, strings.Join(d.Evidence, "\n  "), d.Fix)
			}
			t.Logf("cause: %s at %s: %s\n  %s\nfix: %s", d.Cause, d.Place(), d.Summary, strings.Join(d.Evidence, "\n  "), d.Fix)
			switch {
			case tc.fix == "-" && d.Fix != "":
				t.Errorf("fix %q, want none", d.Fix)
			case tc.fix != "" && tc.fix != "-" && !strings.Contains(d.Fix, tc.fix):
				t.Errorf("fix %q, want it to contain %q", d.Fix, tc.fix)
			}
			for _, s := range tc.summary {
				if !strings.Contains(d.Summary, s) {
					t.Errorf("summary %q does not say %q", d.Summary, s)
				}
			}
		})
	}
}

// dualStack is a client, a router and a server, each link with IPv4,
// IPv6 and link-local addresses; edit changes it before routes are
// derived.
func dualStack(t *testing.T, edit func(f *fx)) *snapshot.State {
	f := newFx(t)
	f.ns("client").veth("eth0", "router/e1", "10.1.0.2/24", "2001:db8:1::2/64", "fe80::2/64").
		route("default via 10.1.0.1").route("default via 2001:db8:1::1")
	f.ns("router").veth("e1", "client/eth0", "10.1.0.1/24", "2001:db8:1::1/64", "fe80::1/64").
		veth("e2", "server/eth0", "10.2.0.1/24", "2001:db8:2::1/64", "fe80::1/64").
		sysctl("net.ipv4.ip_forward", "1", "net.ipv6.conf.all.forwarding", "1")
	f.ns("server").veth("eth0", "router/e2", "10.2.0.2/24", "2001:db8:2::2/64", "fe80::2/64").
		route("default via 10.2.0.1").route("default via 2001:db8:2::1")
	if edit != nil {
		edit(f)
	}
	return f.build()
}

func TestDiagnoseIPv6(t *testing.T) {
	ping6 := ping("client", "2001:db8:2::2")
	runLayerCases(t, []layerCase{{
		name:  "open dual-stack way: nothing in the state explains it",
		state: dualStack(t, nil),
		probe: ping6,
		cause: Unknown, ns: "client",
	}, {
		name:  "only the IPv4 default route: no-route for IPv6",
		state: dualStack(t, func(f *fx) { f.static["client"] = []string{"default via 10.1.0.1"} }),
		probe: ping6,
		cause: NoRoute, ns: "client",
		fix:     "ip -6 route add default via 2001:db8:1::1 dev eth0  # in client",
		summary: []string{"client has no route to 2001:db8:2::2"},
	}, {
		name:  "the IPv4 probe still passes the same state",
		state: dualStack(t, func(f *fx) { f.static["client"] = []string{"default via 10.1.0.1"} }),
		probe: ping("client", "10.2.0.2"),
		cause: Unknown, ns: "client",
	}, {
		name:  "IPv6 forwarding off on the router",
		state: dualStack(t, func(f *fx) { f.ns("router").sysctl("net.ipv6.conf.all.forwarding", "0") }),
		probe: ping6,
		cause: ForwardingDisabled, ns: "router", ifname: "e1",
		fix: "sysctl -w net.ipv6.conf.all.forwarding=1  # in router",
	}, {
		name: "link-local next hop: the way is open",
		state: dualStack(t, func(f *fx) {
			f.static["client"] = []string{"default via 10.1.0.1", "default via fe80::1 dev eth0"}
		}),
		probe: ping6,
		cause: Unknown, ns: "client",
	}, {
		name: "link-local next hop nobody holds: neighbor discovery fails",
		state: dualStack(t, func(f *fx) {
			f.static["client"] = []string{"default via 10.1.0.1", "default via fe80::99 dev eth0"}
		}),
		probe: ping6,
		cause: ARPFailed, ns: "client", ifname: "eth0",
		summary: []string{"neighbor discovery for it fails"},
		fix:     "ip -6 route replace default via 2001:db8:1::1 dev eth0  # in client",
	}, {
		name: "no return route for IPv6 on the server",
		state: dualStack(t, func(f *fx) {
			f.static["server"] = []string{"default via 10.2.0.1"}
		}),
		probe: ping6,
		cause: NoReturnRoute, ns: "server", ifname: "eth0",
		fix: "ip -6 route add 2001:db8:1::/64 via 2001:db8:2::1 dev eth0  # in server",
	}, {
		name: "ip6tables FORWARD policy DROP",
		state: dualStack(t, func(f *fx) {
			f.ns("router").ip6t("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [1:104]\n:OUTPUT ACCEPT [0:0]\n[0:0] -A FORWARD -p ipv6-icmp -m icmp6 --icmpv6-type 129 -j ACCEPT\nCOMMIT\n")
		}),
		probe: ping6,
		cause: NetfilterDrop, ns: "router", ifname: "e1",
		summary: []string{"ip6 filter/FORWARD"},
		fix:     "ip6tables -t filter -I FORWARD -i e1 -o e2 -j ACCEPT  # in router",
	}, {
		name: "iptables rules do not apply to IPv6",
		state: dualStack(t, func(f *fx) {
			f.ns("router").ipt("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
		}),
		probe: ping6,
		cause: Unknown, ns: "client",
	}})
}

func TestSourceFor6(t *testing.T) {
	st := dualStack(t, func(f *fx) {
		f.static["client"] = []string{"default via fe80::1 dev eth0"}
	})
	c := st.NS("client")
	r, ok := c.RouteGet(mustAddr("2001:db8:2::2"))
	if !ok {
		t.Fatal("no route")
	}
	if got := c.SourceFor(r, mustAddr("2001:db8:2::2")); got != mustAddr("2001:db8:1::2") {
		t.Errorf("source for a global destination via a link-local gateway = %v, want the global address", got)
	}
	if got := c.SourceFor(snapshot.Route{Dev: "eth0"}, mustAddr("fe80::1")); got != mustAddr("fe80::2") {
		t.Errorf("source for a link-local destination = %v", got)
	}
}

func TestDiagnoseNeighbors(t *testing.T) {
	macs := func(f *fx) {
		f.ns("host").mac("br0", "02:00:00:00:00:01").mac("eth0", "02:00:00:00:01:02")
		f.ns("ns1").mac("veth_1", "02:00:00:00:00:02")
		f.ns("ns2").mac("veth_2", "02:00:00:00:00:03")
		f.ns("internet").mac("wan0", "02:00:00:00:01:01")
	}
	runLayerCases(t, []layerCase{{
		name: "permanent neighbor entry with the gateway's old MAC",
		state: natEgress(t, func(f *fx) {
			macs(f)
			f.ns("ns1").neighMAC("10.0.0.1", "02:00:00:00:00:99", "veth_1", "PERMANENT")
		}),
		probe: ping("ns1", "203.0.113.8"),
		cause: WrongMAC, ns: "ns1", ifname: "veth_1",
		fix:     "ip neigh replace 10.0.0.1 lladdr 02:00:00:00:00:01 dev veth_1 nud permanent  # in ns1",
		summary: []string{"holds 02:00:00:00:00:99 (PERMANENT)", "host/br0 answers for 10.0.0.1"},
	}, {
		name: "learned entry left with another interface's MAC",
		state: natEgress(t, func(f *fx) {
			macs(f)
			f.ns("ns1").neighMAC("10.0.0.1", "02:00:00:00:00:03", "veth_1", "STALE")
		}),
		probe: ping("ns1", "203.0.113.8"),
		cause: WrongMAC, ns: "ns1", ifname: "veth_1",
		fix: "ip neigh del 10.0.0.1 dev veth_1  # in ns1",
	}, {
		name: "a neighbor entry with the right MAC is no finding",
		state: natEgress(t, func(f *fx) {
			macs(f)
			f.ns("ns1").neighMAC("10.0.0.1", "02:00:00:00:00:01", "veth_1", "PERMANENT")
		}),
		probe: ping("ns1", "203.0.113.8"),
		cause: Unknown, ns: "ns1",
	}, {
		name:  "routed veths with proxy ARP: the way is open",
		state: routedVeths(t, "1"),
		probe: ping("pod2", "10.244.0.5"),
		cause: Unknown, ns: "pod2",
	}, {
		name:  "proxy_arp missing on the host end of one routed veth",
		state: routedVeths(t, "0"),
		probe: ping("pod2", "10.244.0.5"),
		cause: ARPFailed, ns: "node", ifname: "cali2",
		fix:     "sysctl -w net.ipv4.conf.cali2.proxy_arp=1  # in node",
		summary: []string{"node/cali2 must answer for it by proxy ARP"},
	}, {
		name:  "the other direction names the same end, for the reply",
		state: routedVeths(t, "0"),
		probe: ping("pod1", "10.244.0.6"),
		cause: ARPFailed, ns: "node", ifname: "cali2",
	}, {
		name: "arp_ignore=1 keeps the gateway, held on lo, quiet",
		state: natEgress(t, func(f *fx) {
			f.static["ns1"] = []string{"10.9.9.9 dev veth_1", "default via 10.9.9.9 dev veth_1"}
			f.ns("host").addr("lo", "10.9.9.9/32").sysctl("net.ipv4.conf.br0.arp_ignore", "1")
		}),
		probe: ping("ns1", "203.0.113.8"),
		cause: ARPFailed, ns: "host", ifname: "br0",
		fix:     "sysctl -w net.ipv4.conf.br0.arp_ignore=0  # in host",
		summary: []string{"arp_ignore=1 on br0"},
	}})
}

// routedVeths is Calico's layout: pods with a /32 address and a default
// route via 169.254.1.1, which nobody holds; the node answers for it by
// proxy ARP on each pod's host end and routes each pod's /32 to its veth.
// cali2's proxy_arp is given.
func routedVeths(t *testing.T, cali2ProxyARP string) *snapshot.State {
	f := newFx(t)
	f.ns("node").veth("cali1", "pod1/eth0").veth("cali2", "pod2/eth0").veth("eth0", "up/eth0", "192.0.2.2/24").
		route("10.244.0.5 dev cali1").route("10.244.0.6 dev cali2").route("default via 192.0.2.1").
		sysctl("net.ipv4.ip_forward", "1", "net.ipv4.conf.cali1.proxy_arp", "1", "net.ipv4.conf.cali2.proxy_arp", cali2ProxyARP)
	f.ns("up").veth("eth0", "node/eth0", "192.0.2.1/24")
	for _, p := range []struct{ ns, addr, peer string }{{"pod1", "10.244.0.5/32", "node/cali1"}, {"pod2", "10.244.0.6/32", "node/cali2"}} {
		f.ns(p.ns).veth("eth0", p.peer, p.addr).route("169.254.1.1 dev eth0").route("default via 169.254.1.1 dev eth0")
	}
	return f.build()
}

// vxlanHub is three nodes on an underlay switch with a VXLAN overlay,
// VNI 42: n1 is the hub, with FDB entries for both spokes; each spoke has
// the hub as its remote. n3's overlay is a bridge with the vxlan device
// and a pod's veth end as ports.
func vxlanHub(t *testing.T, edit func(f *fx)) *snapshot.State {
	f := newFx(t)
	f.ns("sw").bridge("br0").port("p1", "br0", "n1/eth0").port("p2", "br0", "n2/eth0").port("p3", "br0", "n3/eth0")
	f.ns("n1").veth("eth0", "sw/p1", "172.16.0.1/24").vxlan("vx0", 42, 4789, "", "eth0", "10.10.0.1/24")
	hub := f.ns("n1").link("vx0").VXLAN
	hub.FDB = []snapshot.FDBEntry{{MAC: "00:00:00:00:00:00", Dst: mustAddr("172.16.0.2")}, {MAC: "00:00:00:00:00:00", Dst: mustAddr("172.16.0.3")}}
	f.ns("n2").veth("eth0", "sw/p2", "172.16.0.2/24").vxlan("vx0", 42, 4789, "172.16.0.1", "eth0", "10.10.0.2/24")
	f.ns("n3").veth("eth0", "sw/p3", "172.16.0.3/24").vxlan("vx0", 42, 4789, "172.16.0.1", "eth0").
		bridge("br0", "10.10.0.3/24").port("pod", "br0", "pod3/eth0")
	f.ns("n3").link("vx0").Master = "br0"
	f.ns("pod3").veth("eth0", "n3/pod", "10.10.0.30/24")
	if edit != nil {
		edit(f)
	}
	return f.build()
}

func TestDiagnoseOverlay(t *testing.T) {
	runLayerCases(t, []layerCase{{
		name:  "open overlay way, through a far node's bridge",
		state: vxlanHub(t, nil),
		probe: ping("n1", "10.10.0.30"),
		cause: Unknown, ns: "n1",
	}, {
		name:  "spoke to hub",
		state: vxlanHub(t, nil),
		probe: ping("n2", "10.10.0.1"),
		cause: Unknown, ns: "n2",
	}, {
		name:  "a far node's pod port down: found across the tunnel",
		state: vxlanHub(t, func(f *fx) { f.ns("n3").down("pod") }),
		probe: ping("n1", "10.10.0.30"),
		cause: LinkDown, ns: "n3", ifname: "pod",
		fix: "ip link set pod up  # in n3",
	}, {
		name:  "VNI mismatch: the odd one is named",
		state: vxlanHub(t, func(f *fx) { f.ns("n3").link("vx0").VXLAN.VNI = 43 }),
		probe: ping("n1", "10.10.0.30"),
		cause: VXLANMismatch, ns: "n3", ifname: "vx0",
		fix:     "ip link del vx0 && ip link add vx0 type vxlan id 42 dstport 4789 remote 172.16.0.1 dev eth0 && ip link set vx0 master br0 && ip link set vx0 up  # in n3",
		summary: []string{"VNI 43"},
	}, {
		name:  "UDP port mismatch",
		state: vxlanHub(t, func(f *fx) { f.ns("n2").link("vx0").VXLAN.Port = 8472 }),
		probe: ping("n1", "10.10.0.2"),
		cause: VXLANMismatch, ns: "n2", ifname: "vx0",
		fix:     "dstport 4789",
		summary: []string{"UDP port 8472"},
	}, {
		name: "wrong remote on a spoke",
		state: vxlanHub(t, func(f *fx) {
			v := f.ns("n2").link("vx0").VXLAN
			v.Remote = mustAddr("172.16.0.9")
			v.FDB = []snapshot.FDBEntry{{MAC: "00:00:00:00:00:00", Dst: v.Remote}}
		}),
		probe: ping("n2", "10.10.0.1"),
		cause: VXLANMismatch, ns: "n2", ifname: "vx0",
		fix: "ip link set vx0 type vxlan remote 172.16.0.1  # in n2",
	}, {
		name:  "the hub has no FDB entry for a spoke",
		state: vxlanHub(t, func(f *fx) { f.ns("n1").link("vx0").VXLAN.FDB = f.ns("n1").link("vx0").VXLAN.FDB[:1] }),
		probe: ping("n1", "10.10.0.30"),
		cause: VXLANMismatch, ns: "n1", ifname: "vx0",
		fix:     "bridge fdb append 00:00:00:00:00:00 dev vx0 dst 172.16.0.3  # in n1",
		summary: []string{"172.16.0.2"},
	}})
}

func TestDiagnoseFixAtTheMistake(t *testing.T) {
	// host-gw: three nodes on one segment with a router; each node
	// routes the others' pod subnets directly. n3 lacks n1's.
	hostGW := func(t *testing.T, n3Routes []string) *snapshot.State {
		f := newFx(t)
		f.ns("sw").bridge("br0").port("p1", "br0", "n1/eth0").port("p3", "br0", "n3/eth0").port("pg", "br0", "gw/eth0")
		f.ns("gw").veth("eth0", "sw/pg", "172.16.0.254/24").sysctl("net.ipv4.ip_forward", "1")
		f.ns("n1").veth("eth0", "sw/p1", "172.16.0.1/24").bridge("cni0", "10.244.1.1/24").port("v1", "cni0", "pod1/eth0").
			route("default via 172.16.0.254").sysctl("net.ipv4.ip_forward", "1")
		f.ns("n3").veth("eth0", "sw/p3", "172.16.0.3/24").bridge("cni0", "10.244.3.1/24").port("v3", "cni0", "pod3/eth0").
			sysctl("net.ipv4.ip_forward", "1")
		for _, r := range n3Routes {
			f.ns("n3").route(r)
		}
		f.ns("n1").route("10.244.3.0/24 via 172.16.0.3")
		f.ns("pod1").veth("eth0", "n1/v1", "10.244.1.5/24").route("default via 10.244.1.1")
		f.ns("pod3").veth("eth0", "n3/v3", "10.244.3.5/24").route("default via 10.244.3.1")
		return f.build()
	}
	dnatFwd := func(t *testing.T, fwd string) *snapshot.State {
		return natEgress(t, func(f *fx) {
			f.ns("host").ipt("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n" +
				"[0:0] -A PREROUTING -d 198.51.100.2/32 -i eth0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.2:80\nCOMMIT\n" +
				"*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n" +
				"[0:0] -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n" + fwd + "COMMIT\n")
		})
	}
	stale := natEgress(t, func(f *fx) {
		f.ns("host").ipt("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n" +
			"[0:0] -A PREROUTING -i eth0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.9:80\nCOMMIT\n")
	})
	runLayerCases(t, []layerCase{{
		name:  "host-gw: the healthy way",
		state: hostGW(t, []string{"10.244.1.0/24 via 172.16.0.1", "default via 172.16.0.254"}),
		probe: ping("pod3", "10.244.1.5"),
		cause: Unknown, ns: "pod3",
	}, {
		name:  "host-gw: a missing pod route on n3 is named on n3, not as a default route on gw",
		state: hostGW(t, []string{"default via 172.16.0.254"}),
		probe: ping("pod3", "10.244.1.5"),
		cause: NoRoute, ns: "n3", ifname: "eth0",
		fix:     "ip route add 10.244.1.0/24 via 172.16.0.1 dev eth0  # in n3",
		summary: []string{"n1 has 10.244.1.0/24"},
	}, {
		name:  "a FORWARD rule written for the public port: the corrected rule",
		state: dnatFwd(t, "[0:0] -A FORWARD -d 198.51.100.2/32 -i eth0 -o br0 -p tcp -m tcp --dport 8080 -j ACCEPT\n"),
		probe: conn("tcp", "internet", "198.51.100.2:8080", "ns1:80"),
		cause: NetfilterDrop, ns: "host", ifname: "eth0",
		fix:     "iptables -t filter -R FORWARD 2 -d 10.0.0.2/32 -i eth0 -o br0 -p tcp -m tcp --dport 80 -j ACCEPT  # in host",
		summary: []string{"after DNAT 198.51.100.2:8080 -> 10.0.0.2:80"},
	}, {
		name:  "a DNAT to a stale address names the DNAT and re-targets it to the listener",
		state: stale,
		probe: conn("tcp", "internet", "198.51.100.2:8080", "ns1:80"),
		cause: AddressMissing, ns: "host", ifname: "br0",
		fix:     "iptables -t nat -R PREROUTING 1 -i eth0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.2:80  # in host",
		summary: []string{"rule 1 of nat/PREROUTING", "10.0.0.9:80"},
	}})
}

func TestNATToIPv6(t *testing.T) {
	for in, want := range map[string]string{
		"2001:db8::2":        "2001:db8::2 0",
		"[2001:db8::2]:8080": "2001:db8::2 8080",
		"10.0.0.2:80":        "10.0.0.2 80",
	} {
		a, p, ok := natTo(in)
		if got := a.String() + " " + itoa(int(p)); !ok || got != want {
			t.Errorf("natTo(%q) = %s %v, want %s", in, got, ok, want)
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

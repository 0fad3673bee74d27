package snapshot

import (
	"context"
	"net/netip"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/harness/build"
	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
	"github.com/hopcheck/hopcheck/harness/probe"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// snapYAML has one of everything a snapshot reads: a bridge with a port, a
// veth end left down, a static route, sysctls, a DROP policy and a DROP
// rule.
const snapYAML = `
name: snap
namespaces:
  host:
    interfaces:
      br0:   {type: bridge, addresses: [10.9.0.1/24]}
      veth1: {master: br0}
      veth2: {up: false}
    sysctls:
      net.ipv4.ip_forward: 1
      net.ipv4.conf.all.rp_filter: 2
    iptables:
      - -P FORWARD DROP
      - -A INPUT -d 10.9.0.1 -p icmp -j DROP
  ns1:
    interfaces:
      eth0: {addresses: [10.9.0.2/24]}
    routes:
      - default via 10.9.0.1
      - 198.51.100.0/24 via 10.9.0.1 table 100
    rules:
      - to 198.51.100.0/24 table 100 priority 50
      - -6 iif lo fwmark 0x4/0xf table main
  ns2:
    interfaces:
      eth0: {addresses: [10.9.1.2/24]}
links:
  - [ns1/eth0, host/veth1]
  - [ns2/eth0, host/veth2]
`

// upScenario builds yaml in fresh namespaces and tears them down when the
// test ends, whatever happens.
func upScenario(t *testing.T, yaml string) *build.Topology {
	t.Helper()
	privtest.Require(t)
	if _, err := exec.LookPath("iptables-save"); err != nil {
		privtest.Unavailable(t, "iptables-save")
	}
	sc, err := scenario.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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

// TestTake reads a built topology and checks each part of the snapshot
// against what the scenario made, then lets a ping move a DROP rule's
// counter, which the two snapshots show moving.
func TestTake(t *testing.T) {
	topo := upScenario(t, snapYAML)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A listener of our own, so the snapshot has a socket to find.
	l, err := probe.Listen(ctx, topo.NS("ns2"), probe.TCP, 8081)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	before, err := TakeCounters(ctx, topo)
	if err != nil {
		t.Fatalf("TakeCounters: %v", err)
	}
	res, err := probe.Ping(ctx, topo.NS("ns1"), netip.MustParseAddr("10.9.0.1"), probe.PingOptions{Count: 1, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Received != 0 {
		t.Fatalf("the ping to the host got a reply through an INPUT DROP rule")
	}
	st, err := Take(ctx, topo)
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	for _, n := range st.Namespaces {
		if len(n.Errors) > 0 {
			t.Errorf("%s: %v", n.Name, n.Errors)
		}
	}

	host, ns1, ns2 := st.NS("host"), st.NS("ns1"), st.NS("ns2")
	if host == nil || ns1 == nil || ns2 == nil {
		t.Fatalf("namespaces missing from the snapshot: %v", st.Namespaces)
	}
	t.Run("links", func(t *testing.T) {
		checkLink(t, host, "br0", func(l *Link) bool { return l.Kind == "bridge" && l.Up && l.HasAddr(netip.MustParseAddr("10.9.0.1")) })
		checkLink(t, host, "veth1", func(l *Link) bool { return l.Master == "br0" && l.Up && l.Carrier && l.Peer == "ns1/eth0" })
		checkLink(t, host, "veth2", func(l *Link) bool { return !l.Up && l.Peer == "ns2/eth0" })
		checkLink(t, ns2, "eth0", func(l *Link) bool { return l.Up && !l.Carrier && l.Peer == "host/veth2" })
		checkLink(t, ns1, "lo", func(l *Link) bool { return l.IsLoopback() && l.Up })
	})
	t.Run("routes", func(t *testing.T) {
		r, ok := ns1.RouteGet(netip.MustParseAddr("203.0.113.8"))
		if !ok || r.Via != netip.MustParseAddr("10.9.0.1") || r.Dev != "eth0" || r.Table != TableMain {
			t.Errorf("ns1 route to 203.0.113.8: %v (found %v); routes: %v", r, ok, ns1.Routes)
		}
		r, ok = ns1.RouteGet(netip.MustParseAddr("10.9.0.2"))
		if !ok || r.Type != RouteLocal || r.Table != TableLocal {
			t.Errorf("ns1 route to its own address: %v (found %v)", r, ok)
		}
	})
	t.Run("rules", func(t *testing.T) {
		l := ns1.Lookup(Flow{Dst: netip.MustParseAddr("198.51.100.7"), IIf: "lo"})
		if !l.OK || l.Route.Table != 100 || l.Rule.Priority != 50 || l.Rule.To != netip.MustParsePrefix("198.51.100.0/24") {
			t.Errorf("ns1 lookup of 198.51.100.7: %v by rule %s; rules %v", l.Route, l.Rule, ns1.Rules)
		}
		var v6 []string
		for _, r := range ns1.Rules {
			if r.V6 {
				v6 = append(v6, r.String())
			}
		}
		if want := "32765: from all fwmark 0x4/0xf iif lo lookup main"; !slices.Contains(v6, want) || len(v6) != 3 {
			t.Errorf("ns1 IPv6 rules %q, want the defaults and %q", v6, want)
		}
		if ns2.HasPolicy(false) || ns2.HasPolicy(true) || !ns1.HasPolicy(false) {
			t.Errorf("HasPolicy: ns2 %v/%v, ns1 %v", ns2.HasPolicy(false), ns2.HasPolicy(true), ns1.HasPolicy(false))
		}
	})
	t.Run("neighbors", func(t *testing.T) {
		if nb := ns1.Neighbor(netip.MustParseAddr("10.9.0.1"), "eth0"); nb == nil || nb.MAC == "" {
			t.Errorf("ns1 has no resolved neighbor 10.9.0.1 after pinging it: %v", ns1.Neighbors)
		}
	})
	t.Run("sysctls", func(t *testing.T) {
		for k, want := range map[string]string{
			"net.ipv4.ip_forward":           "1",
			"net.ipv4.conf.all.rp_filter":   "2",
			"net.ipv4.conf.br0.forwarding":  "1",
			"net.ipv4.conf.veth1.rp_filter": "0",
		} {
			if got, _ := host.Sysctl(k); got != want {
				t.Errorf("host %s = %q, want %q", k, got, want)
			}
		}
		if got, _ := ns1.Sysctl("net.ipv4.ip_forward"); got != "0" {
			t.Errorf("ns1 net.ipv4.ip_forward = %q, want 0 (each namespace has its own)", got)
		}
	})
	t.Run("iptables", func(t *testing.T) {
		fwd := host.Table("filter").Chain("FORWARD")
		if fwd == nil || fwd.Policy != "DROP" {
			t.Errorf("host filter/FORWARD: %+v, want policy DROP", fwd)
		}
		in := host.Table("filter").Chain("INPUT")
		if in == nil || len(in.Rules) != 1 || in.Rules[0].Target() != "DROP" || in.Rules[0].Packets == 0 {
			t.Errorf("host filter/INPUT: %+v, want the DROP rule with the ping counted", in)
		}
		// iptables-save ran inside each namespace: ns1 has none of host's rules.
		if c := ns1.Table("filter").Chain("INPUT"); c != nil && len(c.Rules) > 0 {
			t.Errorf("ns1 filter/INPUT has rules %v: iptables-save did not run inside ns1", c.Rules)
		}
	})
	t.Run("listeners", func(t *testing.T) {
		if !slices.ContainsFunc(ns2.Listeners, func(l Listener) bool { return l.Proto == "tcp" && l.Addr.Port() == 8081 }) {
			t.Errorf("ns2 listeners %v lack tcp port 8081", ns2.Listeners)
		}
		if slices.ContainsFunc(ns1.Listeners, func(l Listener) bool { return l.Addr.Port() == 8081 }) {
			t.Errorf("ns1 lists ns2's listener: %v", ns1.Listeners)
		}
	})
	t.Run("delta", func(t *testing.T) {
		moved := Delta(before, st)
		if !slices.ContainsFunc(moved, func(m netfilter.Moved) bool {
			return m.NS == "host" && m.Table == "filter" && m.Chain == "INPUT" && m.Rule == 1 && m.Packets >= 1
		}) {
			t.Errorf("the ping's drop is not among the moved counters: %v", moved)
		}
	})
	t.Run("named", func(t *testing.T) {
		named := Named{{Name: "ns2", Handle: topo.NS("ns2")}, {Name: "ns1", Handle: topo.NS("ns1")}, {Name: "host", Handle: topo.NS("host")}}
		if got := named.Namespaces(); !slices.Equal(got, []string{"ns2", "ns1", "host"}) {
			t.Errorf("Namespaces() = %v", got)
		}
		if named.NS("nope").IsOpen() {
			t.Error("NS of an unknown name is open")
		}
	})
}

func checkLink(t *testing.T, n *NSState, name string, ok func(*Link) bool) {
	t.Helper()
	l := n.Link(name)
	if l == nil {
		t.Errorf("%s/%s missing from the snapshot", n.Name, name)
		return
	}
	if !ok(l) {
		t.Errorf("%s/%s: %+v", n.Name, name, *l)
	}
}

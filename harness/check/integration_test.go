package check_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/harness/check"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/hopcheck/hopcheck/trace"
)

// testEnv is the lookup a check needs from a topology: scenario name to
// namespace handle. The namespaces behind it are real.
type testEnv map[string]netns.Handle

func (e testEnv) NS(name string) netns.Handle {
	if h, ok := e[name]; ok {
		return h
	}
	return netns.Handle(-1)
}

// fixture builds, in fresh namespaces of its own, the topology every
// integration test below checks against:
//
//	a: eth0 10.77.0.1/24 ── veth ── b: eth0 10.77.0.2/24
//	a: route 192.0.2.0/24 via 10.77.0.2, blackhole 203.0.113.0/24,
//	   static neighbor 10.77.0.99 lladdr 02:00:00:00:00:99 (nobody has it)
//	b: br0 10.78.0.1/24 (bridge) with port p0 (mtu 1400, up), whose veth
//	   peer p1 is down; ip_forward=1; iptables rules listed below.
//
// Everything is removed when the test ends, pass or fail.
func fixture(t *testing.T) testEnv {
	t.Helper()
	privtest.Require(t)
	run, err := netns.NewRunID()
	if err != nil {
		t.Fatal(err)
	}
	env := testEnv{}
	for _, name := range []string{"a", "b"} {
		kname := netns.Name(run, name)
		h, err := netns.Create(kname)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			h.Close()
			if err := netns.Delete(kname); err != nil {
				t.Error(err)
			}
		})
		env[name] = h
	}
	a, b := nlAt(t, env["a"]), nlAt(t, env["b"])

	must(t, a.LinkAdd(&netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: "eth0"},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(int(env["b"])),
	}))
	addAddr(t, a, "eth0", "10.77.0.1/24")
	addAddr(t, b, "eth0", "10.77.0.2/24")
	for _, h := range []*netlink.Handle{a, b} {
		setUp(t, h, "lo")
		setUp(t, h, "eth0")
	}
	must(t, a.RouteAdd(&netlink.Route{
		Dst:       prefix("192.0.2.0/24"),
		Gw:        net.ParseIP("10.77.0.2"),
		LinkIndex: link(t, a, "eth0").Attrs().Index,
	}))
	must(t, a.RouteAdd(&netlink.Route{Dst: prefix("203.0.113.0/24"), Type: unix.RTN_BLACKHOLE}))
	mac99, _ := net.ParseMAC("02:00:00:00:00:99")
	must(t, a.NeighAdd(&netlink.Neigh{
		LinkIndex:    link(t, a, "eth0").Attrs().Index,
		Family:       netlink.FAMILY_V4,
		State:        netlink.NUD_PERMANENT,
		IP:           net.ParseIP("10.77.0.99"),
		HardwareAddr: mac99,
	}))

	if err := b.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			privtest.Unavailable(t, "bridge interfaces (CONFIG_BRIDGE)")
		}
		t.Fatal(err)
	}
	addAddr(t, b, "br0", "10.78.0.1/24")
	setUp(t, b, "br0")
	must(t, b.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "p0", MTU: 1400}, PeerName: "p1"}))
	must(t, b.LinkSetMaster(link(t, b, "p0"), link(t, b, "br0")))
	setUp(t, b, "p0")

	must(t, netns.Do(env["b"], func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644)
	}))
	ipt, err := iptables.New()
	if err != nil {
		privtest.Unavailable(t, "the iptables command")
	}
	must(t, netns.Do(env["b"], func() error {
		for _, r := range []struct {
			table, chain string
			rule         []string
		}{
			{"filter", "INPUT", []string{"-p", "icmp", "-s", "10.77.0.1", "-j", "ACCEPT"}},
			{"filter", "INPUT", []string{"-p", "tcp", "--dport", "9", "-j", "DROP"}},
			{"nat", "POSTROUTING", []string{"-s", "10.78.0.0/24", "!", "-o", "br0", "-j", "MASQUERADE"}},
		} {
			if err := ipt.Append(r.table, r.chain, r.rule...); err != nil {
				return err
			}
		}
		return nil
	}))
	return env
}

// nlAt opens a netlink handle inside ns for the test's own set-up.
func nlAt(t *testing.T, ns netns.Handle) *netlink.Handle {
	t.Helper()
	var h *netlink.Handle
	must(t, netns.Do(ns, func() error {
		var err error
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	}))
	t.Cleanup(h.Close)
	return h
}

func link(t *testing.T, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return l
}

func addAddr(t *testing.T, h *netlink.Handle, dev, cidr string) {
	t.Helper()
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	must(t, h.AddrAdd(link(t, h, dev), a))
}

func setUp(t *testing.T, h *netlink.Handle, dev string) {
	t.Helper()
	must(t, h.LinkSetUp(link(t, h, dev)))
}

func prefix(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// kindCase is one check run against the fixture, with what must come out.
type kindCase struct {
	name    string
	check   scenario.Check
	passed  bool
	reached bool
	// evalErr: the check cannot be evaluated (Result.Err set).
	evalErr bool
	// has lists substrings of Summary+" | "+Error that must appear.
	has []string
	// details that must be present with these values.
	details map[string]string
}

func runCases(t *testing.T, env testEnv, cases []kindCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.check
			if c.Expect == "" {
				c.Expect = scenario.ExpectSuccess
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r := check.Run(ctx, env, &c)
			t.Logf("passed=%v reached=%v summary=%q error=%q", r.Passed, r.Reached, r.Summary, r.Error)
			if r.Passed != tc.passed {
				t.Errorf("Passed = %v, want %v", r.Passed, tc.passed)
			}
			if r.Reached != tc.reached {
				t.Errorf("Reached = %v, want %v", r.Reached, tc.reached)
			}
			if (r.Err != nil) != tc.evalErr {
				t.Errorf("Err = %v, want error: %v", r.Err, tc.evalErr)
			}
			if !r.Passed && r.Error == "" {
				t.Error("a failed check has no Error")
			}
			if r.Passed && r.Error != "" {
				t.Errorf("a passed check has Error %q", r.Error)
			}
			text := r.Summary + " | " + r.Error
			for _, s := range tc.has {
				if !strings.Contains(text, s) {
					t.Errorf("%q does not contain %q", text, s)
				}
			}
			got := map[string]string{}
			for _, d := range r.Details {
				got[d.Key] = d.Value
			}
			for k, v := range tc.details {
				if got[k] != v {
					t.Errorf("detail %s = %q, want %q (all: %v)", k, got[k], v, r.Details)
				}
			}
			if r.Check != &c || r.Name != c.Name || r.Kind != c.Kind || r.Expect != c.Expect {
				t.Errorf("bookkeeping fields not filled: %+v", r)
			}
		})
	}
}

const (
	fail = scenario.ExpectFail
	ms   = time.Millisecond
)

// The kinds run in one topology, in the order a scenario would run them:
// the probes first, so that the neighbor table and counters hold what they
// did.
func TestKinds(t *testing.T) {
	env := fixture(t)
	rootForward, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ping", func(t *testing.T) { testPing(t, env) })
	t.Run("conn", func(t *testing.T) { testConn(t, env) })
	t.Run("arp", func(t *testing.T) { testARP(t, env) })
	t.Run("route", func(t *testing.T) { testRoute(t, env) })
	t.Run("link", func(t *testing.T) { testLink(t, env) })
	t.Run("iptables", func(t *testing.T) { testIPTables(t, env) })
	t.Run("sysctl", func(t *testing.T) { testSysctl(t, env) })
	after, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(rootForward) {
		t.Errorf("root namespace ip_forward changed from %q to %q", rootForward, after)
	}
}

func ping(from, to string, count int, timeout time.Duration) *scenario.PingCheck {
	pc := &scenario.PingCheck{From: from, Count: count, Timeout: timeout}
	if ns, ifname, ok := strings.Cut(to, "/"); ok {
		pc.To.If = scenario.Endpoint{NS: ns, If: ifname}
	} else {
		pc.To.Addr = netip.MustParseAddr(to)
	}
	return pc
}

// pingIf is a ping to a target written as NS/IF, with the address the
// scenario parser picked for it.
func pingIf(from, to, addr string) *scenario.PingCheck {
	pc := ping(from, to, 1, time.Second)
	pc.To.Addr = netip.MustParseAddr(addr)
	return pc
}

func testPing(t *testing.T, env testEnv) {
	runCases(t, env, []kindCase{
		{
			name:    "reply",
			check:   scenario.Check{Kind: "ping", Name: "ping a -> b", Ping: ping("a", "10.77.0.2", 2, time.Second)},
			passed:  true,
			reached: true,
			has:     []string{"2/2 replies from 10.77.0.2"},
			details: map[string]string{"sent": "2", "received": "2", "loss": "0%"},
		},
		{
			name:    "target written as ns/if",
			check:   scenario.Check{Kind: "ping", Ping: pingIf("a", "b/eth0", "10.77.0.2")},
			passed:  true,
			reached: true,
			details: map[string]string{"target": "10.77.0.2"},
		},
		{
			name:    "reply but expect fail",
			check:   scenario.Check{Kind: "ping", Expect: fail, Ping: ping("a", "10.77.0.2", 1, time.Second)},
			reached: true,
			has:     []string{"expected this to fail", "1/1 replies"},
		},
		{
			name:  "nobody holds the address",
			check: scenario.Check{Kind: "ping", Ping: ping("a", "10.77.0.99", 1, 200*ms)},
			has:   []string{"0/1 replies from 10.77.0.99", "a got no reply from 10.77.0.99"},
		},
		{
			name:   "nobody holds the address, expect fail",
			check:  scenario.Check{Kind: "ping", Expect: fail, Ping: ping("a", "10.77.0.99", 1, 200*ms)},
			passed: true,
		},
		{
			name:    "no route",
			check:   scenario.Check{Kind: "ping", Ping: ping("a", "198.51.100.7", 1, 200*ms)},
			has:     []string{"network is unreachable"},
			details: map[string]string{"send_error": "network is unreachable"},
		},
		{
			name:   "no route, expect fail",
			check:  scenario.Check{Kind: "ping", Expect: fail, Ping: ping("a", "198.51.100.7", 1, 200*ms)},
			passed: true,
		},
		{
			name:    "target interface missing",
			check:   scenario.Check{Kind: "ping", Expect: fail, Ping: ping("a", "b/eth9", 1, 200*ms)},
			evalErr: true,
			has:     []string{"b/eth9"},
		},
	})

	// Every probe check carries a fresh tag for the tracer.
	c := scenario.Check{Kind: "ping", Ping: ping("a", "10.77.0.2", 1, time.Second)}
	r1 := check.Run(context.Background(), env, &c)
	r2 := check.Run(context.Background(), env, &c)
	if r1.Probe == nil || r2.Probe == nil {
		t.Fatal("ping result without Probe")
	}
	if r1.Probe.Tag == r2.Probe.Tag || r1.Probe.Tag == 0 {
		t.Errorf("tags %v and %v: want a fresh tag per check", r1.Probe.Tag, r2.Probe.Tag)
	}
	want := trace.Probe{Tag: r1.Probe.Tag, Proto: trace.ProtoICMP, Dst: netip.MustParseAddrPort("10.77.0.2:0"), SrcNS: "a"}
	if *r1.Probe != want {
		t.Errorf("Probe = %+v, want %+v", *r1.Probe, want)
	}
}

func conn(proto, from, to, listen string, port uint16, timeout time.Duration) *scenario.ConnCheck {
	return &scenario.ConnCheck{Proto: proto, From: from, To: netip.MustParseAddrPort(to), ListenNS: listen, ListenPort: port, Timeout: timeout}
}

func testConn(t *testing.T, env testEnv) {
	var cases []kindCase
	for _, proto := range []string{"tcp", "udp"} {
		cases = append(cases,
			kindCase{
				name:    proto + " round trip",
				check:   scenario.Check{Kind: proto, Conn: conn(proto, "a", "10.77.0.2:8080", "b", 8080, 2*time.Second)},
				passed:  true,
				reached: true,
				has:     []string{proto + " round trip to 10.77.0.2:8080", "listener saw 10.77.0.1:"},
				details: map[string]string{"outcome": "ok", "listener": "b:8080"},
			},
			kindCase{
				name:    proto + " round trip, expect fail",
				check:   scenario.Check{Kind: proto, Expect: fail, Conn: conn(proto, "a", "10.77.0.2:8080", "b", 8080, 2*time.Second)},
				reached: true,
				has:     []string{"expected this to fail"},
			},
			kindCase{
				name:    proto + " nothing listens",
				check:   scenario.Check{Kind: proto, Conn: conn(proto, "a", "10.77.0.2:8081", "", 0, 500*ms)},
				has:     []string{"was refused"},
				details: map[string]string{"outcome": "refused"},
			},
			kindCase{
				name:   proto + " nothing listens, expect fail",
				check:  scenario.Check{Kind: proto, Expect: fail, Conn: conn(proto, "a", "10.77.0.2:8081", "", 0, 500*ms)},
				passed: true,
			},
			kindCase{
				name:    proto + " no route",
				check:   scenario.Check{Kind: proto, Conn: conn(proto, "a", "198.51.100.7:80", "", 0, 500*ms)},
				has:     []string{"is unreachable"},
				details: map[string]string{"outcome": "unreachable"},
			},
		)
	}
	cases = append(cases,
		kindCase{
			// b drops tcp/9 on INPUT: the listener never sees the SYN.
			name:    "tcp dropped by a firewall",
			check:   scenario.Check{Kind: "tcp", Conn: conn("tcp", "a", "10.77.0.2:9", "b", 9, 300*ms)},
			has:     []string{"got no answer in time"},
			details: map[string]string{"outcome": "timeout", "request_arrived_from": ""},
		},
		kindCase{
			name:   "tcp dropped by a firewall, expect fail",
			check:  scenario.Check{Kind: "tcp", Expect: fail, Conn: conn("tcp", "a", "10.77.0.2:9", "b", 9, 300*ms)},
			passed: true,
		},
	)
	runCases(t, env, cases)

	// The probe info names the bound source, so the tracer finds a TCP
	// probe's SYN by it.
	c := scenario.Check{Kind: "tcp", Conn: conn("tcp", "a", "10.77.0.2:8080", "b", 8080, 2*time.Second)}
	r := check.Run(context.Background(), env, &c)
	if r.Probe == nil || r.Probe.Proto != trace.ProtoTCP || r.Probe.Src.Addr() != netip.MustParseAddr("10.77.0.1") ||
		r.Probe.Src.Port() == 0 || r.Probe.Dst != c.Conn.To || r.Probe.SrcNS != "a" {
		t.Errorf("Probe = %+v", r.Probe)
	}
}

func testARP(t *testing.T, env testEnv) {
	mac := func(s string) net.HardwareAddr {
		m, err := net.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	arp := func(ip, state string) *scenario.ARPCheck {
		return &scenario.ARPCheck{In: "a", IP: netip.MustParseAddr(ip), State: state}
	}
	withMACOf := arp("10.77.0.2", "reachable")
	withMACOf.MACOf = scenario.Endpoint{NS: "b", If: "eth0"}
	wrongMAC := arp("10.77.0.2", "any")
	wrongMAC.MAC = mac("02:00:00:00:00:01")
	static := arp("10.77.0.99", "permanent")
	static.MAC, static.Dev = mac("02:00:00:00:00:99"), "eth0"
	onMissingDev := arp("10.77.0.2", "any")
	onMissingDev.Dev = "eth9"
	badMACOf := arp("10.77.0.2", "any")
	badMACOf.MACOf = scenario.Endpoint{NS: "b", If: "eth9"}

	runCases(t, env, []kindCase{
		{
			name:    "resolved by the pings, mac of b/eth0",
			check:   scenario.Check{Kind: "arp", ARP: withMACOf},
			passed:  true,
			reached: true,
			has:     []string{"10.77.0.2 dev eth0 lladdr"},
			details: map[string]string{"state": "REACHABLE", "dev": "eth0"},
		},
		{
			name:    "resolved, expect fail",
			check:   scenario.Check{Kind: "arp", Expect: fail, ARP: withMACOf},
			reached: true,
			has:     []string{"expected this to fail"},
		},
		{
			name:  "other mac",
			check: scenario.Check{Kind: "arp", ARP: wrongMAC},
			has:   []string{"expected lladdr 02:00:00:00:00:01, got"},
		},
		{
			name:   "other mac, expect fail",
			check:  scenario.Check{Kind: "arp", Expect: fail, ARP: wrongMAC},
			passed: true,
		},
		{
			name:    "static entry",
			check:   scenario.Check{Kind: "arp", ARP: static},
			passed:  true,
			reached: true,
			details: map[string]string{"state": "PERMANENT", "mac": "02:00:00:00:00:99"},
		},
		{
			name:  "static entry is not reachable",
			check: scenario.Check{Kind: "arp", ARP: arp("10.77.0.99", "reachable")},
			has:   []string{"expected state reachable, got PERMANENT"},
		},
		{
			name:  "no entry",
			check: scenario.Check{Kind: "arp", ARP: arp("10.77.0.50", "any")},
			has:   []string{"a has no neighbor entry for 10.77.0.50"},
		},
		{
			name:   "no entry, expect fail",
			check:  scenario.Check{Kind: "arp", Expect: fail, ARP: arp("10.77.0.50", "any")},
			passed: true,
		},
		{
			name:  "no such device",
			check: scenario.Check{Kind: "arp", ARP: onMissingDev},
			has:   []string{"no interface eth9"},
		},
		{
			name:    "mac of a missing interface",
			check:   scenario.Check{Kind: "arp", Expect: fail, ARP: badMACOf},
			evalErr: true,
			has:     []string{"b/eth9"},
		},
	})
}

func testRoute(t *testing.T, env testEnv) {
	route := func(to, via, dev, src string) *scenario.RouteCheck {
		rc := &scenario.RouteCheck{In: "a", To: netip.MustParseAddr(to), Dev: dev}
		if via != "" {
			rc.Via = netip.MustParseAddr(via)
		}
		if src != "" {
			rc.Src = netip.MustParseAddr(src)
		}
		return rc
	}
	runCases(t, env, []kindCase{
		{
			name:    "via gateway",
			check:   scenario.Check{Kind: "route", Route: route("192.0.2.5", "10.77.0.2", "eth0", "10.77.0.1")},
			passed:  true,
			reached: true,
			has:     []string{"192.0.2.5 via 10.77.0.2 dev eth0 src 10.77.0.1"},
			details: map[string]string{"via": "10.77.0.2", "dev": "eth0", "src": "10.77.0.1"},
		},
		{
			name:    "connected",
			check:   scenario.Check{Kind: "route", Route: route("10.77.0.2", "", "eth0", "")},
			passed:  true,
			reached: true,
		},
		{
			name:    "wrong gateway",
			check:   scenario.Check{Kind: "route", Route: route("192.0.2.5", "10.77.0.254", "", "")},
			reached: true,
			has:     []string{"expected via 10.77.0.254, got via 10.77.0.2 dev eth0"},
		},
		{
			// expect: fail states "no route"; a route through another
			// gateway is still a route.
			name:    "wrong gateway, expect fail",
			check:   scenario.Check{Kind: "route", Expect: fail, Route: route("192.0.2.5", "10.77.0.254", "", "")},
			reached: true,
			has:     []string{"expected this to fail"},
		},
		{
			name:    "wrong device",
			check:   scenario.Check{Kind: "route", Route: route("10.77.0.2", "", "lo", "")},
			reached: true,
			has:     []string{"expected dev lo"},
		},
		{
			name:  "no route",
			check: scenario.Check{Kind: "route", Route: route("198.51.100.7", "", "", "")},
			has:   []string{"no route to 198.51.100.7", "network is unreachable"},
		},
		{
			name:   "no route, expect fail",
			check:  scenario.Check{Kind: "route", Expect: fail, Route: route("198.51.100.7", "", "", "")},
			passed: true,
		},
		{
			name:   "blackhole, expect fail",
			check:  scenario.Check{Kind: "route", Expect: fail, Route: route("203.0.113.8", "", "", "")},
			passed: true,
			has:    []string{"blackhole"},
		},
	})
}

func testLink(t *testing.T, env testEnv) {
	yes, no := true, false
	br0, none := "br0", ""
	runCases(t, env, []kindCase{
		{
			name:    "bridge port",
			check:   scenario.Check{Kind: "link", Link: &scenario.LinkCheck{In: "b", Name: "p0", Up: &yes, Master: &br0, MTU: 1400}},
			passed:  true,
			reached: true,
			details: map[string]string{"master": "br0", "mtu": "1400", "up": "true"},
		},
		{
			name:    "bridge port, expect fail",
			check:   scenario.Check{Kind: "link", Expect: fail, Link: &scenario.LinkCheck{In: "b", Name: "p0", Master: &br0}},
			reached: true,
		},
		{
			name:  "down peer said to be up",
			check: scenario.Check{Kind: "link", Link: &scenario.LinkCheck{In: "b", Name: "p1", Up: &yes}},
			has:   []string{"b/p1: expected up, got down"},
		},
		{
			name:   "down peer said to be up, expect fail",
			check:  scenario.Check{Kind: "link", Expect: fail, Link: &scenario.LinkCheck{In: "b", Name: "p1", Up: &yes}},
			passed: true,
		},
		{
			name:    "down and in no bridge",
			check:   scenario.Check{Kind: "link", Link: &scenario.LinkCheck{In: "b", Name: "p1", Up: &no, Master: &none}},
			passed:  true,
			reached: true,
		},
		{
			name:    "addresses",
			check:   scenario.Check{Kind: "link", Link: &scenario.LinkCheck{In: "b", Name: "eth0", Addresses: []netip.Prefix{netip.MustParsePrefix("10.77.0.2/24")}}},
			passed:  true,
			reached: true,
		},
		{
			name:  "missing address and wrong master",
			check: scenario.Check{Kind: "link", Link: &scenario.LinkCheck{In: "a", Name: "eth0", Master: &br0, Addresses: []netip.Prefix{netip.MustParsePrefix("10.77.0.3/24")}}},
			has:   []string{"expected master br0, got none", "missing address 10.77.0.3/24"},
		},
		{
			name:  "no such interface",
			check: scenario.Check{Kind: "link", Link: &scenario.LinkCheck{In: "b", Name: "eth9"}},
			has:   []string{"no interface eth9 in b"},
		},
		{
			name:   "no such interface, expect fail",
			check:  scenario.Check{Kind: "link", Expect: fail, Link: &scenario.LinkCheck{In: "b", Name: "eth9"}},
			passed: true,
		},
	})
}

func testIPTables(t *testing.T, env testEnv) {
	ipt := func(in, table, chain, rule, packets string) *scenario.IPTablesCheck {
		ic := &scenario.IPTablesCheck{In: in, Table: table, Chain: chain, Rule: rule}
		switch packets {
		case "":
		case ">0":
			ic.Packets = &scenario.Count{Op: ">", N: 0}
		case "0":
			ic.Packets = &scenario.Count{Op: "==", N: 0}
		default:
			t.Fatalf("test count %q", packets)
		}
		return ic
	}
	// Written as a user would, not as iptables prints it (-s without /32).
	icmpIn := "-p icmp -s 10.77.0.1 -j ACCEPT"
	masq := "-s 10.78.0.0/24 ! -o br0 -j MASQUERADE"
	runCases(t, env, []kindCase{
		{
			name:    "counted the pings",
			check:   scenario.Check{Kind: "iptables", IPTables: ipt("b", "filter", "INPUT", icmpIn, ">0")},
			passed:  true,
			reached: true,
			details: map[string]string{"exists": "true"},
		},
		{
			name:  "counted, but said to be unused",
			check: scenario.Check{Kind: "iptables", IPTables: ipt("b", "", "INPUT", icmpIn, "0")},
			has:   []string{"expected packets 0, got"},
		},
		{
			name:   "counted, but said to be unused, expect fail",
			check:  scenario.Check{Kind: "iptables", Expect: fail, IPTables: ipt("b", "", "INPUT", icmpIn, "0")},
			passed: true,
		},
		{
			name:    "nat rule exists",
			check:   scenario.Check{Kind: "iptables", IPTables: ipt("b", "nat", "POSTROUTING", masq, "0")},
			passed:  true,
			reached: true,
			details: map[string]string{"packets": "0"},
		},
		{
			name:    "nat rule exists, expect fail",
			check:   scenario.Check{Kind: "iptables", Expect: fail, IPTables: ipt("b", "nat", "POSTROUTING", masq, "")},
			reached: true,
		},
		{
			name:  "negation matters",
			check: scenario.Check{Kind: "iptables", IPTables: ipt("b", "nat", "POSTROUTING", "-s 10.78.0.0/24 -o br0 -j MASQUERADE", "")},
			has:   []string{"has no rule"},
		},
		{
			name:   "no such rule, expect fail",
			check:  scenario.Check{Kind: "iptables", Expect: fail, IPTables: ipt("a", "filter", "INPUT", icmpIn, "")},
			passed: true,
		},
		{
			// A packet condition on a rule that is not there cannot be
			// judged: a typo must not pass as "never matched".
			name:    "no such rule with a packet condition, expect fail",
			check:   scenario.Check{Kind: "iptables", Expect: fail, IPTables: ipt("a", "filter", "INPUT", icmpIn, ">0")},
			evalErr: true,
			has:     []string{"cannot be checked"},
		},
		{
			name:    "unbalanced quote",
			check:   scenario.Check{Kind: "iptables", IPTables: ipt("b", "filter", "INPUT", `-m comment --comment "x -j ACCEPT`, "")},
			evalErr: true,
			has:     []string{"unterminated quote"},
		},
	})
}

func testSysctl(t *testing.T, env testEnv) {
	sc := func(in, key, value string) *scenario.SysctlCheck {
		return &scenario.SysctlCheck{In: in, Key: key, Value: value}
	}
	runCases(t, env, []kindCase{
		{
			name:    "set in b",
			check:   scenario.Check{Kind: "sysctl", Sysctl: sc("b", "net.ipv4.ip_forward", "1")},
			passed:  true,
			reached: true,
			details: map[string]string{"value": "1"},
		},
		{
			name:    "default in a",
			check:   scenario.Check{Kind: "sysctl", Sysctl: sc("a", "net.ipv4.ip_forward", "0")},
			passed:  true,
			reached: true,
		},
		{
			name:  "a does not forward",
			check: scenario.Check{Kind: "sysctl", Sysctl: sc("a", "net.ipv4.ip_forward", "1")},
			has:   []string{"a: expected net.ipv4.ip_forward = 1, got 0"},
		},
		{
			name:   "a does not forward, expect fail",
			check:  scenario.Check{Kind: "sysctl", Expect: fail, Sysctl: sc("a", "net.ipv4.ip_forward", "1")},
			passed: true,
		},
		{
			name:    "b forwards, expect fail",
			check:   scenario.Check{Kind: "sysctl", Expect: fail, Sysctl: sc("b", "net.ipv4.ip_forward", "1")},
			reached: true,
		},
		{
			// The kernel prints "1\t0"; the scenario writes it with spaces.
			name:    "multi-value",
			check:   scenario.Check{Kind: "sysctl", Sysctl: sc("a", "net.ipv4.ping_group_range", "1   0")},
			passed:  true,
			reached: true,
		},
		{
			name:    "per-interface key",
			check:   scenario.Check{Kind: "sysctl", Sysctl: sc("b", "net.ipv4.conf.br0.forwarding", "1")},
			passed:  true,
			reached: true,
		},
		{
			name:    "no such key, expect fail",
			check:   scenario.Check{Kind: "sysctl", Expect: fail, Sysctl: sc("a", "net.ipv4.conf.eth9.forwarding", "1")},
			evalErr: true,
			has:     []string{"does not exist"},
		},
	})
}

package build_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-iptables/iptables"
	"github.com/hopcheck/hopcheck/harness/build"
	"github.com/hopcheck/hopcheck/harness/plan"
	"github.com/hopcheck/hopcheck/harness/plan/plantest"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// rootLinks lists the links of the test process's own (root) namespace,
// which no build may change.
func rootLinks(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatalf("list root links: %v", err)
	}
	var out []string
	for _, l := range links {
		out = append(out, fmt.Sprintf("%d:%s", l.Attrs().Index, l.Attrs().Name))
	}
	sort.Strings(out)
	return out
}

// runNamespaces returns the kernel names of run runID that exist.
func runNamespaces(t *testing.T, runID string) []string {
	t.Helper()
	names, err := netns.List()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if id, _, _ := netns.ParseName(n); id == runID {
			out = append(out, n)
		}
	}
	return out
}

// guard records the root namespace's links and checks, when the test
// ends, that they are unchanged and that run runID left no namespace.
func guard(t *testing.T, runID func() string) {
	t.Helper()
	before := rootLinks(t)
	t.Cleanup(func() {
		if id := runID(); id != "" {
			if left := runNamespaces(t, id); len(left) > 0 {
				t.Errorf("run %s left namespaces behind: %v", id, left)
				for _, n := range left {
					_ = netns.Delete(n)
				}
			}
		}
		if after := rootLinks(t); !slices.Equal(before, after) {
			t.Errorf("root namespace links changed:\nbefore %v\nafter  %v", before, after)
		}
	})
}

// up builds sc and tears it down when the test ends, checking that
// nothing is left behind.
func up(t *testing.T, sc *scenario.Scenario) *build.Topology {
	t.Helper()
	privtest.Require(t)
	var topo *build.Topology
	guard(t, func() string {
		if topo == nil {
			return ""
		}
		return topo.RunID
	})
	topo, err := build.Up(context.Background(), sc, build.Options{})
	if err != nil {
		t.Fatalf("build %s: %v", sc.Name, err)
	}
	t.Cleanup(func() {
		if err := topo.Down(context.Background()); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	return topo
}

// nlAt returns a netlink handle inside h.
func nlAt(t *testing.T, h netns.Handle) *netlink.Handle {
	t.Helper()
	var nh *netlink.Handle
	if err := netns.Do(h, func() error {
		var err error
		nh, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	}); err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(nh.Close)
	return nh
}

func link(t *testing.T, nh *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := nh.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return l
}

func readSysctl(t *testing.T, h netns.Handle, key string) string {
	t.Helper()
	path, err := plan.SysctlPath(key)
	if err != nil {
		t.Fatal(err)
	}
	var v []byte
	if err := netns.Do(h, func() error {
		var err error
		v, err = os.ReadFile(path)
		return err
	}); err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return strings.TrimSpace(string(v))
}

// iptablesRules returns `iptables -t TABLE -S` inside h.
func iptablesRules(t *testing.T, h netns.Handle, table string) []string {
	t.Helper()
	ipt, err := iptables.New()
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	if err := netns.Do(h, func() error {
		chains, err := ipt.ListChains(table)
		if err != nil {
			return err
		}
		for _, c := range chains {
			r, err := ipt.List(table, c)
			if err != nil {
				return err
			}
			rules = append(rules, r...)
		}
		return nil
	}); err != nil {
		t.Fatalf("iptables -t %s -S: %v", table, err)
	}
	return rules
}

func hasAddr(t *testing.T, nh *netlink.Handle, l netlink.Link, cidr string) netlink.Addr {
	t.Helper()
	addrs, err := nh.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.IPNet.String() == cidr {
			return a
		}
	}
	t.Errorf("%s has no address %s (has %v)", l.Attrs().Name, cidr, addrs)
	return netlink.Addr{}
}

func isUp(l netlink.Link) bool { return l.Attrs().Flags&net.FlagUp != 0 }

// bridgeScenario: a bridge with ports, IPv6, MAC, MTU, a neighbor, an
// interface-scoped sysctl, and the NAT example's rules.
func bridgeScenario() *scenario.Scenario {
	return plantest.New("bridge").
		NS("host").
		Iface("host", "br0", scenario.TypeBridge, plantest.Addrs("10.0.0.1/24", "fd00::1/64"), plantest.MAC("02:00:00:00:00:01")).
		Iface("host", "veth1", "", plantest.Master("br0")).
		Iface("host", "veth2", "", plantest.Master("br0"), plantest.Down()).
		Sysctl("host", "net.ipv4.ip_forward", "1").
		Sysctl("host", "net.ipv4.conf.br0.rp_filter", "2").
		IPTables("host", "-N HC-IN", "-N", "HC-IN").
		IPTables("host", "-A HC-IN -s 10.0.0.0/24 -m comment --comment \"from the bridge\" -j ACCEPT",
			"-A", "HC-IN", "-s", "10.0.0.0/24", "-m", "comment", "--comment", "from the bridge", "-j", "ACCEPT").
		IPTables("host", "-A INPUT -j HC-IN", "-A", "INPUT", "-j", "HC-IN").
		IPTables("host", "-t nat -A POSTROUTING -s 10.0.0.0/24 ! -o br0 -j MASQUERADE",
			"-t", "nat", "-A", "POSTROUTING", "-s", "10.0.0.0/24", "!", "-o", "br0", "-j", "MASQUERADE").
		IPTables("host", "-P FORWARD DROP", "-P", "FORWARD", "DROP").
		NS("ns1").
		Iface("ns1", "eth0", "", plantest.Addrs("10.0.0.2/24", "fd00::2/64"), plantest.MTU(1400), plantest.MAC("02:00:00:00:01:02")).
		Route("ns1", "default via 10.0.0.1").
		Route("ns1", "198.51.100.0/24 dev eth0 metric 7 table 100").
		Neighbor("ns1", "10.0.0.9", "02:00:00:00:00:09", "eth0").
		NS("ns2").
		Iface("ns2", "eth0", "", plantest.Addrs("10.0.0.3/24")).
		Link("ns1/eth0", "host/veth1").
		Link("ns2/eth0", "host/veth2").
		Scenario()
}

func TestBridgeAndVeth(t *testing.T) {
	sc := bridgeScenario()
	topo := up(t, sc)
	host, ns1 := nlAt(t, topo.NS("host")), nlAt(t, topo.NS("ns1"))

	br := link(t, host, "br0")
	if br.Type() != "bridge" || !isUp(br) {
		t.Errorf("br0: type %s up %v, want an up bridge", br.Type(), isUp(br))
	}
	if got := br.Attrs().HardwareAddr.String(); got != "02:00:00:00:00:01" {
		t.Errorf("br0 mac %s", got)
	}
	hasAddr(t, host, br, "10.0.0.1/24")
	// Duplicate address detection ran (no NODAD) and was over when Up
	// returned.
	if a := hasAddr(t, host, br, "fd00::1/64"); a.Flags&(unix.IFA_F_NODAD|unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
		t.Errorf("fd00::1/64 flags %#x: want DAD done (not NODAD, tentative or dadfailed)", a.Flags)
	}
	for _, tc := range []struct {
		name string
		up   bool
	}{{"veth1", true}, {"veth2", false}} {
		l := link(t, host, tc.name)
		if l.Type() != "veth" || l.Attrs().MasterIndex != br.Attrs().Index || isUp(l) != tc.up {
			t.Errorf("host/%s: type %s master %d up %v; want veth, master br0 (%d), up %v",
				tc.name, l.Type(), l.Attrs().MasterIndex, isUp(l), br.Attrs().Index, tc.up)
		}
	}

	eth0 := link(t, ns1, "eth0")
	if eth0.Attrs().MTU != 1400 || !isUp(eth0) || eth0.Attrs().HardwareAddr.String() != "02:00:00:00:01:02" {
		t.Errorf("ns1/eth0: mtu %d up %v mac %s", eth0.Attrs().MTU, isUp(eth0), eth0.Attrs().HardwareAddr)
	}
	hasAddr(t, ns1, eth0, "10.0.0.2/24")
	if lo := link(t, ns1, "lo"); !isUp(lo) {
		t.Error("ns1/lo is down")
	}

	routes, err := ns1.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var gotRoutes []string
	for _, r := range routes {
		if r.Table == unix.RT_TABLE_LOCAL {
			continue
		}
		gotRoutes = append(gotRoutes, fmt.Sprintf("%v via %v dev %d table %d metric %d", r.Dst, r.Gw, r.LinkIndex, r.Table, r.Priority))
	}
	for _, want := range []string{
		fmt.Sprintf("0.0.0.0/0 via 10.0.0.1 dev %d table 254 metric 0", eth0.Attrs().Index),
		fmt.Sprintf("198.51.100.0/24 via <nil> dev %d table 100 metric 7", eth0.Attrs().Index),
	} {
		if !slices.Contains(gotRoutes, want) {
			t.Errorf("ns1 routes %q lack %q", gotRoutes, want)
		}
	}

	neighs, err := ns1.NeighList(eth0.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(neighs, func(n netlink.Neigh) bool {
		return n.IP.String() == "10.0.0.9" && n.HardwareAddr.String() == "02:00:00:00:00:09" && n.State == netlink.NUD_PERMANENT
	}) {
		t.Errorf("ns1 has no permanent neighbor 10.0.0.9: %v", neighs)
	}

	for _, tc := range []struct{ ns, key, want string }{
		{"host", "net.ipv4.ip_forward", "1"},
		{"ns1", "net.ipv4.ip_forward", "0"}, // per namespace: only host's changed
		{"host", "net.ipv4.conf.br0.rp_filter", "2"},
	} {
		if got := readSysctl(t, topo.NS(tc.ns), tc.key); got != tc.want {
			t.Errorf("%s %s = %s, want %s", tc.ns, tc.key, got, tc.want)
		}
	}

	filter := iptablesRules(t, topo.NS("host"), "filter")
	for _, want := range []string{
		"-P FORWARD DROP",
		"-N HC-IN",
		"-A INPUT -j HC-IN",
		`-A HC-IN -s 10.0.0.0/24 -m comment --comment "from the bridge" -j ACCEPT`,
	} {
		if !slices.Contains(filter, want) {
			t.Errorf("host filter rules %q lack %q", filter, want)
		}
	}
	if nat := iptablesRules(t, topo.NS("host"), "nat"); !slices.Contains(nat, "-A POSTROUTING -s 10.0.0.0/24 ! -o br0 -j MASQUERADE") {
		t.Errorf("host nat rules %q lack the MASQUERADE rule", nat)
	}
	if ns1Rules := iptablesRules(t, topo.NS("ns1"), "filter"); slices.Contains(ns1Rules, "-N HC-IN") {
		t.Error("ns1 has host's chain: iptables ran in the wrong namespace")
	}

	// The topology's record matches the kernel.
	if mac, ok := topo.MAC(scenario.Endpoint{NS: "host", If: "br0"}); !ok || mac.String() != "02:00:00:00:00:01" {
		t.Errorf("MAC(host/br0) = %s, %v", mac, ok)
	}
	var eps []string
	for _, i := range topo.Interfaces() {
		eps = append(eps, i.Endpoint.String())
		if i.Index <= 0 {
			t.Errorf("%s has index %d", i.Endpoint, i.Index)
		}
	}
	wantEps := []string{"host/br0", "host/veth1", "host/veth2", "host/lo", "ns1/eth0", "ns1/lo", "ns2/eth0", "ns2/lo"}
	if !slices.Equal(eps, wantEps) {
		t.Errorf("Interfaces() = %v, want %v", eps, wantEps)
	}
	if got, want := topo.Namespaces(), []string{"host", "ns1", "ns2"}; !slices.Equal(got, want) {
		t.Errorf("Namespaces() = %v, want %v", got, want)
	}
	if got := topo.KernelName("ns1"); got != netns.Name(topo.RunID, "ns1") || !netns.Exists(got) {
		t.Errorf("KernelName(ns1) = %s, which does not exist", got)
	}
	if h := topo.NS("nosuch"); h.IsOpen() {
		t.Error("NS(nosuch) returned an open handle")
	}
}

// TestVXLANOverVeth builds two nodes in different subnets joined by a
// router, with a vxlan overlay bridged into each node's container bridge.
func TestVXLANOverVeth(t *testing.T) {
	b := plantest.New("vxlan").NS("router")
	for _, n := range []struct{ node, under, peer, gw, c, caddr string }{
		{"node1", "198.51.100.11/24", "203.0.113.12", "198.51.100.1", "c1", "10.10.0.2/24"},
		{"node2", "203.0.113.12/24", "198.51.100.11", "203.0.113.1", "c2", "10.10.0.3/24"},
	} {
		local := strings.TrimSuffix(n.under, "/24")
		b.NS(n.node).NS(n.c).
			Iface(n.node, "eth0", "", plantest.Addrs(n.under)).
			Iface(n.node, "cbr0", scenario.TypeBridge).
			Iface(n.node, "vxlan0", scenario.TypeVXLAN, plantest.VXLAN(42, local, n.peer, "eth0", 0), plantest.Master("cbr0")).
			Iface(n.node, "veth-"+n.c, "", plantest.Master("cbr0")).
			Route(n.node, "default via "+n.gw).
			Iface(n.c, "eth0", "", plantest.Addrs(n.caddr), plantest.MTU(1450)).
			Link(n.c+"/eth0", n.node+"/veth-"+n.c).
			Link(n.node+"/eth0", "router/to-"+n.node).
			Iface("router", "to-"+n.node, "", plantest.Addrs(n.gw+"/24"))
	}
	sc := b.Sysctl("router", "net.ipv4.ip_forward", "1").Scenario()
	topo := up(t, sc)

	for _, node := range []string{"node1", "node2"} {
		nh := nlAt(t, topo.NS(node))
		vx, ok := link(t, nh, "vxlan0").(*netlink.Vxlan)
		if !ok {
			t.Fatalf("%s/vxlan0 is not a vxlan", node)
		}
		eth0, cbr0 := link(t, nh, "eth0"), link(t, nh, "cbr0")
		if vx.VxlanId != 42 || vx.Port != 4789 || vx.VtepDevIndex != eth0.Attrs().Index || !vx.Learning {
			t.Errorf("%s/vxlan0: vni %d port %d dev %d learning %v; want 42, 4789, eth0 (%d), learning",
				node, vx.VxlanId, vx.Port, vx.VtepDevIndex, vx.Learning, eth0.Attrs().Index)
		}
		if vx.Attrs().MasterIndex != cbr0.Attrs().Index || !isUp(vx) || !isUp(cbr0) {
			t.Errorf("%s/vxlan0: master %d up %v; want cbr0 (%d), up", node, vx.Attrs().MasterIndex, isUp(vx), cbr0.Attrs().Index)
		}
	}
	n1 := nlAt(t, topo.NS("node1"))
	if vx := link(t, n1, "vxlan0").(*netlink.Vxlan); vx.SrcAddr.String() != "198.51.100.11" || vx.Group.String() != "203.0.113.12" {
		t.Errorf("node1/vxlan0 local %s remote %s", vx.SrcAddr, vx.Group)
	}
}

func TestMacvlanOnVeth(t *testing.T) {
	sc := plantest.New("macvlan").NS("a").NS("b").
		Iface("a", "eth0", "").
		Iface("a", "mv0", scenario.TypeMacvlan, plantest.Macvlan("eth0", ""), plantest.Addrs("10.2.0.2/24")).
		Iface("a", "mv1", scenario.TypeMacvlan, plantest.Macvlan("eth0", "private")).
		Link("a/eth0", "b/eth0").
		Scenario()
	topo := up(t, sc)
	nh := nlAt(t, topo.NS("a"))
	eth0 := link(t, nh, "eth0")
	for _, tc := range []struct {
		name string
		mode netlink.MacvlanMode
	}{{"mv0", netlink.MACVLAN_MODE_BRIDGE}, {"mv1", netlink.MACVLAN_MODE_PRIVATE}} {
		mv, ok := link(t, nh, tc.name).(*netlink.Macvlan)
		if !ok {
			t.Fatalf("%s is not a macvlan", tc.name)
		}
		if mv.Mode != tc.mode || mv.Attrs().ParentIndex != eth0.Attrs().Index || !isUp(mv) {
			t.Errorf("%s: mode %v parent %d up %v; want %v on eth0 (%d), up", tc.name, mv.Mode, mv.Attrs().ParentIndex, isUp(mv), tc.mode, eth0.Attrs().Index)
		}
	}
	hasAddr(t, nh, link(t, nh, "mv0"), "10.2.0.2/24")
}

// TestUnsupportedKind: on a kernel without dummy interfaces the build says
// so plainly and names the line; on one with them, the dummy is made.
func TestUnsupportedKind(t *testing.T) {
	privtest.Require(t)
	has, err := build.Supports(context.Background(), scenario.TypeDummy)
	if err != nil {
		t.Fatal(err)
	}
	sc := plantest.New("dummy").NS("ns1").
		Iface("ns1", "d0", scenario.TypeDummy, plantest.Addrs("192.0.2.5/24")).
		Scenario()
	if has {
		topo := up(t, sc)
		if l := link(t, nlAt(t, topo.NS("ns1")), "d0"); l.Type() != "dummy" {
			t.Errorf("d0 has type %s", l.Type())
		}
		return
	}
	var runID string
	guard(t, func() string { return runID })
	runID, err = netns.NewRunID()
	if err != nil {
		t.Fatal(err)
	}
	_, err = build.Up(context.Background(), sc, build.Options{RunID: runID})
	want := "scenarios/dummy.yaml:2:7: namespaces.ns1.interfaces.d0: create dummy interface d0: this kernel cannot create dummy interfaces (CONFIG_DUMMY is off)"
	if err == nil || err.Error() != want {
		t.Fatalf("Up = %v, want %s", err, want)
	}
	var kindErr *build.UnsupportedKindError
	if !errors.Is(err, build.ErrNotSupported) || !errors.As(err, &kindErr) || kindErr.Type != scenario.TypeDummy {
		t.Errorf("error %v is not an UnsupportedKindError for dummy", err)
	}
}

func TestSupports(t *testing.T) {
	privtest.Require(t)
	// Every kind the library and the tests use must be there.
	for _, k := range []scenario.LinkType{scenario.TypeVeth, scenario.TypeBridge, scenario.TypeVXLAN, scenario.TypeMacvlan, scenario.TypeLoopback} {
		has, err := build.Supports(context.Background(), k)
		if err != nil || !has {
			t.Errorf("Supports(%s) = %v, %v; want true", k, has, err)
		}
	}
	if _, err := build.Supports(context.Background(), "ipvlan"); err == nil {
		t.Error("Supports(ipvlan) did not say that hopcheck has no such type")
	}
}

// TestBuildErrors: a step the kernel or iptables refuses fails the build
// with the scenario position, field and reason, and removes everything
// made before it.
func TestBuildErrors(t *testing.T) {
	privtest.Require(t)
	base := func() *plantest.Builder {
		return plantest.New("half").NS("ns1").NS("ns2").
			Iface("ns1", "eth0", "", plantest.Addrs("10.0.0.2/24")).
			Link("ns1/eth0", "ns2/eth0")
	}
	for _, tc := range []struct {
		name string
		sc   *scenario.Scenario
		// want is the whole message, or its prefix when iptables words
		// the rest.
		want     string
		prefix   bool
		iptables bool
	}{
		{"unreachable gateway", base().Route("ns1", "default via 192.0.2.1").Scenario(),
			"scenarios/half.yaml:5:9: namespaces.ns1.routes[0]: add route default via 192.0.2.1: network is unreachable", false, false},
		{"duplicate address", base().Iface("ns2", "lo", scenario.TypeLoopback, plantest.Addrs("10.9.0.2/24", "10.9.0.2/24")).Scenario(),
			"scenarios/half.yaml:5:7: namespaces.ns2.interfaces.lo: add address 10.9.0.2/24: file exists", false, false},
		{"mtu too large", plantest.New("half").NS("ns1").NS("ns2").
			Iface("ns1", "eth0", "").Iface("ns2", "eth0", "", plantest.MTU(1<<20)).
			Link("ns1/eth0", "ns2/eth0").Scenario(),
			"scenarios/half.yaml:4:7: namespaces.ns2.interfaces.eth0: set mtu 1048576: invalid argument", false, false},
		{"sysctl value", base().Sysctl("ns2", "net.ipv4.ip_forward", "yes").Scenario(),
			"scenarios/half.yaml:5:7: namespaces.ns2.sysctls.net.ipv4.ip_forward: set sysctl net.ipv4.ip_forward=yes: write /proc/sys/net/ipv4/ip_forward: invalid argument", false, false},
		{"sysctl key", base().Sysctl("ns2", "net.ipv4.no_such_knob", "1").Scenario(),
			"scenarios/half.yaml:5:7: namespaces.ns2.sysctls.net.ipv4.no_such_knob: set sysctl net.ipv4.no_such_knob=1: open /proc/sys/net/ipv4/no_such_knob: no such file or directory", false, false},
		{"iptables target", base().IPTables("ns2", "-A INPUT -j NOSUCHTARGET", "-A", "INPUT", "-j", "NOSUCHTARGET").Scenario(),
			"scenarios/half.yaml:5:9: namespaces.ns2.iptables[0]: iptables -A INPUT -j NOSUCHTARGET: iptables", true, true},
		{"iptables chain policy", base().IPTables("ns2", "-N MINE", "-N", "MINE").IPTables("ns2", "-P MINE DROP", "-P", "MINE", "DROP").Scenario(),
			"scenarios/half.yaml:6:9: namespaces.ns2.iptables[1]: iptables -P MINE DROP: iptables: Bad built-in chain name.", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var runID string
			guard(t, func() string { return runID })
			var err error
			if runID, err = netns.NewRunID(); err != nil {
				t.Fatal(err)
			}
			topo, err := build.Up(context.Background(), tc.sc, build.Options{RunID: runID})
			if err == nil {
				topo.Down(context.Background())
				t.Fatal("build succeeded")
			}
			got := err.Error()
			if tc.prefix && !strings.HasPrefix(got, tc.want) || !tc.prefix && got != tc.want {
				t.Errorf("error\n got: %s\nwant: %s", got, tc.want)
			}
			var se *build.StepError
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not a *build.StepError", err)
			}
			if se.Pos != se.Step.Pos || se.Field != se.Step.Field {
				t.Errorf("StepError %s %s disagrees with its step %s %s", se.Pos, se.Field, se.Step.Pos, se.Step.Field)
			}
			var ie *iptables.Error
			if errors.As(err, &ie) != tc.iptables {
				t.Errorf("error wraps an *iptables.Error: %v, want %v", !tc.iptables, tc.iptables)
			}
			if tc.iptables && (strings.Contains(got, "running [") || strings.Contains(got, "Try `iptables")) {
				t.Errorf("iptables error keeps go-iptables' wrapping: %s", got)
			}
			if left := runNamespaces(t, runID); len(left) > 0 {
				t.Errorf("failed build left %v", left)
			}
		})
	}
}

func TestCancelledBuildLeavesNothing(t *testing.T) {
	privtest.Require(t)
	var runID string
	guard(t, func() string { return runID })
	runID, _ = netns.NewRunID()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := build.Up(ctx, plantest.NATEgress(), build.Options{RunID: runID})
	var se *build.StepError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &se) {
		t.Fatalf("Up with a cancelled context = %v, want a StepError wrapping context.Canceled", err)
	}
}

func TestBadRunID(t *testing.T) {
	privtest.Require(t)
	if _, err := build.Up(context.Background(), plantest.NATEgress(), build.Options{RunID: "Not-A-Run"}); err == nil {
		t.Fatal("Up accepted a run ID that Clean could not recognise")
	}
}

// TestParallelRuns builds the same scenario in two runs at once.
func TestParallelRuns(t *testing.T) {
	privtest.Require(t)
	const runs = 2
	var (
		wg    sync.WaitGroup
		topos [runs]*build.Topology
		errs  [runs]error
	)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topos[i], errs[i] = build.Up(context.Background(), plantest.NATEgress(), build.Options{})
		}()
	}
	wg.Wait()
	for i := range runs {
		if topos[i] != nil {
			guard(t, func() string { return topos[i].RunID })
			t.Cleanup(func() {
				if err := topos[i].Down(context.Background()); err != nil {
					t.Errorf("down run %d: %v", i, err)
				}
			})
		}
		if errs[i] != nil {
			t.Errorf("run %d: %v", i, errs[i])
		}
	}
	if t.Failed() {
		return
	}
	if topos[0].RunID == topos[1].RunID {
		t.Fatalf("both runs have ID %s", topos[0].RunID)
	}
	for _, topo := range topos {
		if got := runNamespaces(t, topo.RunID); len(got) != 4 {
			t.Errorf("run %s has namespaces %v, want 4", topo.RunID, got)
		}
	}
}

func TestDownIsIdempotent(t *testing.T) {
	topo := up(t, plantest.NATEgress())
	for i := range 2 {
		if err := topo.Down(context.Background()); err != nil {
			t.Fatalf("Down #%d: %v", i+1, err)
		}
	}
	if left := runNamespaces(t, topo.RunID); len(left) > 0 {
		t.Errorf("after Down: %v", left)
	}
	if h := topo.NS("host"); h.IsOpen() {
		t.Error("NS(host) is still open after Down")
	}
}

// TestReleaseOpenClean: a released topology survives; Open finds it again;
// Clean removes exactly the runs its predicate gives up.
func TestReleaseOpenClean(t *testing.T) {
	sc := plantest.NATEgress()
	kept := up(t, sc)
	gone := up(t, sc)
	gone.Release()
	if got := runNamespaces(t, gone.RunID); len(got) != 4 {
		t.Fatalf("after Release run %s has %v, want its 4 namespaces", gone.RunID, got)
	}

	reopened, err := build.Open(sc, gone.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if !reopened.NS("ns1").IsOpen() || len(reopened.Interfaces()) != len(kept.Interfaces()) {
		t.Errorf("Open: ns1 open %v, %d interfaces, want %d", reopened.NS("ns1").IsOpen(), len(reopened.Interfaces()), len(kept.Interfaces()))
	}
	reopened.Release()

	removed, err := build.Clean(context.Background(), func(runID string) bool { return runID != gone.RunID })
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, ns := range sc.Namespaces {
		want = append(want, netns.Name(gone.RunID, ns.Name))
	}
	sort.Strings(removed)
	sort.Strings(want)
	if !slices.Equal(removed, want) {
		t.Errorf("Clean removed %v, want %v", removed, want)
	}
	if got := runNamespaces(t, kept.RunID); len(got) != 4 {
		t.Errorf("Clean touched the kept run: %v", got)
	}
	if _, err := build.Open(sc, gone.RunID); err == nil {
		t.Error("Open found a cleaned run")
	}
	if _, err := build.Clean(context.Background(), nil); err == nil {
		t.Error("Clean without a predicate did not refuse")
	}
}

// snapshot describes the state of namespace h that a build sets, without
// what the kernel chooses (ifindexes, random MACs, link-local addresses):
// links, their addresses and routes, and the iptables rules.
func snapshot(t *testing.T, h netns.Handle) []string {
	t.Helper()
	nh := nlAt(t, h)
	links, err := nh.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	var out []string
	for _, l := range links {
		a := l.Attrs()
		out = append(out, fmt.Sprintf("link %s type=%s mtu=%d up=%v master=%s", a.Name, l.Type(), a.MTU, isUp(l), names[a.MasterIndex]))
		addrs, err := nh.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			t.Fatal(err)
		}
		for _, ad := range addrs {
			if !ad.IP.IsLinkLocalUnicast() {
				out = append(out, "addr "+a.Name+" "+ad.IPNet.String())
			}
		}
	}
	routes, err := nh.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Table == unix.RT_TABLE_LOCAL {
			continue
		}
		out = append(out, fmt.Sprintf("route %v via %v dev %s src %v metric %d table %d scope %d", r.Dst, r.Gw, names[r.LinkIndex], r.Src, r.Priority, r.Table, r.Scope))
	}
	for _, table := range []string{"filter", "nat"} {
		for _, r := range iptablesRules(t, h, table) {
			out = append(out, table+": "+r)
		}
	}
	sort.Strings(out)
	return out
}

// TestScriptBuildsTheSame runs the plan's shell recipe (the benchmark's
// baseline) and compares the result with the builder's, namespace by
// namespace.
func TestScriptBuildsTheSame(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		privtest.Unavailable(t, "the ip command (iproute2)")
	}
	sc := bridgeScenario()
	topo := up(t, sc)

	scriptRun, err := netns.NewRunID()
	if err != nil {
		t.Fatal(err)
	}
	guard(t, func() string { return scriptRun })
	p, err := plan.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	name := func(ns string) string { return netns.Name(scriptRun, ns) }
	t.Cleanup(func() {
		if out, err := exec.Command(bash, "-c", p.TeardownScript(name)).CombinedOutput(); err != nil {
			t.Errorf("teardown script: %v\n%s", err, out)
		}
	})
	cmd := exec.Command(bash)
	cmd.Stdin = strings.NewReader(p.Script(name))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("script: %v\n%s", err, out.String())
	}
	for _, ns := range sc.Namespaces {
		h, err := netns.Open(name(ns.Name))
		if err != nil {
			t.Fatal(err)
		}
		fromScript := snapshot(t, h)
		h.Close()
		fromBuild := snapshot(t, topo.NS(ns.Name))
		if !slices.Equal(fromScript, fromBuild) {
			t.Errorf("%s differs:\nscript: %q\nbuild:  %q", ns.Name, fromScript, fromBuild)
		}
	}
}

// TestRunIDCollision: a build under a run ID whose namespaces exist fails
// and leaves the other run's namespaces alone.
func TestRunIDCollision(t *testing.T) {
	sc := plantest.NATEgress()
	first := up(t, sc)
	_, err := build.Up(context.Background(), sc, build.Options{RunID: first.RunID})
	var se *build.StepError
	if !errors.As(err, &se) || se.Step.Kind != plan.CreateNamespace || !errors.Is(err, os.ErrExist) {
		t.Fatalf("second build under run %s = %v, want a create-namespace StepError (exists)", first.RunID, err)
	}
	if got := runNamespaces(t, first.RunID); len(got) != 4 {
		t.Errorf("the first run lost namespaces: %v", got)
	}
	if l := link(t, nlAt(t, first.NS("host")), "br0"); !isUp(l) {
		t.Error("the first run's bridge is gone or down")
	}
}

// TestCarriesTrafficOnReturn: Up returns only when the topology carries
// traffic. In this topology (the library's multi-host-l2) switch/p1 gets
// the same ifindex as its peer node1/eth0; the kernel deems such a link's
// carrier event non-urgent and may leave it out of the bridge for up to a
// second, so the ARP request of a first datagram sent at once would be
// dropped and retried only a second later. The datagram must arrive well
// before that retry.
func TestCarriesTrafficOnReturn(t *testing.T) {
	b := plantest.New("l2").NS("switch").
		Iface("switch", "sw0", scenario.TypeBridge).
		Iface("switch", "p1", "", plantest.Master("sw0")).
		Iface("switch", "p2", "", plantest.Master("sw0"))
	for _, n := range []string{"1", "2"} {
		node, c := "node"+n, "c"+n
		b.NS(node).
			Iface(node, "eth0", "", plantest.Addrs("192.0.2.1"+n+"/24")).
			Iface(node, "cbr0", scenario.TypeBridge, plantest.Addrs("10.1."+n+".1/24")).
			Iface(node, "veth-"+c, "", plantest.Master("cbr0"))
	}
	for _, n := range []string{"1", "2"} {
		b.NS("c"+n).Iface("c"+n, "eth0", "", plantest.Addrs("10.1."+n+".2/24"))
	}
	sc := b.Link("node1/eth0", "switch/p1").Link("node2/eth0", "switch/p2").
		Link("c1/eth0", "node1/veth-c1").Link("c2/eth0", "node2/veth-c2").
		Scenario()
	for i := range 3 {
		topo := up(t, sc)
		recv := udpSocket(t, topo.NS("node2"), "192.0.2.12:9")
		send := udpSocket(t, topo.NS("node1"), "192.0.2.11:0")
		if _, err := send.WriteTo([]byte("hop"), &net.UDPAddr{IP: net.ParseIP("192.0.2.12"), Port: 9}); err != nil {
			t.Fatal(err)
		}
		// ARP retries after a second; the datagram must not need a retry.
		recv.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
		if _, _, err := recv.ReadFrom(make([]byte, 16)); err != nil {
			t.Errorf("build %d: node2 did not get node1's first datagram at once: %v", i+1, err)
		}
		send.Close()
		recv.Close()
		if err := topo.Down(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// udpSocket opens a UDP socket bound to addr inside h.
func udpSocket(t *testing.T, h netns.Handle, addr string) net.PacketConn {
	t.Helper()
	var c net.PacketConn
	if err := netns.Do(h, func() error {
		var err error
		c, err = net.ListenPacket("udp4", addr)
		return err
	}); err != nil {
		t.Fatalf("udp socket on %s: %v", addr, err)
	}
	return c
}

// TestLibraryBuilds builds every scenario of the library: each interface
// the scenario names exists afterwards, and nothing is left behind.
func TestLibraryBuilds(t *testing.T) {
	privtest.Require(t)
	scs, err := scenario.Load(filepath.Join("..", "..", "scenarios"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scs {
		t.Run(sc.Name, func(t *testing.T) {
			topo := up(t, sc)
			want := 0
			for _, ns := range sc.Namespaces {
				want += len(ns.Interfaces)
			}
			if got := len(topo.Interfaces()); got != want {
				t.Errorf("%d interfaces recorded, want %d", got, want)
			}
			for _, ifc := range topo.Interfaces() {
				l := link(t, nlAt(t, topo.NS(ifc.NS)), ifc.If)
				if up := sc.Interface(ifc.Endpoint).Up; isUp(l) != up {
					t.Errorf("%s: up %v, want %v", ifc.Endpoint, isUp(l), up)
				}
			}
		})
	}
}

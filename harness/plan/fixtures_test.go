package plan

import (
	"github.com/hopcheck/hopcheck/harness/plan/plantest"
	"github.com/hopcheck/hopcheck/harness/scenario"
)

func natEgress() *scenario.Scenario { return plantest.NATEgress() }

// overlay exercises everything else: a vxlan declared before its
// underlay, a macvlan on a veth, IPv6, MAC and MTU, global and
// interface-scoped sysctls, routes written gateway-first, a static
// neighbor, a new chain with a quoted comment and a positioned insert, a
// namespace whose lo stays down, and a veth pair inside one namespace.
func overlay() *scenario.Scenario {
	return plantest.New("overlay").
		NS("node1").
		Iface("node1", "vxlan0", scenario.TypeVXLAN, plantest.VXLAN(42, "198.51.100.11", "203.0.113.12", "eth0", 0), plantest.Master("cbr0"), plantest.MTU(1450)).
		Iface("node1", "cbr0", scenario.TypeBridge, plantest.Addrs("10.10.0.1/24", "fd00:10::1/64"), plantest.MAC("02:00:00:00:01:01")).
		Iface("node1", "eth0", "", plantest.Addrs("198.51.100.11/24")).
		Iface("node1", "mv0", scenario.TypeMacvlan, plantest.Macvlan("eth0", ""), plantest.Addrs("198.51.100.21/24")).
		Route("node1", "default via 198.51.100.1").
		Route("node1", "203.0.113.0/24 dev eth0 metric 50").
		Route("node1", "fd00:20::/64 via fd00:10::2 dev cbr0 table 100").
		Sysctl("node1", "net.ipv4.conf.eth0.rp_filter", "2").
		Sysctl("node1", "net.ipv6.conf.all.forwarding", "1").
		Sysctl("node1", "net.ipv4.ip_forward", "1").
		Neighbor("node1", "198.51.100.1", "02:00:00:00:00:fe", "eth0").
		IPTables("node1", "-N HC-LOG", "-N", "HC-LOG").
		IPTables("node1", `-A HC-LOG -m comment --comment "it's logged" -j ACCEPT`,
			"-A", "HC-LOG", "-m", "comment", "--comment", "it's logged", "-j", "ACCEPT").
		IPTables("node1", "-I FORWARD 1 -j HC-LOG", "-I", "FORWARD", "1", "-j", "HC-LOG").
		IPTables("node1", "-P FORWARD DROP", "-P", "FORWARD", "DROP").
		NS("router").
		Iface("router", "lo", scenario.TypeLoopback, plantest.Down()).
		Link("router/r1", "node1/eth0").
		NS("c1").
		Iface("c1", "eth0", "", plantest.Addrs("10.10.0.2/24", "fd00:10::2/64"), plantest.MTU(1450)).
		Iface("node1", "veth-c1", "", plantest.Master("cbr0")).
		Link("c1/eth0", "node1/veth-c1").
		Link("c1/a", "c1/b").
		Scenario()
}

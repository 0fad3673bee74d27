// Package plantest builds *scenario.Scenario values in Go for the tests of
// the planner and the builder, shaped as scenario.Parse returns them: lo
// implicit, veth ends named only in links added undeclared, Peer set on
// both ends, and each object on a line of its own so that positions in
// messages can be asserted.
package plantest

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

// Builder accumulates one scenario.
type Builder struct {
	sc   *scenario.Scenario
	line int
}

// New starts the scenario called name, read from "scenarios/NAME.yaml".
func New(name string) *Builder {
	return &Builder{sc: &scenario.Scenario{Name: name, File: "scenarios/" + name + ".yaml"}}
}

func (b *Builder) pos(col int) scenario.Pos {
	b.line++
	return scenario.Pos{File: b.sc.File, Line: b.line, Col: col}
}

// NS adds a namespace.
func (b *Builder) NS(name string) *Builder {
	b.sc.Namespaces = append(b.sc.Namespaces, &scenario.Namespace{Name: name, Pos: b.pos(3)})
	return b
}

func (b *Builder) ns(name string) *scenario.Namespace {
	n := b.sc.Namespace(name)
	if n == nil {
		panic("plantest: no namespace " + name)
	}
	return n
}

// Opt sets a property of an interface.
type Opt func(*scenario.Interface)

// Addrs adds CIDR addresses.
func Addrs(ps ...string) Opt {
	return func(i *scenario.Interface) {
		for _, p := range ps {
			i.Addresses = append(i.Addresses, netip.MustParsePrefix(p))
		}
	}
}

// Master makes the interface a port of bridge br.
func Master(br string) Opt { return func(i *scenario.Interface) { i.Master = br } }

// MTU sets the MTU.
func MTU(n int) Opt { return func(i *scenario.Interface) { i.MTU = n } }

// Down leaves the interface down.
func Down() Opt { return func(i *scenario.Interface) { i.Up = false } }

// MAC sets the hardware address.
func MAC(s string) Opt {
	m := mustMAC(s)
	return func(i *scenario.Interface) { i.MAC = m }
}

// VXLAN sets vxlan settings; empty strings and 0 leave a field unset.
func VXLAN(vni uint32, local, remote, dev string, port uint16) Opt {
	return func(i *scenario.Interface) {
		v := &scenario.VXLAN{VNI: vni, Dev: dev, DstPort: port}
		if local != "" {
			v.Local = netip.MustParseAddr(local)
		}
		if remote != "" {
			v.Remote = netip.MustParseAddr(remote)
		}
		i.VXLAN = v
	}
}

// Macvlan sets macvlan settings.
func Macvlan(parent, mode string) Opt {
	return func(i *scenario.Interface) { i.Macvlan = &scenario.Macvlan{Parent: parent, Mode: mode} }
}

// Iface declares interface name in namespace ns; typ "" declares a veth
// end (which Link must name).
func (b *Builder) Iface(ns, name string, typ scenario.LinkType, opts ...Opt) *Builder {
	n := b.ns(ns)
	i := &scenario.Interface{Name: name, NS: ns, Pos: b.pos(7), Type: typ, Declared: true, Up: true}
	if typ == "" {
		i.Type = scenario.TypeVeth
	}
	for _, o := range opts {
		o(i)
	}
	n.Interfaces = append(n.Interfaces, i)
	return b
}

func endpoint(s string) scenario.Endpoint {
	ns, ifc, ok := strings.Cut(s, "/")
	if !ok {
		panic("plantest: endpoint " + s + " is not NS/IF")
	}
	return scenario.Endpoint{NS: ns, If: ifc}
}

// Link adds the veth pair between "ns/if" ends a and c; an end not
// declared with Iface is added undeclared.
func (b *Builder) Link(a, c string) *Builder {
	l := scenario.Link{A: endpoint(a), B: endpoint(c), Pos: b.pos(5)}
	b.sc.Links = append(b.sc.Links, l)
	b.end(l.A, l.B, l.Pos)
	b.end(l.B, l.A, l.Pos)
	return b
}

func (b *Builder) end(e, peer scenario.Endpoint, pos scenario.Pos) {
	n := b.ns(e.NS)
	i := n.Interface(e.If)
	if i == nil {
		i = &scenario.Interface{Name: e.If, NS: e.NS, Pos: pos, Type: scenario.TypeVeth, Up: true}
		n.Interfaces = append(n.Interfaces, i)
	}
	i.Peer = peer
}

// Route adds a route in the format's `ip route add` syntax:
// PREFIX|default [via GW] [dev IF] [src IP] [metric N] [table N].
func (b *Builder) Route(ns, raw string) *Builder {
	r := scenario.Route{Raw: raw, Pos: b.pos(9)}
	tok := strings.Fields(raw)
	for i := 1; i+1 < len(tok); i += 2 {
		v := tok[i+1]
		switch tok[i] {
		case "via":
			r.Via = netip.MustParseAddr(v)
		case "dev":
			r.Dev = v
		case "src":
			r.Src = netip.MustParseAddr(v)
		case "metric":
			r.Metric = mustAtoi(v)
		case "table":
			r.Table = mustAtoi(v)
		default:
			panic("plantest: route keyword " + tok[i])
		}
	}
	switch {
	case tok[0] == "default" && r.Via.Is6():
		r.Dst = netip.MustParsePrefix("::/0")
	case tok[0] == "default":
		r.Dst = netip.MustParsePrefix("0.0.0.0/0")
	default:
		r.Dst = netip.MustParsePrefix(tok[0])
	}
	n := b.ns(ns)
	n.Routes = append(n.Routes, r)
	return b
}

// Sysctl sets a sysctl.
func (b *Builder) Sysctl(ns, key, value string) *Builder {
	n := b.ns(ns)
	n.Sysctls = append(n.Sysctls, scenario.Sysctl{Key: key, Value: value, Pos: b.pos(7)})
	return b
}

// IPTables adds an iptables command: raw as written, tokens as the
// scenario tokeniser splits it.
func (b *Builder) IPTables(ns, raw string, tokens ...string) *Builder {
	c := scenario.IPTablesCommand{Raw: raw, Pos: b.pos(9), Table: "filter"}
	if tokens[0] == "-t" {
		c.Table, tokens = tokens[1], tokens[2:]
	}
	c.Op, c.Chain, c.Args = tokens[0], tokens[1], tokens[2:]
	n := b.ns(ns)
	n.IPTables = append(n.IPTables, c)
	return b
}

// Neighbor adds a static neighbor entry.
func (b *Builder) Neighbor(ns, ip, hw, dev string) *Builder {
	n := b.ns(ns)
	n.Neighbors = append(n.Neighbors, scenario.Neighbor{
		Raw: ip + " lladdr " + hw + " dev " + dev, Pos: b.pos(9),
		IP: netip.MustParseAddr(ip), MAC: mustMAC(hw), Dev: dev,
	})
	return b
}

// Scenario returns the scenario, adding lo (up) to every namespace that
// does not declare it.
func (b *Builder) Scenario() *scenario.Scenario {
	for _, n := range b.sc.Namespaces {
		if n.Interface("lo") == nil {
			n.Interfaces = append(n.Interfaces, &scenario.Interface{Name: "lo", NS: n.Name, Pos: n.Pos, Type: scenario.TypeLoopback, Up: true})
		}
	}
	return b.sc
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(fmt.Sprintf("plantest: %v", err))
	}
	return m
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(fmt.Sprintf("plantest: %v", err))
	}
	return n
}

// NATEgress is the scenario format page's example: containers on a bridge
// reaching a simulated internet host through MASQUERADE.
func NATEgress() *scenario.Scenario {
	return New("nat-egress").
		NS("host").
		Iface("host", "br0", scenario.TypeBridge, Addrs("10.0.0.1/24")).
		Iface("host", "veth1", "", Master("br0")).
		Iface("host", "veth2", "", Master("br0")).
		Iface("host", "eth0", "", Addrs("198.51.100.2/24")).
		Route("host", "default via 198.51.100.1").
		Sysctl("host", "net.ipv4.ip_forward", "1").
		IPTables("host", "-t nat -A POSTROUTING -s 10.0.0.0/24 ! -o br0 -j MASQUERADE",
			"-t", "nat", "-A", "POSTROUTING", "-s", "10.0.0.0/24", "!", "-o", "br0", "-j", "MASQUERADE").
		IPTables("host", "-A FORWARD -i br0 -o eth0 -j ACCEPT", "-A", "FORWARD", "-i", "br0", "-o", "eth0", "-j", "ACCEPT").
		IPTables("host", "-A FORWARD -i eth0 -o br0 -j ACCEPT", "-A", "FORWARD", "-i", "eth0", "-o", "br0", "-j", "ACCEPT").
		NS("ns1").
		Iface("ns1", "veth_1", "", Addrs("10.0.0.2/24")).
		Route("ns1", "default via 10.0.0.1 dev veth_1").
		NS("ns2").
		Iface("ns2", "veth_2", "", Addrs("10.0.0.3/24")).
		Route("ns2", "default via 10.0.0.1").
		NS("internet").
		Iface("internet", "wan0", "", Addrs("198.51.100.1/24")).
		Iface("internet", "lo", scenario.TypeLoopback, Addrs("203.0.113.8/32")).
		Link("ns1/veth_1", "host/veth1").
		Link("ns2/veth_2", "host/veth2").
		Link("internet/wan0", "host/eth0").
		Scenario()
}

package plan

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

// fx builds *scenario.Scenario values by hand the way scenario.Parse
// returns them (implicit lo, undeclared veth ends, Peer on both ends), each
// object on its own line so that positions in messages are checkable.
type fx struct {
	sc   *scenario.Scenario
	line int
}

func newFx(name string) *fx {
	return &fx{sc: &scenario.Scenario{Name: name, File: "scenarios/" + name + ".yaml"}}
}

func (f *fx) pos(col int) scenario.Pos {
	f.line++
	return scenario.Pos{File: f.sc.File, Line: f.line, Col: col}
}

func (f *fx) ns(name string) *scenario.Namespace {
	n := &scenario.Namespace{Name: name, Pos: f.pos(3)}
	f.sc.Namespaces = append(f.sc.Namespaces, n)
	return n
}

type ifOpt func(*scenario.Interface)

func addrs(ps ...string) ifOpt {
	return func(i *scenario.Interface) {
		for _, p := range ps {
			i.Addresses = append(i.Addresses, netip.MustParsePrefix(p))
		}
	}
}
func master(br string) ifOpt { return func(i *scenario.Interface) { i.Master = br } }
func mtu(n int) ifOpt        { return func(i *scenario.Interface) { i.MTU = n } }
func down() ifOpt            { return func(i *scenario.Interface) { i.Up = false } }
func mac(s string) ifOpt {
	return func(i *scenario.Interface) {
		m, err := net.ParseMAC(s)
		if err != nil {
			panic(err)
		}
		i.MAC = m
	}
}
func vxlan(vni uint32, local, remote, dev string, port uint16) ifOpt {
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
func macvlan(parent, mode string) ifOpt {
	return func(i *scenario.Interface) { i.Macvlan = &scenario.Macvlan{Parent: parent, Mode: mode} }
}

// iface declares an interface; typ "" means a veth end that links names.
func (f *fx) iface(n *scenario.Namespace, name string, typ scenario.LinkType, opts ...ifOpt) *scenario.Interface {
	i := &scenario.Interface{Name: name, NS: n.Name, Pos: f.pos(7), Type: typ, Declared: true, Up: true}
	if typ == "" {
		i.Type = scenario.TypeVeth
	}
	for _, o := range opts {
		o(i)
	}
	n.Interfaces = append(n.Interfaces, i)
	return i
}

func ep(s string) scenario.Endpoint {
	ns, ifc, _ := strings.Cut(s, "/")
	return scenario.Endpoint{NS: ns, If: ifc}
}

// link adds the veth pair a-b; ends not declared become undeclared veths.
func (f *fx) link(a, b string) {
	l := scenario.Link{A: ep(a), B: ep(b), Pos: f.pos(5)}
	f.sc.Links = append(f.sc.Links, l)
	f.end(l.A, l.B, l.Pos)
	f.end(l.B, l.A, l.Pos)
}

func (f *fx) end(e, peer scenario.Endpoint, pos scenario.Pos) {
	n := f.sc.Namespace(e.NS)
	i := n.Interface(e.If)
	if i == nil {
		i = &scenario.Interface{Name: e.If, NS: e.NS, Pos: pos, Type: scenario.TypeVeth, Up: true}
		n.Interfaces = append(n.Interfaces, i)
	}
	i.Peer = peer
}

// route parses the `ip route add` syntax the scenario format uses.
func (f *fx) route(n *scenario.Namespace, raw string) {
	r := scenario.Route{Raw: raw, Pos: f.pos(9)}
	tok := strings.Fields(raw)
	for i := 1; i < len(tok); i += 2 {
		v := tok[i+1]
		switch tok[i] {
		case "via":
			r.Via = netip.MustParseAddr(v)
		case "dev":
			r.Dev = v
		case "src":
			r.Src = netip.MustParseAddr(v)
		case "metric":
			r.Metric, _ = strconv.Atoi(v)
		case "table":
			r.Table, _ = strconv.Atoi(v)
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
	n.Routes = append(n.Routes, r)
}

func (f *fx) sysctl(n *scenario.Namespace, key, value string) {
	n.Sysctls = append(n.Sysctls, scenario.Sysctl{Key: key, Value: value, Pos: f.pos(7)})
}

// ipt adds an iptables command; raw is the text as written, tokens the
// tokenised form (so quoting is the test's business, not this helper's).
func (f *fx) ipt(n *scenario.Namespace, raw string, tokens ...string) {
	c := scenario.IPTablesCommand{Raw: raw, Pos: f.pos(9), Table: "filter"}
	if tokens[0] == "-t" {
		c.Table, tokens = tokens[1], tokens[2:]
	}
	c.Op, c.Chain, c.Args = tokens[0], tokens[1], tokens[2:]
	n.IPTables = append(n.IPTables, c)
}

func (f *fx) neigh(n *scenario.Namespace, ip, hw, dev string) {
	m, err := net.ParseMAC(hw)
	if err != nil {
		panic(err)
	}
	n.Neighbors = append(n.Neighbors, scenario.Neighbor{
		Raw: ip + " lladdr " + hw + " dev " + dev, Pos: f.pos(9),
		IP: netip.MustParseAddr(ip), MAC: m, Dev: dev,
	})
}

// done adds the implicit lo to namespaces that do not declare it.
func (f *fx) done() *scenario.Scenario {
	for _, n := range f.sc.Namespaces {
		if n.Interface("lo") == nil {
			n.Interfaces = append(n.Interfaces, &scenario.Interface{Name: "lo", NS: n.Name, Pos: n.Pos, Type: scenario.TypeLoopback, Up: true})
		}
	}
	return f.sc
}

// natEgress is the format page's example.
func natEgress() *scenario.Scenario {
	f := newFx("nat-egress")
	host := f.ns("host")
	f.iface(host, "br0", scenario.TypeBridge, addrs("10.0.0.1/24"))
	f.iface(host, "veth1", "", master("br0"))
	f.iface(host, "veth2", "", master("br0"))
	f.iface(host, "eth0", "", addrs("198.51.100.2/24"))
	f.route(host, "default via 198.51.100.1")
	f.sysctl(host, "net.ipv4.ip_forward", "1")
	f.ipt(host, "-t nat -A POSTROUTING -s 10.0.0.0/24 ! -o br0 -j MASQUERADE",
		"-t", "nat", "-A", "POSTROUTING", "-s", "10.0.0.0/24", "!", "-o", "br0", "-j", "MASQUERADE")
	f.ipt(host, "-A FORWARD -i br0 -o eth0 -j ACCEPT", "-A", "FORWARD", "-i", "br0", "-o", "eth0", "-j", "ACCEPT")
	f.ipt(host, "-A FORWARD -i eth0 -o br0 -j ACCEPT", "-A", "FORWARD", "-i", "eth0", "-o", "br0", "-j", "ACCEPT")
	ns1 := f.ns("ns1")
	f.iface(ns1, "veth_1", "", addrs("10.0.0.2/24"))
	f.route(ns1, "default via 10.0.0.1 dev veth_1")
	ns2 := f.ns("ns2")
	f.iface(ns2, "veth_2", "", addrs("10.0.0.3/24"))
	f.route(ns2, "default via 10.0.0.1")
	inet := f.ns("internet")
	f.iface(inet, "wan0", "", addrs("198.51.100.1/24"))
	f.iface(inet, "lo", scenario.TypeLoopback, addrs("203.0.113.8/32"))
	f.link("ns1/veth_1", "host/veth1")
	f.link("ns2/veth_2", "host/veth2")
	f.link("internet/wan0", "host/eth0")
	return f.done()
}

// overlay exercises everything else: a vxlan declared before its
// underlay, a macvlan on a veth, IPv6, MAC and MTU, global and
// interface-scoped sysctls, routes written gateway-first, a static
// neighbor, a new chain with a quoted comment and a positioned insert, and
// a namespace whose lo stays down.
func overlay() *scenario.Scenario {
	f := newFx("overlay")
	n1 := f.ns("node1")
	f.iface(n1, "vxlan0", scenario.TypeVXLAN, vxlan(42, "198.51.100.11", "203.0.113.12", "eth0", 0), master("cbr0"), mtu(1450))
	f.iface(n1, "cbr0", scenario.TypeBridge, addrs("10.10.0.1/24", "fd00:10::1/64"), mac("02:00:00:00:01:01"))
	f.iface(n1, "eth0", "", addrs("198.51.100.11/24"))
	f.iface(n1, "mv0", scenario.TypeMacvlan, macvlan("eth0", ""), addrs("198.51.100.21/24"))
	f.route(n1, "default via 198.51.100.1")
	f.route(n1, "203.0.113.0/24 dev eth0 metric 50")
	f.route(n1, "fd00:20::/64 via fd00:10::2 dev cbr0 table 100")
	f.sysctl(n1, "net.ipv4.conf.eth0.rp_filter", "2")
	f.sysctl(n1, "net.ipv6.conf.all.forwarding", "1")
	f.sysctl(n1, "net.ipv4.ip_forward", "1")
	f.neigh(n1, "198.51.100.1", "02:00:00:00:00:fe", "eth0")
	f.ipt(n1, "-N HC-LOG", "-N", "HC-LOG")
	f.ipt(n1, `-A HC-LOG -m comment --comment "it's logged" -j ACCEPT`,
		"-A", "HC-LOG", "-m", "comment", "--comment", "it's logged", "-j", "ACCEPT")
	f.ipt(n1, "-I FORWARD 1 -j HC-LOG", "-I", "FORWARD", "1", "-j", "HC-LOG")
	f.ipt(n1, "-P FORWARD DROP", "-P", "FORWARD", "DROP")
	r := f.ns("router")
	f.iface(r, "lo", scenario.TypeLoopback, down())
	f.link("router/r1", "node1/eth0")
	c1 := f.ns("c1")
	f.iface(c1, "eth0", "", addrs("10.10.0.2/24", "fd00:10::2/64"), mtu(1450))
	f.iface(n1, "veth-c1", "", master("cbr0"))
	f.link("c1/eth0", "node1/veth-c1")
	// A pair inside one namespace.
	f.link("c1/a", "c1/b")
	return f.done()
}

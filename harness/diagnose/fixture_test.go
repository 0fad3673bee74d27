package diagnose

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/harness/diagnose/iptrules"
	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
	"github.com/hopcheck/hopcheck/harness/scenario"
)

// fx builds a State by hand the way the kernel would hold it: links with
// addresses, the routes the kernel adds for them (local table, connected
// subnets), static routes, sysctls and iptables. Carrier follows the veth
// peer's admin state, and routes through a down link are gone, as after
// `ip link set X down`.
type fx struct {
	t   *testing.T
	nss []*snapshot.NSState
	// static holds each namespace's static routes until build.
	static map[string][]string
}

func newFx(t *testing.T) *fx { return &fx{t: t, static: map[string][]string{}} }

// ns returns the namespace called name, creating it with lo up.
func (f *fx) ns(name string) *nsFx {
	for _, n := range f.nss {
		if n.Name == name {
			return &nsFx{f: f, n: n}
		}
	}
	n := &snapshot.NSState{Name: name, Sysctls: map[string]string{"net.ipv4.ip_forward": "0"}}
	n.Links = append(n.Links, snapshot.Link{Name: "lo", Kind: "loopback", Up: true, Addrs: prefixes(f.t, "127.0.0.1/8")})
	f.nss = append(f.nss, n)
	return &nsFx{f: f, n: n}
}

type nsFx struct {
	f *fx
	n *snapshot.NSState
}

func (b *nsFx) link(name string) *snapshot.Link {
	if l := b.n.Link(name); l != nil {
		return l
	}
	b.n.Links = append(b.n.Links, snapshot.Link{Name: name, Index: len(b.n.Links) + 1, Up: true})
	return &b.n.Links[len(b.n.Links)-1]
}

// veth adds a veth end with its peer ("ns/if") and addresses.
func (b *nsFx) veth(name, peer string, addrs ...string) *nsFx {
	l := b.link(name)
	l.Kind, l.Peer = "veth", peer
	l.Addrs = append(l.Addrs, prefixes(b.f.t, addrs...)...)
	return b
}

// bridge adds a bridge with addresses.
func (b *nsFx) bridge(name string, addrs ...string) *nsFx {
	l := b.link(name)
	l.Kind = "bridge"
	l.Addrs = append(l.Addrs, prefixes(b.f.t, addrs...)...)
	return b
}

// port adds a veth end enslaved to master.
func (b *nsFx) port(name, master, peer string) *nsFx {
	b.veth(name, peer)
	b.link(name).Master = master
	return b
}

// addr adds addresses to an existing link (lo included).
func (b *nsFx) addr(name string, addrs ...string) *nsFx {
	l := b.link(name)
	l.Addrs = append(l.Addrs, prefixes(b.f.t, addrs...)...)
	return b
}

func (b *nsFx) route(spec string) *nsFx {
	b.f.static[b.n.Name] = append(b.f.static[b.n.Name], spec)
	return b
}

func (b *nsFx) sysctl(kv ...string) *nsFx {
	for i := 0; i+1 < len(kv); i += 2 {
		b.n.Sysctls[kv[i]] = kv[i+1]
	}
	return b
}

// ipt sets the namespace's iptables from iptables-save -c text.
func (b *nsFx) ipt(save string) *nsFx {
	tables, err := iptrules.ParseSave(save)
	if err != nil {
		b.f.t.Fatal(err)
	}
	b.n.IPTables = tables
	return b
}

func (b *nsFx) down(name string) *nsFx {
	b.link(name).Up = false
	return b
}

func (b *nsFx) neigh(ip, dev, state string) *nsFx {
	b.n.Neighbors = append(b.n.Neighbors, snapshot.Neighbor{IP: netip.MustParseAddr(ip), Dev: dev, State: state})
	return b
}

// neighMAC adds a neighbor entry with a MAC.
func (b *nsFx) neighMAC(ip, mac, dev, state string) *nsFx {
	b.n.Neighbors = append(b.n.Neighbors, snapshot.Neighbor{IP: netip.MustParseAddr(ip), MAC: mac, Dev: dev, State: state})
	return b
}

// mac sets a link's MAC.
func (b *nsFx) mac(name, mac string) *nsFx {
	b.link(name).MAC = mac
	return b
}

// vxlan adds a vxlan device on the underlay device dev.
func (b *nsFx) vxlan(name string, vni, port int, remote, dev string, addrs ...string) *nsFx {
	l := b.link(name)
	l.Kind = "vxlan"
	l.VXLAN = &snapshot.VXLAN{VNI: vni, Port: port, Dev: dev, Learning: true}
	if remote != "" {
		l.VXLAN.Remote = netip.MustParseAddr(remote)
		l.VXLAN.FDB = append(l.VXLAN.FDB, snapshot.FDBEntry{MAC: "00:00:00:00:00:00", Dst: l.VXLAN.Remote})
	}
	l.Addrs = append(l.Addrs, prefixes(b.f.t, addrs...)...)
	return b
}

// ip6t sets the namespace's ip6tables from ip6tables-save -c text.
func (b *nsFx) ip6t(save string) *nsFx {
	tables, err := iptrules.ParseSave(save)
	if err != nil {
		b.f.t.Fatal(err)
	}
	b.n.IP6Tables = tables
	return b
}

func (b *nsFx) listen(proto, addr string) *nsFx {
	b.n.Listeners = append(b.n.Listeners, snapshot.Listener{Proto: proto, Addr: netip.MustParseAddrPort(addr)})
	return b
}

// build derives carrier and routes and returns the State.
func (f *fx) build() *snapshot.State {
	st := &snapshot.State{Namespaces: f.nss}
	for _, n := range f.nss {
		for i := range n.Links {
			l := &n.Links[i]
			l.Carrier = l.Up
			if l.Kind == "veth" {
				peerUp := false
				if ns, ifname, ok := strings.Cut(l.Peer, "/"); ok {
					if p := st.NS(ns).Link(ifname); p != nil {
						peerUp = p.Up
					}
				}
				l.Carrier = l.Up && peerUp
			}
		}
	}
	for _, n := range f.nss {
		n.Routes = nil
		for _, l := range n.Links {
			for _, a := range l.Addrs {
				if !(l.IsLoopback() && !l.Up) {
					n.Routes = append(n.Routes, snapshot.Route{Table: snapshot.TableLocal, Type: snapshot.RouteLocal, Dst: netip.PrefixFrom(a.Addr(), a.Addr().BitLen()), Dev: l.Name, Src: a.Addr()})
				}
				if l.IsLoopback() && l.Up && a.Bits() < a.Addr().BitLen() && a.Addr().Is4() {
					n.Routes = append(n.Routes, snapshot.Route{Table: snapshot.TableLocal, Type: snapshot.RouteLocal, Dst: a.Masked(), Dev: l.Name, Src: a.Addr()})
				}
				if l.Up && !l.IsLoopback() && a.Bits() < a.Addr().BitLen() {
					n.Routes = append(n.Routes, snapshot.Route{Table: snapshot.TableMain, Type: snapshot.RouteUnicast, Dst: a.Masked(), Dev: l.Name, Src: a.Addr(), LinkDown: !l.Carrier})
				}
			}
		}
		for _, spec := range f.static[n.Name] {
			typ := snapshot.RouteUnicast
			for _, t := range []string{snapshot.RouteUnreachable, snapshot.RouteBlackhole, snapshot.RouteProhibit} {
				if rest, ok := strings.CutPrefix(spec, t+" "); ok {
					typ, spec = t, rest+" dev lo"
				}
			}
			sr, err := scenario.ParseRoute(spec)
			if err != nil {
				f.t.Fatal(err)
			}
			r := snapshot.Route{Table: snapshot.TableMain, Type: typ, Dst: sr.Dst, Via: sr.Via, Dev: sr.Dev, Src: sr.Src, Metric: sr.Metric}
			if sr.Table != 0 {
				r.Table = sr.Table
			}
			if typ != snapshot.RouteUnicast {
				n.Routes = append(n.Routes, snapshot.Route{Table: snapshot.TableMain, Type: typ, Dst: sr.Dst})
				continue
			}
			if r.Dev == "" {
				for _, l := range n.Links {
					if onSubnet(&l, r.Via) {
						r.Dev = l.Name
					}
				}
			}
			if l := n.Link(r.Dev); l == nil || !l.Up {
				continue // the kernel drops a down link's routes
			}
			n.Routes = append(n.Routes, r)
		}
	}
	return st
}

func prefixes(t *testing.T, ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// natEgressYAML is the format page's example: two containers on br0 behind
// a host that MASQUERADEs them to the simulated internet.
const natEgressYAML = `
name: nat-egress
namespaces:
  host:
    interfaces:
      br0:   {type: bridge, addresses: [10.0.0.1/24]}
      veth1: {master: br0}
      veth2: {master: br0}
      eth0:  {addresses: [198.51.100.2/24]}
    routes:
      - default via 198.51.100.1
    sysctls:
      net.ipv4.ip_forward: 1
    iptables:
      - -t nat -A POSTROUTING -s 10.0.0.0/24 ! -o br0 -j MASQUERADE
  ns1:
    interfaces:
      veth_1: {addresses: [10.0.0.2/24]}
    routes:
      - default via 10.0.0.1 dev veth_1
  ns2:
    interfaces:
      veth_2: {addresses: [10.0.0.3/24]}
    routes:
      - default via 10.0.0.1
  internet:
    interfaces:
      wan0: {addresses: [198.51.100.1/24]}
      lo:   {addresses: [203.0.113.8/32]}
links:
  - [ns1/veth_1, host/veth1]
  - [ns2/veth_2, host/veth2]
  - [internet/wan0, host/eth0]
`

func natEgressScenario(t *testing.T) *scenario.Scenario {
	sc, err := scenario.Parse("nat-egress.yaml", []byte(natEgressYAML))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// natFilter and natNAT are the host's tables in the healthy nat-egress
// topology.
const (
	hostFilterAccept = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
`
	hostNATMasq = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
[0:0] -A POSTROUTING -s 10.0.0.0/24 ! -o br0 -j MASQUERADE
COMMIT
`
)

// natEgress builds the healthy nat-egress state; edit changes the
// fixture before routes are derived.
func natEgress(t *testing.T, edit func(f *fx)) *snapshot.State {
	f := newFx(t)
	f.ns("host").
		bridge("br0", "10.0.0.1/24").
		port("veth1", "br0", "ns1/veth_1").
		port("veth2", "br0", "ns2/veth_2").
		veth("eth0", "internet/wan0", "198.51.100.2/24").
		route("default via 198.51.100.1").
		sysctl("net.ipv4.ip_forward", "1").
		ipt(hostFilterAccept + hostNATMasq)
	f.ns("ns1").veth("veth_1", "host/veth1", "10.0.0.2/24").route("default via 10.0.0.1 dev veth_1")
	f.ns("ns2").veth("veth_2", "host/veth2", "10.0.0.3/24").route("default via 10.0.0.1")
	f.ns("internet").veth("wan0", "host/eth0", "198.51.100.1/24").addr("lo", "203.0.113.8/32")
	if edit != nil {
		edit(f)
	}
	return f.build()
}

// rpYAML is an asymmetric topology: the client reaches the server through
// a router, but the server's route back to the client's subnet takes a
// direct link, so strict reverse-path filtering on the server drops the
// request.
const rpYAML = `
name: rp
namespaces:
  client:
    interfaces:
      eth0: {addresses: [10.1.0.2/24]}
      eth1: {addresses: [10.3.0.2/24]}
    routes:
      - 10.2.0.0/24 via 10.1.0.1
  router:
    interfaces:
      e1: {addresses: [10.1.0.1/24]}
      e2: {addresses: [10.2.0.1/24]}
    sysctls:
      net.ipv4.ip_forward: 1
  server:
    interfaces:
      eth0: {addresses: [10.2.0.2/24]}
      eth1: {addresses: [10.3.0.3/24]}
    routes:
      - 10.1.0.0/24 via 10.3.0.2
    sysctls:
      net.ipv4.conf.all.rp_filter: 1
links:
  - [client/eth0, router/e1]
  - [router/e2, server/eth0]
  - [client/eth1, server/eth1]
`

func rpState(t *testing.T, serverRPF string) (*scenario.Scenario, *snapshot.State) {
	sc, err := scenario.Parse("rp.yaml", []byte(rpYAML))
	if err != nil {
		t.Fatal(err)
	}
	f := newFx(t)
	f.ns("client").veth("eth0", "router/e1", "10.1.0.2/24").veth("eth1", "server/eth1", "10.3.0.2/24").route("10.2.0.0/24 via 10.1.0.1")
	f.ns("router").veth("e1", "client/eth0", "10.1.0.1/24").veth("e2", "server/eth0", "10.2.0.1/24").sysctl("net.ipv4.ip_forward", "1")
	f.ns("server").veth("eth0", "router/e2", "10.2.0.2/24").veth("eth1", "client/eth1", "10.3.0.3/24").
		route("10.1.0.0/24 via 10.3.0.2").sysctl("net.ipv4.conf.all.rp_filter", serverRPF, "net.ipv4.conf.eth0.rp_filter", "0")
	return sc, f.build()
}

package diagnose

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

// What the routing of a namespace makes of an address, for the rule
// evaluators (iptrules' -m addrtype, nftrules' fib ... type and meta
// iif): the namespace as a netfilter.Namespace.

// rulesView shows a namespace to the rule evaluators.
type rulesView struct{ n *snapshot.NSState }

var _ netfilter.Namespace = rulesView{}

// AddrType classifies a as the kernel's address-type lookups do: an IPv4
// address as inet_dev_addr_type (addrType4); an IPv6 one local when the
// namespace holds it (on dev, when dev is given) or a local route covers
// it, multicast, else unicast (nft's fib ... type).
func (v rulesView) AddrType(a netip.Addr, dev string) string {
	if a.Is4() || a.Is4In6() {
		return addrType4(v.n, a.Unmap(), dev)
	}
	for _, l := range v.n.Links {
		if (dev == "" || l.Name == dev) && l.HasAddr(a) {
			return snapshot.RouteLocal
		}
	}
	for _, r := range v.n.Routes {
		if r.Table == snapshot.TableLocal && r.Type == snapshot.RouteLocal && r.Dst.Contains(a) && (dev == "" || r.Dev == dev) {
			return snapshot.RouteLocal
		}
	}
	if a.IsMulticast() {
		return "multicast"
	}
	return snapshot.RouteUnicast
}

// RouteType is the type of the route RouteGet finds for a.
func (v rulesView) RouteType(a netip.Addr) (string, bool) {
	r, ok := v.n.RouteGet(a)
	return r.Type, ok
}

// Link returns the index of the link called name (0 when there is none)
// and whether it is lo.
func (v rulesView) Link(name string) (index int, loopback bool) {
	l := v.n.Link(name)
	if l == nil {
		return 0, false
	}
	return l.Index, l.IsLoopback()
}

// addrType4 classifies an IPv4 address as the kernel's
// inet_dev_addr_type does (xt_addrtype and nft fib ... type use it): 0/8
// and 255.255.255.255 are broadcast, 224/4 multicast, else the type of
// the route that covers a in the local table (table 255 only: a
// blackhole route in main does not make a blackhole), else unicast. With
// dev, a route of another device counts as unicast. A snapshot without
// IPv4 local-table routes (built by hand) has its links' addresses
// stand for them.
func addrType4(ns *snapshot.NSState, a netip.Addr, dev string) string {
	switch {
	case a.As4()[0] == 0 || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return snapshot.RouteBroadcast
	case a.IsMulticast():
		return "multicast"
	}
	if slices.ContainsFunc(ns.Routes, func(r snapshot.Route) bool { return r.Table == snapshot.TableLocal && r.Dst.Addr().Is4() }) {
		r, ok := ns.TableLookup(snapshot.TableLocal, a)
		if !ok || dev != "" && r.Dev != dev || r.Type == "" {
			return snapshot.RouteUnicast
		}
		return r.Type
	}
	for _, l := range ns.Links {
		if (dev == "" || l.Name == dev) && l.HasAddr(a) {
			return snapshot.RouteLocal
		}
		for _, pfx := range l.Addrs {
			if pfx.Addr().Is4() && pfx.Bits() < 31 && a == lastAddr(pfx) {
				return snapshot.RouteBroadcast
			}
		}
	}
	return snapshot.RouteUnicast
}

// lastAddr is the last address of an IPv4 prefix (its broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) | (1<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, v)))
}

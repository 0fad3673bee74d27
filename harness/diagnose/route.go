package diagnose

import (
	"net/netip"
)

// tableOrder is the order of the kernel's default policy rules: 0 lookup
// local, 32766 lookup main, 32767 lookup default. Scenarios have no `ip
// rule`, so routes in other tables are never consulted.
var tableOrder = [...]int{TableLocal, TableMain, TableDefault}

// RouteGet returns the route the namespace uses for a packet to dst, the
// pure equivalent of `ip route get DST`: the tables in the order of the
// default policy rules, in each the longest matching prefix, then the
// lowest metric. A throw route ends the lookup in its table. ok is false
// when no table has a route; an unreachable, blackhole or prohibit route is
// returned as found, with its type.
func (n *NSState) RouteGet(dst netip.Addr) (r Route, ok bool) {
	if n == nil {
		return Route{}, false
	}
	for _, table := range tableOrder {
		best := -1
		for i, rt := range n.Routes {
			if rt.Table != table || !rt.Dst.IsValid() || rt.Dst.Addr().Is4() != dst.Is4() || !rt.Dst.Contains(dst) {
				continue
			}
			if rt.Dev != "" {
				// The kernel removes a down link's routes; a snapshot taken
				// while a link goes down may still hold some.
				if l := n.Link(rt.Dev); l != nil && !l.Up && rt.Type != RouteLocal {
					continue
				}
			}
			if best < 0 || better(rt, n.Routes[best]) {
				best = i
			}
		}
		if best < 0 {
			continue
		}
		if n.Routes[best].Type == RouteThrow {
			continue
		}
		return n.Routes[best], true
	}
	return Route{}, false
}

// better reports whether a wins over b for the same destination: a longer
// prefix, then a lower metric.
func better(a, b Route) bool {
	if a.Dst.Bits() != b.Dst.Bits() {
		return a.Dst.Bits() > b.Dst.Bits()
	}
	return a.Metric < b.Metric
}

// delivers reports whether a route of type t hands the packet to the
// namespace's own stack.
func delivers(t string) bool { return t == RouteLocal || t == RouteBroadcast }

// forwardable reports whether a route of type t sends the packet on.
func forwardable(t string) bool { return t == "" || t == RouteUnicast }

// SourceFor returns the source address the namespace picks for a packet
// to dst sent along route r: the route's src, else an address of r's
// device whose subnet holds the next hop, else the device's first address,
// else the first address of any other link that is up (lo last), as the
// kernel's inet_select_addr does for scope global.
func (n *NSState) SourceFor(r Route, dst netip.Addr) netip.Addr {
	if r.Src.IsValid() {
		return r.Src
	}
	nh := dst
	if r.Via.IsValid() {
		nh = r.Via
	}
	if l := n.Link(r.Dev); l != nil {
		for _, p := range l.Addrs {
			if p.Addr().Is4() == nh.Is4() && p.Masked().Contains(nh) {
				return p.Addr()
			}
		}
		for _, p := range l.Addrs {
			if p.Addr().Is4() == nh.Is4() && !p.Addr().IsLinkLocalUnicast() {
				return p.Addr()
			}
		}
	}
	var fallback netip.Addr
	for _, l := range n.Links {
		if !l.Up {
			continue
		}
		for _, p := range l.Addrs {
			if p.Addr().Is4() != nh.Is4() || p.Addr().IsLinkLocalUnicast() {
				continue
			}
			if l.IsLoopback() || p.Addr().IsLoopback() {
				if !fallback.IsValid() {
					fallback = p.Addr()
				}
				continue
			}
			return p.Addr()
		}
	}
	return fallback
}

// rpfMode is a reverse-path filter setting.
type rpfMode int

const (
	rpfOff    rpfMode = 0
	rpfStrict rpfMode = 1
	rpfLoose  rpfMode = 2
)

// rpFilter returns the reverse-path filter mode for packets arriving on
// link in: the larger of conf.all.rp_filter and conf.IN.rp_filter, as the
// kernel's IN_DEV_RPFILTER does.
func (n *NSState) rpFilter(in string) (rpfMode, []string) {
	all := n.sysctlInt("net.ipv4.conf.all.rp_filter", 0)
	dev := n.sysctlInt("net.ipv4.conf."+in+".rp_filter", 0)
	mode := max(all, dev)
	if mode > 2 || mode < 0 {
		mode = 0
	}
	return rpfMode(mode), []string{
		"net.ipv4.conf.all.rp_filter = " + itoa(all),
		"net.ipv4.conf." + in + ".rp_filter = " + itoa(dev),
	}
}

// forwarding reports whether the namespace forwards packets arriving on
// link in: conf.IN.forwarding when the snapshot has it (set from
// ip_forward whenever ip_forward is written), else net.ipv4.ip_forward.
func (n *NSState) forwarding(in string) bool {
	if v, ok := n.Sysctl("net.ipv4.conf." + in + ".forwarding"); ok {
		return v == "1"
	}
	return n.sysctlInt("net.ipv4.ip_forward", 0) == 1
}

// isLocal reports whether a is an address of the namespace: the local
// table delivers it.
func (n *NSState) isLocal(a netip.Addr) bool {
	r, ok := n.RouteGet(a)
	return ok && r.Type == RouteLocal
}

// answersARPFor reports whether the namespace answers an ARP request for a
// arriving on link in: a is one of its addresses, on an interface that is
// up (or on lo), and arp_ignore (the larger of all and the link's) lets it
// answer for an address that is not on in. arp_ignore 1 and above answer
// only for addresses on in itself, which HasAddr already covers.
func (n *NSState) answersARPFor(in string, a netip.Addr) bool {
	ignore := max(n.sysctlInt("net.ipv4.conf.all.arp_ignore", 0), n.sysctlInt("net.ipv4.conf."+in+".arp_ignore", 0))
	if ignore != 0 {
		return false
	}
	l := n.LinkWithAddr(a)
	return l != nil && (l.Up || l.IsLoopback()) && n.isLocal(a)
}

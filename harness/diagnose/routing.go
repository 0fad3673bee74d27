package diagnose

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

// Routing: forwarding, and the findings when a route lookup fails on
// the request's or the reply's way. The lookup itself (policy rules,
// tables, longest prefix, metric, source address selection) is the
// snapshot's: NSState.Lookup.

// delivers reports whether a route of type t hands the packet to the
// namespace's own stack.
func delivers(t string) bool { return t == snapshot.RouteLocal || t == snapshot.RouteBroadcast }

// forwardable reports whether a route of type t sends the packet on.
func forwardable(t string) bool { return t == "" || t == snapshot.RouteUnicast }

// forwarding reports whether the namespace forwards packets of the
// family of dst arriving on link in. IPv4: conf.IN.forwarding when the
// snapshot has it (set from ip_forward whenever ip_forward is written),
// else net.ipv4.ip_forward. IPv6: net.ipv6.conf.all.forwarding, which is
// what ip6_forward reads (writing it sets every interface's value too).
func forwarding(n *snapshot.NSState, in string, v6 bool) bool {
	if v6 {
		return n.SysctlInt("net.ipv6.conf.all.forwarding", 0) == 1
	}
	if v, ok := n.Sysctl("net.ipv4.conf." + in + ".forwarding"); ok {
		return v == "1"
	}
	return n.SysctlInt("net.ipv4.ip_forward", 0) == 1
}

// noRoute explains a lookup that found no usable route in ns for p: an
// interface that is down took the route with it (link-down), or there is
// none (no-route, or no-return-route on the reply's way).
func (w *walker) noRoute(ns *snapshot.NSState, in string, r snapshot.Route, found bool, p packet) *finding {
	lookup := fmt.Sprintf("%s: ip route get %s -> no route", ns.Name, p.Dst)
	if found {
		lookup = fmt.Sprintf("%s: ip route get %s -> %s (%s route)", ns.Name, p.Dst, r, r.Type)
	} else if !w.hasDefault(ns, p.IPv6()) {
		lookup += " (table main has no default route)"
	}
	if l := w.downLinkFor(ns, p.Dst); l != "" && !found {
		return &finding{
			Cause: LinkDown, NS: ns.Name, If: l,
			Summary:  fmt.Sprintf("%s/%s is administratively down, so the route to %s through it is gone", ns.Name, l, p.Dst),
			Evidence: []string{lookup, fmt.Sprintf("%s: %s is down", ns.Name, l)},
			Fix:      fixIn(ns.Name, fmt.Sprintf("ip link set %s up", l)),
		}
	}
	if p.Reply {
		if !found && in != "" {
			if f := w.ruleMissedRoute(ns, lookup, p); f != nil {
				return f
			}
		}
		return w.noReturnRoute(ns, in, lookup, p)
	}
	if !found && in != "" {
		if f := w.ruleMissedRoute(ns, lookup, p); f != nil {
			return f
		}
		if f := w.routeMissedUpstream(ns, lookup, p); f != nil {
			return f
		}
	}
	f := &finding{Cause: NoRoute, NS: ns.Name, If: in, Evidence: []string{lookup}}
	if ns.HasPolicy(p.IPv6()) {
		f.Evidence = append(f.Evidence, prefixAll(ns.Name+": ip rule ", ns.Lookup(flowOf(in, p)).Trail)...)
	}
	if rs := w.mainRoutes(ns, p.IPv6()); rs != "" {
		fam := ""
		if p.IPv6() {
			fam = " (IPv6)"
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s: table main%s: %s", ns.Name, fam, rs))
	}
	if in == "" {
		f.Summary = fmt.Sprintf("%s has no route to %s", ns.Name, p.Dst)
		if g := w.unaddressed(ns, p); g != nil {
			g.Evidence = append(f.Evidence, g.Evidence...)
			return g
		}
	} else {
		f.Summary = fmt.Sprintf("%s receives the packet to %s on %s but has no route to forward it", ns.Name, p.Dst, in)
	}
	if !found && !w.hasDefault(ns, p.IPv6()) {
		f.Summary += fmt.Sprintf(" (%s has no default route)", ns.Name)
	}
	if found {
		f.Summary = fmt.Sprintf("%s has an %s route for %s", ns.Name, r.Type, p.Dst)
		f.Fix = fixIn(ns.Name, ipRoute(p.IPv6())+" del "+strings.TrimPrefix(r.String(), r.Type+" "))
		return f
	}
	if gw, dev, ok := w.gatewayFor(ns, p.Dst); ok {
		dst := "default"
		if w.hasDefault(ns, p.IPv6()) {
			dst = p.Dst.String()
		}
		f.Fix = fixIn(ns.Name, fmt.Sprintf("%s add %s via %s dev %s", ipRoute(p.IPv6()), dst, gw, dev))
	}
	return f
}

// noReturnRoute explains a reply that cannot be routed back from ns: the
// request arrived untranslated from an address ns has no route to. The fix
// is MASQUERADE where the request left a private network, or a route back.
func (w *walker) noReturnRoute(ns *snapshot.NSState, in, lookup string, p packet) *finding {
	f := &finding{Cause: NoReturnRoute, NS: ns.Name, If: in, Evidence: []string{lookup}}
	var from *crossing // the crossing that handed the request to ns
	for i := range w.request {
		if w.request[i].ns == ns.Name && i > 0 {
			f.If = w.request[i].in
			from = &w.request[i-1]
			break
		}
	}
	f.Summary = fmt.Sprintf("the request reached %s, but the reply to %s cannot be routed back: %s has no route to %s", w.probeDest(), p.Dst, ns.Name, p.Dst)
	if !w.translated("SNAT") {
		f.Evidence = append(f.Evidence, fmt.Sprintf("the request kept its source %s on the way (no SNAT or MASQUERADE rule translated it)", p.Dst))
	}
	if from == nil || from.out == "" {
		return f
	}
	fwd := w.st.NS(from.ns)
	if p.Dst.IsPrivate() && w.publicSide(fwd, from.out) {
		f.Summary += fmt.Sprintf(" (a private address: %s forwards it to %s without MASQUERADE)", from.ns, from.out)
		f.Fix = fixIn(from.ns, masqueradeFix(fwd, p.IPv6(), w.sourceNet(p.Dst).String(), from.out))
		return f
	}
	if gw := w.addrOnSegment(fwd, from.out, ns, f.If, !p.IPv6()); gw.IsValid() {
		f.Fix = fixIn(ns.Name, fmt.Sprintf("%s add %s via %s dev %s", ipRoute(p.IPv6()), w.sourceNet(p.Dst), gw, f.If))
	}
	return f
}

// forwardingOff explains a namespace that must forward but does not.
func (w *walker) forwardingOff(ns *snapshot.NSState, in string, r snapshot.Route, p packet) *finding {
	ev := []string{fmt.Sprintf("%s: ip route get %s -> %s (not a local address: %s must forward it)", ns.Name, p.Dst, r, ns.Name)}
	key, fix := "net.ipv4.ip_forward", "sysctl -w net.ipv4.ip_forward=1"
	if p.IPv6() {
		key, fix = "net.ipv6.conf.all.forwarding", "sysctl -w net.ipv6.conf.all.forwarding=1"
	}
	v, _ := ns.Sysctl(key)
	ev = append(ev, fmt.Sprintf("%s: %s = %s", ns.Name, key, orUnknown(v)))
	fam := "IP"
	if p.IPv6() {
		fam = "IPv6"
	} else if d, ok := ns.Sysctl("net.ipv4.conf." + in + ".forwarding"); ok {
		ev = append(ev, fmt.Sprintf("%s: net.ipv4.conf.%s.forwarding = %s", ns.Name, in, d))
	}
	return &finding{
		Cause: ForwardingDisabled, NS: ns.Name, If: in,
		Summary:  fmt.Sprintf("%s must forward the packet from %s to %s out of %s, but %s forwarding is disabled there", ns.Name, in, p.Dst, r.Dev, fam),
		Evidence: ev,
		Fix:      fixIn(ns.Name, fix),
	}
}

// gatewayFor finds a router for dst next to ns: an address of dst's
// family on a segment of one of ns's links, held by a namespace that
// forwards and has a route to dst. A global address is preferred to a
// link-local one.
func (w *walker) gatewayFor(ns *snapshot.NSState, dst netip.Addr) (netip.Addr, string, bool) {
	var fallback struct {
		gw  netip.Addr
		dev string
	}
	for i := range ns.Links {
		l := &ns.Links[i]
		if l.IsLoopback() || !l.Up || len(l.Configured()) == 0 {
			continue
		}
		seg := w.flood(endpoint{ns.Name, l.Name}, false)
		for _, e := range seg.order {
			if e.ns == ns.Name {
				continue
			}
			peerNS := w.st.NS(e.ns)
			pl := peerNS.Link(e.ifname)
			for _, a := range pl.Addrs {
				if a.Addr().Is4() != dst.Is4() || !onSubnet(l, a.Addr()) {
					continue
				}
				fwd := forwarding(peerNS, e.ifname, dst.Is6())
				r, ok := peerNS.RouteGet(dst)
				if ok && (delivers(r.Type) || (forwardable(r.Type) && fwd)) {
					if a.Addr().IsLinkLocalUnicast() {
						// A global address of the router is easier to read;
						// the link-local one is kept when it has none.
						if !fallback.gw.IsValid() || fallback.gw.IsLinkLocalUnicast() {
							fallback.gw, fallback.dev = a.Addr(), l.Name
						}
						continue
					}
					return a.Addr(), l.Name, true
				}
				if !fallback.gw.IsValid() && fwd {
					fallback.gw, fallback.dev = a.Addr(), l.Name
				}
			}
		}
	}
	if fallback.gw.IsValid() {
		return fallback.gw, fallback.dev, true
	}
	return w.gatewayBeyondView(ns, dst)
}

// gatewayBeyondView finds a gateway out of view: the one neighbor that ns
// has resolved on a link whose segment leaves the snapshot (a node's
// uplink), on that link's subnet. ok is false when there is none, or more
// than one to choose from.
func (w *walker) gatewayBeyondView(ns *snapshot.NSState, dst netip.Addr) (netip.Addr, string, bool) {
	var gw netip.Addr
	var dev string
	for i := range ns.Links {
		l := &ns.Links[i]
		if l.IsLoopback() || !l.Up || l.Kind == "bridge" || l.Master != "" {
			continue
		}
		if len(w.flood(endpoint{ns.Name, l.Name}, false).exits) == 0 {
			continue
		}
		for _, nb := range ns.Neighbors {
			if nb.Dev != l.Name || nb.IP.Is4() != dst.Is4() || !onSubnet(l, nb.IP) || nb.IP.IsLinkLocalUnicast() ||
				strings.Contains(nb.State, snapshot.NeighFailed) || strings.Contains(nb.State, snapshot.NeighIncomplete) {
				continue
			}
			if gw.IsValid() && gw != nb.IP {
				return netip.Addr{}, "", false
			}
			gw, dev = nb.IP, l.Name
		}
	}
	return gw, dev, gw.IsValid()
}

// onSubnet reports whether a is inside the subnet of one of l's addresses.
func onSubnet(l *snapshot.Link, a netip.Addr) bool {
	for _, p := range l.Addrs {
		if p.Masked().Contains(a) && p.Addr() != a {
			return true
		}
	}
	return false
}

// addrOnSegment returns the address of fwd's link out that is on the
// subnet of ns's link in: the gateway ns would route back through.
func (w *walker) addrOnSegment(fwd *snapshot.NSState, out string, ns *snapshot.NSState, in string, v4 bool) netip.Addr {
	ol, il := fwd.Link(out), ns.Link(in)
	if ol == nil || il == nil {
		return netip.Addr{}
	}
	for _, a := range ol.Addrs {
		if a.Addr().Is4() == v4 && !a.Addr().IsLinkLocalUnicast() && onSubnet(il, a.Addr()) {
			return a.Addr()
		}
	}
	return netip.Addr{}
}

// publicSide reports whether link out of ns faces a public network: its
// addresses are not private (the scenario's simulated internet uses the
// documentation ranges).
func (w *walker) publicSide(ns *snapshot.NSState, out string) bool {
	l := ns.Link(out)
	if l == nil {
		return false
	}
	for _, a := range l.Addrs {
		if a.Addr().Is4() && !a.Addr().IsPrivate() {
			return true
		}
		if a.Addr().Is6() && a.Addr().IsGlobalUnicast() && !a.Addr().IsPrivate() {
			return true
		}
	}
	return false
}

// sourceNet returns the subnet of the probe source's address src in the
// source namespace, or src/32.
func (w *walker) sourceNet(src netip.Addr) netip.Prefix {
	if ns := w.st.NS(w.probe.From); ns != nil {
		if l := ns.LinkWithAddr(src); l != nil {
			for _, a := range l.Addrs {
				if a.Addr() == src {
					return a.Masked()
				}
			}
		}
	}
	return netip.PrefixFrom(src, src.BitLen())
}

// hasDefault reports whether ns has a default route of the family in
// table main.
func (w *walker) hasDefault(ns *snapshot.NSState, v6 bool) bool {
	for _, r := range ns.Routes {
		if r.Table == snapshot.TableMain && r.Dst.Bits() == 0 && r.Dst.Addr().Is6() == v6 {
			return true
		}
	}
	return false
}

// mainRoutes lists the routes of the family in table main, leaving out
// IPv6's link-local and multicast routes, which every interface has.
func (w *walker) mainRoutes(ns *snapshot.NSState, v6 bool) string {
	var s []string
	for _, r := range ns.Routes {
		if r.Table == snapshot.TableMain && r.Dst.Addr().Is6() == v6 && !r.Dst.Addr().IsLinkLocalUnicast() && !r.Dst.Addr().IsMulticast() {
			s = append(s, r.String())
		}
	}
	if len(s) == 0 {
		return "empty"
	}
	return strings.Join(s, "; ")
}

// ipRoute is the command that edits routes of the family.
func ipRoute(v6 bool) string {
	if v6 {
		return "ip -6 route"
	}
	return "ip route"
}

// routeDst formats a route destination as ip route takes it.
func routeDst(p netip.Prefix) string {
	if p.Bits() == 0 {
		return "default"
	}
	return p.String()
}

// routeMissedUpstream looks for the mistake behind a forwarder ns with no
// route for p: a namespace the request crossed before, which sent it on
// by a default (or shorter) route although a neighbor on the same segment
// has dst's subnet on a link of its own. That namespace lacks the route
// (host-gw routing with one node's pod route missing): adding it there
// makes the probe pass, where a default route in ns would only move the
// packet on.
func (w *walker) routeMissedUpstream(ns *snapshot.NSState, lookup string, p packet) *finding {
	for k := len(w.request) - 1; k >= 0; k-- {
		up := w.request[k]
		if up.out == "" || up.ns == ns.Name {
			continue
		}
		un := w.st.NS(up.ns)
		used, _ := un.RouteGet(p.Dst)
		for _, x := range w.flood(endpoint{up.ns, up.out}, false).order {
			if x.ns == ns.Name || x.ns == up.ns {
				continue
			}
			xn := w.st.NS(x.ns)
			subnet, ok := connected(xn, p.Dst)
			if !ok || (subnet.Bits() <= used.Dst.Bits()) {
				continue
			}
			if !xn.IsLocal(p.Dst) && !forwarding(xn, x.ifname, p.IPv6()) {
				continue
			}
			gw := w.addrOnSegment(xn, x.ifname, un, up.out, !p.IPv6())
			if !gw.IsValid() {
				continue
			}
			return &finding{
				Cause: NoRoute, NS: up.ns, If: up.out,
				Summary: fmt.Sprintf("%s sends %s by its route %s to %s, which has no route for it; %s has %s on a link of its own and is on the same segment, but %s has no route to %s via %s",
					up.ns, p.Dst, used, ns.Name, x.ns, subnet, up.ns, subnet, gw),
				Evidence: []string{
					fmt.Sprintf("%s: ip route get %s -> %s", up.ns, p.Dst, used),
					lookup,
					fmt.Sprintf("%s holds %s (%s), reachable from %s/%s at %s", x.ns, subnet, x, up.ns, up.out, gw),
				},
				Fix: fixIn(up.ns, fmt.Sprintf("%s add %s via %s dev %s", ipRoute(p.IPv6()), subnet, gw, up.out)),
			}
		}
	}
	return nil
}

// connected returns the subnet of a configured address of the namespace
// that holds a (a connected route, or the namespace's own address).
func connected(n *snapshot.NSState, a netip.Addr) (netip.Prefix, bool) {
	for i := range n.Links {
		l := &n.Links[i]
		if l.IsLoopback() || !l.Up {
			continue
		}
		for _, p := range l.Configured() {
			if p.Masked().Contains(a) && p.Bits() < p.Addr().BitLen() {
				return p.Masked(), true
			}
		}
	}
	return netip.Prefix{}, false
}

// unaddressed explains a sender with no route because it has no address:
// no interface but lo (a container run without a network: no-route, said
// so), or an interface that lost the address the node still remembers for
// its MAC in the neighbor table of the bridge its veth hangs on
// (address-missing, with that address to restore). It returns nil for a
// namespace that never had an address there (a switch: plain no-route).
func (w *walker) unaddressed(ns *snapshot.NSState, p packet) *finding {
	var bare []*snapshot.Link
	for i := range ns.Links {
		l := &ns.Links[i]
		if l.IsLoopback() {
			continue
		}
		for _, a := range l.Addrs {
			if a.Addr().Is4() == p.Dst.Is4() && !a.Addr().IsLinkLocalUnicast() {
				return nil
			}
		}
		bare = append(bare, l)
	}
	fam := "IPv4"
	if p.IPv6() {
		fam = "IPv6"
	}
	if len(bare) == 0 {
		return &finding{Cause: NoRoute, NS: ns.Name,
			Summary: fmt.Sprintf("%s has no network interface but lo, so it has no route to %s: it runs without a network (docker/podman --network none); run it on a network, or connect it (docker network connect)", ns.Name, p.Dst)}
	}
	// An interface that had an address the node still remembers lost it:
	// that is the mistake. A namespace that never had one (a switch) has
	// no route, as its scenario says.
	for _, l := range bare {
		fa, ok := w.formerAddr(ns, endpoint{ns.Name, l.Name}, l, p.Dst.Is4())
		if !ok {
			continue
		}
		addr, gw := fa.addr, fa.gw
		f := &finding{Cause: AddressMissing, NS: ns.Name, If: l.Name,
			Summary: fmt.Sprintf("%s/%s has no %s address, so %s has no route to %s; %s %s",
				ns.Name, l.Name, fam, ns.Name, p.Dst, fa.knownAs, addr.Addr()),
			Evidence: []string{fa.evidence},
		}
		route := ""
		if gw.IsValid() {
			route = fmt.Sprintf(" && %s add default via %s dev %s", ipRoute(p.IPv6()), gw, l.Name)
		}
		f.Fix = fixIn(ns.Name, fmt.Sprintf("ip addr add %s dev %s%s", addr, l.Name, route))
		return f
	}
	return nil
}

// formerAddress is an address an interface had, and how it is known.
type formerAddress struct {
	addr netip.Prefix
	gw   netip.Addr // invalid when not known
	// knownAs ends the summary before the address ("the node still
	// knows it as"); evidence says where it was found.
	knownAs, evidence string
}

// formerAddr finds the address link l of e (in ns) had: the address its
// container's runtime recorded for l's MAC (NSState.Recorded), or else
// the one its veth peer's bridge holds a neighbor entry for with l's MAC,
// the prefix being the bridge's subnet and the gateway the bridge's
// address there. The runtime's record is asked first: a neighbor entry
// goes stale and is collected once the table holds more than gc_thresh1
// entries for all namespaces together.
func (w *walker) formerAddr(ns *snapshot.NSState, e endpoint, l *snapshot.Link, v4 bool) (formerAddress, bool) {
	for _, r := range ns.Recorded {
		if r.Addr.Addr().Is4() != v4 || (r.MAC != "" && !strings.EqualFold(r.MAC, l.MAC)) {
			continue
		}
		gw := ""
		if r.Gateway.IsValid() {
			gw = ", gateway " + r.Gateway.String()
		}
		return formerAddress{addr: r.Addr, gw: r.Gateway, knownAs: "its runtime recorded it as",
			evidence: fmt.Sprintf("%s: %s%s, for MAC %s (%s/%s's)", r.By, r.Addr, gw, l.MAC, e.ns, e.ifname)}, true
	}
	peer, found := w.peer(e)
	if !found || l.MAC == "" {
		return formerAddress{}, false
	}
	pn := w.st.NS(peer.ns)
	pl := pn.Link(peer.ifname)
	if pl == nil || pl.Master == "" {
		return formerAddress{}, false
	}
	br := pn.Link(pl.Master)
	for _, nb := range pn.Neighbors {
		if nb.Dev != pl.Master || !strings.EqualFold(nb.MAC, l.MAC) || nb.IP.Is4() != v4 {
			continue
		}
		for _, a := range br.Addrs {
			if a.Masked().Contains(nb.IP) {
				return formerAddress{addr: netip.PrefixFrom(nb.IP, a.Bits()), gw: a.Addr(), knownAs: "the node still knows it as",
					evidence: fmt.Sprintf("the bridge %s's neighbor entry for %s holds %s/%s's MAC %s", a, nb.IP, e.ns, e.ifname, l.MAC)}, true
			}
		}
	}
	return formerAddress{}, false
}

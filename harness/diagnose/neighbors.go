package diagnose

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

// Neighbors: which interface answers ARP (or NDP) for a next hop on a
// segment, and what goes wrong when nobody does (nobody holds the
// address, proxy ARP is off where a routed veth needs it, arp_ignore keeps
// the holder quiet) or when the sender's neighbor entry holds the wrong
// MAC.

// answer is how an interface answers a neighbor request for an address.
type answer int

const (
	noAnswer answer = iota
	// ownAddr: the address is on the interface itself.
	ownAddr
	// weakHost: the address is on another interface of the namespace,
	// and Linux answers ARP for it anyway (arp_ignore 0).
	weakHost
	// proxyARP: the namespace routes the address out of another
	// interface and proxy_arp is on for this one.
	proxyARP
)

// resolve finds the interface that receives the packet sent along r: the
// holder of the next hop's address on the segment of r's device, which
// must also own the MAC the sender's neighbor entry gives. When nobody
// receives it, it says why: a link or bridge port on the way, a wrong
// neighbor entry, or nobody answering for the address.
func (w *walker) resolve(ns *snapshot.NSState, r snapshot.Route, p packet) (endpoint, *finding) {
	nh := p.Dst
	gateway := r.Via.IsValid()
	if gateway {
		nh = r.Via
	}
	out := endpoint{ns.Name, r.Dev}
	if l := ns.Link(r.Dev); l == nil {
		return endpoint{}, &finding{Cause: Unknown, NS: ns.Name, If: r.Dev, Summary: fmt.Sprintf("the route's device %s is not in the snapshot", r.Dev)}
	}
	ask := w.arpSender(ns, r.Dev, nh, p.Src)
	seg := w.flood(out, false)
	if e, how, ok := w.holder(seg, nh, false, ask); ok {
		if f := w.unbridgedHolder(ns, r, nh, e, how); f != nil {
			return endpoint{}, f
		}
		if f := w.wrongMAC(ns, r, nh, e, how, seg); f != nil {
			return endpoint{}, f
		}
		if f := w.bridgedFilter(seg.receivers[e], p); f != nil {
			return endpoint{}, f
		}
		w.note("%s: %s is held by %s%s", ns.Name, nh, e, how.text())
		return e, nil
	}
	ideal := w.flood(out, true)
	if e, _, ok := w.holder(ideal, nh, true, ask); ok {
		// The scenario means the address to be reachable; something on
		// the way cuts it.
		path := append([]segmentStep{{at: out, out: true}}, ideal.receivers[e]...)
		if b := w.blocked(path); b != nil {
			return endpoint{}, w.blockageFinding(ns, r, nh, e, b)
		}
		if l := w.st.NS(e.ns).Link(e.ifname); l != nil && !l.Up {
			return endpoint{}, w.blockageFinding(ns, r, nh, e, &blockage{cause: LinkDown, at: e, why: fmt.Sprintf("%s is administratively down", e)})
		}
	}
	if len(seg.exits) > 0 {
		if f := w.leaveView(ns, r, nh, p, seg); f != nil {
			return endpoint{}, f
		}
		return endpoint{}, nil
	}
	return endpoint{}, w.nobodyHolds(ns, r, nh, gateway, p, seg, ask)
}

// unbridgedHolder explains a next hop answered only by the weak host
// model on a veth end that should be a port of the bridge holding the
// address (it has no address of its own, its peer's address is on the
// bridge's subnet): the port was taken off its bridge, and the frames,
// sent to the MAC the bridge had, die there as addressed to another host.
func (w *walker) unbridgedHolder(ns *snapshot.NSState, r snapshot.Route, nh netip.Addr, e endpoint, how answer) *finding {
	if how != weakHost {
		return nil
	}
	br, inferred, ok := w.intendedMaster(e)
	if !ok || !inferred {
		return nil
	}
	if bl := w.st.NS(e.ns).Link(br); bl == nil || !bl.HasAddr(nh) {
		return nil
	}
	return w.blockageFinding(ns, r, nh, endpoint{e.ns, br}, &blockage{
		cause: NotBridged, at: e, bridge: br,
		why: fmt.Sprintf("%s should be a port of bridge %s but is not enslaved", e, br),
	})
}

func (a answer) text() string {
	switch a {
	case weakHost:
		return " (the address is on another interface of that namespace)"
	case proxyARP:
		return " (proxy ARP)"
	}
	return ""
}

// arpSender returns the sender address of the neighbor request ns sends
// on dev for nh, as arp_announce picks it: 0 (the default) uses the
// packet's source when it is local, 1 and 2 an address of dev on nh's
// subnet, else the device's first. IPv6 solicitations are sent from an
// address of dev as well.
func (w *walker) arpSender(ns *snapshot.NSState, dev string, nh, src netip.Addr) netip.Addr {
	announce := max(ns.SysctlInt("net.ipv4.conf.all.arp_announce", 0), ns.SysctlInt("net.ipv4.conf."+dev+".arp_announce", 0))
	if nh.Is4() && announce == 0 && src.IsValid() && ns.IsLocal(src) {
		return src
	}
	l := ns.Link(dev)
	if l == nil {
		return src
	}
	for _, a := range l.Addrs {
		if a.Addr().Is4() == nh.Is4() && a.Masked().Contains(nh) {
			return a.Addr()
		}
	}
	for _, a := range l.Addrs {
		if a.Addr().Is4() == nh.Is4() {
			return a.Addr()
		}
	}
	return src
}

// holder returns the receiver of seg that answers a neighbor request for
// address a sent from sender, in the order the flood found them: one
// whose link holds a first; then, for IPv4, one whose namespace holds a
// on another link (Linux answers ARP for any local address on any
// interface unless arp_ignore says otherwise: the weak host model), or
// routes a out of another interface with proxy_arp on. IPv6 neighbor
// discovery answers only for the receiving interface's own addresses.
func (w *walker) holder(seg segment, a netip.Addr, ideal bool, sender netip.Addr) (endpoint, answer, bool) {
	for _, kind := range []answer{ownAddr, weakHost, proxyARP} {
		for _, e := range seg.order {
			ns := w.st.NS(e.ns)
			l := ns.Link(e.ifname)
			if l == nil || (!ideal && !l.Up) {
				continue
			}
			if answers(ns, e.ifname, a, sender) == kind {
				return e, kind, true
			}
		}
	}
	return endpoint{}, noAnswer, false
}

// answers says how the namespace answers a neighbor request for a,
// arriving on link in from sender.
//
// For IPv4 arp_ignore (the larger of all and the link's) decides: 0
// answers for any local address, 1 only for addresses on in, 2 only for
// those whose subnet also holds the sender, 8 for none. Failing that,
// proxy_arp on in answers for an address the namespace forwards to out of
// another interface (arp_fwd_proxy).
func answers(n *snapshot.NSState, in string, a, sender netip.Addr) answer {
	l := n.Link(in)
	if l == nil {
		return noAnswer
	}
	if a.Is6() {
		if l.HasAddr(a) {
			return ownAddr
		}
		return noAnswer
	}
	ignore := arpIgnore(n, in)
	if l.HasAddr(a) {
		switch {
		case ignore >= 3:
			return noAnswer
		case ignore == 2 && sender.IsValid() && !sameSubnet(l, a, sender):
			return noAnswer
		}
		return ownAddr
	}
	if n.IsLocal(a) {
		if ignore == 0 {
			if h := n.LinkWithAddr(a); h != nil && (h.Up || h.IsLoopback()) {
				return weakHost
			}
		}
		return noAnswer
	}
	if proxyARPOn(n, in) && forwarding(n, in, false) {
		if r, ok := n.RouteGet(a); ok && forwardable(r.Type) {
			if r.Dev != in {
				return proxyARP
			}
		}
	}
	return noAnswer
}

func arpIgnore(n *snapshot.NSState, in string) int {
	return max(n.SysctlInt("net.ipv4.conf.all.arp_ignore", 0), n.SysctlInt("net.ipv4.conf."+in+".arp_ignore", 0))
}

func proxyARPOn(n *snapshot.NSState, in string) bool {
	return n.SysctlInt("net.ipv4.conf.all.proxy_arp", 0) == 1 || n.SysctlInt("net.ipv4.conf."+in+".proxy_arp", 0) == 1
}

// sameSubnet reports whether sender is inside the subnet of l's address a.
func sameSubnet(l *snapshot.Link, a, sender netip.Addr) bool {
	for _, p := range l.Addrs {
		if p.Addr() == a && p.Masked().Contains(sender) {
			return true
		}
	}
	return false
}

// bridgeOwns reports whether a frame to mac reaches bridge e's own stack:
// a bridge keeps a local FDB entry for the MAC of each of its ports, and
// delivers frames to those MACs to itself as to its own.
func (w *walker) bridgeOwns(e endpoint, bl *snapshot.Link, mac string) bool {
	if bl.Kind != "bridge" {
		return false
	}
	for _, p := range w.ports(e.ns, e.ifname, false) {
		if l := w.st.NS(e.ns).Link(p); l != nil && strings.EqualFold(l.MAC, mac) {
			return true
		}
	}
	return false
}

// wrongMAC checks the sender's neighbor entry for nh against the MAC of
// the interface that answers for it, e: a permanent entry written with a
// MAC that has since changed, or a learned one left from another holder,
// sends the frame to a MAC nobody on the segment owns (flooded by a
// bridge, dropped as PACKET_OTHERHOST by whoever receives it) or to the
// wrong receiver.
func (w *walker) wrongMAC(ns *snapshot.NSState, r snapshot.Route, nh netip.Addr, e endpoint, how answer, seg segment) *finding {
	nb := ns.Neighbor(nh, r.Dev)
	if nb == nil || nb.MAC == "" || strings.Contains(nb.State, snapshot.NeighFailed) || strings.Contains(nb.State, snapshot.NeighIncomplete) {
		return nil
	}
	hl := w.st.NS(e.ns).Link(e.ifname)
	if hl == nil || hl.MAC == "" || strings.EqualFold(hl.MAC, nb.MAC) || w.bridgeOwns(e, hl, nb.MAC) {
		return nil
	}
	owner := "no interface on that segment has it"
	for _, o := range seg.order {
		if l := w.st.NS(o.ns).Link(o.ifname); l != nil && strings.EqualFold(l.MAC, nb.MAC) {
			owner = fmt.Sprintf("it is the MAC of %s", o)
		}
	}
	f := &finding{Cause: WrongMAC, NS: ns.Name, If: r.Dev}
	f.Summary = fmt.Sprintf("%s's neighbor entry for %s on %s holds %s (%s), but %s answers for %s%s with %s, so the frames to %s go to the wrong MAC",
		ns.Name, nh, r.Dev, nb.MAC, nb.State, e, nh, how.text(), hl.MAC, nh)
	f.Evidence = []string{
		fmt.Sprintf("%s: ip route get %s -> %s", ns.Name, nh, r),
		fmt.Sprintf("%s: neighbor %s dev %s lladdr %s %s", ns.Name, nh, r.Dev, nb.MAC, nb.State),
		fmt.Sprintf("%s has MAC %s; %s: %s", e, hl.MAC, nb.MAC, owner),
	}
	neigh := "ip neigh"
	if nh.Is6() {
		neigh = "ip -6 neigh"
	}
	if strings.Contains(nb.State, "PERMANENT") {
		f.Fix = fixIn(ns.Name, fmt.Sprintf("%s replace %s lladdr %s dev %s nud permanent", neigh, nh, hl.MAC, r.Dev))
	} else {
		f.Fix = fixIn(ns.Name, fmt.Sprintf("%s del %s dev %s", neigh, nh, r.Dev))
	}
	return f
}

// nobodyHolds explains a next hop that no interface on the segment
// answers for: a host end of a routed veth without proxy_arp, a holder
// that arp_ignore keeps quiet, a gateway nobody holds (arp-failed), or an
// on-link destination that nobody has (address-missing).
func (w *walker) nobodyHolds(ns *snapshot.NSState, r snapshot.Route, nh netip.Addr, gateway bool, p packet, seg segment, sender netip.Addr) *finding {
	f := &finding{NS: ns.Name, If: r.Dev}
	proto := "ARP"
	if nh.Is6() {
		proto = "neighbor discovery"
	}
	f.Evidence = append(f.Evidence, fmt.Sprintf("%s: ip route get %s -> %s", ns.Name, p.Dst, r))
	if nb := ns.Neighbor(nh, r.Dev); nb != nil {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s: neighbor %s dev %s %s", ns.Name, nh, r.Dev, nb.State))
	} else {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s: no neighbor entry for %s on %s", ns.Name, nh, r.Dev))
	}
	f.Evidence = append(f.Evidence, fmt.Sprintf("no interface reachable from %s/%s holds %s (reachable: %s)", ns.Name, r.Dev, nh, w.segmentText(seg, nh.Is6())))
	if q := w.quietHolder(seg, nh, sender); q != nil {
		q.Evidence = append(f.Evidence, q.Evidence...)
		if !gateway {
			q.Cause = AddressMissing
		}
		return q
	}
	if gateway && nh.Is4() {
		if q := w.missingProxyARP(ns, r, nh, seg); q != nil {
			q.Evidence = append(f.Evidence, q.Evidence...)
			return q
		}
	}
	if gateway {
		f.Cause = ARPFailed
		f.Summary = fmt.Sprintf("%s routes %s via gateway %s on %s, but no interface on that segment has %s, so %s for it fails", ns.Name, p.Dst, nh, r.Dev, nh, proto)
		if gw, dev, ok := w.gatewayFor(ns, p.Dst); ok && gw != nh {
			f.Fix = fixIn(ns.Name, fmt.Sprintf("%s replace %s via %s dev %s", ipRoute(p.IPv6()), routeDst(r.Dst), gw, dev))
		}
		w.dnatTarget(f, nh)
		return f
	}
	f.Cause = AddressMissing
	f.Summary = fmt.Sprintf("%s is on-link for %s/%s, but no namespace on that segment has the address, so nobody answers %s for it", nh, ns.Name, r.Dev, proto)
	w.dnatTarget(f, nh)
	return f
}

// quietHolder finds a receiver of seg whose namespace holds nh but does
// not answer for it because of arp_ignore. The finding is arp-failed (for
// a gateway; the caller makes it address-missing for a destination, which
// nobody answers for) at the quiet interface, with the sysctl to change.
func (w *walker) quietHolder(seg segment, nh, sender netip.Addr) *finding {
	if !nh.Is4() {
		return nil
	}
	for _, e := range seg.order {
		ns := w.st.NS(e.ns)
		l := ns.Link(e.ifname)
		if l == nil || !l.Up || !ns.IsLocal(nh) {
			continue
		}
		ignore := arpIgnore(ns, e.ifname)
		if ignore == 0 {
			continue
		}
		where := "on " + e.ifname
		if h := ns.LinkWithAddr(nh); h != nil && h.Name != e.ifname {
			where = "on " + h.Name + ", not on " + e.ifname
		}
		why := map[int]string{1: "answer only for addresses of the interface the request came in on", 2: "answer only for addresses of that interface whose subnet holds the sender " + sender.String()}[ignore]
		if why == "" {
			why = "not answer ARP at all"
		}
		var cmds []string
		for _, key := range []string{"all", e.ifname} {
			if ns.SysctlInt("net.ipv4.conf."+key+".arp_ignore", 0) != 0 {
				cmds = append(cmds, fmt.Sprintf("net.ipv4.conf.%s.arp_ignore=0", key))
			}
		}
		return &finding{
			Cause: ARPFailed, NS: e.ns, If: e.ifname,
			Summary: fmt.Sprintf("%s holds %s (%s), but arp_ignore=%d on %s makes it %s, so nobody answers ARP for %s", e.ns, nh, where, ignore, e.ifname, why, nh),
			Evidence: []string{
				fmt.Sprintf("%s: net.ipv4.conf.all.arp_ignore = %d, net.ipv4.conf.%s.arp_ignore = %d", e.ns, ns.SysctlInt("net.ipv4.conf.all.arp_ignore", 0), e.ifname, ns.SysctlInt("net.ipv4.conf."+e.ifname+".arp_ignore", 0)),
			},
			Fix: fixIn(e.ns, "sysctl -w "+strings.Join(cmds, " ")),
		}
	}
	return nil
}

// missingProxyARP finds, for a gateway address nobody holds, the receiver
// that is meant to answer for it by proxy ARP: the host end of a routed
// veth (Calico's 169.254.1.1 gateway), in a namespace that forwards and
// routes the gateway out of another interface, but with proxy_arp off.
// An interface of the same namespace that has proxy_arp on shows the
// intent.
func (w *walker) missingProxyARP(ns *snapshot.NSState, r snapshot.Route, nh netip.Addr, seg segment) *finding {
	for _, e := range seg.order {
		if e.ns == ns.Name {
			continue
		}
		hn := w.st.NS(e.ns)
		l := hn.Link(e.ifname)
		if l == nil || !l.Up || proxyARPOn(hn, e.ifname) || !forwarding(hn, e.ifname, false) {
			continue
		}
		rt, ok := hn.RouteGet(nh)
		if !ok || !forwardable(rt.Type) || rt.Dev == e.ifname {
			continue
		}
		var siblings []string
		for _, o := range hn.Links {
			if o.Name != e.ifname && hn.SysctlInt("net.ipv4.conf."+o.Name+".proxy_arp", 0) == 1 {
				siblings = append(siblings, e.ns+"/"+o.Name)
			}
		}
		// Without a sibling that proxies, only a link-local gateway (no
		// one could hold it) says proxy ARP is meant.
		if len(siblings) == 0 && !nh.IsLinkLocalUnicast() {
			continue
		}
		f := &finding{
			Cause: ARPFailed, NS: e.ns, If: e.ifname,
			Summary: fmt.Sprintf("%s routes %s via gateway %s on %s, which no interface holds: %s must answer for it by proxy ARP, but proxy_arp is off there", ns.Name, r.Dst, nh, r.Dev, e),
			Evidence: []string{
				fmt.Sprintf("%s: net.ipv4.conf.%s.proxy_arp = %d, net.ipv4.conf.all.proxy_arp = %d", e.ns, e.ifname, hn.SysctlInt("net.ipv4.conf."+e.ifname+".proxy_arp", 0), hn.SysctlInt("net.ipv4.conf.all.proxy_arp", 0)),
				fmt.Sprintf("%s: ip route get %s -> %s (out of another interface, so proxy ARP would answer)", e.ns, nh, rt),
			},
			Fix: fixIn(e.ns, fmt.Sprintf("sysctl -w net.ipv4.conf.%s.proxy_arp=1", e.ifname)),
		}
		if len(siblings) > 0 {
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s: proxy_arp is on for %s", e.ns, strings.Join(siblings, ", ")))
		}
		return f
	}
	return nil
}

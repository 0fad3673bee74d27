package diagnose

import (
	"fmt"
	"net/netip"
)

// Neighbors: which interface answers ARP (or NDP) for a next hop on a
// segment, and what goes wrong when nobody does or when the sender's
// neighbor entry holds the wrong MAC.

// resolve finds the interface that receives the packet sent along r: the
// holder of the next hop's address on the segment of r's device. When
// nobody receives it, it says why: a link or bridge port on the way, or
// nobody holding the address.
func (w *walker) resolve(ns *NSState, r Route, p packet) (endpoint, *finding) {
	nh := p.Dst
	gateway := r.Via.IsValid()
	if gateway {
		nh = r.Via
	}
	out := endpoint{ns.Name, r.Dev}
	if l := ns.Link(r.Dev); l == nil {
		return endpoint{}, &finding{Cause: Unknown, NS: ns.Name, If: r.Dev, Summary: fmt.Sprintf("the route's device %s is not in the snapshot", r.Dev)}
	}
	if e, ok := w.holder(w.flood(out, false), nh, false); ok {
		w.note("%s: %s is held by %s", ns.Name, nh, e)
		return e, nil
	}
	ideal := w.flood(out, true)
	if e, ok := w.holder(ideal, nh, true); ok {
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
	return endpoint{}, w.nobodyHolds(ns, r, nh, gateway, p)
}

// holder returns the receiver of seg that answers ARP for address a, in
// the order the flood found them: one whose link holds a, or, since Linux
// answers ARP for any of its local addresses on any interface unless
// arp_ignore says otherwise (the weak host model), one whose namespace
// holds a on another link.
func (w *walker) holder(seg segment, a netip.Addr, ideal bool) (endpoint, bool) {
	for _, e := range seg.order {
		l := w.st.NS(e.ns).Link(e.ifname)
		if l != nil && l.HasAddr(a) && (ideal || l.Up) {
			return e, true
		}
	}
	for _, e := range seg.order {
		ns := w.st.NS(e.ns)
		l := ns.Link(e.ifname)
		if l == nil || (!ideal && !l.Up) || !ns.answersARPFor(e.ifname, a) {
			continue
		}
		return e, true
	}
	return endpoint{}, false
}

// nobodyHolds explains a next hop that no interface on the segment holds:
// a gateway that does not answer ARP (arp-failed), or an on-link
// destination that nobody has (address-missing).
func (w *walker) nobodyHolds(ns *NSState, r Route, nh netip.Addr, gateway bool, p packet) *finding {
	f := &finding{NS: ns.Name, If: r.Dev}
	f.Evidence = append(f.Evidence, fmt.Sprintf("%s: ip route get %s -> %s", ns.Name, p.Dst, r))
	if nb := ns.Neighbor(nh, r.Dev); nb != nil {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s: neighbor %s dev %s %s", ns.Name, nh, r.Dev, nb.State))
	} else {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s: no neighbor entry for %s on %s", ns.Name, nh, r.Dev))
	}
	seg := w.flood(endpoint{ns.Name, r.Dev}, false)
	f.Evidence = append(f.Evidence, fmt.Sprintf("no interface reachable from %s/%s holds %s (reachable: %s)", ns.Name, r.Dev, nh, w.segmentText(seg)))
	if gateway {
		f.Cause = ARPFailed
		f.Summary = fmt.Sprintf("%s routes %s via gateway %s on %s, but no interface on that segment has %s, so ARP for it fails", ns.Name, p.Dst, nh, r.Dev, nh)
		if gw, dev, ok := w.gatewayFor(ns, p.Dst); ok && gw != nh {
			f.Fix = fixIn(ns.Name, fmt.Sprintf("ip route replace %s via %s dev %s", routeDst(r.Dst), gw, dev))
		}
		return f
	}
	f.Cause = AddressMissing
	f.Summary = fmt.Sprintf("%s is on-link for %s/%s, but no namespace on that segment has the address, so nobody answers ARP for it", nh, ns.Name, r.Dev)
	return f
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

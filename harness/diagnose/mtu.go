package diagnose

import (
	"fmt"

	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

// MTU: a packet larger than a link's MTU. The kernel checks it in three
// places, and each is a finding of its own at the interface with the
// smaller MTU:
//
//   - at send: a locally generated packet that may not be fragmented and
//     is larger than the egress interface's MTU is refused with EMSGSIZE
//     (nothing leaves; the trace is empty);
//   - when forwarding: a router drops a packet with DF (any IPv6 packet)
//     larger than its egress MTU and answers ICMP "fragmentation needed"
//     (ICMPv6 "packet too big"), drop reason PKT_TOO_BIG;
//   - on a link: a veth end or a bridge port whose MTU is smaller than the
//     frame its sender sent drops it silently (is_skb_forwardable; a frame
//     may exceed the MTU by a VLAN header's 4 bytes).
//
// A packet that may be fragmented is cut to the egress MTU instead, and
// its fragments go on.

// vlanSlack is how much larger than its MTU a frame arriving on a veth or
// leaving a bridge port may be (VLAN_HLEN in is_skb_forwardable).
const vlanSlack = 4

// egressMTU checks p against the MTU of r's device, the interface ns sends
// it out of; in is "" for a packet ns generates. It returns the packet as it
// leaves by route r (in fragments of the MTU when it may be fragmented),
// or the finding when it cannot leave.
func (w *walker) egressMTU(ns *snapshot.NSState, in string, r snapshot.Route, p packet) (packet, *finding) {
	dev := r.Dev
	l := ns.Link(dev)
	if p.Size == 0 || l == nil || l.MTU == 0 || p.Size <= l.MTU {
		return p, nil
	}
	local := in == ""
	// A router never fragments IPv6; the sender of a packet that may be
	// fragmented cuts it to its MTU.
	if !p.DF && (local || !p.IPv6()) {
		w.note("%s: fragments the %d-byte packet to %s's MTU %d", ns.Name, p.Size, dev, l.MTU)
		p.Size = l.MTU
		return p, nil
	}
	f := &finding{
		Cause: MTU, NS: ns.Name, If: dev,
		Evidence: []string{
			fmt.Sprintf("%s: ip route get %s -> %s", ns.Name, p.Dst, r),
			fmt.Sprintf("%s: %s mtu %d; the packet is %d bytes%s", ns.Name, dev, l.MTU, p.Size, dfText(p)),
		},
	}
	if local {
		f.Summary = fmt.Sprintf("%s sends a %d-byte packet to %s out of %s, whose MTU is %d, and the packet may not be fragmented: the send fails with EMSGSIZE (message too long)",
			ns.Name, p.Size, p.Dst, dev, l.MTU)
	} else {
		icmp := "ICMP fragmentation needed"
		if p.IPv6() {
			icmp = "ICMPv6 packet too big"
		}
		f.Summary = fmt.Sprintf("%s must forward a %d-byte packet to %s out of %s, whose MTU is %d, and the packet may not be fragmented: %s drops it and answers %s (mtu %d) to %s",
			ns.Name, p.Size, p.Dst, dev, l.MTU, ns.Name, icmp, l.MTU, p.Src)
	}
	w.mtuFix(f, ns, dev, l.MTU, p.Size)
	return p, f
}

// mtuFix completes f, about dev of ns with MTU mtu that a packet of size
// bytes does not fit: when the interfaces dev sends to on its link have a
// larger MTU that the packet fits, dev is the odd one out and is raised
// to theirs; otherwise the whole link is that small, and only a smaller
// packet passes.
func (w *walker) mtuFix(f *finding, ns *snapshot.NSState, dev string, mtu, size int) {
	peer := w.segmentMTU(endpoint{ns.Name, dev})
	if peer > mtu && peer >= size {
		f.Evidence = append(f.Evidence, fmt.Sprintf("the other interfaces on %s/%s's link have mtu %d", ns.Name, dev, peer))
		f.Summary += fmt.Sprintf("; the other end of the link has MTU %d", peer)
		f.Fix = fixIn(ns.Name, fmt.Sprintf("ip link set dev %s mtu %d", dev, peer))
		return
	}
	f.Summary += fmt.Sprintf("; the link is no larger at its other end, so only packets of at most %d bytes pass (size: %d)", mtu, mtu)
}

// segmentMTU returns the smallest MTU of the interfaces frames sent out of
// e cross on their link (veth peers, bridge ports), e itself and bridges
// aside; 0 when there are none.
func (w *walker) segmentMTU(e endpoint) int {
	seg := w.flood(e, false)
	least := 0
	seen := map[endpoint]bool{e: true}
	for _, r := range seg.order {
		for _, st := range seg.receivers[r] {
			if seen[st.at] {
				continue
			}
			seen[st.at] = true
			if m := w.linkMTU(st.at); m > 0 && (least == 0 || m < least) {
				least = m
			}
		}
	}
	return least
}

// linkMTU returns the MTU of the veth or other plain interface at e, or 0
// for a bridge or a vxlan device (their own MTUs are checked when they
// send, not when they pass a frame on) and for an unknown interface.
func (w *walker) linkMTU(e endpoint) int {
	l := w.st.NS(e.ns).Link(e.ifname)
	if l == nil || l.Kind == "bridge" || l.Kind == "vxlan" {
		return 0
	}
	return l.MTU
}

// linkPathMTU checks p, sent out of ns/dev, against the interfaces its
// frame crosses on the way to next: a veth end receiving it, a bridge port
// sending it on. The first whose MTU it exceeds drops it.
func (w *walker) linkPathMTU(ns *snapshot.NSState, dev string, next endpoint, p packet) *finding {
	if p.Size == 0 {
		return nil
	}
	start := endpoint{ns.Name, dev}
	sendMTU := 0
	if l := ns.Link(dev); l != nil {
		sendMTU = l.MTU
	}
	for _, st := range w.flood(start, false).receivers[next] {
		if st.at == start {
			continue
		}
		m := w.linkMTU(st.at)
		if m == 0 || p.Size <= m+vlanSlack {
			continue
		}
		how := "receives"
		if st.out {
			how = "must send on"
		}
		f := &finding{
			Cause: MTU, NS: st.at.ns, If: st.at.ifname,
			Summary: fmt.Sprintf("%s has MTU %d, smaller than the %d-byte packet to %s that %s/%s (MTU %d) sends over the link: %s drops the frame it %s, without an ICMP error",
				st.at, m, p.Size, p.Dst, ns.Name, dev, sendMTU, st.at.ns, how),
			Evidence: []string{
				fmt.Sprintf("%s: %s mtu %d; %s: %s mtu %d", ns.Name, dev, sendMTU, st.at.ns, st.at.ifname, m),
				fmt.Sprintf("the packet is %d bytes%s", p.Size, dfText(p)),
			},
		}
		if sendMTU >= p.Size {
			f.Fix = fixIn(st.at.ns, fmt.Sprintf("ip link set dev %s mtu %d", st.at.ifname, sendMTU))
		}
		return f
	}
	return nil
}

// dfText says whether p may be fragmented, for evidence.
func dfText(p packet) string {
	switch {
	case p.IPv6():
		return " (IPv6: routers never fragment)"
	case p.DF:
		return " with DF set"
	}
	return ""
}

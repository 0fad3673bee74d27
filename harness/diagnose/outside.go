package diagnose

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

// exit is an interface through which frames leave the snapshot's
// namespaces: a veth whose peer lives in a namespace hopcheck was not
// given, or a device whose other side is not a namespace at all (a NIC,
// a tunnel).
type exit struct {
	at endpoint
	// recv is where frames coming back through the exit are received:
	// its bridge, or the exit itself.
	recv endpoint
	// veth is set for a veth (its peer's namespace could be given);
	// kind is the device's kind otherwise.
	veth bool
	kind string
	// peerNS and who name the peer's namespace for the user, when found;
	// peerIno is its inode.
	peerNS, who string
	peerIno     uint64
	// neighbor is the next hop the walk sent the packet to through the
	// exit.
	neighbor netip.Addr
}

// exitAt reports whether a frame sent out of e (link l) leaves the
// snapshot: a veth whose peer is not in it, or a device of a kind that
// has no peer in a namespace (anything but a veth, bridge, vxlan or lo).
func (w *walker) exitAt(e endpoint, l *snapshot.Link) (exit, bool) {
	x := exit{at: e, recv: e, kind: l.Kind}
	if m := w.master(e, false); m != "" {
		x.recv = endpoint{e.ns, m}
	}
	switch l.Kind {
	case "veth":
		if l.Peer != "" {
			return exit{}, false
		}
		x.veth, x.peerNS, x.who, x.peerIno = true, l.PeerOutside, l.PeerOutsideWho, l.PeerOutsideInode
		return x, true
	case "bridge", "vxlan", "loopback":
		return exit{}, false
	}
	return x, true
}

// include says how to bring the far side of x into view.
func (x exit) include() string {
	switch {
	case x.veth && x.who == snapshot.HomeNS:
		return fmt.Sprintf("the peer of %s is in the namespace hopcheck runs in; add --node", x.at)
	case x.veth && x.peerNS == "":
		return fmt.Sprintf("the peer of %s is in a namespace hopcheck could not name; pass it with --netns PATH or --container NAME", x.at)
	case x.veth:
		who := ""
		if x.who != "" {
			who = ", " + x.who
		}
		return fmt.Sprintf("the peer of %s is in namespace %s%s; add --netns %s (or --container NAME for a container)", x.at, x.peerNS, who, x.peerNS)
	}
	kind := x.kind
	if kind == "" || kind == "device" {
		kind = "a network device"
	}
	return fmt.Sprintf("%s is %s whose far side is not a namespace of this machine; run hopcheck there to see further", x.at, kind)
}

// leaveView is called when no interface of the snapshot on seg answers
// for the next hop nh, and seg leaves the snapshot: the holder may be out
// there. When the sender's neighbor entry says that nobody answered
// (FAILED, INCOMPLETE), that is the finding; otherwise the packet leaves
// the view through the exit whose bridge port learned the neighbor's MAC
// (or the only one), and the walk records it in w.exited.
func (w *walker) leaveView(ns *snapshot.NSState, r snapshot.Route, nh netip.Addr, p packet, seg segment) *finding {
	nb := ns.Neighbor(nh, r.Dev)
	if nb != nil && (nb.State == "FAILED" || nb.State == "INCOMPLETE") {
		proto := "ARP"
		if nh.Is6() {
			proto = "neighbor discovery"
		}
		ev := []string{
			fmt.Sprintf("%s: ip route get %s -> %s", ns.Name, p.Dst, r),
			fmt.Sprintf("%s: neighbor %s dev %s %s", ns.Name, nh, r.Dev, nb.State),
		}
		for _, x := range seg.exits {
			ev = append(ev, "out of view: "+x.include())
		}
		return &finding{Cause: ARPFailed, NS: ns.Name, If: r.Dev, Evidence: ev,
			Summary: fmt.Sprintf("%s sends the packet to %s on %s, but %s for %s got no answer (the neighbor entry is %s), in view or beyond it",
				ns.Name, nh, r.Dev, proto, nh, nb.State)}
	}
	x := seg.exits[0]
	if nb != nil && nb.MAC != "" {
		for _, c := range seg.exits {
			if l := w.st.NS(c.at.ns).Link(c.at.ifname); l != nil && slices.Contains(l.LearnedMACs, nb.MAC) {
				x = c
				break
			}
		}
	}
	x.neighbor = nh
	w.exits = append(w.exits, x)
	w.note("%s: %s is not held in view; the packet leaves through %s (%s)", ns.Name, nh, x.at, x.include())
	w.exited = &x
	return nil
}

// beyondView concludes a walk whose request left the snapshot's
// namespaces. The reply is walked back in from the exit; a cause found
// on that way is the finding. Otherwise the way is open as far as
// hopcheck sees: a request that leaves for the outside with a private
// source nothing translated cannot be answered (the MASQUERADE is
// missing); anything else is out of view, and the finding says so and
// how to bring the far side in.
func (w *walker) beyondView(req legEnd) *finding {
	x, p := req.out, req.p
	reply := packet{Packet: replyOf(p.Packet)}
	rep := w.legAt(x.recv.ns, x.recv.ifname, reply)
	if rep.f != nil {
		return rep.f
	}
	ev := []string{"out of view: " + x.include()}
	ns := w.st.NS(x.at.ns)
	if f := w.unmasqueraded(ns, x, p); f != nil {
		f.Evidence = append(f.Evidence, ev...)
		return f
	}
	s := fmt.Sprintf("the request leaves the namespaces hopcheck sees through %s, toward %s; the way there and back is open as far as hopcheck sees, and what happens beyond is out of view", x.at, x.neighbor)
	if w.probe.Outcome == OutcomeRefused && p.Proto != "icmp" {
		s += fmt.Sprintf("; it was refused there: something beyond answered, most likely nothing listens on %s port %d", p.Proto, p.DPort)
	}
	return &finding{Cause: Unknown, NS: x.at.ns, If: x.at.ifname, Evidence: ev, Summary: s + ": " + x.include()}
}

// replyLeavesView concludes a walk whose reply left the snapshot's
// namespaces on its way back: the request was delivered; where the reply
// went is out of view.
func (w *walker) replyLeavesView(req, rep legEnd) *finding {
	x := rep.out
	return &finding{Cause: Unknown, NS: x.at.ns, If: x.at.ifname,
		Evidence: []string{"out of view: " + x.include()},
		Summary: fmt.Sprintf("the request reaches %s, but its reply to %s leaves the namespaces hopcheck sees through %s, toward %s: %s",
			req.at.ns, rep.p.Dst, x.at, x.neighbor, x.include())}
}

// unmasqueraded explains a request that leaves the view toward the
// outside (a public or documentation address, or out of a link that faces
// one) with a private source address that is not the exiting namespace's
// own and that no SNAT translated: the outside rarely routes a private
// network back to a node, and runtimes masquerade their bridges' subnets
// for that reason.
func (w *walker) unmasqueraded(ns *snapshot.NSState, x *exit, p packet) *finding {
	if ns == nil || !p.Src.IsPrivate() || ns.IsLocal(p.Src) || w.translated("SNAT") {
		return nil
	}
	l := ns.Link(x.at.ifname)
	if l == nil || onSubnet(l, p.Src) {
		return nil
	}
	if p.Dst.IsPrivate() && !w.publicSide(ns, x.at.ifname) {
		return nil
	}
	f := &finding{Cause: NoReturnRoute, NS: ns.Name, If: x.at.ifname,
		Summary: fmt.Sprintf("the request leaves %s for %s with the private source %s untranslated, so the reply would have to find its way back to a private address from beyond %s, out of hopcheck's view (%s forwards it out of %s without MASQUERADE)",
			x.at, p.Dst, p.Src, x.at, ns.Name, x.at.ifname),
		Evidence: []string{fmt.Sprintf("the request kept its source %s on the way (no SNAT or MASQUERADE rule translated it)", p.Src)},
		Fix:      fixIn(ns.Name, masqueradeFix(ns, p.IPv6(), w.sourceNet(p.Src).String(), x.at.ifname)),
	}
	return f
}

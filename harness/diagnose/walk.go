package diagnose

import (
	"fmt"
	"net/netip"

	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
	"github.com/hopcheck/hopcheck/harness/scenario"
)

// The walk: a probe's request and then its reply, namespace by namespace,
// in the kernel's order. Each layer's rules live in a file of their own:
// routing.go and rpfilter.go (route lookup, forwarding, reverse-path
// filtering), hooks.go, netfilter.go and nat.go (netfilter hooks, the
// drops and translations they make; iptrules and nftrules evaluate the
// rules), links.go (veth pairs and bridges), neighbors.go (who
// answers ARP/NDP for a next hop, and with which MAC), overlay.go (VXLAN),
// listener.go (sockets at the destination).

// packet is the probe packet at a point of the walk: what netfilter sees
// of it, and its size for the MTU checks.
type packet struct {
	netfilter.Packet
	// Size is the IP packet's size in bytes (of each fragment, once it
	// is fragmented); 0 when unknown, and then no MTU is compared.
	Size int
	// DF is set when the packet may not be fragmented on the way.
	DF bool
}

// replyOf is the reply to p: addresses and ports swapped, in the reply
// direction (conntrack's ESTABLISHED), at no interface yet.
func replyOf(p netfilter.Packet) netfilter.Packet {
	return netfilter.Packet{Src: p.Dst, Dst: p.Src, SPort: p.DPort, DPort: p.SPort, Proto: p.Proto, Reply: true}
}

// maxHops bounds a walk: no scenario path is longer, and a routing loop
// in the snapshot must end the walk rather than run it for ever.
const maxHops = 32

// finding is a cause the walk found.
type finding struct {
	Cause   string
	NS, If  string
	Summary string
	// Evidence specific to the cause; the walk's own trail is added by
	// Diagnose.
	Evidence []string
	Fix      string
}

// natRecord is a translation the walk applied to the request, which
// conntrack reverses for the reply.
type natRecord struct {
	ns   string
	kind string // "SNAT" or "DNAT"
	from netip.AddrPort
	to   netip.AddrPort
}

// crossing is a namespace the request crossed: where it came in and where
// it left.
type crossing struct {
	ns      string
	in, out string
	// lookup is the route lookup that sent the packet out.
	lookup snapshot.Lookup
}

// walker walks a probe's packets through a State.
type walker struct {
	sc    *scenario.Scenario
	st    *snapshot.State
	moved []netfilter.Moved
	// before is the counter snapshot taken before the probe, or nil.
	before *snapshot.State
	probe  Probe
	// trail is the evidence of the walk: one line per decision.
	trail []string
	nats  []natRecord
	// request lists the namespaces the request crossed, in order; reply
	// those the reply crossed.
	request, reply []crossing
	// lookup is the walk's latest route lookup (routeFor).
	lookup snapshot.Lookup
	// exited is set by resolve when the packet leaves the snapshot's
	// namespaces (outside.go); the leg ends there. exits lists every
	// exit the walk took.
	exited *exit
	exits  []exit
}

// counted reports whether the counters of namespace ns were taken before
// the probe, so that a counter that did not move means a rule did not
// match.
func (w *walker) counted(ns string) bool { return w.before.NS(ns) != nil }

// legEnd is where a leg of the walk ended.
type legEnd struct {
	at endpoint // the namespace and the interface the packet came in on
	p  packet   // the packet as delivered
	f  *finding
	// out is set when the packet left the snapshot's namespaces there,
	// p as it left.
	out *exit
}

func (w *walker) note(format string, args ...any) {
	w.trail = append(w.trail, fmt.Sprintf(format, args...))
}

// run walks the request and the reply. It returns the first finding, and
// the request's destination after any DNAT.
func (w *walker) run() (*finding, netip.Addr) {
	pr := w.probe
	p := packet{Packet: netfilter.Packet{Dst: pr.Dst.Addr().Unmap(), DPort: pr.Dst.Port(), Proto: pr.Proto}, Size: pr.Size, DF: pr.DF}
	if a := pr.Src.Addr(); a.IsValid() && !a.IsUnspecified() {
		p.Src = a.Unmap()
	}
	p.SPort = pr.Src.Port()
	if p.Proto == "" {
		p.Proto = "icmp"
	}
	req := w.leg(pr.From, p)
	if req.out != nil {
		return w.beyondView(req), req.p.Dst
	}
	if req.f != nil {
		// The walk stopped before it knew the packet as delivered; the
		// destination is the one probed, or the last DNAT's.
		dst := p.Dst
		for _, n := range w.nats {
			if n.kind == "DNAT" {
				dst = n.to.Addr()
			}
		}
		return req.f, dst
	}
	if p.Proto == "tcp" || p.Proto == "udp" {
		if f := w.listener(req.at, req.p); f != nil {
			return f, req.p.Dst
		}
	}
	reply := packet{Packet: replyOf(req.p.Packet)}
	if reply.Proto == "icmp" {
		// An echo reply is as large as its request, and the kernel
		// sends it without DF (its ICMP socket has IP_PMTUDISC_DONT).
		// A UDP listener's reply is small. The request's fragments
		// were reassembled at the destination.
		reply.Size = pr.Size
	}
	rep := w.leg(req.at.ns, reply)
	if rep.out != nil {
		return w.replyLeavesView(req, rep), req.p.Dst
	}
	if rep.f != nil {
		return rep.f, req.p.Dst
	}
	if rep.at.ns != pr.From {
		return &finding{
			Cause: NoReturnRoute, NS: req.at.ns, If: req.at.ifname,
			Summary: fmt.Sprintf("the reply from %s to %s is delivered to %s, not to %s that sent the probe (%s is also an address of %s)",
				req.p.Dst, rep.p.Dst, rep.at.ns, pr.From, rep.p.Dst, rep.at.ns),
			Evidence: w.trail,
		}, req.p.Dst
	}
	return nil, req.p.Dst
}

// leg walks p from namespace start, where it is generated, to the
// namespace that delivers it to its own stack, or to the first thing
// that stops it.
func (w *walker) leg(start string, p packet) legEnd { return w.legAt(start, "", p) }

// legAt walks p from namespace start, arriving on interface in ("" when
// start generates it).
func (w *walker) legAt(start, in string, p packet) legEnd {
	cur := start
	for range maxHops {
		ns := w.st.NS(cur)
		if ns == nil {
			return legEnd{f: &finding{Cause: Unknown, NS: cur, Summary: fmt.Sprintf("the snapshot has no namespace %s", cur)}}
		}
		var st step
		if in == "" {
			st = w.send(ns, p)
		} else {
			st = w.receive(ns, in, p)
		}
		if st.end != nil {
			return *st.end
		}
		next, p2, f := w.leave(ns, in, st.r, st.p)
		if f != nil {
			return legEnd{f: f}
		}
		if x := w.exited; x != nil {
			w.exited = nil
			return legEnd{out: x, p: p2}
		}
		p = p2
		cur, in = next.ns, next.ifname
	}
	return legEnd{f: &finding{Cause: Unknown, NS: cur, If: in,
		Summary: fmt.Sprintf("the packet to %s loops: it crossed more than %d namespaces", p.Dst, maxHops)}}
}

// step is what a namespace decided about a packet: the route it leaves
// by, or the end of the leg (delivered here, or stopped).
type step struct {
	r   snapshot.Route
	p   packet
	end *legEnd
}

func stop(f *finding) step { return step{end: &legEnd{f: f}} }

// send handles a packet the namespace generates: nat OUTPUT, the route
// lookup and source selection, local delivery through lo, filter OUTPUT.
func (w *walker) send(ns *snapshot.NSState, p packet) step {
	p.In, p.Out = "", ""
	p.Mark = &netfilter.Mark{Known: true} // a packet a namespace sends starts unmarked
	if v := natHook(ns, "OUTPUT", p.Packet, w.moved, w.counted(ns.Name)); v != nil {
		p = w.dnat(ns, "", v, p)
	}
	r, ok := w.routeFor(ns, "", p)
	if !p.Src.IsValid() || p.Src.IsUnspecified() {
		p.Src = ns.SourceFor(r, p.Dst)
	}
	if ok && delivers(r.Type) {
		end := w.deliverLocal(ns, r, p)
		return step{end: &end}
	}
	if !ok || !forwardable(r.Type) {
		return stop(w.noRoute(ns, "", r, ok, p))
	}
	w.note("%s: ip route get %s -> %s", ns.Name, p.Dst, r)
	p.Out = r.Dev
	p, f := w.egressMTU(ns, "", r, p)
	if f != nil {
		return stop(f)
	}
	if f := w.filter(ns, "OUTPUT", p.Packet, r.Dev); f != nil {
		return stop(f)
	}
	return step{r: r, p: p}
}

// receive handles a packet arriving on link in: PREROUTING (DNAT for the
// request, conntrack's reverse SNAT for the reply), the route lookup, then
// local delivery through rp_filter and INPUT, or forwarding through
// ip_forward, rp_filter and FORWARD, in the kernel's order.
func (w *walker) receive(ns *snapshot.NSState, in string, p packet) step {
	p.In, p.Out = in, ""
	p.Mark = &netfilter.Mark{Known: true} // crossing into a namespace clears the mark (skb_scrub_packet)
	if f := w.localSource(ns, in, p); f != nil {
		return stop(f)
	}
	if f := w.filter(ns, "PREROUTING", p.Packet, in); f != nil {
		return stop(f)
	}
	if p.Reply {
		p = w.unSNAT(ns.Name, p)
	} else if v := natHook(ns, "PREROUTING", p.Packet, w.moved, w.counted(ns.Name)); v != nil {
		p = w.dnat(ns, in, v, p)
	}
	r, ok := w.routeFor(ns, in, p)
	if ok && delivers(r.Type) {
		if f := w.rpFilter(ns, in, p); f != nil {
			return stop(f)
		}
		if f := w.filter(ns, "INPUT", p.Packet, in); f != nil {
			return stop(f)
		}
		w.note("%s: %s is a local address (arrived on %s)", ns.Name, p.Dst, in)
		w.cross(p, crossing{ns: ns.Name, in: in})
		return step{end: &legEnd{at: endpoint{ns.Name, in}, p: p}}
	}
	if !ok || !forwardable(r.Type) {
		return stop(w.noRoute(ns, in, r, ok, p))
	}
	if !forwarding(ns, in, p.IPv6()) {
		return stop(w.forwardingOff(ns, in, r, p))
	}
	if f := w.rpFilter(ns, in, p); f != nil {
		return stop(f)
	}
	w.note("%s: forwards %s from %s: ip route get %s -> %s", ns.Name, p, in, p.Dst, r)
	p.Out = r.Dev
	p, f := w.egressMTU(ns, in, r, p)
	if f != nil {
		return stop(f)
	}
	if f := w.filter(ns, "FORWARD", p.Packet, in); f != nil {
		return stop(f)
	}
	return step{r: r, p: p}
}

// leave sends p out along r: POSTROUTING (SNAT for the request,
// conntrack's reverse DNAT for the reply), then the link and the
// neighbor that receives it.
func (w *walker) leave(ns *snapshot.NSState, in string, r snapshot.Route, p packet) (endpoint, packet, *finding) {
	if v := natHook(ns, "POSTROUTING", p.Packet, w.moved, w.counted(ns.Name)); v != nil {
		p = w.snat(ns, r, v, p)
	}
	if p.Reply {
		p = w.unDNAT(ns.Name, p)
	}
	if f := w.filter(ns, "POSTROUTING", p.Packet, r.Dev); f != nil {
		return endpoint{}, p, f
	}
	w.cross(p, crossing{ns: ns.Name, in: in, out: r.Dev, lookup: w.lookup})
	next, f := w.resolve(ns, r, p)
	if f == nil && w.exited == nil {
		f = w.linkPathMTU(ns, r.Dev, next, p)
	}
	return next, p, f
}

// cross records a namespace crossed by the request or the reply.
func (w *walker) cross(p packet, c crossing) {
	if p.Reply {
		w.reply = append(w.reply, c)
		return
	}
	w.request = append(w.request, c)
}

// deliverLocal handles a packet a namespace sends to one of its own
// addresses: it goes through lo, which must be up.
func (w *walker) deliverLocal(ns *snapshot.NSState, r snapshot.Route, p packet) legEnd {
	lo := ns.Link("lo")
	if lo == nil || !lo.Up {
		return legEnd{f: &finding{
			Cause: LoopbackDown, NS: ns.Name, If: "lo",
			Summary: fmt.Sprintf("%s is an address of %s itself, and packets to its own addresses go through lo, which is down", p.Dst, ns.Name),
			Evidence: []string{
				fmt.Sprintf("%s: ip route get %s -> %s", ns.Name, p.Dst, r),
				fmt.Sprintf("%s: lo is down", ns.Name),
			},
			Fix: fixIn(ns.Name, "ip link set lo up"),
		}}
	}
	w.note("%s: %s is a local address (via lo)", ns.Name, p.Dst)
	p.In, p.Out = "", "lo"
	if f := w.filter(ns, "OUTPUT", p.Packet, "lo"); f != nil {
		return legEnd{f: f}
	}
	p.In, p.Out = "lo", ""
	if f := w.filter(ns, "INPUT", p.Packet, "lo"); f != nil {
		return legEnd{f: f}
	}
	w.cross(p, crossing{ns: ns.Name, in: "lo"})
	return legEnd{at: endpoint{ns.Name, "lo"}, p: p}
}

// probeDest names where the request went: the destination namespace when
// the walk got there.
func (w *walker) probeDest() string {
	if n := len(w.request); n > 0 {
		return w.request[n-1].ns
	}
	return w.probe.Dst.Addr().String()
}

func orUnknown(v string) string {
	if v == "" {
		return "(unknown)"
	}
	return v
}

func prefixAll(prefix string, lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = prefix + l
	}
	return out
}

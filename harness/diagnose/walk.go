package diagnose

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

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
}

// walker walks a probe's packets through a State.
type walker struct {
	sc    *scenario.Scenario
	st    *State
	moved []Moved
	// before is the counter snapshot taken before the probe, or nil.
	before *State
	probe  Probe
	// trail is the evidence of the walk: one line per decision.
	trail []string
	nats  []natRecord
	// request lists the namespaces the request crossed, in order.
	request []crossing
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
}

func (w *walker) note(format string, args ...any) {
	w.trail = append(w.trail, fmt.Sprintf(format, args...))
}

// leg walks p from namespace start, where it is generated, to the
// namespace that delivers it to its own stack, or to the first thing
// that stops it.
func (w *walker) leg(start string, p packet) legEnd {
	cur, in := start, ""
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
		p = p2
		cur, in = next.ns, next.ifname
	}
	return legEnd{f: &finding{Cause: Unknown, NS: cur, If: in,
		Summary: fmt.Sprintf("the packet to %s loops: it crossed more than %d namespaces", p.Dst, maxHops)}}
}

// step is what a namespace decided about a packet: the route it leaves
// by, or the end of the leg (delivered here, or stopped).
type step struct {
	r   Route
	p   packet
	end *legEnd
}

func stop(f *finding) step { return step{end: &legEnd{f: f}} }

// send handles a packet the namespace generates: nat OUTPUT, the route
// lookup and source selection, local delivery through lo, filter OUTPUT.
func (w *walker) send(ns *NSState, p packet) step {
	p.In, p.Out = "", ""
	if v := natHook(ns, "OUTPUT", p, w.moved, w.counted(ns.Name)); v != nil {
		p = w.dnat(ns, "", v, p)
	}
	r, ok := ns.RouteGet(p.Dst)
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
	if f := w.filter(ns, "OUTPUT", p, r.Dev); f != nil {
		return stop(f)
	}
	return step{r: r, p: p}
}

// receive handles a packet arriving on link in: PREROUTING (DNAT for the
// request, conntrack's reverse SNAT for the reply), the route lookup, then
// local delivery through rp_filter and INPUT, or forwarding through
// ip_forward, rp_filter and FORWARD, in the kernel's order.
func (w *walker) receive(ns *NSState, in string, p packet) step {
	p.In, p.Out = in, ""
	if f := w.filter(ns, "PREROUTING", p, in); f != nil {
		return stop(f)
	}
	if p.Reply {
		p = w.unSNAT(ns.Name, p)
	} else if v := natHook(ns, "PREROUTING", p, w.moved, w.counted(ns.Name)); v != nil {
		p = w.dnat(ns, in, v, p)
	}
	r, ok := ns.RouteGet(p.Dst)
	if ok && delivers(r.Type) {
		if f := w.rpFilter(ns, in, p); f != nil {
			return stop(f)
		}
		if f := w.filter(ns, "INPUT", p, in); f != nil {
			return stop(f)
		}
		w.note("%s: %s is a local address (arrived on %s)", ns.Name, p.Dst, in)
		w.cross(p, crossing{ns: ns.Name, in: in})
		return step{end: &legEnd{at: endpoint{ns.Name, in}, p: p}}
	}
	if !ok || !forwardable(r.Type) {
		return stop(w.noRoute(ns, in, r, ok, p))
	}
	if !ns.forwarding(in) {
		return stop(w.forwardingOff(ns, in, r, p))
	}
	if f := w.rpFilter(ns, in, p); f != nil {
		return stop(f)
	}
	w.note("%s: forwards %s from %s: ip route get %s -> %s", ns.Name, p, in, p.Dst, r)
	p.Out = r.Dev
	if f := w.filter(ns, "FORWARD", p, in); f != nil {
		return stop(f)
	}
	return step{r: r, p: p}
}

// leave sends p out along r: POSTROUTING (SNAT for the request,
// conntrack's reverse DNAT for the reply), then the link and the
// neighbor that receives it.
func (w *walker) leave(ns *NSState, in string, r Route, p packet) (endpoint, packet, *finding) {
	if v := natHook(ns, "POSTROUTING", p, w.moved, w.counted(ns.Name)); v != nil {
		p = w.snat(ns, r, v, p)
	}
	if p.Reply {
		p = w.unDNAT(ns.Name, p)
	}
	if f := w.filter(ns, "POSTROUTING", p, r.Dev); f != nil {
		return endpoint{}, p, f
	}
	w.cross(p, crossing{ns: ns.Name, in: in, out: r.Dev})
	next, f := w.resolve(ns, r, p)
	return next, p, f
}

// cross records a namespace crossed by the request.
func (w *walker) cross(p packet, c crossing) {
	if !p.Reply {
		w.request = append(w.request, c)
	}
}

// deliverLocal handles a packet a namespace sends to one of its own
// addresses: it goes through lo, which must be up.
func (w *walker) deliverLocal(ns *NSState, r Route, p packet) legEnd {
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
	if f := w.filter(ns, "OUTPUT", p, "lo"); f != nil {
		return legEnd{f: f}
	}
	p.In, p.Out = "lo", ""
	if f := w.filter(ns, "INPUT", p, "lo"); f != nil {
		return legEnd{f: f}
	}
	w.cross(p, crossing{ns: ns.Name, in: "lo"})
	return legEnd{at: endpoint{ns.Name, "lo"}, p: p}
}

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

func (w *walker) blockageFinding(ns *NSState, r Route, nh netip.Addr, holder endpoint, b *blockage) *finding {
	f := &finding{Cause: b.cause, NS: b.at.ns, If: b.at.ifname}
	f.Evidence = append(f.Evidence, fmt.Sprintf("%s: ip route get %s -> %s", ns.Name, nh, r))
	f.Evidence = append(f.Evidence, fmt.Sprintf("%s holds %s; the way there from %s/%s is cut: %s", holder, nh, ns.Name, r.Dev, b.why))
	if nb := ns.Neighbor(nh, r.Dev); nb != nil {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s: neighbor %s dev %s %s", ns.Name, nh, r.Dev, nb.State))
	}
	switch b.cause {
	case NotBridged:
		f.Summary = fmt.Sprintf("%s should be a port of bridge %s but is not enslaved, so frames from %s/%s never reach %s", b.at, b.bridge, ns.Name, r.Dev, holder)
		f.Fix = fixIn(b.at.ns, fmt.Sprintf("ip link set %s master %s", b.at.ifname, b.bridge))
	default:
		f.Summary = fmt.Sprintf("%s, so %s/%s cannot reach %s (%s)", b.why, ns.Name, r.Dev, nh, holder)
		f.Fix = fixIn(b.at.ns, fmt.Sprintf("ip link set %s up", b.at.ifname))
	}
	return f
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

// segmentText lists the receivers of seg with their addresses.
func (w *walker) segmentText(seg segment) string {
	if len(seg.order) == 0 {
		return "none"
	}
	var s []string
	for _, e := range seg.order {
		l := w.st.NS(e.ns).Link(e.ifname)
		var addrs []string
		if l != nil {
			for _, a := range l.Addrs {
				if a.Addr().Is4() {
					addrs = append(addrs, a.String())
				}
			}
		}
		if len(addrs) == 0 {
			addrs = []string{"no address"}
		}
		s = append(s, fmt.Sprintf("%s %s", e, strings.Join(addrs, ",")))
	}
	return strings.Join(s, "; ")
}

// noRoute explains a lookup that found no usable route in ns for p: an
// interface that is down took the route with it (link-down), or there is
// none (no-route, or no-return-route on the reply's way).
func (w *walker) noRoute(ns *NSState, in string, r Route, found bool, p packet) *finding {
	lookup := fmt.Sprintf("%s: ip route get %s -> no route", ns.Name, p.Dst)
	if found {
		lookup = fmt.Sprintf("%s: ip route get %s -> %s (%s route)", ns.Name, p.Dst, r, r.Type)
	} else if !w.hasDefault(ns) {
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
		return w.noReturnRoute(ns, in, lookup, p)
	}
	f := &finding{Cause: NoRoute, NS: ns.Name, If: in, Evidence: []string{lookup}}
	if rs := w.mainRoutes(ns); rs != "" {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s: table main: %s", ns.Name, rs))
	}
	if in == "" {
		f.Summary = fmt.Sprintf("%s has no route to %s", ns.Name, p.Dst)
	} else {
		f.Summary = fmt.Sprintf("%s receives the packet to %s on %s but has no route to forward it", ns.Name, p.Dst, in)
	}
	if found {
		f.Summary = fmt.Sprintf("%s has an %s route for %s", ns.Name, r.Type, p.Dst)
		f.Fix = fixIn(ns.Name, "ip route del "+strings.TrimPrefix(r.String(), r.Type+" "))
		return f
	}
	if gw, dev, ok := w.gatewayFor(ns, p.Dst); ok {
		dst := "default"
		if w.hasDefault(ns) {
			dst = p.Dst.String()
		}
		f.Fix = fixIn(ns.Name, fmt.Sprintf("ip route add %s via %s dev %s", dst, gw, dev))
	}
	return f
}

// noReturnRoute explains a reply that cannot be routed back from ns: the
// request arrived untranslated from an address ns has no route to. The fix
// is MASQUERADE where the request left a private network, or a route back.
func (w *walker) noReturnRoute(ns *NSState, in, lookup string, p packet) *finding {
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
		f.Fix = fixIn(from.ns, fmt.Sprintf("iptables -t nat -A POSTROUTING -s %s -o %s -j MASQUERADE", w.sourceNet(p.Dst), from.out))
		return f
	}
	if gw := w.addrOnSegment(fwd, from.out, ns, f.If); gw.IsValid() {
		f.Fix = fixIn(ns.Name, fmt.Sprintf("ip route add %s via %s dev %s", w.sourceNet(p.Dst), gw, f.If))
	}
	return f
}

// forwardingOff explains a namespace that must forward but does not.
func (w *walker) forwardingOff(ns *NSState, in string, r Route, p packet) *finding {
	ev := []string{fmt.Sprintf("%s: ip route get %s -> %s (not a local address: %s must forward it)", ns.Name, p.Dst, r, ns.Name)}
	v, _ := ns.Sysctl("net.ipv4.ip_forward")
	ev = append(ev, fmt.Sprintf("%s: net.ipv4.ip_forward = %s", ns.Name, orUnknown(v)))
	if d, ok := ns.Sysctl("net.ipv4.conf." + in + ".forwarding"); ok {
		ev = append(ev, fmt.Sprintf("%s: net.ipv4.conf.%s.forwarding = %s", ns.Name, in, d))
	}
	return &finding{
		Cause: ForwardingDisabled, NS: ns.Name, If: in,
		Summary:  fmt.Sprintf("%s must forward the packet from %s to %s out of %s, but IP forwarding is disabled there", ns.Name, in, p.Dst, r.Dev),
		Evidence: ev,
		Fix:      fixIn(ns.Name, "sysctl -w net.ipv4.ip_forward=1"),
	}
}

// rpFilter applies reverse-path filtering to a packet arriving on in:
// strict mode wants the route back to the source to leave through in,
// loose mode any route back.
func (w *walker) rpFilter(ns *NSState, in string, p packet) *finding {
	mode, settings := ns.rpFilter(in)
	if mode == rpfOff || in == "lo" {
		return nil
	}
	back, ok := ns.RouteGet(p.Src)
	good := ok && forwardable(back.Type)
	if mode == rpfStrict {
		good = good && back.Dev == in
	}
	if good {
		return nil
	}
	name := map[rpfMode]string{rpfStrict: "strict", rpfLoose: "loose"}[mode]
	backText := "no route"
	if ok {
		backText = back.String()
	}
	f := &finding{
		Cause: RPFilter, NS: ns.Name, If: in,
		Evidence: append([]string{
			fmt.Sprintf("%s: %s arrived on %s", ns.Name, p, in),
			fmt.Sprintf("%s: ip route get %s -> %s", ns.Name, p.Src, backText),
		}, prefixAll(ns.Name+": ", settings)...),
	}
	if mode == rpfStrict && ok {
		f.Summary = fmt.Sprintf("%s drops the packet from %s arriving on %s by strict reverse-path filtering: its route back to %s leaves through %s", ns.Name, p.Src, in, p.Src, back.Dev)
	} else {
		f.Summary = fmt.Sprintf("%s drops the packet from %s arriving on %s by %s reverse-path filtering: it has no route back to %s", ns.Name, p.Src, in, name, p.Src)
	}
	var cmds []string
	for _, key := range []string{"all", in} {
		if ns.sysctlInt("net.ipv4.conf."+key+".rp_filter", 0) == int(rpfStrict) {
			cmds = append(cmds, fmt.Sprintf("net.ipv4.conf.%s.rp_filter=2", key))
		}
	}
	if len(cmds) > 0 {
		f.Fix = fixIn(ns.Name, "sysctl -w "+strings.Join(cmds, " "))
	}
	return f
}

// filter runs p through a hook's filtering tables in ns and explains a
// drop. at is the interface named for the drop.
func (w *walker) filter(ns *NSState, hook string, p packet, at string) *finding {
	v, maybe := filterHook(ns, hook, p, w.moved, w.counted(ns.Name))
	for _, m := range maybe {
		w.note("%s: %s may match (not fully modelled)", ns.Name, m)
	}
	if v == nil {
		return nil
	}
	leg := "the packet"
	if p.Reply {
		leg = "the reply"
	} else if p.Proto != "" {
		leg = "the request"
	}
	f := &finding{Cause: NetfilterDrop, NS: ns.Name, If: at}
	f.Summary = fmt.Sprintf("%s (%s) is dropped by %s", leg, p, v.describe())
	f.Evidence = append(f.Evidence, fmt.Sprintf("%s: %s %s: %s", ns.Name, hook, p, v.describe()))
	if v.Moved != nil {
		f.Evidence = append(f.Evidence, v.Moved.String())
	} else if w.counted(ns.Name) {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s: the counter of the %s did not move during the probe", ns.Name, v.describe()))
	}
	f.Evidence = append(f.Evidence, maybe...)
	if v.Rule > 0 {
		f.Fix = fixIn(ns.Name, fmt.Sprintf("iptables -t %s -D %s %d", v.Table, v.Chain, v.Rule))
	} else {
		f.Fix = fixIn(ns.Name, "iptables -t "+v.Table+" -I "+v.Chain+" "+acceptSpec(hook, p))
	}
	return f
}

// acceptSpec is a rule that accepts p (and its reply leg) at hook.
func acceptSpec(hook string, p packet) string {
	var s []string
	if p.In != "" && hook != "OUTPUT" && hook != "POSTROUTING" {
		s = append(s, "-i "+p.In)
	}
	if p.Out != "" && hook != "INPUT" && hook != "PREROUTING" {
		s = append(s, "-o "+p.Out)
	}
	if p.Reply {
		s = append(s, "-m conntrack --ctstate ESTABLISHED,RELATED")
	}
	return strings.Join(append(s, "-j ACCEPT"), " ")
}

// dnat applies a DNAT or REDIRECT verdict to the request.
func (w *walker) dnat(ns *NSState, in string, v *verdict, p packet) packet {
	from := netip.AddrPortFrom(p.Dst, p.DPort)
	switch v.Target {
	case "DNAT":
		a, port, ok := natTo(v.Opts["--to-destination"])
		if !ok {
			return p
		}
		if a.IsValid() {
			p.Dst = a
		}
		if port != 0 {
			p.DPort = port
		}
	case "REDIRECT":
		if port, err := parsePort(v.Opts["--to-ports"]); err == nil {
			p.DPort = port
		}
		if l := ns.Link(in); l != nil && in != "" {
			for _, a := range l.Addrs {
				if a.Addr().Is4() == p.Dst.Is4() {
					p.Dst = a.Addr()
					break
				}
			}
		} else {
			p.Dst = netip.MustParseAddr("127.0.0.1")
		}
	default:
		return p
	}
	to := netip.AddrPortFrom(p.Dst, p.DPort)
	w.nats = append(w.nats, natRecord{ns: ns.Name, kind: "DNAT", from: from, to: to})
	w.note("%s: %s: DNAT %s -> %s", ns.Name, v.describe(), from, to)
	return p
}

// snat applies a SNAT or MASQUERADE verdict to the request leaving
// through r's device.
func (w *walker) snat(ns *NSState, r Route, v *verdict, p packet) packet {
	from := netip.AddrPortFrom(p.Src, p.SPort)
	switch v.Target {
	case "SNAT":
		a, port, ok := natTo(v.Opts["--to-source"])
		if !ok {
			return p
		}
		if a.IsValid() {
			p.Src = a
		}
		if port != 0 {
			p.SPort = port
		}
	case "MASQUERADE":
		a := ns.SourceFor(Route{Dev: r.Dev, Via: r.Via}, p.Dst)
		if !a.IsValid() {
			return p
		}
		p.Src = a
	default:
		return p
	}
	to := netip.AddrPortFrom(p.Src, p.SPort)
	w.nats = append(w.nats, natRecord{ns: ns.Name, kind: "SNAT", from: from, to: to})
	w.note("%s: %s: SNAT %s -> %s", ns.Name, v.describe(), from.Addr(), to.Addr())
	return p
}

// unSNAT reverses, for a reply arriving in ns, the SNAT the request got
// there: the reply's destination becomes the request's original source.
func (w *walker) unSNAT(ns string, p packet) packet {
	for _, n := range w.nats {
		if n.ns == ns && n.kind == "SNAT" && n.to.Addr() == p.Dst {
			p.Dst = n.from.Addr()
			if n.to.Port() == p.DPort {
				p.DPort = n.from.Port()
			}
		}
	}
	return p
}

// unDNAT reverses, for a reply leaving ns, the DNAT the request got there.
func (w *walker) unDNAT(ns string, p packet) packet {
	for _, n := range w.nats {
		if n.ns == ns && n.kind == "DNAT" && n.to.Addr() == p.Src {
			p.Src = n.from.Addr()
			if n.to.Port() == p.SPort {
				p.SPort = n.from.Port()
			}
		}
	}
	return p
}

// translated reports whether the walk translated the request's addresses
// with a NAT of this kind.
func (w *walker) translated(kind string) bool {
	for _, n := range w.nats {
		if n.kind == kind {
			return true
		}
	}
	return false
}

// downLinkFor returns a link of ns that is down and would carry a packet
// to dst: an address of it covers dst, or a route of the scenario through
// it does.
func (w *walker) downLinkFor(ns *NSState, dst netip.Addr) string {
	for _, l := range ns.Links {
		if l.Up || l.IsLoopback() {
			continue
		}
		for _, a := range l.Addrs {
			if a.Masked().Contains(dst) {
				return l.Name
			}
		}
	}
	if w.sc == nil {
		return ""
	}
	sn := w.sc.Namespace(ns.Name)
	if sn == nil {
		return ""
	}
	for _, r := range sn.Routes {
		if !r.Dst.Contains(dst) || r.Table != 0 {
			continue
		}
		dev := r.Dev
		if dev == "" {
			for _, l := range ns.Links {
				for _, a := range l.Addrs {
					if a.Masked().Contains(r.Via) {
						dev = l.Name
					}
				}
			}
		}
		if l := ns.Link(dev); l != nil && !l.Up {
			return dev
		}
	}
	return ""
}

// gatewayFor finds a router for dst next to ns: an address on a segment
// of one of ns's links, held by a namespace that forwards and has a route
// to dst.
func (w *walker) gatewayFor(ns *NSState, dst netip.Addr) (netip.Addr, string, bool) {
	var fallback struct {
		gw  netip.Addr
		dev string
	}
	for i := range ns.Links {
		l := &ns.Links[i]
		if l.IsLoopback() || !l.Up || len(l.Addrs) == 0 {
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
				if !a.Addr().Is4() || !onSubnet(l, a.Addr()) {
					continue
				}
				r, ok := peerNS.RouteGet(dst)
				if ok && (delivers(r.Type) || (forwardable(r.Type) && peerNS.forwarding(e.ifname))) {
					return a.Addr(), l.Name, true
				}
				if !fallback.gw.IsValid() && peerNS.forwarding(e.ifname) {
					fallback.gw, fallback.dev = a.Addr(), l.Name
				}
			}
		}
	}
	return fallback.gw, fallback.dev, fallback.gw.IsValid()
}

// onSubnet reports whether a is inside the subnet of one of l's addresses.
func onSubnet(l *Link, a netip.Addr) bool {
	for _, p := range l.Addrs {
		if p.Masked().Contains(a) && p.Addr() != a {
			return true
		}
	}
	return false
}

// addrOnSegment returns the address of fwd's link out that is on the
// subnet of ns's link in: the gateway ns would route back through.
func (w *walker) addrOnSegment(fwd *NSState, out string, ns *NSState, in string) netip.Addr {
	ol, il := fwd.Link(out), ns.Link(in)
	if ol == nil || il == nil {
		return netip.Addr{}
	}
	for _, a := range ol.Addrs {
		if a.Addr().Is4() && onSubnet(il, a.Addr()) {
			return a.Addr()
		}
	}
	return netip.Addr{}
}

// publicSide reports whether link out of ns faces a public network: its
// addresses are not private (the scenario's simulated internet uses the
// documentation ranges).
func (w *walker) publicSide(ns *NSState, out string) bool {
	l := ns.Link(out)
	if l == nil {
		return false
	}
	for _, a := range l.Addrs {
		if a.Addr().Is4() && !a.Addr().IsPrivate() {
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

// probeDest names where the request went: the destination namespace when
// the walk got there.
func (w *walker) probeDest() string {
	if n := len(w.request); n > 0 {
		return w.request[n-1].ns
	}
	return w.probe.Dst.Addr().String()
}

// hasDefault reports whether ns has a default route in table main.
func (w *walker) hasDefault(ns *NSState) bool {
	for _, r := range ns.Routes {
		if r.Table == TableMain && r.Dst.Bits() == 0 {
			return true
		}
	}
	return false
}

// mainRoutes lists the IPv4 routes of table main.
func (w *walker) mainRoutes(ns *NSState) string {
	var s []string
	for _, r := range ns.Routes {
		if r.Table == TableMain && r.Dst.Addr().Is4() {
			s = append(s, r.String())
		}
	}
	if len(s) == 0 {
		return "empty"
	}
	return strings.Join(s, "; ")
}

// routeDst formats a route destination as ip route takes it.
func routeDst(p netip.Prefix) string {
	if p.Bits() == 0 {
		return "default"
	}
	return p.String()
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

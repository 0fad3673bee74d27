package diagnose

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/iptrules"
	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

// NAT: DNAT and REDIRECT on the request's way in, SNAT and MASQUERADE on
// its way out, and conntrack's reversal of both for the reply.

// natTo parses a --to-destination or --to-source value: "10.0.0.2",
// "10.0.0.2:8080", "10.0.0.2-10.0.0.9:80-90" (the first of a range is
// taken, as the kernel does for a fresh connection when it is free).
//
// IPv6 addresses come bare ("2001:db8::2") or bracketed with a port
// ("[2001:db8::2]:8080"), as ip6tables writes them.
func natTo(val string) (netip.Addr, uint16, bool) {
	var addr, port string
	switch {
	case strings.HasPrefix(val, "["):
		end := strings.IndexByte(val, ']')
		if end < 0 {
			return netip.Addr{}, 0, false
		}
		addr = val[1:end]
		rest := val[end+1:]
		if rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return netip.Addr{}, 0, false
			}
			port = p
		}
	case strings.Count(val, ":") > 1:
		addr = val
	default:
		addr, port, _ = strings.Cut(val, ":")
	}
	addr, _, _ = strings.Cut(addr, "-")
	port, _, _ = strings.Cut(port, "-")
	var a netip.Addr
	if addr != "" {
		var err error
		if a, err = netip.ParseAddr(addr); err != nil {
			return netip.Addr{}, 0, false
		}
	}
	var pt uint64
	if port != "" {
		var err error
		if pt, err = strconv.ParseUint(port, 10, 16); err != nil {
			return netip.Addr{}, 0, false
		}
	}
	return a, uint16(pt), true
}

// natTargets says what each translation target does to the request: the
// end it rewrites (kind DNAT the destination, SNAT the source), and the
// option that names the new address and port; REDIRECT and MASQUERADE
// name none, the namespace decides.
var natTargets = map[string]struct{ kind, opt string }{
	"DNAT":       {"DNAT", "--to-destination"},
	"REDIRECT":   {"DNAT", ""},
	"SNAT":       {"SNAT", "--to-source"},
	"MASQUERADE": {"SNAT", ""},
}

// dnat applies a DNAT or REDIRECT verdict to the request arriving on in
// ("" when ns sends it). REDIRECT sends it to the port --to-ports names,
// at in's first address of the destination's family (the loopback
// address when ns sends it).
func (w *walker) dnat(ns *snapshot.NSState, in string, v *netfilter.Verdict, p packet) packet {
	return w.translate(ns.Name, "DNAT", v, p, func(dst netip.AddrPort) (netip.AddrPort, bool) {
		a, port := dst.Addr(), dst.Port()
		if pt, err := parsePort(v.Opts["--to-ports"]); err == nil {
			port = pt
		}
		if l := ns.Link(in); l != nil && in != "" {
			for _, la := range l.Addrs {
				if la.Addr().Is4() == a.Is4() {
					a = la.Addr()
					break
				}
			}
		} else {
			a = netip.MustParseAddr("127.0.0.1")
			if p.IPv6() {
				a = netip.IPv6Loopback()
			}
		}
		return netip.AddrPortFrom(a, port), true
	})
}

// snat applies a SNAT or MASQUERADE verdict to the request leaving
// through r's device. MASQUERADE takes the address the namespace picks
// as source on that way.
func (w *walker) snat(ns *snapshot.NSState, r snapshot.Route, v *netfilter.Verdict, p packet) packet {
	return w.translate(ns.Name, "SNAT", v, p, func(src netip.AddrPort) (netip.AddrPort, bool) {
		a := ns.SourceFor(snapshot.Route{Dev: r.Dev, Via: r.Via}, p.Dst)
		return netip.AddrPortFrom(a, src.Port()), a.IsValid()
	})
}

// translate applies v, a translation of kind (natTargets), to the
// request: the end of it the kind rewrites takes the address and port
// v's option names or, for a target that names none, what own makes of
// it; the translation is recorded for the reply. A target of another
// kind, or one that cannot be applied, leaves p as it was.
func (w *walker) translate(ns, kind string, v *netfilter.Verdict, p packet, own func(netip.AddrPort) (netip.AddrPort, bool)) packet {
	t, ok := natTargets[v.Target]
	if !ok || t.kind != kind {
		return p
	}
	addr, port := &p.Dst, &p.DPort
	if kind == "SNAT" {
		addr, port = &p.Src, &p.SPort
	}
	from := netip.AddrPortFrom(*addr, *port)
	var to netip.AddrPort
	if t.opt != "" {
		to, ok = natApply(from, v.Opts[t.opt])
	} else {
		to, ok = own(from)
	}
	if !ok {
		return p
	}
	*addr, *port = to.Addr(), to.Port()
	w.nats = append(w.nats, natRecord{ns: ns, kind: kind, from: from, to: to})
	if kind == "SNAT" {
		w.note("%s: %s: SNAT %s -> %s", ns, v.Describe(), from.Addr(), to.Addr())
	} else {
		w.note("%s: %s: DNAT %s -> %s", ns, v.Describe(), from, to)
	}
	return p
}

// natApply applies a --to-destination or --to-source value to one end of
// a packet: its address when the value names one, its port when it names
// one.
func natApply(end netip.AddrPort, val string) (netip.AddrPort, bool) {
	a, port, ok := natTo(val)
	if !ok {
		return end, false
	}
	if !a.IsValid() {
		a = end.Addr()
	}
	if port == 0 {
		port = end.Port()
	}
	return netip.AddrPortFrom(a, port), true
}

// unSNAT reverses, for a reply arriving in ns, the SNAT the request got
// there: the reply's destination becomes the request's original source.
func (w *walker) unSNAT(ns string, p packet) packet {
	w.untranslate(ns, "SNAT", &p.Dst, &p.DPort)
	return p
}

// unDNAT reverses, for a reply leaving ns, the DNAT the request got there.
func (w *walker) unDNAT(ns string, p packet) packet {
	w.untranslate(ns, "DNAT", &p.Src, &p.SPort)
	return p
}

// untranslate maps the end of a reply (addr, port) that a translation of
// kind in ns made of the request back to what it was, as conntrack does.
func (w *walker) untranslate(ns, kind string, addr *netip.Addr, port *uint16) {
	for _, n := range w.nats {
		if n.ns == ns && n.kind == kind && n.to.Addr() == *addr {
			*addr = n.from.Addr()
			if n.to.Port() == *port {
				*port = n.from.Port()
			}
		}
	}
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

// dnatRule finds the nat rule that made translation n.
func (w *walker) dnatRule(n natRecord) *netfilter.Verdict {
	ns := w.st.NS(n.ns)
	t := ns.TableFor("nat", n.to.Addr().Is6())
	if t == nil {
		return nil
	}
	for _, chain := range []string{"PREROUTING", "OUTPUT"} {
		c := t.Chain(chain)
		if c == nil {
			continue
		}
		for i, r := range c.Rules {
			pr := iptrules.Parse(r.Spec)
			if pr.Target != "DNAT" {
				continue
			}
			a, port, ok := natTo(pr.Opts["--to-destination"])
			if ok && (!a.IsValid() || a == n.to.Addr()) && (port == 0 || port == n.to.Port()) {
				return &netfilter.Verdict{Target: "DNAT", Table: "nat", Chain: chain, IPv6: n.to.Addr().Is6(), Rule: i + 1, Spec: r.Spec, Opts: pr.Opts}
			}
		}
	}
	return nil
}

// dnatTarget adds to f, when the next hop nobody answers for is where a
// DNAT rule sent the request, that the mistake is the rule's target (a
// pod or container that moved, an address mistyped): the summary names
// the rule, and when the check's listener holds an address on the same
// segment, the fix re-targets the rule to it.
func (w *walker) dnatTarget(f *finding, nh netip.Addr) {
	for _, n := range w.nats {
		if n.kind != "DNAT" || n.to.Addr() != nh {
			continue
		}
		v := w.dnatRule(n)
		rule := fmt.Sprintf("a DNAT in %s", n.ns)
		if v != nil {
			rule = v.Describe()
		}
		f.Summary += fmt.Sprintf("; %s sends the request to %s, an address nobody holds: the DNAT target is stale or wrong", rule, n.to)
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s: DNAT %s -> %s by %s", n.ns, n.from, n.to, rule))
		if v == nil {
			return
		}
		to := w.listenerAddr(f.NS, f.If, nh)
		if !to.IsValid() {
			return
		}
		old := v.Opts["--to-destination"]
		repl := to.String()
		if _, port, ok := natTo(old); ok && port != 0 {
			repl = netip.AddrPortFrom(to, port).String()
		}
		f.Fix = fixIn(n.ns, fmt.Sprintf("%s -t nat -R %s %d %s", iptablesCmd(v.IPv6), v.Chain, v.Rule, strings.Replace(v.Spec, "--to-destination "+old, "--to-destination "+repl, 1)))
		f.Evidence = append(f.Evidence, fmt.Sprintf("the check's listener %s holds %s on that segment", w.probe.ListenNS, to))
		return
	}
}

// listenerAddr returns an address of the check's listener namespace that
// ns/dev reaches on its segment, of nh's family and on nh's subnet when
// one is; invalid when there is none.
func (w *walker) listenerAddr(ns, dev string, nh netip.Addr) netip.Addr {
	if w.probe.ListenNS == "" {
		return netip.Addr{}
	}
	var found netip.Addr
	for _, e := range w.flood(endpoint{ns, dev}, false).order {
		if e.ns != w.probe.ListenNS {
			continue
		}
		for _, a := range w.st.NS(e.ns).Link(e.ifname).Addrs {
			if a.Addr().Is4() != nh.Is4() || a.Addr().IsLinkLocalUnicast() {
				continue
			}
			if a.Masked().Contains(nh) {
				return a.Addr()
			}
			if !found.IsValid() {
				found = a.Addr()
			}
		}
	}
	return found
}

// dnatIn returns the DNAT the walk applied in namespace ns, or nil.
func (w *walker) dnatIn(ns string) *natRecord {
	for i := range w.nats {
		if w.nats[i].ns == ns && w.nats[i].kind == "DNAT" {
			return &w.nats[i]
		}
	}
	return nil
}

// localSource explains a packet that arrives on in with a source address
// of ns itself, which the kernel drops as a martian (IP_LOCAL_SOURCE): a
// hairpin, where a DNAT sends a namespace's own connection back to it and
// no MASQUERADE replaces the source on the way (runtimes mark such
// connections to masquerade them). The fix masquerades that flow where it
// was translated.
func (w *walker) localSource(ns *snapshot.NSState, in string, p packet) *finding {
	if p.Reply || !p.Src.IsValid() || p.Src.IsLoopback() || !ns.IsLocal(p.Src) {
		return nil
	}
	f := &finding{Cause: NoReturnRoute, NS: ns.Name, If: in,
		Summary: fmt.Sprintf("the request arrives at %s on %s with %s's own address %s as its source, which the kernel drops (a martian): the reply could never leave", ns.Name, in, ns.Name, p.Src),
	}
	if n := w.lastDNAT(); n != nil {
		f.Summary += fmt.Sprintf("; %s sent %s's connection back to it (DNAT %s -> %s, a hairpin) without masquerading it", n.ns, ns.Name, n.from, n.to)
		spec := fmt.Sprintf("-s %s -d %s", hostPrefix(p.Src), hostPrefix(p.Dst))
		if p.Proto == "tcp" || p.Proto == "udp" {
			spec += fmt.Sprintf(" -p %s -m %s --dport %d", p.Proto, p.Proto, p.DPort)
		}
		f.Fix = fixIn(n.ns, fmt.Sprintf("%s -t nat -I POSTROUTING %s -j MASQUERADE", iptablesCmd(p.IPv6()), spec))
	}
	return f
}

// lastDNAT returns the request's latest DNAT, or nil.
func (w *walker) lastDNAT() *natRecord {
	for i := len(w.nats) - 1; i >= 0; i-- {
		if w.nats[i].kind == "DNAT" {
			return &w.nats[i]
		}
	}
	return nil
}

package diagnose

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/iptrules"
	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
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

// dnat applies a DNAT or REDIRECT verdict to the request.
func (w *walker) dnat(ns *NSState, in string, v *netfilter.Verdict, p packet) packet {
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
			if p.IPv6() {
				p.Dst = netip.IPv6Loopback()
			}
		}
	default:
		return p
	}
	to := netip.AddrPortFrom(p.Dst, p.DPort)
	w.nats = append(w.nats, natRecord{ns: ns.Name, kind: "DNAT", from: from, to: to})
	w.note("%s: %s: DNAT %s -> %s", ns.Name, v.Describe(), from, to)
	return p
}

// snat applies a SNAT or MASQUERADE verdict to the request leaving
// through r's device.
func (w *walker) snat(ns *NSState, r Route, v *netfilter.Verdict, p packet) packet {
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
	w.note("%s: %s: SNAT %s -> %s", ns.Name, v.Describe(), from.Addr(), to.Addr())
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
func (w *walker) localSource(ns *NSState, in string, p packet) *finding {
	if p.Reply || !p.Src.IsValid() || p.Src.IsLoopback() || !ns.isLocal(p.Src) {
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

package diagnose

import (
	"net/netip"
	"strconv"
	"strings"
)

// NAT: DNAT and REDIRECT on the request's way in, SNAT and MASQUERADE on
// its way out, and conntrack's reversal of both for the reply.

// natHook runs the request through the nat table's chain at hook and
// returns the translation verdict, if a rule translates it.
func natHook(ns *NSState, hook string, p packet, moved []Moved, counters bool) *verdict {
	if p.Reply {
		return nil // conntrack translates replies; nat chains see only the first packet
	}
	t := ns.Table("nat")
	if t == nil {
		return nil
	}
	e := chainEval{ns: ns.Name, table: t, moved: movedIn(moved, ns.Name), counters: counters}
	v := e.run(hook, p, 0)
	switch v.Target {
	case "DNAT", "SNAT", "MASQUERADE", "REDIRECT":
		return &v
	}
	return nil
}

// natTo parses a --to-destination or --to-source value: "10.0.0.2",
// "10.0.0.2:8080", "10.0.0.2-10.0.0.9:80-90" (the first of a range is
// taken, as the kernel does for a fresh connection when it is free).
func natTo(val string) (netip.Addr, uint16, bool) {
	addr, port, _ := strings.Cut(val, ":")
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

// dnatRule finds the nat rule that made translation n.
func (w *walker) dnatRule(n natRecord) *verdict {
	ns := w.st.NS(n.ns)
	t := ns.Table("nat")
	if t == nil {
		return nil
	}
	for _, chain := range []string{"PREROUTING", "OUTPUT"} {
		c := t.Chain(chain)
		if c == nil {
			continue
		}
		for i, r := range c.Rules {
			pr := parseRule(r.Spec)
			if pr.target != "DNAT" {
				continue
			}
			a, port, ok := natTo(pr.opts["--to-destination"])
			if ok && (!a.IsValid() || a == n.to.Addr()) && (port == 0 || port == n.to.Port()) {
				return &verdict{Target: "DNAT", Table: "nat", Chain: chain, Rule: i + 1, Spec: r.Spec, Opts: pr.opts}
			}
		}
	}
	return nil
}

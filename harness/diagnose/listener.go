package diagnose

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/iptrules"
	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

// The destination: something must listen where a tcp or udp request is
// delivered.

// listener checks that something listens where a tcp or udp request was
// delivered: the harness's own listener of the check, or a socket in the
// snapshot.
func (w *walker) listener(at endpoint, p packet) *finding {
	if w.probe.ListenNS == at.ns && w.probe.ListenPort == p.DPort {
		w.note("%s: the check's listener serves %s port %d", at.ns, p.Proto, p.DPort)
		return nil
	}
	ns := w.st.NS(at.ns)
	var socks []string
	for _, l := range ns.Listeners {
		if l.Proto != p.Proto {
			continue
		}
		socks = append(socks, l.Addr.String())
		if l.Addr.Port() == p.DPort && (l.Addr.Addr().IsUnspecified() || l.Addr.Addr().Unmap() == p.Dst) {
			w.note("%s: %s listens on %s", at.ns, p.Proto, l.Addr)
			return nil
		}
	}
	if w.probe.ListenNS == at.ns {
		socks = append(socks, fmt.Sprintf("the check's listener on port %d", w.probe.ListenPort))
	}
	if len(socks) == 0 {
		socks = []string{"none"}
	}
	f := &finding{
		Cause: NoListener, NS: at.ns, If: at.ifname,
		Summary: fmt.Sprintf("the %s request reaches %s (%s) on %s, but nothing listens on %s port %d there",
			p.Proto, at.ns, netip.AddrPortFrom(p.Dst, p.DPort), at.ifname, p.Proto, p.DPort),
		Evidence: []string{fmt.Sprintf("%s: %s sockets listening: %s", at.ns, p.Proto, strings.Join(socks, ", "))},
	}
	dnat := false
	for _, n := range w.nats {
		if n.kind != "DNAT" {
			continue
		}
		dnat = true
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s: DNAT %s -> %s sent the request there", n.ns, n.from, n.to))
		if w.probe.ListenNS == at.ns && w.probe.ListenPort != 0 && n.to.Port() == p.DPort {
			if v := w.dnatRule(n); v != nil {
				spec := strings.Replace(v.Spec, v.Opts["--to-destination"], netip.AddrPortFrom(n.to.Addr(), w.probe.ListenPort).String(), 1)
				f.Fix = fixIn(n.ns, fmt.Sprintf("%s -t nat -R %s %d %s", iptablesCmd(v.IPv6), v.Chain, v.Rule, spec))
			}
		}
	}
	if miss := w.unmatchedDNAT(ns, at, p); miss != "" && !dnat {
		// The node meant to forward the port: the summary names the
		// DNAT that does not take this request, not a missing service.
		f.Summary = fmt.Sprintf("the %s request to %s stays in %s, where nothing listens on port %d: %s",
			p.Proto, netip.AddrPortFrom(p.Dst, p.DPort), at.ns, p.DPort, miss)
		return f
	}
	if f.Fix == "" {
		// No command starts someone's service: say what would.
		f.Summary += "; start the service there"
		if dnat && socks[0] != "none" {
			f.Summary += ", or point the DNAT at the port it listens on"
		}
	}
	if w.probe.ListenNS != "" && w.probe.ListenNS != at.ns {
		f.Evidence = append(f.Evidence, fmt.Sprintf("the check's listener was in %s, port %d, not in %s", w.probe.ListenNS, w.probe.ListenPort, at.ns))
	}
	return f
}

// unmatchedDNAT says why a request to a port that ns forwards somewhere
// was not translated: a DNAT rule for the port that does not match it (a
// port published on 127.0.0.1 only), or a jump for the port into a chain
// that no longer holds its DNAT (a runtime's per-container chain
// flushed). "" when ns has no nat rule for the port.
func (w *walker) unmatchedDNAT(ns *snapshot.NSState, at endpoint, p packet) string {
	t := ns.TableFor("nat", p.IPv6())
	if t == nil {
		return ""
	}
	q := p.Packet
	q.In, q.Out = at.ifname, ""
	for _, c := range t.Chains {
		for i, r := range c.Rules {
			pr := iptrules.Parse(r.Spec)
			if !pr.NamesDPort(p.DPort) {
				continue
			}
			desc := fmt.Sprintf("rule %d of nat/%s `%s`", i+1, c.Name, r.Spec)
			switch {
			case pr.Target == "DNAT" && pr.Match(q, rulesView{ns}) == netfilter.NoMatch:
				if d, ok := pr.Option("-d"); ok && strings.HasPrefix(d, "127.") {
					return fmt.Sprintf("%s forwards the port only for %s: the port is published on the loopback address only; publish it on %s (or all addresses) to reach it from outside", desc, d, p.Dst)
				}
				return desc + " would forward the port, but does not match this request"
			case pr.Target != "DNAT" && t.Chain(pr.Target) != nil && len(t.Chain(pr.Target).Rules) == 0:
				return fmt.Sprintf("%s sends the port to chain %s, which is empty: the DNAT for it is gone; recreate the container (or restore the rule) so the runtime writes it again", desc, pr.Target)
			}
		}
	}
	return ""
}

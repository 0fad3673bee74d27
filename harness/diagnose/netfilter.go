package diagnose

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/iptrules"
	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
	"github.com/hopcheck/hopcheck/harness/diagnose/nftrules"
	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

// Netfilter: the finding when a hook's chains (hooks.go) drop the packet,
// and the fix: the rule to delete, correct or insert ahead of it.

// filter runs p through a hook's filtering tables in ns and explains a
// drop. at is the interface named for the drop.
func (w *walker) filter(ns *snapshot.NSState, hook string, p netfilter.Packet, at string) *finding {
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
	f.Summary = fmt.Sprintf("%s (%s) is dropped by %s", leg, p, v.Describe())
	f.Evidence = append(f.Evidence, fmt.Sprintf("%s: %s %s: %s", ns.Name, hook, p, v.Describe()))
	if v.Moved != nil {
		f.Evidence = append(f.Evidence, v.Moved.String())
	} else if w.counted(ns.Name) {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s: the counter of the %s did not move during the probe", ns.Name, v.Describe()))
	}
	f.Evidence = append(f.Evidence, maybe...)
	if v.NFT != nil {
		fix := nftrules.Fix(v.NFT, hook, p)
		if back := w.replyAlsoDropped(ns, hook, p); back != "" {
			fix += " && " + back
		}
		f.Fix = fixIn(ns.Name, fix)
		return f
	}
	if nm := w.nearMiss(ns, v, p); nm != nil {
		// A rule meant to accept the packet misses it on one or two
		// options: the fix is that rule, corrected.
		f.Summary += fmt.Sprintf("; rule %d `%s` was meant to accept it but does not match %s", nm.rule, nm.spec, strings.Join(nm.missed, ", "))
		if dn := w.dnatIn(ns.Name); dn != nil {
			f.Summary += fmt.Sprintf(" (%s/%s sees the request after DNAT %s -> %s)", v.Table, v.Chain, dn.from, dn.to)
		}
		f.Fix = fixIn(ns.Name, fmt.Sprintf("%s -t %s -R %s %d %s", iptablesCmd(v.IPv6), v.Table, v.Chain, nm.rule, nm.fixed))
		return f
	}
	fix := fmt.Sprintf("%s -t %s -D %s %d", iptablesCmd(v.IPv6), v.Table, v.Chain, v.Rule)
	if open := w.openBothWays(ns, hook, p, v); open != "" {
		// Deleting this rule would only move the drop.
		f.Summary += "; deleting that rule would not let the flow through (the policy or another rule drops it, or its reply, next), so the flow is accepted ahead of them"
		f.Fix = fixIn(ns.Name, open)
		return f
	}
	if v.Rule == 0 {
		fix = iptablesCmd(v.IPv6) + " -t " + v.Table + " -I " + v.Chain + " " + w.acceptSpec(ns, hook, p)
	}
	if back := w.replyAlsoDropped(ns, hook, p); back != "" {
		fix += " && " + back
	}
	f.Fix = fixIn(ns.Name, fix)
	return f
}

// openBothWays returns, for a request dropped at FORWARD by rule v, the
// commands that accept it ahead of every rule when deleting v would not
// let the flow through: another rule or the policy would drop the request
// next (Docker's icc=false network: its -i br -o br DROP, then the FORWARD
// policy), or another rule drops its reply (Docker's isolation chains drop
// each network's traffic to the other, one rule per direction). They go
// in DOCKER-USER where Docker keeps it for the user's own rules (dockerd
// rewrites FORWARD), else at the top of FORWARD. It returns "" when
// deleting v would do.
func (w *walker) openBothWays(ns *snapshot.NSState, hook string, p netfilter.Packet, v *netfilter.Verdict) string {
	if hook != "FORWARD" || p.Reply || v.Rule == 0 || v.NFT != nil || p.In == "" || p.Out == "" {
		return ""
	}
	reply := replyAt(p)
	rv, _ := filterHook(ns, hook, reply, nil, false)
	replyDropped := rv != nil && rv.NFT == nil && rv.Rule != 0 && !(rv.Table == v.Table && rv.Chain == v.Chain && rv.Rule == v.Rule)
	if !replyDropped && !droppedWithout(ns, hook, p, v) {
		return ""
	}
	chain := "FORWARD"
	if t := ns.TableFor("filter", p.IPv6()); t != nil && t.Chain("DOCKER-USER") != nil {
		chain = "DOCKER-USER"
	}
	cmd := iptablesCmd(v.IPv6) + " -t filter -I " + chain + " "
	fix := cmd + w.acceptSpec(ns, hook, p)
	if p.In != p.Out && rv != nil && rv.Drops() {
		// An accept between the same two interfaces takes the reply too.
		fix += " && " + cmd + acceptSpec(hook, reply)
	}
	return fix
}

// droppedWithout reports whether p is still dropped at hook once rule v
// is deleted.
func droppedWithout(ns *snapshot.NSState, hook string, p netfilter.Packet, v *netfilter.Verdict) bool {
	cp := *ns
	tables := &cp.IPTables
	if v.IPv6 {
		tables = &cp.IP6Tables
	}
	ts := append([]iptrules.Table(nil), *tables...)
	for i := range ts {
		if ts[i].Name != v.Table {
			continue
		}
		chains := append([]iptrules.Chain(nil), ts[i].Chains...)
		for j := range chains {
			if chains[j].Name == v.Chain && v.Rule <= len(chains[j].Rules) {
				rules := append([]iptrules.Rule(nil), chains[j].Rules[:v.Rule-1]...)
				chains[j].Rules = append(rules, chains[j].Rules[v.Rule:]...)
			}
		}
		ts[i].Chains = chains
	}
	*tables = ts
	q := p
	q.Mark = nil
	d, _ := filterHook(&cp, hook, q, nil, false)
	return d != nil
}

// replyAlsoDropped returns, for a request dropped at FORWARD, the command
// that lets its reply through as well when the same hook would drop the
// reply by a policy (a FORWARD policy of DROP with the runtime's accept
// rules gone): a fix for one direction only would move the drop to the
// reply. It returns "" when the reply passes.
func (w *walker) replyAlsoDropped(ns *snapshot.NSState, hook string, p netfilter.Packet) string {
	if hook != "FORWARD" || p.Reply {
		return ""
	}
	reply := replyAt(p)
	v, _ := filterHook(ns, hook, reply, nil, false)
	switch {
	case v == nil:
		return ""
	case v.NFT != nil:
		if v.NFT.Handle != 0 {
			return ""
		}
		return nftrules.Fix(v.NFT, hook, reply)
	case v.Rule != 0:
		return ""
	}
	return iptablesCmd(v.IPv6) + " -t " + v.Table + " -I " + v.Chain + " " + acceptSpec(hook, reply)
}

// acceptSpec is acceptSpec for a request that a DNAT of ns sent on: the
// accept names the translated destination, protocol and port, as the
// runtimes' own rules do, so that it opens the published service and not
// every new connection between the two interfaces.
func (w *walker) acceptSpec(ns *snapshot.NSState, hook string, p netfilter.Packet) string {
	spec := acceptSpec(hook, p)
	if p.Reply || w.dnatIn(ns.Name) == nil {
		return spec
	}
	pre := "-d " + hostPrefix(p.Dst) + " "
	if p.Proto == "tcp" || p.Proto == "udp" {
		pre += fmt.Sprintf("-p %s -m %s --dport %d ", p.Proto, p.Proto, p.DPort)
	}
	return pre + spec
}

// acceptSpec is a rule that accepts p (and its reply leg) at hook.
func acceptSpec(hook string, p netfilter.Packet) string {
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

// replyAt is the reply to p as the same hook of a forwarding namespace
// sees it: addresses, ports and interfaces swapped.
func replyAt(p netfilter.Packet) netfilter.Packet {
	r := replyOf(p)
	r.In, r.Out = p.Out, p.In
	return r
}

// miss is an accepting rule that almost matches a packet.
type miss struct {
	rule   int
	spec   string
	fixed  string   // the rule spec corrected to match
	missed []string // the options that do not match, as written
}

// nearMiss looks, before the verdict v that drops p, for an ACCEPT rule
// of v's chain that would match p but for at most two of its address,
// interface or port options: the usual shape of a rule written for the
// packet as it was before DNAT (the public port, the public address) or
// with a mistyped interface. It returns the rule with those options
// corrected, or nil.
func (w *walker) nearMiss(ns *snapshot.NSState, v *netfilter.Verdict, p netfilter.Packet) *miss {
	c := ns.TableFor(v.Table, v.IPv6).Chain(v.Chain)
	if c == nil || p.Reply {
		// A reply's accept rule is the ESTABLISHED one, not a rule of the
		// request's direction.
		return nil
	}
	moved := movedIn(w.moved, ns.Name, v.IPv6)
	var links []string
	for _, l := range ns.Links {
		links = append(links, l.Name)
	}
	for i, r := range c.Rules {
		if v.Rule > 0 && i+1 >= v.Rule {
			break
		}
		pr := iptrules.Parse(r.Spec)
		if pr.Target != "ACCEPT" || pr.Match(p, nil) != netfilter.NoMatch {
			continue
		}
		if slices.ContainsFunc(moved, func(m netfilter.Moved) bool {
			return m.Table == v.Table && m.Chain == v.Chain && m.Rule == i+1 && m.Spec == r.Spec
		}) {
			continue // it matched other packets during the probe: it is right for them
		}
		fixed, missed, ok := pr.Correct(p, links)
		if !ok || len(missed) == 0 || len(missed) > 2 {
			continue
		}
		if fixed.Match(p, nil) != netfilter.Matches {
			continue
		}
		return &miss{rule: i + 1, spec: r.Spec, fixed: fixed.String(), missed: missed}
	}
	return nil
}

// hostPrefix writes a as iptables-save does: 10.0.0.2/32.
func hostPrefix(a netip.Addr) string { return netip.PrefixFrom(a, a.BitLen()).String() }

package diagnose

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/iptrules"
	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
	"github.com/hopcheck/hopcheck/harness/diagnose/nftrules"
	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

// The chains a netfilter hook runs: the iptables tables' built-in chains
// and the nft base chains registered there, ordered by priority and
// evaluated in that order (iptrules and nftrules say what each does), so
// that a drop or a translation in a native nft chain is explained and
// fixed as an iptables one is.

// hookStep is one chain registered at a hook: an iptables table's
// built-in chain, or an nft base chain.
type hookStep struct {
	prio  int32
	ipt   *iptrules.Table // the iptables table, or nil
	nft   *nftrules.Table
	chain *nftrules.Chain
}

// hookSteps lists the chains at hook (PREROUTING, INPUT, FORWARD, OUTPUT,
// POSTROUTING) of ns that see a packet of the family v6 gives, in priority
// order: the nat chains when nat is set, the others otherwise. Tables that
// iptables-nft made are evaluated from iptables-save's view only.
func hookSteps(ns *snapshot.NSState, hook string, v6, nat bool) []hookStep {
	var out []hookStep
	tables := ns.IPTables
	if v6 {
		tables = ns.IP6Tables
	}
	for _, t := range iptrules.AtHook(tables, hook, nat) {
		out = append(out, hookStep{prio: iptrules.Priority(t.Name, hook), ipt: t})
	}
	h := strings.ToLower(hook)
	for i := range ns.NFT {
		t := &ns.NFT[i]
		if !t.Sees(v6) || t.IPTablesNFT && ns.TableFor(t.Name, t.Family == "ip6") != nil {
			continue
		}
		for j := range t.Chains {
			if c := &t.Chains[j]; c.Hook == h && (c.Type == "nat") == nat {
				out = append(out, hookStep{prio: c.Priority, nft: t, chain: c})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b hookStep) int { return int(a.prio) - int(b.prio) })
	return out
}

// eval runs p through the step's chain. A mark a rule sets stays in
// p.Mark for the hooks after this one.
func (s hookStep) eval(ns *snapshot.NSState, hook string, p netfilter.Packet, moved []netfilter.Moved, counters bool) netfilter.Verdict {
	if s.ipt != nil {
		return s.ipt.Eval(hook, p, rulesView{ns}, movedIn(moved, ns.Name, p.IPv6()), counters)
	}
	return s.nft.Eval(s.chain, p, nftrules.Env{
		NS:    rulesView{ns},
		Moved: nftMovedIn(moved, ns.Name),
		// iptables MARK targets are followed by the walk when the
		// packet carries its mark.
		MarksElsewhere: nftrules.SetsMarks(ns.NFT) || p.Mark == nil && (iptrules.SetsMarks(ns.IPTables) || iptrules.SetsMarks(ns.IP6Tables)),
		MayDNAT:        nftrules.TranslatesDestinations(ns.NFT) || iptrules.TranslatesDestinations(ns.IPTables) || iptrules.TranslatesDestinations(ns.IP6Tables),
	})
}

// filterHook runs p through the filtering tables at a hook (PREROUTING,
// INPUT, FORWARD, OUTPUT, POSTROUTING) of namespace ns and returns the
// first verdict that drops, or ok with the notes of rules that may have
// matched.
func filterHook(ns *snapshot.NSState, hook string, p netfilter.Packet, moved []netfilter.Moved, counters bool) (drop *netfilter.Verdict, maybe []string) {
	for _, s := range hookSteps(ns, hook, p.IPv6(), false) {
		v := s.eval(ns, hook, p, moved, counters)
		maybe = append(maybe, v.Maybe...)
		if v.Drops() {
			return &v, maybe
		}
	}
	return nil, maybe
}

// natHook runs the request through the nat chains at hook and returns
// the translation verdict, if a rule translates it.
func natHook(ns *snapshot.NSState, hook string, p netfilter.Packet, moved []netfilter.Moved, counters bool) *netfilter.Verdict {
	if p.Reply {
		return nil // conntrack translates replies; nat chains see only the first packet
	}
	// The first nat chain, by priority, that translates the packet
	// decides (an nft nat chain may also drop it, which filter already
	// judged where it matters).
	for _, s := range hookSteps(ns, hook, p.IPv6(), true) {
		v := s.eval(ns, hook, p, moved, counters)
		switch v.Target {
		case "DNAT", "SNAT", "MASQUERADE", "REDIRECT":
			return &v
		}
	}
	return nil
}

// movedIn returns the iptables counters of one namespace and family that
// moved.
func movedIn(moved []netfilter.Moved, ns string, v6 bool) []netfilter.Moved {
	var out []netfilter.Moved
	for _, m := range moved {
		if m.NS == ns && m.IPv6 == v6 && m.Family == "" {
			out = append(out, m)
		}
	}
	return out
}

// nftMovedIn returns the nft counters of namespace ns that moved.
func nftMovedIn(moved []netfilter.Moved, ns string) []netfilter.Moved {
	var out []netfilter.Moved
	for _, m := range moved {
		if m.NS == ns && m.Family != "" {
			out = append(out, m)
		}
	}
	return out
}

// masqueradeFix is the command that masquerades src leaving ns through
// out: a rule at the top of ns's native nft nat postrouting chain when ns
// has one for the family, else an iptables rule.
func masqueradeFix(ns *snapshot.NSState, v6 bool, src, out string) string {
	for _, s := range hookSteps(ns, "POSTROUTING", v6, true) {
		if s.nft == nil {
			continue
		}
		fam := "ip"
		if v6 {
			fam = "ip6"
		}
		return fmt.Sprintf("nft insert rule %s %s %s %s saddr %s oifname %q masquerade", s.nft.Family, s.nft.Name, s.chain.Name, fam, src, out)
	}
	return fmt.Sprintf("%s -t nat -A POSTROUTING -s %s -o %s -j MASQUERADE", iptablesCmd(v6), src, out)
}

// iptablesCmd is the tool that edits a table of the family: iptables or
// ip6tables.
func iptablesCmd(v6 bool) string {
	if v6 {
		return "ip6tables"
	}
	return "iptables"
}

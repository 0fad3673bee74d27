package diagnose

import (
	"fmt"
	"slices"
	"strings"
)

// nftables in the walk: the base chains registered at a hook, ordered by
// priority together with the iptables tables, evaluated into the same
// verdicts the iptables tables give, so that a drop or a translation in a
// native nft chain is explained and fixed as an iptables one is.

// iptablesPriority is the hook priority of each iptables table (nat's
// depends on the hook: dstnat -100, srcnat 100).
func iptablesPriority(table, hook string) int32 {
	switch table {
	case "raw":
		return -300
	case "mangle":
		return -150
	case "security":
		return 50
	case "nat":
		if hook == "PREROUTING" || hook == "OUTPUT" {
			return -100
		}
		return 100
	}
	return 0
}

// hookStep is one chain registered at a hook: an iptables table's
// built-in chain, or an nft base chain.
type hookStep struct {
	prio  int32
	ipt   *Table // the iptables table, or nil
	nft   *NFTTable
	chain *NFTChain
}

// hookSteps lists the chains at hook (PREROUTING, INPUT, FORWARD, OUTPUT,
// POSTROUTING) of ns that see a packet of the family v6 gives, in priority
// order: the nat chains when nat is set, the others otherwise. Tables that
// iptables-nft made are evaluated from iptables-save's view only.
func hookSteps(ns *NSState, hook string, v6, nat bool) []hookStep {
	var out []hookStep
	tables := filterTables[:]
	if nat {
		tables = []string{"nat"}
	}
	for _, tn := range tables {
		t := ns.TableFor(tn, v6)
		if t == nil || !nat && !contains(hookChains[tn], hook) {
			continue
		}
		out = append(out, hookStep{prio: iptablesPriority(tn, hook), ipt: t})
	}
	h := strings.ToLower(hook)
	for i := range ns.NFT {
		t := &ns.NFT[i]
		if !t.forFamily(v6) || t.IPTablesNFT && ns.TableFor(t.Name, t.Family == "ip6") != nil {
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

// eval runs p through the step's chain.
func (s hookStep) eval(ns *NSState, hook string, p packet, moved []Moved, counters bool) verdict {
	if s.ipt != nil {
		e := chainEval{ns: ns.Name, nsState: ns, table: s.ipt, v6: p.v6(), moved: movedIn(moved, ns.Name, p.v6()), counters: counters}
		return e.run(hook, p, 0)
	}
	ev := nftEval{ns: ns, t: s.nft, moved: nftMovedIn(moved, ns.Name), markKnown: !setsMarks(ns, p)}
	if p.mark != nil {
		ev.mark, ev.markKnown = p.mark.v, ev.markKnown && p.mark.known
	}
	v := ev.runBase(s.chain, p)
	if ev.markSet && p.mark != nil {
		*p.mark = markState{v: ev.mark, known: ev.markKnown} // for the hooks after this one
	}
	return v
}

// nftMovedIn returns the nft counters of namespace ns that moved.
func nftMovedIn(moved []Moved, ns string) []Moved {
	var out []Moved
	for _, m := range moved {
		if m.NS == ns && m.Family != "" {
			out = append(out, m)
		}
	}
	return out
}

// runBase evaluates a base chain: a packet that falls through it, or
// returns from it, meets its policy.
func (ev *nftEval) runBase(c *NFTChain, p packet) verdict {
	ev.hook, ev.prio = c.Hook, c.Priority
	mark, markKnown := ev.mark, ev.markKnown
	v := ev.runOnce(c, p)
	if v.NFT != nil && v.NFT.Handle != 0 && v.drops() {
		// Would deleting the dropping rule let p through? Run the
		// chain again without it.
		ev.mark, ev.markKnown = mark, markKnown
		ev.skip = v.NFT
		again := ev.runOnce(c, p)
		ev.skip = nil
		if again.drops() {
			v.NFT.Shadowed = true
		}
	}
	return v
}

// runOnce evaluates base chain c, its policy included.
func (ev *nftEval) runOnce(c *NFTChain, p packet) verdict {
	v := ev.run(c, p, packetHeaders(p), 0)
	if v.Target != "" {
		return v
	}
	pol := strings.ToUpper(c.Policy)
	return verdict{Target: pol, Table: ev.t.Name, Chain: c.Name, Maybe: v.Maybe,
		NFT: &nftPlace{Family: ev.t.Family, Table: ev.t.Name, Chain: c.Name, Text: pol}}
}

// run evaluates chain c for p. A verdict without a target means the
// packet fell through or returned.
func (ev *nftEval) run(c *NFTChain, p packet, hd headers, depth int) verdict {
	var maybe []string
	for i := range c.Rules {
		r := &c.Rules[i]
		if ev.skip != nil && ev.skip.Chain == c.Name && ev.skip.Handle == r.Handle {
			continue
		}
		o := ev.evalRule(r, p, hd)
		if o.m == noMatch {
			continue
		}
		place := nftPlace{Family: ev.t.Family, Table: ev.t.Name, Chain: c.Name, Handle: r.Handle, Text: r.Text}
		mv := ev.movedRule(c.Name, r.Handle)
		if o.m == mayMatch {
			if mv == nil || (o.kind != "drop" && o.kind != "reject") {
				if o.decides() {
					maybe = append(maybe, fmt.Sprintf("%s (%s)", place, strings.Join(o.why, "; ")))
				}
				continue
			}
			// Its counter moved: it matched.
		}
		v := verdict{Table: ev.t.Name, Chain: c.Name, Rule: i + 1, Spec: r.Text, Moved: mv, Maybe: maybe, NFT: &place}
		switch o.kind {
		case "accept", "drop", "reject", "queue", "masquerade":
			v.Target = strings.ToUpper(o.kind)
			return v
		case "dnat":
			v.Target, v.Opts = "DNAT", map[string]string{"--to-destination": o.to}
			return v
		case "snat":
			v.Target, v.Opts = "SNAT", map[string]string{"--to-source": o.to}
			return v
		case "redirect":
			v.Target, v.Opts = "REDIRECT", map[string]string{"--to-ports": o.to}
			return v
		case "return":
			return verdict{Maybe: maybe}
		case "jump", "goto":
			sub := ev.t.Chain(o.chain)
			if sub == nil || depth >= maxChainDepth {
				maybe = append(maybe, fmt.Sprintf("%s (its chain %s is not in the snapshot or nests too deep)", place, o.chain))
				continue
			}
			sv := ev.run(sub, p, hd, depth+1)
			sv.Maybe = append(maybe, sv.Maybe...)
			if sv.Target != "" || o.kind == "goto" {
				return sv
			}
			maybe = sv.Maybe
		}
	}
	return verdict{Maybe: maybe}
}

func (ev *nftEval) movedRule(chain string, handle uint64) *Moved {
	for i := range ev.moved {
		m := &ev.moved[i]
		if m.Family == ev.t.Family && m.Table == ev.t.Name && m.Chain == chain && m.Handle == handle {
			return m
		}
	}
	return nil
}

// nftFix is the command that lets p through where nft verdict v drops it:
// delete the dropping rule; insert an accept rule just before it when a
// later rule would drop p as well; or, for a policy, insert an accept rule
// at the top of the chain.
func nftFix(v *verdict, hook string, p packet) string {
	n := v.NFT
	if n.Handle != 0 && !n.Shadowed {
		return fmt.Sprintf("nft delete rule %s %s %s handle %d", n.Family, n.Table, n.Chain, n.Handle)
	}
	at := ""
	if n.Handle != 0 {
		at = fmt.Sprintf(" position %d", n.Handle)
	}
	var s []string
	if p.In != "" && hook != "OUTPUT" && hook != "POSTROUTING" {
		s = append(s, fmt.Sprintf("iifname %q", p.In))
	}
	if p.Out != "" && hook != "INPUT" && hook != "PREROUTING" {
		s = append(s, fmt.Sprintf("oifname %q", p.Out))
	}
	if p.Reply {
		s = append(s, "ct state established,related")
	}
	return fmt.Sprintf("nft insert rule %s %s %s%s %s accept", n.Family, n.Table, n.Chain, at, strings.Join(s, " "))
}

// masqueradeFix is the command that masquerades src leaving ns through
// out: a rule at the top of ns's native nft nat postrouting chain when ns
// has one for the family, else an iptables rule.
func masqueradeFix(ns *NSState, v6 bool, src, out string) string {
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

// nftDelta returns the nft rule counters of namespace ns that moved from
// bn to an: rules matched by family, table, chain, handle and text.
func nftDelta(ns string, bn, an *NSState) []Moved {
	var out []Moved
	for _, at := range an.NFT {
		bt := findNFT(bn.NFT, at.Family, at.Name)
		if bt == nil {
			continue
		}
		for _, ac := range at.Chains {
			bc := bt.Chain(ac.Name)
			if bc == nil {
				continue
			}
			for i, ar := range ac.Rules {
				for _, br := range bc.Rules {
					if br.Handle == ar.Handle && br.Text == ar.Text && ar.Counter && ar.Packets > br.Packets {
						out = append(out, Moved{NS: ns, Family: at.Family, Table: at.Name, Chain: ac.Name, Rule: i + 1, Handle: ar.Handle,
							Spec: ar.Text, Target: nftTarget(ar.Text), Packets: ar.Packets - br.Packets})
					}
				}
			}
		}
	}
	return out
}

func findNFT(ts []NFTTable, family, name string) *NFTTable {
	for i := range ts {
		if ts[i].Family == family && ts[i].Name == name {
			return &ts[i]
		}
	}
	return nil
}

// nftTarget names a rule's verdict from its text, as iptables names
// targets: "DROP", "ACCEPT", "MASQUERADE"; "" when it has none.
func nftTarget(text string) string {
	w := strings.Fields(text)
	if len(w) == 0 {
		return ""
	}
	switch last := w[len(w)-1]; last {
	case "drop", "accept", "reject", "masquerade", "queue", "return":
		return strings.ToUpper(last)
	}
	for _, k := range []string{"dnat", "snat", "redirect", "jump", "goto"} {
		if slices.Contains(w, k) {
			return strings.ToUpper(k)
		}
	}
	return ""
}

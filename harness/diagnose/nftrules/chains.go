package nftrules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
)

// Running a base chain for a packet: its rules in order, through jumps,
// gotos and returns, to the chain's policy, into the verdicts the
// iptables tables give, so that a drop or a translation in a native nft
// chain is explained and fixed as an iptables one is.

// Env is what evaluating a chain knows of its namespace beyond the
// ruleset.
type Env struct {
	// NS is the namespace, for interfaces (meta iif) and address types
	// (fib ... type).
	NS netfilter.Namespace
	// Moved are the namespace's nft counters that moved during the
	// probe: a rule that may match and drops is taken as certain when
	// its counter moved. (A counter that did not move is not taken as a
	// miss: the rule may be new since the counters were read.)
	Moved []netfilter.Moved
	// MarksElsewhere is set when rules the evaluation does not follow
	// (in other hooks, or iptables rules where the packet carries no
	// Mark) may set the packet mark: the mark is then unknown from the
	// start rather than 0.
	MarksElsewhere bool
	// MayDNAT is set when a rule of the namespace may translate a
	// destination, so that a forwarded request's ct status is not known.
	MayDNAT bool
}

// Eval runs p through base chain c of t and returns what it decides: a
// rule's verdict, or the chain's policy; a packet that falls through or
// returns meets the policy. A drop whose deletion would still leave p
// dropped is marked Shadowed. A mark a rule sets becomes p.Mark, for the
// hooks after this one.
func (t *Table) Eval(c *Chain, p netfilter.Packet, env Env) netfilter.Verdict {
	ev := evaluator{env: env, t: t, markKnown: !env.MarksElsewhere}
	if p.Mark != nil {
		ev.mark, ev.markKnown = p.Mark.Value, ev.markKnown && p.Mark.Known
	}
	v := ev.runBase(c, p)
	if ev.markSet && p.Mark != nil {
		*p.Mark = netfilter.Mark{Value: ev.mark, Known: ev.markKnown}
	}
	return v
}

// runBase evaluates a base chain: a packet that falls through it, or
// returns from it, meets its policy.
func (ev *evaluator) runBase(c *Chain, p netfilter.Packet) netfilter.Verdict {
	ev.hook, ev.prio = c.Hook, c.Priority
	mark, markKnown := ev.mark, ev.markKnown
	v := ev.runOnce(c, p)
	if v.NFT != nil && v.NFT.Handle != 0 && v.Drops() {
		// Would deleting the dropping rule let p through? Run the
		// chain again without it.
		ev.mark, ev.markKnown = mark, markKnown
		ev.skip = v.NFT
		again := ev.runOnce(c, p)
		ev.skip = nil
		if again.Drops() {
			v.NFT.Shadowed = true
		}
	}
	return v
}

// runOnce evaluates base chain c, its policy included.
func (ev *evaluator) runOnce(c *Chain, p netfilter.Packet) netfilter.Verdict {
	v := ev.run(c, p, packetHeaders(p), 0)
	if v.Target != "" {
		return v
	}
	pol := strings.ToUpper(c.Policy)
	return netfilter.Verdict{Target: pol, Table: ev.t.Name, Chain: c.Name, Maybe: v.Maybe,
		NFT: &netfilter.NFTPlace{Family: ev.t.Family, Table: ev.t.Name, Chain: c.Name, Text: pol}}
}

// run evaluates chain c for p. A verdict without a target means the
// packet fell through or returned.
func (ev *evaluator) run(c *Chain, p netfilter.Packet, hd headers, depth int) netfilter.Verdict {
	var maybe []string
	for i := range c.Rules {
		r := &c.Rules[i]
		if ev.skip != nil && ev.skip.Chain == c.Name && ev.skip.Handle == r.Handle {
			continue
		}
		o := ev.evalRule(r, p, hd)
		if o.m == netfilter.NoMatch {
			continue
		}
		place := netfilter.NFTPlace{Family: ev.t.Family, Table: ev.t.Name, Chain: c.Name, Handle: r.Handle, Text: r.Text}
		mv := ev.movedRule(c.Name, r.Handle)
		if o.m == netfilter.MayMatch {
			if mv == nil || (o.kind != "drop" && o.kind != "reject") {
				if o.decides() {
					maybe = append(maybe, fmt.Sprintf("%s (%s)", place, strings.Join(o.why, "; ")))
				}
				continue
			}
			// Its counter moved: it matched.
		}
		v := netfilter.Verdict{Table: ev.t.Name, Chain: c.Name, Rule: i + 1, Spec: r.Text, Moved: mv, Maybe: maybe, NFT: &place}
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
			return netfilter.Verdict{Maybe: maybe}
		case "jump", "goto":
			sub := ev.t.chain(o.chain)
			if sub == nil || depth >= netfilter.MaxChainDepth {
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
	return netfilter.Verdict{Maybe: maybe}
}

func (ev *evaluator) movedRule(chain string, handle uint64) *netfilter.Moved {
	for i := range ev.env.Moved {
		m := &ev.env.Moved[i]
		if m.Family == ev.t.Family && m.Table == ev.t.Name && m.Chain == chain && m.Handle == handle {
			return m
		}
	}
	return nil
}

// Fix is the command that lets p through at hook (PREROUTING, INPUT,
// FORWARD, OUTPUT, POSTROUTING) where the nft rule or policy at n drops
// it: delete the dropping rule; insert an accept rule just before it when
// a later rule would drop p as well (n.Shadowed); or, for a policy,
// insert an accept rule at the top of the chain.
func Fix(n *netfilter.NFTPlace, hook string, p netfilter.Packet) string {
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

// Delta returns the rule counters of namespace ns that moved from the
// tables before to the tables after: rules matched by family, table,
// chain, handle and text.
func Delta(ns string, before, after []Table) []netfilter.Moved {
	var out []netfilter.Moved
	for _, at := range after {
		bt := find(before, at.Family, at.Name)
		if bt == nil {
			continue
		}
		for _, ac := range at.Chains {
			bc := bt.chain(ac.Name)
			if bc == nil {
				continue
			}
			for i, ar := range ac.Rules {
				for _, br := range bc.Rules {
					if br.Handle == ar.Handle && br.Text == ar.Text && ar.Counter && ar.Packets > br.Packets {
						out = append(out, netfilter.Moved{NS: ns, Family: at.Family, Table: at.Name, Chain: ac.Name, Rule: i + 1, Handle: ar.Handle,
							Spec: ar.Text, Target: target(ar.Text), Packets: ar.Packets - br.Packets})
					}
				}
			}
		}
	}
	return out
}

func find(ts []Table, family, name string) *Table {
	for i := range ts {
		if ts[i].Family == family && ts[i].Name == name {
			return &ts[i]
		}
	}
	return nil
}

// target names a rule's verdict from its text, as iptables names
// targets: "DROP", "ACCEPT", "MASQUERADE"; "" when it has none.
func target(text string) string {
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

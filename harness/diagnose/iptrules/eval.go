package iptrules

import (
	"fmt"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
)

// Evaluating a table's chains for a packet: rule by rule, through jumps,
// gotos and returns, to the built-in chain's policy.

// Eval runs p through t's built-in chain hook (PREROUTING, INPUT,
// FORWARD, OUTPUT, POSTROUTING) in namespace ns, and returns what it
// decides: a rule's target, or the chain's policy. moved are the
// counters of t's namespace and p's family that moved during the probe:
// a rule that may match and drops is taken as certain when its counter
// moved. counted reports whether moved is known (the counters were taken
// before the probe): then a rule that may match but did not count the
// packet is taken as missing it; else it is only noted in Maybe. MARK
// rules that match change p.Mark for the hooks after this one.
func (t *Table) Eval(hook string, p netfilter.Packet, ns netfilter.Namespace, moved []netfilter.Moved, counted bool) netfilter.Verdict {
	e := chainEval{ns: ns, table: t, v6: p.IPv6(), moved: moved, counters: counted}
	return e.run(hook, p, 0)
}

// chainEval evaluates the chains of one table of one namespace.
type chainEval struct {
	// ns is the namespace, for matches that depend on its addresses
	// (addrtype).
	ns    netfilter.Namespace
	table *Table
	// v6 is set for an ip6tables table.
	v6 bool
	// moved are the counters of this namespace that moved during the
	// probe; a drop whose counter moved is taken as certain even when
	// its rule is not fully understood.
	moved []netfilter.Moved
	// counters reports whether moved is known (the namespace's counters
	// were taken before the probe). Without it, a rule that may match and
	// drops is only noted.
	counters bool
}

// run evaluates chain for p. For a built-in chain the result always has a
// target (the policy at the end); a user chain that falls through returns
// an empty target.
func (e *chainEval) run(chain string, p netfilter.Packet, depth int) netfilter.Verdict {
	c := e.table.Chain(chain)
	if c == nil || depth > netfilter.MaxChainDepth {
		return netfilter.Verdict{}
	}
	var maybe []string
	for i, r := range c.Rules {
		pr := Parse(r.Spec)
		m := pr.Match(p, e.ns)
		if m == netfilter.NoMatch {
			continue
		}
		mv := e.movedRule(chain, i+1, r.Spec)
		if m == netfilter.MayMatch {
			switch {
			case mv != nil && (pr.Target == "DROP" || pr.Target == "REJECT"):
				// Its counter moved: it matched.
			case mv == nil && e.counters:
				continue // it would have counted the packet
			default:
				if pr.Target != "" && pr.Target != "LOG" {
					maybe = append(maybe, fmt.Sprintf("rule %d of %s/%s `%s`", i+1, e.table.Name, chain, r.Spec))
				}
				if ruleSetsMark(e.table, pr, depth) {
					p.Mark.Forget() // the mark may or may not have been changed
				}
				continue
			}
		}
		v := netfilter.Verdict{Target: pr.Target, Table: e.table.Name, Chain: chain, IPv6: e.v6, Rule: i + 1, Spec: r.Spec, Opts: pr.Opts, Moved: mv, Maybe: maybe}
		switch pr.Target {
		case "ACCEPT", "DROP", "REJECT", "DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP":
			return v
		case "RETURN":
			if c.Policy == "" {
				return netfilter.Verdict{Maybe: maybe}
			}
			return e.policy(c, maybe)
		case "MARK":
			if m == netfilter.Matches {
				setMark(p.Mark, pr.Opts)
			}
			continue
		case "", "LOG", "NFLOG", "CONNMARK", "CT", "NOTRACK", "TRACE", "CHECKSUM", "TCPMSS", "TTL", "TOS", "DSCP", "CLASSIFY":
			continue
		default:
			if e.table.Chain(pr.Target) == nil {
				continue // an extension target that does not decide
			}
			sub := e.run(pr.Target, p, depth+1)
			sub.Maybe = append(maybe, sub.Maybe...)
			if sub.Target != "" || pr.goto_ {
				if sub.Target == "" && c.Policy != "" {
					return e.policy(c, sub.Maybe)
				}
				return sub
			}
			maybe = sub.Maybe
		}
	}
	if c.Policy == "" {
		return netfilter.Verdict{Maybe: maybe}
	}
	return e.policy(c, maybe)
}

func (e *chainEval) policy(c *Chain, maybe []string) netfilter.Verdict {
	return netfilter.Verdict{Target: c.Policy, Table: e.table.Name, Chain: c.Name, IPv6: e.v6, Moved: e.movedRule(c.Name, 0, ""), Maybe: maybe}
}

func (e *chainEval) movedRule(chain string, rule int, spec string) *netfilter.Moved {
	for i := range e.moved {
		m := &e.moved[i]
		if m.Table == e.table.Name && m.Chain == chain && m.Rule == rule && m.Spec == spec {
			return m
		}
	}
	return nil
}

// TranslatesDestinations reports whether a rule of ts may translate a
// destination: a DNAT or REDIRECT target.
func TranslatesDestinations(ts []Table) bool {
	return anySpec(ts, func(spec string) bool {
		return strings.Contains(spec, "-j DNAT") || strings.Contains(spec, "-j REDIRECT")
	})
}

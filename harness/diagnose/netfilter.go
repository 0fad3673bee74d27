package diagnose

import (
	"fmt"
	"strings"
)

// Netfilter: chains and policies evaluated at each hook, in the order of
// the tables' priorities, and the finding when one drops the packet.

// verdict is what a chain (or a hook's tables) decided for a packet.
type verdict struct {
	// Target is ACCEPT, DROP, REJECT, or for nat a translation target
	// (DNAT, SNAT, MASQUERADE, REDIRECT); "" when a user chain fell
	// through.
	Target string
	Table  string
	Chain  string
	// Rule is the deciding rule's position from 1, 0 for the policy.
	Rule int
	Spec string
	// Opts are the target's options.
	Opts map[string]string
	// Moved is the deciding counter's movement during the probe, when it
	// moved.
	Moved *Moved
	// Maybe lists rules that may have matched before the decision, which
	// makes the decision uncertain.
	Maybe []string
}

// drops reports whether v drops the packet.
func (v verdict) drops() bool { return v.Target == "DROP" || v.Target == "REJECT" }

// describe names the decision: "the DROP policy of filter/FORWARD" or
// "rule 2 of filter/FORWARD `-i br0 -j DROP`".
func (v verdict) describe() string {
	if v.Rule == 0 {
		return fmt.Sprintf("the %s policy of %s/%s", v.Target, v.Table, v.Chain)
	}
	return fmt.Sprintf("rule %d of %s/%s `%s`", v.Rule, v.Table, v.Chain, v.Spec)
}

// maxChainDepth bounds jumps between user chains (iptables itself refuses
// loops; a malformed snapshot must not recurse for ever).
const maxChainDepth = 16

// chainEval evaluates the chains of one table of one namespace.
type chainEval struct {
	ns    string
	table *Table
	// moved are the counters of this namespace that moved during the
	// probe; a drop whose counter moved is taken as certain even when
	// its rule is not fully understood.
	moved []Moved
	// counters reports whether moved is known (the namespace's counters
	// were taken before the probe). Without it, a rule that may match and
	// drops is only noted.
	counters bool
}

// run evaluates chain for p. For a built-in chain the result always has a
// target (the policy at the end); a user chain that falls through returns
// an empty target.
func (e *chainEval) run(chain string, p packet, depth int) verdict {
	c := e.table.Chain(chain)
	if c == nil || depth > maxChainDepth {
		return verdict{}
	}
	var maybe []string
	for i, r := range c.Rules {
		pr := parseRule(r.Spec)
		m := matchRule(pr, p)
		if m == noMatch {
			continue
		}
		mv := e.movedRule(chain, i+1, r.Spec)
		if m == mayMatch {
			switch {
			case mv != nil && (pr.target == "DROP" || pr.target == "REJECT"):
				// Its counter moved: it matched.
			case mv == nil && e.counters:
				continue // it would have counted the packet
			default:
				if pr.target != "" && pr.target != "LOG" {
					maybe = append(maybe, fmt.Sprintf("rule %d of %s/%s `%s`", i+1, e.table.Name, chain, r.Spec))
				}
				continue
			}
		}
		v := verdict{Target: pr.target, Table: e.table.Name, Chain: chain, Rule: i + 1, Spec: r.Spec, Opts: pr.opts, Moved: mv, Maybe: maybe}
		switch pr.target {
		case "ACCEPT", "DROP", "REJECT", "DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP":
			return v
		case "RETURN":
			if c.Policy == "" {
				return verdict{Maybe: maybe}
			}
			return e.policy(c, maybe)
		case "", "LOG", "NFLOG", "MARK", "CONNMARK", "CT", "NOTRACK", "TRACE", "CHECKSUM", "TCPMSS", "TTL", "TOS", "DSCP", "CLASSIFY":
			continue
		default:
			if e.table.Chain(pr.target) == nil {
				continue // an extension target that does not decide
			}
			sub := e.run(pr.target, p, depth+1)
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
		return verdict{Maybe: maybe}
	}
	return e.policy(c, maybe)
}

func (e *chainEval) policy(c *Chain, maybe []string) verdict {
	return verdict{Target: c.Policy, Table: e.table.Name, Chain: c.Name, Moved: e.movedRule(c.Name, 0, ""), Maybe: maybe}
}

func (e *chainEval) movedRule(chain string, rule int, spec string) *Moved {
	for i := range e.moved {
		m := &e.moved[i]
		if m.Table == e.table.Name && m.Chain == chain && m.Rule == rule && m.Spec == spec {
			return m
		}
	}
	return nil
}

// filterTables are the tables that can drop a packet, in the order of
// their hook priorities (raw -300, mangle -150, filter 0, security 50).
var filterTables = [...]string{"raw", "mangle", "filter", "security"}

// hookChains says which built-in chains exist in which table.
var hookChains = map[string][]string{
	"raw":      {"PREROUTING", "OUTPUT"},
	"mangle":   {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"filter":   {"INPUT", "FORWARD", "OUTPUT"},
	"security": {"INPUT", "FORWARD", "OUTPUT"},
}

// filterHook runs p through the filtering tables at a hook (PREROUTING,
// INPUT, FORWARD, OUTPUT, POSTROUTING) of namespace ns and returns the
// first verdict that drops, or ok with the notes of rules that may have
// matched.
func filterHook(ns *NSState, hook string, p packet, moved []Moved, counters bool) (drop *verdict, maybe []string) {
	for _, tn := range filterTables {
		t := ns.Table(tn)
		if t == nil || !contains(hookChains[tn], hook) {
			continue
		}
		e := chainEval{ns: ns.Name, table: t, moved: movedIn(moved, ns.Name), counters: counters}
		v := e.run(hook, p, 0)
		maybe = append(maybe, v.Maybe...)
		if v.drops() {
			return &v, maybe
		}
	}
	return nil, maybe
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

func movedIn(moved []Moved, ns string) []Moved {
	var out []Moved
	for _, m := range moved {
		if m.NS == ns {
			out = append(out, m)
		}
	}
	return out
}

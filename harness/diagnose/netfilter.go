package diagnose

import (
	"fmt"
	"net/netip"
	"strconv"
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
	// IPv6 is set for an ip6tables table.
	IPv6 bool
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
	// NFT locates the decision in a native nftables chain; nil for
	// iptables.
	NFT *nftPlace
}

// drops reports whether v drops the packet.
func (v verdict) drops() bool { return v.Target == "DROP" || v.Target == "REJECT" }

// describe names the decision: "the DROP policy of filter/FORWARD" or
// "rule 2 of filter/FORWARD `-i br0 -j DROP`".
func (v verdict) describe() string {
	if v.NFT != nil {
		return v.NFT.String()
	}
	table := v.Table
	if v.IPv6 {
		table = "ip6 " + table
	}
	if v.Rule == 0 {
		return fmt.Sprintf("the %s policy of %s/%s", v.Target, table, v.Chain)
	}
	return fmt.Sprintf("rule %d of %s/%s `%s`", v.Rule, table, v.Chain, v.Spec)
}

// command is the tool that edits v's table: iptables or ip6tables.
func (v verdict) command() string { return iptablesCmd(v.IPv6) }

func iptablesCmd(v6 bool) string {
	if v6 {
		return "ip6tables"
	}
	return "iptables"
}

// maxChainDepth bounds jumps between user chains (iptables itself refuses
// loops; a malformed snapshot must not recurse for ever).
const maxChainDepth = 16

// chainEval evaluates the chains of one table of one namespace.
type chainEval struct {
	ns string
	// nsState is the namespace, for matches that depend on its
	// addresses (addrtype); nil when unknown.
	nsState *NSState
	table   *Table
	// v6 is set for an ip6tables table.
	v6 bool
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
		m := matchRuleIn(pr, p, e.nsState)
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
				if ruleSetsMark(e.table, pr, depth) {
					p.mark.forget() // the mark may or may not have been changed
				}
				continue
			}
		}
		v := verdict{Target: pr.target, Table: e.table.Name, Chain: chain, IPv6: e.v6, Rule: i + 1, Spec: r.Spec, Opts: pr.opts, Moved: mv, Maybe: maybe}
		switch pr.target {
		case "ACCEPT", "DROP", "REJECT", "DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP":
			return v
		case "RETURN":
			if c.Policy == "" {
				return verdict{Maybe: maybe}
			}
			return e.policy(c, maybe)
		case "MARK":
			if m == matches {
				setMark(p.mark, pr.opts)
			}
			continue
		case "", "LOG", "NFLOG", "CONNMARK", "CT", "NOTRACK", "TRACE", "CHECKSUM", "TCPMSS", "TTL", "TOS", "DSCP", "CLASSIFY":
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
	return verdict{Target: c.Policy, Table: e.table.Name, Chain: c.Name, IPv6: e.v6, Moved: e.movedRule(c.Name, 0, ""), Maybe: maybe}
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
	for _, s := range hookSteps(ns, hook, p.v6(), false) {
		v := s.eval(ns, hook, p, moved, counters)
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
	if v.NFT != nil {
		fix := nftFix(v, hook, p)
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
		f.Fix = fixIn(ns.Name, fmt.Sprintf("%s -t %s -R %s %d %s", v.command(), v.Table, v.Chain, nm.rule, nm.fixed))
		return f
	}
	fix := fmt.Sprintf("%s -t %s -D %s %d", v.command(), v.Table, v.Chain, v.Rule)
	if open := w.openBothWays(ns, hook, p, v); open != "" {
		// Deleting this rule would only move the drop.
		f.Summary += "; deleting that rule would not let the flow through (the policy or another rule drops it, or its reply, next), so the flow is accepted ahead of them"
		f.Fix = fixIn(ns.Name, open)
		return f
	}
	if v.Rule == 0 {
		fix = v.command() + " -t " + v.Table + " -I " + v.Chain + " " + w.acceptSpec(ns, hook, p)
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
func (w *walker) openBothWays(ns *NSState, hook string, p packet, v *verdict) string {
	if hook != "FORWARD" || p.Reply || v.Rule == 0 || v.NFT != nil || p.In == "" || p.Out == "" {
		return ""
	}
	reply := packet{Src: p.Dst, Dst: p.Src, SPort: p.DPort, DPort: p.SPort, Proto: p.Proto,
		In: p.Out, Out: p.In, Reply: true, Size: p.Size}
	rv, _ := filterHook(ns, hook, reply, nil, false)
	replyDropped := rv != nil && rv.NFT == nil && rv.Rule != 0 && !(rv.Table == v.Table && rv.Chain == v.Chain && rv.Rule == v.Rule)
	if !replyDropped && !droppedWithout(ns, hook, p, v) {
		return ""
	}
	chain := "FORWARD"
	if t := ns.TableFor("filter", p.v6()); t != nil && t.Chain("DOCKER-USER") != nil {
		chain = "DOCKER-USER"
	}
	cmd := v.command() + " -t filter -I " + chain + " "
	fix := cmd + w.acceptSpec(ns, hook, p)
	if p.In != p.Out && rv != nil && rv.drops() {
		// An accept between the same two interfaces takes the reply too.
		fix += " && " + cmd + acceptSpec(hook, reply)
	}
	return fix
}

// droppedWithout reports whether p is still dropped at hook once rule v
// is deleted.
func droppedWithout(ns *NSState, hook string, p packet, v *verdict) bool {
	cp := *ns
	tables := &cp.IPTables
	if v.IPv6 {
		tables = &cp.IP6Tables
	}
	ts := append([]Table(nil), *tables...)
	for i := range ts {
		if ts[i].Name != v.Table {
			continue
		}
		chains := append([]Chain(nil), ts[i].Chains...)
		for j := range chains {
			if chains[j].Name == v.Chain && v.Rule <= len(chains[j].Rules) {
				rules := append([]Rule(nil), chains[j].Rules[:v.Rule-1]...)
				chains[j].Rules = append(rules, chains[j].Rules[v.Rule:]...)
			}
		}
		ts[i].Chains = chains
	}
	*tables = ts
	q := p
	q.mark = nil
	d, _ := filterHook(&cp, hook, q, nil, false)
	return d != nil
}

// replyAlsoDropped returns, for a request dropped at FORWARD, the command
// that lets its reply through as well when the same hook would drop the
// reply by a policy (a FORWARD policy of DROP with the runtime's accept
// rules gone): a fix for one direction only would move the drop to the
// reply. It returns "" when the reply passes.
func (w *walker) replyAlsoDropped(ns *NSState, hook string, p packet) string {
	if hook != "FORWARD" || p.Reply {
		return ""
	}
	reply := packet{Src: p.Dst, Dst: p.Src, SPort: p.DPort, DPort: p.SPort, Proto: p.Proto,
		In: p.Out, Out: p.In, Reply: true, Size: p.Size}
	v, _ := filterHook(ns, hook, reply, nil, false)
	switch {
	case v == nil:
		return ""
	case v.NFT != nil:
		if v.NFT.Handle != 0 {
			return ""
		}
		return nftFix(v, hook, reply)
	case v.Rule != 0:
		return ""
	}
	return v.command() + " -t " + v.Table + " -I " + v.Chain + " " + acceptSpec(hook, reply)
}

// acceptSpec is acceptSpec for a request that a DNAT of ns sent on: the
// accept names the translated destination, protocol and port, as the
// runtimes' own rules do, so that it opens the published service and not
// every new connection between the two interfaces.
func (w *walker) acceptSpec(ns *NSState, hook string, p packet) string {
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

// movedIn returns the counters of one namespace and family that moved.
func movedIn(moved []Moved, ns string, v6 bool) []Moved {
	var out []Moved
	for _, m := range moved {
		if m.NS == ns && m.IPv6 == v6 && m.Family == "" {
			out = append(out, m)
		}
	}
	return out
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
func (w *walker) nearMiss(ns *NSState, v *verdict, p packet) *miss {
	c := ns.TableFor(v.Table, v.IPv6).Chain(v.Chain)
	if c == nil || p.Reply {
		// A reply's accept rule is the ESTABLISHED one, not a rule of the
		// request's direction.
		return nil
	}
	moved := movedIn(w.moved, ns.Name, v.IPv6)
	for i, r := range c.Rules {
		if v.Rule > 0 && i+1 >= v.Rule {
			break
		}
		pr := parseRule(r.Spec)
		if pr.target != "ACCEPT" || matchRule(pr, p) != noMatch {
			continue
		}
		if (&chainEval{table: &Table{Name: v.Table}, moved: moved}).movedRule(v.Chain, i+1, r.Spec) != nil {
			continue // it matched other packets during the probe: it is right for them
		}
		words, missed, ok := correct(pr.words, p, ns.hasLinkLike)
		if !ok || len(missed) == 0 || len(missed) > 2 {
			continue
		}
		if matchRule(parsedRule{words: words, target: pr.target}, p) != matches {
			continue
		}
		return &miss{rule: i + 1, spec: r.Spec, fixed: joinArgs(words), missed: missed}
	}
	return nil
}

// correct returns rule words with the address, interface and port
// options that p does not match set to p's values, and those options as
// written. ok is false when another option does not match, or a negated
// one does not.
//
// A mismatched interface counts only when no interface of the namespace
// matches what the rule names (a typo, a renamed link): a rule written for
// another live interface serves that interface's traffic (another bridge's
// containers), and rewriting it would cut them off.
func correct(words []string, p packet, live func(pattern string) bool) (out, missed []string, ok bool) {
	out = append([]string(nil), words...)
	neg := false
	for i := 0; i < len(out); i++ {
		opt := out[i]
		if opt == "!" {
			neg = true
			continue
		}
		if opt == "-j" || opt == "--jump" || opt == "-g" || opt == "--goto" {
			break
		}
		if i+1 >= len(out) {
			break
		}
		val := out[i+1]
		var good bool
		var repl string
		switch opt {
		case "-s", "--source":
			good, repl = addrIn(p.Src, val), hostPrefix(p.Src)
		case "-d", "--destination":
			good, repl = addrIn(p.Dst, val), hostPrefix(p.Dst)
		case "-i", "--in-interface":
			good, repl = ifMatch(p.In, val), p.In
			if !good && live(val) {
				return nil, nil, false
			}
		case "-o", "--out-interface":
			good, repl = ifMatch(p.Out, val), p.Out
			if !good && live(val) {
				return nil, nil, false
			}
		case "--dport", "--destination-port":
			good, repl = portIn(p.DPort, val), fmt.Sprint(p.DPort)
		case "--sport", "--source-port":
			good, repl = portIn(p.SPort, val), fmt.Sprint(p.SPort)
		default:
			m := matchRule(parsedRule{words: []string{opt, val}}, p)
			if strings.HasPrefix(opt, "-") && !strings.HasPrefix(val, "-") {
				i++
			}
			if m == noMatch && !neg {
				return nil, nil, false
			}
			neg = false
			continue
		}
		i++
		if neg {
			if good {
				return nil, nil, false
			}
			neg = false
			continue
		}
		if !good {
			if repl == "" || repl == "0" {
				return nil, nil, false
			}
			missed = append(missed, opt+" "+val)
			out[i] = repl
		}
	}
	return out, missed, true
}

// hasLinkLike reports whether an interface of n matches an iptables
// interface pattern ("eth0", "veth+").
func (n *NSState) hasLinkLike(pattern string) bool {
	for _, l := range n.Links {
		if ifMatch(l.Name, pattern) {
			return true
		}
	}
	return false
}

// hostPrefix writes a as iptables-save does: 10.0.0.2/32.
func hostPrefix(a netip.Addr) string { return netip.PrefixFrom(a, a.BitLen()).String() }

// joinArgs joins rule words, quoting those with blanks.
func joinArgs(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		if strings.ContainsAny(w, " \t\"'") {
			w = strconv.Quote(w)
		}
		out[i] = w
	}
	return strings.Join(out, " ")
}

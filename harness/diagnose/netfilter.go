package diagnose

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

// packet is the probe packet as a namespace's netfilter hooks see it.
type packet struct {
	Src, Dst     netip.Addr
	SPort, DPort uint16
	// Proto is "icmp", "tcp" or "udp".
	Proto string
	// In and Out are the input and output interfaces at this hook; ""
	// when the hook has none (In on OUTPUT, Out on PREROUTING).
	In, Out string
	// Reply marks the reply leg: conntrack state ESTABLISHED, where the
	// request is NEW. NAT rules see only the request.
	Reply bool
}

// String formats p as "10.0.0.2 > 203.0.113.8 icmp", with the ports that
// are known for tcp and udp.
func (p packet) String() string {
	src, dst := p.Src.String(), p.Dst.String()
	if p.Proto != "icmp" {
		if p.SPort != 0 {
			src = netip.AddrPortFrom(p.Src, p.SPort).String()
		}
		if p.DPort != 0 {
			dst = netip.AddrPortFrom(p.Dst, p.DPort).String()
		}
	}
	return fmt.Sprintf("%s > %s %s", src, dst, p.Proto)
}

// match is whether a rule matches a packet, as far as the rule can be read.
type match int

const (
	noMatch match = iota
	matches
	// mayMatch: the rule uses a match this package does not model, and
	// the rest of it does not exclude the packet.
	mayMatch
)

// parsedRule is a rule split into its match and its target.
type parsedRule struct {
	words  []string
	target string
	// goto_ is set for -g: the chain does not return to the caller.
	goto_ bool
	// opts are the target's options (--to-destination ...).
	opts map[string]string
}

// parseRule splits spec (iptables-save syntax) into words and finds the
// target and its options.
func parseRule(spec string) parsedRule {
	words, err := scenario.SplitArgs(spec)
	if err != nil {
		words = strings.Fields(spec)
	}
	pr := parsedRule{words: words, opts: map[string]string{}}
	for i := 0; i < len(words); i++ {
		switch words[i] {
		case "-j", "--jump", "-g", "--goto":
			if i+1 >= len(words) {
				continue
			}
			pr.target = words[i+1]
			pr.goto_ = words[i] == "-g" || words[i] == "--goto"
			for j := i + 2; j < len(words); j++ {
				if strings.HasPrefix(words[j], "--") && j+1 < len(words) && !strings.HasPrefix(words[j+1], "--") {
					pr.opts[words[j]] = words[j+1]
					j++
				} else if strings.HasPrefix(words[j], "--") {
					pr.opts[words[j]] = ""
				}
			}
			return pr
		}
	}
	return pr
}

// matchRule decides whether rule r matches p. Only the options hopcheck
// scenarios and tutorials use are modelled: addresses, interfaces,
// protocol, ports, icmp type, conntrack state; anything else makes the
// answer mayMatch unless a modelled option already excludes p.
func matchRule(r parsedRule, p packet) match {
	res := matches
	w := r.words
	neg := false
	for i := 0; i < len(w); i++ {
		opt := w[i]
		if opt == "!" {
			neg = true
			continue
		}
		if opt == "-j" || opt == "--jump" || opt == "-g" || opt == "--goto" {
			break
		}
		val := ""
		if i+1 < len(w) {
			val = w[i+1]
		}
		var m match
		switch opt {
		case "-s", "--source":
			m = boolMatch(addrIn(p.Src, val))
			i++
		case "-d", "--destination":
			m = boolMatch(addrIn(p.Dst, val))
			i++
		case "-i", "--in-interface":
			m = boolMatch(ifMatch(p.In, val))
			i++
		case "-o", "--out-interface":
			m = boolMatch(ifMatch(p.Out, val))
			i++
		case "-p", "--protocol":
			m = boolMatch(protoMatch(p.Proto, val))
			i++
		case "-m", "--match":
			i++
			neg = false
			continue
		case "--comment":
			i++
			neg = false
			continue
		case "--dport", "--destination-port":
			m = boolMatch(portIn(p.DPort, val) && p.Proto != "icmp")
			i++
		case "--sport", "--source-port":
			m = boolMatch(portIn(p.SPort, val) && p.Proto != "icmp")
			i++
		case "--dports", "--destination-ports":
			m = boolMatch(portList(p.DPort, val) && p.Proto != "icmp")
			i++
		case "--sports", "--source-ports":
			m = boolMatch(portList(p.SPort, val) && p.Proto != "icmp")
			i++
		case "--state", "--ctstate":
			m = stateMatch(p.Reply, val)
			i++
		case "--icmp-type":
			m = icmpTypeMatch(p, val)
			i++
		case "--syn":
			m = boolMatch(p.Proto == "tcp" && !p.Reply)
		default:
			// An option we do not model; skip its values.
			m = mayMatch
			for i+1 < len(w) && !strings.HasPrefix(w[i+1], "-") && w[i+1] != "!" {
				i++
			}
		}
		if neg && m != mayMatch {
			m = boolMatch(m == noMatch)
		}
		neg = false
		switch m {
		case noMatch:
			return noMatch
		case mayMatch:
			res = mayMatch
		}
	}
	return res
}

func boolMatch(b bool) match {
	if b {
		return matches
	}
	return noMatch
}

// addrIn reports whether a is in val: an address, a prefix, or a comma
// list of either.
func addrIn(a netip.Addr, val string) bool {
	for _, v := range strings.Split(val, ",") {
		if p, err := netip.ParsePrefix(v); err == nil && p.Contains(a) {
			return true
		}
		if b, err := netip.ParseAddr(v); err == nil && b == a {
			return true
		}
	}
	return false
}

// ifMatch reports whether interface name matches pattern ("eth+" matches
// every name starting with "eth"). A hook without that interface matches
// nothing.
func ifMatch(name, pattern string) bool {
	if name == "" {
		return false
	}
	if p, ok := strings.CutSuffix(pattern, "+"); ok {
		return strings.HasPrefix(name, p)
	}
	return name == pattern
}

func protoMatch(proto, val string) bool {
	switch strings.ToLower(val) {
	case "all", "0":
		return true
	case "icmp", "1":
		return proto == "icmp"
	case "tcp", "6":
		return proto == "tcp"
	case "udp", "17":
		return proto == "udp"
	}
	return false
}

// portIn reports whether port is val: "80" or a range "8000:8080".
func portIn(port uint16, val string) bool {
	lo, hi, isRange := strings.Cut(val, ":")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return false
	}
	if !isRange {
		return uint64(port) == a
	}
	b := uint64(65535)
	if hi != "" {
		if b, err = strconv.ParseUint(hi, 10, 16); err != nil {
			return false
		}
	}
	return uint64(port) >= a && uint64(port) <= b
}

// portList reports whether port is in a multiport list "80,443,8000:8080".
func portList(port uint16, val string) bool {
	for _, v := range strings.Split(val, ",") {
		if portIn(port, v) {
			return true
		}
	}
	return false
}

// stateMatch matches a conntrack state list: the request is NEW, the
// reply ESTABLISHED.
func stateMatch(reply bool, val string) match {
	want := "NEW"
	if reply {
		want = "ESTABLISHED"
	}
	for _, s := range strings.Split(val, ",") {
		if s == want {
			return matches
		}
		if s == "DNAT" || s == "SNAT" {
			return mayMatch
		}
	}
	return noMatch
}

// icmpTypeMatch matches the echo request (the request leg) and echo reply.
func icmpTypeMatch(p packet, val string) match {
	if p.Proto != "icmp" {
		return noMatch
	}
	t, _, _ := strings.Cut(val, "/")
	switch t {
	case "any", "255":
		return matches
	case "echo-request", "8":
		return boolMatch(!p.Reply)
	case "echo-reply", "0":
		return boolMatch(p.Reply)
	}
	return mayMatch
}

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

func movedIn(moved []Moved, ns string) []Moved {
	var out []Moved
	for _, m := range moved {
		if m.NS == ns {
			out = append(out, m)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

package check

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

// listedRule is one "-A CHAIN ..." line of `iptables -v -S CHAIN`.
type listedRule struct {
	// Line is the line as iptables printed it, counters removed.
	Line string
	// Spec is the rule spec after "-A CHAIN", counters removed.
	Spec []string
	// HasCounters says Packets and Bytes were printed (-v).
	HasCounters bool
	Packets     uint64
	Bytes       uint64
}

// parseListedRule parses one line of `iptables [-v] -S CHAIN` output for
// chain. ok is false for lines that are not rules of chain (-P policy and
// -N chain lines). Counters are "-c PKTS BYTES", which iptables-nft prints
// before the target and go-iptables moves to the end when it rewrites
// iptables-save style "[PKTS:BYTES]" prefixes; both are handled by taking
// "-c" wherever it is.
func parseListedRule(line, chain string) (r listedRule, ok bool, err error) {
	args, err := scenario.SplitArgs(line)
	if err != nil {
		return r, false, err
	}
	if len(args) < 2 || args[0] != "-A" || args[1] != chain {
		return r, false, nil
	}
	spec := args[2:]
	for i := 0; i < len(spec); i++ {
		if spec[i] != "-c" {
			continue
		}
		if i+2 >= len(spec) {
			return r, false, fmt.Errorf("iptables listing %q: -c without two counters", line)
		}
		p, perr := strconv.ParseUint(spec[i+1], 10, 64)
		b, berr := strconv.ParseUint(spec[i+2], 10, 64)
		if perr != nil || berr != nil {
			return r, false, fmt.Errorf("iptables listing %q: counters %q %q are not numbers", line, spec[i+1], spec[i+2])
		}
		r.HasCounters, r.Packets, r.Bytes = true, p, b
		spec = slices.Delete(slices.Clone(spec), i, i+3)
		break
	}
	r.Spec = spec
	r.Line = strings.Join(append([]string{"-A", chain}, quoteArgs(spec)...), " ")
	return r, true, nil
}

// quoteArgs quotes the arguments that need it, as iptables -S does.
func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'\\") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return out
}

// canonicalRule returns a form of an iptables rule spec that is the same for
// a rule as a scenario writes it and as `iptables -S` prints it back, so
// the listing line (and its counters) of a rule can be found.
//
// The spec is cut into option groups ("! -o br0", "--dport 80"), each
// group is normalised the way iptables does when it stores a rule, and the
// groups are sorted, because iptables prints matches in its own order
// (-p before -m multiport). What is normalised:
//
//   - long option names to short (--source → -s, --jump → -j, ...) and
//     --destination-port/--source-port to --dport/--sport;
//   - "-s ! X" (old negation) to "! -s X";
//   - addresses of -s/-d to masked CIDR (10.0.0.5/24 → 10.0.0.0/24,
//     10.0.0.1 → 10.0.0.1/32, netmask → prefix length);
//   - -p names lowercased, numbers 1/6/17/58/132 to names, and -p all
//     dropped; the implicit "-m tcp" (udp, icmp ...) iptables adds dropped;
//   - --state and --ctstate lists sorted; --icmp-type names to numbers;
//     --syn to the --tcp-flags it stands for;
//   - REJECT's default "--reject-with icmp-port-unreachable" added;
//   - DNAT/SNAT "--to" to --to-destination/--to-source;
//   - the counters "-c PKTS BYTES" dropped.
//
// Anything else is compared as written; the exact check of existence is
// `iptables -C`, done by the kernel side, not this.
func canonicalRule(spec []string) []string {
	groups := groupArgs(spec)
	proto, target := "", ""
	for _, g := range groups {
		switch g.opt {
		case "-p":
			proto = canonicalProto(g.first())
		case "-j":
			target = g.first()
		}
	}
	var out []string
	hasRejectWith := false
	for _, g := range groups {
		switch g.opt {
		case "-c":
			continue
		case "-p":
			if proto == "all" && !g.neg {
				continue
			}
			g.vals = []string{proto}
		case "-m":
			if len(g.vals) == 1 && g.vals[0] == proto {
				continue
			}
		case "-s", "-d":
			g.vals = []string{canonicalCIDR(g.first())}
		case "--state", "--ctstate":
			g.vals = []string{sortedList(g.first())}
		case "--icmp-type":
			g.vals = []string{canonicalICMPType(g.first())}
		case "--syn":
			g.opt, g.vals = "--tcp-flags", []string{"FIN,SYN,RST,ACK", "SYN"}
		case "--reject-with":
			hasRejectWith = true
		case "--to":
			switch target {
			case "DNAT":
				g.opt = "--to-destination"
			case "SNAT":
				g.opt = "--to-source"
			}
		}
		out = append(out, g.String())
	}
	if target == "REJECT" && !hasRejectWith {
		out = append(out, "--reject-with icmp-port-unreachable")
	}
	slices.Sort(out)
	return out
}

// argGroup is one option with its negation and values.
type argGroup struct {
	neg  bool
	opt  string
	vals []string
}

func (g argGroup) first() string {
	if len(g.vals) == 0 {
		return ""
	}
	return g.vals[0]
}

// String joins the group with single spaces; values are quoted when they
// hold spaces so that two groups never print the same by accident.
func (g argGroup) String() string {
	parts := make([]string, 0, 2+len(g.vals))
	if g.neg {
		parts = append(parts, "!")
	}
	parts = append(parts, g.opt)
	parts = append(parts, quoteArgs(g.vals)...)
	return strings.Join(parts, " ")
}

// groupArgs cuts a spec into option groups. A group starts at an option
// (an argument that starts with '-' and is not a negative number) or at a
// "!" in front of one; a "!" after the option (the old "-s ! X" form)
// negates the group it is in. The value of a free-text option (--comment,
// --log-prefix) is taken as is, even when it looks like an option.
func groupArgs(spec []string) []argGroup {
	var (
		groups []argGroup
		neg    bool
	)
	for _, a := range spec {
		switch {
		case len(groups) > 0 && takesFreeText(groups[len(groups)-1]):
			// "--log-prefix -j": the word is the option's text.
			g := &groups[len(groups)-1]
			g.vals = append(g.vals, a)
		case a == "!":
			if len(groups) > 0 && len(groups[len(groups)-1].vals) == 0 && !neg {
				// "-s ! X": the option came first.
				groups[len(groups)-1].neg = true
			} else {
				neg = true
			}
		case isOption(a):
			groups = append(groups, argGroup{neg: neg, opt: canonicalOpt(a)})
			neg = false
		case len(groups) == 0:
			// A value before any option: keep it as its own group so it
			// still takes part in the comparison.
			groups = append(groups, argGroup{opt: a})
		default:
			g := &groups[len(groups)-1]
			g.vals = append(g.vals, a)
		}
	}
	return groups
}

// takesFreeText reports whether g is an option whose one value is free
// text (a comment, a log prefix) still waiting for that value.
func takesFreeText(g argGroup) bool {
	switch g.opt {
	case "--comment", "--log-prefix", "--nflog-prefix":
		return len(g.vals) == 0
	}
	return false
}

func isOption(a string) bool {
	if len(a) < 2 || a[0] != '-' {
		return false
	}
	_, err := strconv.Atoi(a)
	return err != nil
}

// canonicalOpt maps the long spellings iptables accepts to the ones
// `iptables -S` prints.
func canonicalOpt(o string) string {
	switch o {
	case "--source", "--src":
		return "-s"
	case "--destination", "--dst":
		return "-d"
	case "--in-interface":
		return "-i"
	case "--out-interface":
		return "-o"
	case "--protocol":
		return "-p"
	case "--jump":
		return "-j"
	case "--goto":
		return "-g"
	case "--match":
		return "-m"
	case "--fragment":
		return "-f"
	case "--set-counters":
		return "-c"
	case "--destination-port":
		return "--dport"
	case "--source-port":
		return "--sport"
	}
	return o
}

func canonicalProto(p string) string {
	p = strings.ToLower(p)
	switch p {
	case "0", "":
		return "all"
	case "1":
		return "icmp"
	case "6":
		return "tcp"
	case "17":
		return "udp"
	case "58", "icmpv6":
		return "ipv6-icmp"
	case "132":
		return "sctp"
	}
	return p
}

// canonicalCIDR masks an address or prefix as iptables stores it: a bare
// address is a /32 (/128), a dotted netmask becomes a prefix length, host
// bits are cleared. Anything unparsable (a hostname) is left alone.
func canonicalCIDR(s string) string {
	addr, mask, hasMask := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return s
	}
	bits := a.BitLen()
	if hasMask {
		if n, err := strconv.Atoi(mask); err == nil {
			bits = n
		} else if m, err := netip.ParseAddr(mask); err == nil && m.Is4() == a.Is4() {
			bits = maskLen(m)
			if bits < 0 {
				return s
			}
		} else {
			return s
		}
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return s
	}
	return p.String()
}

// maskLen returns the prefix length of a contiguous netmask, or -1.
func maskLen(m netip.Addr) int {
	b := m.AsSlice()
	n, done := 0, false
	for _, x := range b {
		for i := 7; i >= 0; i-- {
			set := x&(1<<i) != 0
			switch {
			case set && done:
				return -1
			case set:
				n++
			default:
				done = true
			}
		}
	}
	return n
}

func sortedList(s string) string {
	parts := strings.Split(s, ",")
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// canonicalICMPType maps the ICMP type names iptables accepts to the
// numbers it prints ("echo-request" → "8"); codes print as "TYPE/CODE".
func canonicalICMPType(t string) string {
	switch t {
	case "any":
		return "any"
	case "echo-reply", "pong":
		return "0"
	case "destination-unreachable":
		return "3"
	case "network-unreachable":
		return "3/0"
	case "host-unreachable":
		return "3/1"
	case "protocol-unreachable":
		return "3/2"
	case "port-unreachable":
		return "3/3"
	case "fragmentation-needed":
		return "3/4"
	case "redirect":
		return "5"
	case "echo-request", "ping":
		return "8"
	case "time-exceeded", "ttl-exceeded":
		return "11"
	case "parameter-problem":
		return "12"
	}
	return t
}

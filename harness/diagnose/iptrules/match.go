package iptrules

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
	"github.com/hopcheck/hopcheck/harness/scenario"
)

// Matching one iptables rule against a packet, as far as the rule's
// options are modelled.

// Parsed is a rule split into its match and its target.
type Parsed struct {
	words []string
	// Target is the rule's -j or -g target; "" when it has none.
	Target string
	// goto_ is set for -g: the chain does not return to the caller.
	goto_ bool
	// Opts are the target's options (--to-destination ...).
	Opts map[string]string
}

// Parse splits spec (iptables-save syntax, after "-A CHAIN") into words
// and finds the target and its options.
func Parse(spec string) Parsed {
	words, err := scenario.SplitArgs(spec)
	if err != nil {
		words = strings.Fields(spec)
	}
	pr := Parsed{words: words, Opts: map[string]string{}}
	for i := 0; i < len(words); i++ {
		switch words[i] {
		case "-j", "--jump", "-g", "--goto":
			if i+1 >= len(words) {
				continue
			}
			pr.Target = words[i+1]
			pr.goto_ = words[i] == "-g" || words[i] == "--goto"
			for j := i + 2; j < len(words); j++ {
				if strings.HasPrefix(words[j], "--") && j+1 < len(words) && !strings.HasPrefix(words[j+1], "--") {
					pr.Opts[words[j]] = words[j+1]
					j++
				} else if strings.HasPrefix(words[j], "--") {
					pr.Opts[words[j]] = ""
				}
			}
			return pr
		}
	}
	return pr
}

// Match decides whether rule r matches p in namespace ns; with ns nil no
// namespace's addresses are known, and addrtype matches may match. Only
// the options scenarios, tutorials and container runtimes use are
// modelled: addresses, interfaces, protocol, ports, icmp type,
// conntrack state, addrtype (Docker, netavark and CNI portmap DNAT only
// what is addressed to the node itself: `-m addrtype --dst-type LOCAL`);
// anything else makes the answer MayMatch unless a modelled option
// already excludes p.
func (r Parsed) Match(p netfilter.Packet, ns netfilter.Namespace) netfilter.Match {
	res := netfilter.Matches
	w := r.words
	neg := false
	module := "" // the -m module the options that follow belong to
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
		var m netfilter.Match
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
			m = boolMatch(protoMatch(p.Proto, p.IPv6(), val))
			i++
		case "-m", "--match":
			module = val
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
		case "--icmp-type", "--icmpv6-type":
			m = icmpTypeMatch(p, val)
			i++
		case "--syn":
			m = boolMatch(p.Proto == "tcp" && !p.Reply)
		case "--mark":
			// Only -m mark reads the packet mark; -m connmark --mark
			// is the conntrack mark, which the walk does not follow.
			m = netfilter.MayMatch
			if module == "mark" {
				m = markMatch(p.Mark, val)
			}
			i++
		case "--dst-type":
			m = addrTypeMatch(ns, p.Dst, val)
			i++
		case "--src-type":
			m = addrTypeMatch(ns, p.Src, val)
			i++
		default:
			// An option we do not model; skip its values.
			m = netfilter.MayMatch
			for i+1 < len(w) && !strings.HasPrefix(w[i+1], "-") && w[i+1] != "!" {
				i++
			}
		}
		if neg && m != netfilter.MayMatch {
			m = boolMatch(m == netfilter.NoMatch)
		}
		neg = false
		switch m {
		case netfilter.NoMatch:
			return netfilter.NoMatch
		case netfilter.MayMatch:
			res = netfilter.MayMatch
		}
	}
	return res
}

func boolMatch(b bool) netfilter.Match {
	if b {
		return netfilter.Matches
	}
	return netfilter.NoMatch
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

func protoMatch(proto string, v6 bool, val string) bool {
	switch strings.ToLower(val) {
	case "all", "0":
		return true
	case "icmp", "1":
		return proto == "icmp" && !v6
	case "ipv6-icmp", "icmpv6", "58":
		return proto == "icmp" && v6
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
func stateMatch(reply bool, val string) netfilter.Match {
	want := "NEW"
	if reply {
		want = "ESTABLISHED"
	}
	for _, s := range strings.Split(val, ",") {
		if s == want {
			return netfilter.Matches
		}
		if s == "DNAT" || s == "SNAT" {
			return netfilter.MayMatch
		}
	}
	return netfilter.NoMatch
}

// icmpTypeMatch matches the echo request (the request leg) and echo reply,
// of ICMP for IPv4 and ICMPv6 for IPv6 (--icmp-type, --icmpv6-type).
func icmpTypeMatch(p netfilter.Packet, val string) netfilter.Match {
	if p.Proto != "icmp" {
		return netfilter.NoMatch
	}
	t, _, _ := strings.Cut(val, "/")
	switch t {
	case "any", "255":
		return netfilter.Matches
	case "echo-request":
		return boolMatch(!p.Reply)
	case "echo-reply":
		return boolMatch(p.Reply)
	}
	// Numeric types differ between ICMP (8, 0) and ICMPv6 (128, 129).
	req, rep := "8", "0"
	if p.IPv6() {
		req, rep = "128", "129"
	}
	switch t {
	case req:
		return boolMatch(!p.Reply)
	case rep:
		return boolMatch(p.Reply)
	}
	return netfilter.MayMatch
}

package diagnose

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

// Matching one iptables rule against a packet, as far as the rule's
// options are modelled.

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
	// Size is the IP packet's size in bytes (of each fragment, once it
	// is fragmented); 0 when unknown, and then no MTU is compared.
	Size int
	// DF is set when the packet may not be fragmented on the way.
	DF bool
	// mark is the packet's netfilter mark inside the namespace it is in
	// (MARK sets it, -m mark reads it; runtimes mark published-port
	// traffic in nat PREROUTING to masquerade it in POSTROUTING); shared
	// by the copies of the packet in that namespace, so that what one
	// hook's MARK rule does the next hook's -m mark sees; nil when the
	// walk does not follow it.
	mark *markState
}

// markState is a packet's mark as far as the walk knows it: known is
// unset once a rule that only may match, or a chain the walk cannot say
// is entered, may have changed it.
type markState struct {
	v     uint32
	known bool
}

// forget makes the mark unknown (a no-op without mark state).
func (m *markState) forget() {
	if m != nil {
		m.known = false
	}
}

// v6 reports whether p is an IPv6 packet.
func (p packet) v6() bool { return p.Dst.Is6() && !p.Dst.Is4In6() }

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

// matchRule decides whether rule r matches p, where no namespace's
// addresses are known (addrtype matches may match).
func matchRule(r parsedRule, p packet) match { return matchRuleIn(r, p, nil) }

// matchRuleIn decides whether rule r matches p in namespace ns (nil when
// unknown). Only the options scenarios, tutorials and container runtimes
// use are modelled: addresses, interfaces, protocol, ports, icmp type,
// conntrack state, addrtype (Docker, netavark and CNI portmap DNAT only
// what is addressed to the node itself: `-m addrtype --dst-type LOCAL`);
// anything else makes the answer mayMatch unless a modelled option
// already excludes p.
func matchRuleIn(r parsedRule, p packet, ns *NSState) match {
	res := matches
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
			m = boolMatch(protoMatch(p.Proto, p.v6(), val))
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
			m = mayMatch
			if module == "mark" {
				m = markMatch(p.mark, val)
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

// markMatch matches -m mark --mark VALUE[/MASK] against the packet's mark.
// An unknown mark may match.
func markMatch(mark *markState, val string) match {
	v, m, ok := markValue(val)
	if mark == nil || !mark.known || !ok {
		return mayMatch
	}
	return boolMatch(mark.v&m == v)
}

// markValue parses VALUE[/MASK] (hex or decimal); the mask defaults to
// all bits.
func markValue(val string) (v, mask uint32, ok bool) {
	vs, ms, hasMask := strings.Cut(val, "/")
	a, err := strconv.ParseUint(vs, 0, 32)
	if err != nil {
		return 0, 0, false
	}
	mask = 0xffffffff
	if hasMask {
		b, err := strconv.ParseUint(ms, 0, 32)
		if err != nil {
			return 0, 0, false
		}
		mask = uint32(b)
	}
	return uint32(a), mask, true
}

// setMark applies a MARK target's options to mark: --set-xmark V/M
// (iptables-save writes every form so) clears M and xors V; --set-mark,
// --and-mark, --or-mark and --xor-mark as iptables-extensions(8) says.
// An unknown mark stays unknown unless every bit is set.
func setMark(mark *markState, opts map[string]string) {
	if mark == nil {
		return
	}
	for opt, val := range opts {
		switch opt {
		case "--set-xmark", "--set-mark", "--and-mark", "--or-mark", "--xor-mark":
		default:
			continue
		}
		v, m, ok := markValue(val)
		if !ok {
			mark.forget()
			continue
		}
		switch opt {
		case "--set-xmark":
			mark.v = mark.v&^m ^ v
		case "--set-mark":
			mark.v = mark.v&^m | v
		case "--and-mark":
			mark.v &= v
		case "--or-mark":
			mark.v |= v
		case "--xor-mark":
			mark.v ^= v
		}
		if (opt == "--set-xmark" || opt == "--set-mark") && m == 0xffffffff {
			mark.known = true
		}
	}
}

// chainSetsMark reports whether chain of t, or a chain it jumps to, has
// a rule that changes the packet mark: MARK, or CONNMARK --restore-mark.
func chainSetsMark(t *Table, chain string, depth int) bool {
	c := t.Chain(chain)
	if c == nil || depth > maxChainDepth {
		return false
	}
	for _, r := range c.Rules {
		if pr := parseRule(r.Spec); ruleSetsMark(t, pr, depth) {
			return true
		}
	}
	return false
}

// ruleSetsMark reports whether rule pr of t may change the packet mark,
// itself or in the chain it jumps to.
func ruleSetsMark(t *Table, pr parsedRule, depth int) bool {
	switch pr.target {
	case "MARK":
		return true
	case "CONNMARK":
		_, ok := pr.opts["--restore-mark"]
		return ok
	}
	return chainSetsMark(t, pr.target, depth+1)
}

// addrTypeMatch matches an addrtype list ("LOCAL", "UNICAST,LOCAL")
// against a in ns as xt_addrtype does. Without ns, or for a type not
// modelled, it may match.
func addrTypeMatch(ns *NSState, a netip.Addr, val string) match {
	if ns == nil || !a.IsValid() {
		return mayMatch
	}
	types := strings.Split(strings.ToUpper(val), ",")
	if a.Is6() && !a.Is4In6() {
		return addrTypeMatch6(ns, a, types)
	}
	typ := strings.ToUpper(addrType4(ns, a.Unmap(), ""))
	for _, t := range types {
		switch t {
		case typ:
			return matches
		case "LOCAL", "UNICAST", "BROADCAST", "MULTICAST", "UNREACHABLE", "PROHIBIT", "BLACKHOLE":
		default:
			return mayMatch // ANYCAST, NAT, XRESOLVE, THROW, UNSPEC: not modelled
		}
	}
	return noMatch
}

// addrType4 classifies an IPv4 address as the kernel's
// inet_dev_addr_type does (xt_addrtype and nft fib ... type use it): 0/8
// and 255.255.255.255 are broadcast, 224/4 multicast, else the type of
// the route that covers a in the local table (table 255 only: a
// blackhole route in main does not make a blackhole), else unicast. With
// dev, a route of another device counts as unicast. A snapshot without
// IPv4 local-table routes (built by hand) has its links' addresses
// stand for them.
func addrType4(ns *NSState, a netip.Addr, dev string) string {
	switch {
	case a.As4()[0] == 0 || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return RouteBroadcast
	case a.IsMulticast():
		return "multicast"
	}
	if slices.ContainsFunc(ns.Routes, func(r Route) bool { return r.Table == TableLocal && r.Dst.Addr().Is4() }) {
		r, ok := ns.tableLookup(TableLocal, a)
		if !ok || dev != "" && r.Dev != dev || r.Type == "" {
			return RouteUnicast
		}
		return r.Type
	}
	for _, l := range ns.Links {
		if (dev == "" || l.Name == dev) && l.HasAddr(a) {
			return RouteLocal
		}
		for _, pfx := range l.Addrs {
			if pfx.Addr().Is4() && pfx.Bits() < 31 && a == lastAddr(pfx) {
				return RouteBroadcast
			}
		}
	}
	return RouteUnicast
}

// addrTypeMatch6 matches an IPv6 address as xt_addrtype's match_type6
// does, where the types are not exclusive: each of MULTICAST, UNICAST
// (not multicast, not ::) and UNSPEC (::) that is listed must hold, and
// when LOCAL or UNREACHABLE is listed, one of them must: LOCAL for a
// local route, UNREACHABLE for no route or a blackhole, prohibit or
// unreachable one (RTF_REJECT), by the full route lookup. The kernel
// refuses BROADCAST, BLACKHOLE, PROHIBIT and the rest for IPv6.
func addrTypeMatch6(ns *NSState, a netip.Addr, types []string) match {
	want := map[string]bool{}
	for _, t := range types {
		switch t {
		case "MULTICAST", "UNICAST", "UNSPEC", "LOCAL", "UNREACHABLE", "ANYCAST":
			want[t] = true
		default:
			return mayMatch
		}
	}
	switch {
	case want["MULTICAST"] && !a.IsMulticast(),
		want["UNICAST"] && (a.IsMulticast() || a.IsUnspecified()),
		want["UNSPEC"] && !a.IsUnspecified():
		return noMatch
	}
	if !want["LOCAL"] && !want["UNREACHABLE"] && !want["ANYCAST"] {
		return matches
	}
	r, ok := ns.RouteGet(a)
	switch {
	case want["UNREACHABLE"] && (!ok || r.Type == RouteBlackhole || r.Type == RouteProhibit || r.Type == RouteUnreachable),
		want["LOCAL"] && ok && r.Type == RouteLocal:
		return matches
	case want["ANYCAST"]:
		return mayMatch // anycast addresses are not in the snapshot
	}
	return noMatch
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

// icmpTypeMatch matches the echo request (the request leg) and echo reply,
// of ICMP for IPv4 and ICMPv6 for IPv6 (--icmp-type, --icmpv6-type).
func icmpTypeMatch(p packet, val string) match {
	if p.Proto != "icmp" {
		return noMatch
	}
	t, _, _ := strings.Cut(val, "/")
	switch t {
	case "any", "255":
		return matches
	case "echo-request":
		return boolMatch(!p.Reply)
	case "echo-reply":
		return boolMatch(p.Reply)
	}
	// Numeric types differ between ICMP (8, 0) and ICMPv6 (128, 129).
	req, rep := "8", "0"
	if p.v6() {
		req, rep = "128", "129"
	}
	switch t {
	case req:
		return boolMatch(!p.Reply)
	case rep:
		return boolMatch(p.Reply)
	}
	return mayMatch
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

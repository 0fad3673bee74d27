package diagnose

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Evaluating nftables chains for a packet: pure, over the snapshot's
// expressions. A rule is run expression by expression on a register file
// (nftregs.go); a comparison on a value the walk does not know, or an
// expression this evaluator does not model, makes the rule mayMatch and
// says why, and never matches or misses silently.

// nftEval evaluates the chains of one nftables table of one namespace.
type nftEval struct {
	ns *NSState
	t  *NFTTable
	// moved are this namespace's nft counters that moved during the
	// probe: a rule that may match and drops is taken as certain when
	// its counter moved. (A counter that did not move is not taken as a
	// miss: the rule may be new since the counters were read.)
	moved []Moved
	// mark is the packet mark; markKnown is unset once a rule sets it
	// from something unknown, or from the start when the namespace has
	// rules that set marks in hooks the walk does not follow.
	mark      uint32
	markKnown bool
	// markSet is set once a rule sets the mark, for the packet's mark
	// state to take it (hookStep.eval).
	markSet bool
	// hook is the base chain's hook ("forward"), for what conntrack
	// has done to the packet by then.
	hook string
	// skip is a rule the evaluation leaves out, to see whether deleting
	// it would let the packet through.
	skip *nftPlace
}

// ruleOutcome is what one rule does to a packet.
type ruleOutcome struct {
	m match
	// kind is the rule's verdict: "" (none: the next rule), "accept",
	// "drop", "reject", "queue", "jump", "goto", "return", "dnat",
	// "snat", "masquerade", "redirect", or "vmap" for a verdict map whose
	// key the walk does not know.
	kind  string
	chain string // for jump and goto
	// to is a nat target as iptables writes it: "10.0.0.2:80".
	to  string
	why []string
}

// decides reports whether a rule of this kind ends or diverts the
// chain's evaluation.
func (o ruleOutcome) decides() bool { return o.kind != "" && o.kind != "continue" }

// evalRule runs r's expressions on p.
func (ev *nftEval) evalRule(r *NFTRule, p packet, hd headers) ruleOutcome {
	var rs regs
	out := ruleOutcome{m: matches}
	unknown := func(format string, args ...any) {
		out.m = mayMatch
		out.why = append(out.why, fmt.Sprintf(format, args...))
	}
	// read reads a register some comparison needs; ok is false when the
	// value is not known, which is already noted.
	read := func(reg uint32, n int, what string) ([]byte, bool) {
		b, known, written := rs.get(reg, n)
		switch {
		case !written:
			unknown("%s reads a value of an expression the netlink library does not decode", what)
			return nil, false
		case !known:
			unknown("%s compares a value the walk does not know", what)
			return nil, false
		}
		return b, true
	}
	for _, e := range r.Exprs {
		switch e := e.(type) {
		case *expr.Meta:
			if e.SourceRegister {
				if e.Key == expr.MetaKeyMARK {
					b, known, _ := rs.get(e.Register, 4)
					// A rule that so far only may match may or may
					// not have set it.
					ev.mark, ev.markKnown = binary.NativeEndian.Uint32(b), known && out.m == matches
					ev.markSet = true
				}
				continue
			}
			b, known, present := ev.meta(e.Key, p)
			if !present {
				return ruleOutcome{m: noMatch} // the kernel breaks: no such device at this hook
			}
			rs.set(e.Register, b, known)
		case *expr.Payload:
			if e.OperationType != expr.PayloadLoad {
				continue // a mangling statement
			}
			var src []byte
			var known []bool
			switch e.Base {
			case expr.PayloadBaseNetworkHeader:
				src, known = hd.nh, hd.nhKnown
			case expr.PayloadBaseTransportHeader:
				src, known = hd.th, hd.thKnown
			}
			end := int(e.Offset + e.Len)
			if src == nil || end > len(src) {
				rs.set(e.DestRegister, make([]byte, e.Len), false)
				continue
			}
			rs.setBytes(e.DestRegister, src[e.Offset:end], known[e.Offset:end])
		case *expr.Cmp:
			b, ok := read(e.Register, len(e.Data), "cmp")
			if ok && !cmpHolds(e.Op, cmpBytes(b, e.Data)) {
				return ruleOutcome{m: noMatch}
			}
		case *expr.Range:
			b, ok := read(e.Register, len(e.FromData), "range")
			if ok {
				in := cmpBytes(b, e.FromData) >= 0 && cmpBytes(b, e.ToData) <= 0
				if in != (e.Op == expr.CmpOpEq) {
					return ruleOutcome{m: noMatch}
				}
			}
		case *expr.Bitwise:
			b, known, _ := rs.get(e.SourceRegister, int(e.Len))
			if len(e.Mask) == len(b) && len(e.Xor) == len(b) {
				for i := range b {
					b[i] = b[i]&e.Mask[i] ^ e.Xor[i]
				}
			} else {
				known = false
			}
			rs.set(e.DestRegister, b, known)
		case *expr.Immediate:
			rs.set(e.Register, e.Data, true)
		case *expr.Lookup:
			if o, done := ev.lookup(e, &rs, &out, unknown); done {
				return o
			}
		case *expr.Verdict:
			return ev.verdictOf(e, out)
		case *expr.Ct:
			if e.SourceRegister {
				continue // ct mark set ...
			}
			b, known := ev.ct(e.Key, p)
			rs.set(e.Register, b, known)
		case *expr.Fib:
			b, known := ev.fib(e, p)
			rs.set(e.Register, b, known)
		case *expr.NAT:
			return ev.nat(e, &rs, out, unknown)
		case *expr.Masq:
			out.kind = "masquerade"
			return out
		case *expr.Redir:
			out.kind = "redirect"
			if e.RegisterProtoMin != 0 {
				if b, ok := read(e.RegisterProtoMin, 2, "redirect"); ok {
					out.to = strconv.Itoa(int(binary.BigEndian.Uint16(b)))
				}
			}
			return out
		case *expr.Reject:
			out.kind = "reject"
			return out
		case *expr.Queue:
			out.kind = "queue"
			return out
		case *expr.Counter, *expr.Log, *expr.Limit, *expr.Notrack, *expr.Quota, *expr.Dynset, *expr.Objref:
			// Statements that neither match nor decide (limit and quota
			// are taken as not exceeded by one probe).
		case *expr.Match:
			unknown("xtables match %s", e.Name)
		case *expr.Target:
			unknown("xtables target %s", e.Name)
		default:
			unknown("expression %s", exprName(e))
			if l, ok := loadReg(e); ok {
				rs.set(l, make([]byte, 16), false)
			}
		}
	}
	return out
}

// exprName names an expression type: "*expr.Exthdr" -> "exthdr".
func exprName(e expr.Any) string {
	n := fmt.Sprintf("%T", e)
	return strings.ToLower(n[strings.LastIndexByte(n, '.')+1:])
}

// loadReg returns the register an unmodelled load expression writes.
func loadReg(e expr.Any) (uint32, bool) {
	switch e := e.(type) {
	case *expr.Exthdr:
		return e.DestRegister, e.DestRegister != 0
	case *expr.Hash:
		return e.DestRegister, true
	case *expr.Numgen:
		return e.Register, true
	case *expr.Socket:
		return e.Register, true
	}
	return 0, false
}

func cmpHolds(op expr.CmpOp, c int) bool {
	switch op {
	case expr.CmpOpEq:
		return c == 0
	case expr.CmpOpNeq:
		return c != 0
	case expr.CmpOpLt:
		return c < 0
	case expr.CmpOpLte:
		return c <= 0
	case expr.CmpOpGt:
		return c > 0
	case expr.CmpOpGte:
		return c >= 0
	}
	return false
}

// verdictOf turns a verdict into the rule's outcome.
func (ev *nftEval) verdictOf(v *expr.Verdict, out ruleOutcome) ruleOutcome {
	switch v.Kind {
	case expr.VerdictAccept:
		out.kind = "accept"
	case expr.VerdictDrop:
		out.kind = "drop"
	case expr.VerdictJump:
		out.kind, out.chain = "jump", v.Chain
	case expr.VerdictGoto:
		out.kind, out.chain = "goto", v.Chain
	case expr.VerdictReturn:
		out.kind = "return"
	case expr.VerdictContinue, expr.VerdictBreak:
		out.kind = "continue"
	case expr.VerdictQueue:
		out.kind = "queue"
	default:
		out.m = mayMatch
		out.why = append(out.why, fmt.Sprintf("verdict %d", v.Kind))
	}
	return out
}

// lookup runs a set, map or verdict map lookup. done is set when it ends
// the rule: a miss, or a verdict.
func (ev *nftEval) lookup(e *expr.Lookup, rs *regs, out *ruleOutcome, unknown func(string, ...any)) (ruleOutcome, bool) {
	s := ev.t.Set(e.SetName, e.SetID)
	if s == nil {
		unknown("lookup in set %q, which the snapshot does not hold", e.SetName)
		return ruleOutcome{}, false
	}
	if len(s.Elems) == 0 {
		if e.Invert {
			return ruleOutcome{}, false
		}
		return ruleOutcome{m: noMatch}, true
	}
	b, known, written := rs.get(e.SourceRegister, len(s.Elems[0].Key))
	if !known || !written {
		unknown("lookup in @%s of a value the walk does not know", s.Name)
		if e.IsDestRegSet && e.DestRegister == unix.NFT_REG_VERDICT {
			out.kind = "vmap"
			return *out, true
		}
		if e.IsDestRegSet {
			rs.set(e.DestRegister, make([]byte, 16), false)
		}
		return ruleOutcome{}, false
	}
	el, m := s.find(b)
	if m == mayMatch {
		unknown("lookup in the concatenated ranges of @%s", s.Name)
		return ruleOutcome{}, false
	}
	found := m == matches
	if found == e.Invert {
		return ruleOutcome{m: noMatch}, true
	}
	if !e.IsDestRegSet || el == nil {
		return ruleOutcome{}, false
	}
	if e.DestRegister == unix.NFT_REG_VERDICT {
		if el.Verdict == nil {
			unknown("verdict map @%s has an element without a verdict", s.Name)
			return ruleOutcome{}, false
		}
		return ev.verdictOf(el.Verdict, *out), true
	}
	rs.set(e.DestRegister, el.Val, true)
	return ruleOutcome{}, false
}

// find looks key up in s: the element that holds it, and matches,
// noMatch, or mayMatch for a key inside a concatenated range (whose fields
// this reader cannot tell apart).
func (s *NFTSet) find(key []byte) (*NFTElem, match) {
	if !s.Interval {
		for i := range s.Elems {
			if cmpBytes(s.Elems[i].Key, key) == 0 {
				return &s.Elems[i], matches
			}
		}
		return nil, noMatch
	}
	res := noMatch
	if s.Elems[0].KeyEnd != nil {
		for i := range s.Elems {
			el := &s.Elems[i]
			switch {
			case cmpBytes(el.Key, key) == 0 && cmpBytes(el.KeyEnd, key) == 0:
				return el, matches
			case cmpBytes(el.Key, key) <= 0 && cmpBytes(el.KeyEnd, key) >= 0:
				res = mayMatch
			}
		}
		return nil, res
	}
	// Intervals: the element with the greatest key not above key decides;
	// an interval's end is exclusive, and sorts before a start at the
	// same key.
	var best *NFTElem
	for i := range s.Elems {
		el := &s.Elems[i]
		if cmpBytes(el.Key, key) > 0 {
			continue
		}
		if best == nil || cmpBytes(el.Key, best.Key) > 0 || cmpBytes(el.Key, best.Key) == 0 && best.IntervalEnd {
			best = el
		}
	}
	if best == nil || best.IntervalEnd {
		return nil, noMatch
	}
	return best, matches
}

// nat makes the outcome of a dnat or snat statement, with its target
// from the registers.
func (ev *nftEval) nat(e *expr.NAT, rs *regs, out ruleOutcome, unknown func(string, ...any)) ruleOutcome {
	out.kind = "snat"
	if e.Type == expr.NATTypeDestNAT {
		out.kind = "dnat"
	}
	var addr netip.Addr
	if e.RegAddrMin != 0 {
		n := 4
		if e.Family == unix.NFPROTO_IPV6 {
			n = 16
		}
		b, known, _ := rs.get(e.RegAddrMin, n)
		if !known {
			unknown("%s to an address the walk does not know", out.kind)
			return out
		}
		addr, _ = netip.AddrFromSlice(b)
	}
	var port uint16
	if e.RegProtoMin != 0 {
		b, known, _ := rs.get(e.RegProtoMin, 2)
		if !known {
			unknown("%s to a port the walk does not know", out.kind)
			return out
		}
		port = binary.BigEndian.Uint16(b)
	}
	switch {
	case port == 0:
		out.to = addr.String()
	case !addr.IsValid():
		out.to = ":" + strconv.Itoa(int(port))
	default:
		out.to = netip.AddrPortFrom(addr, port).String()
	}
	return out
}

// meta loads a meta key: the bytes, whether they are known, and whether
// the key exists at this hook (an interface name where there is none
// makes the kernel end the rule).
func (ev *nftEval) meta(k expr.MetaKey, p packet) (b []byte, known, present bool) {
	u32 := func(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
	switch k {
	case expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME, expr.MetaKeyIIF, expr.MetaKeyOIF, expr.MetaKeyIIFTYPE, expr.MetaKeyOIFTYPE:
		name := p.In
		if k == expr.MetaKeyOIFNAME || k == expr.MetaKeyOIF || k == expr.MetaKeyOIFTYPE {
			name = p.Out
		}
		if name == "" {
			return nil, false, false
		}
		switch k {
		case expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME:
			return ifname(name), true, true
		case expr.MetaKeyIIF, expr.MetaKeyOIF:
			l := ev.ns.Link(name)
			if l == nil || l.Index == 0 {
				return make([]byte, 4), false, true
			}
			return u32(uint32(l.Index)), true, true
		}
		t := uint16(unix.ARPHRD_ETHER)
		if l := ev.ns.Link(name); l != nil && l.IsLoopback() {
			t = unix.ARPHRD_LOOPBACK
		}
		return binary.NativeEndian.AppendUint16(nil, t), true, true
	case expr.MetaKeyL4PROTO:
		return []byte{l4proto(p)}, true, true
	case expr.MetaKeyNFPROTO:
		if p.v6() {
			return []byte{unix.NFPROTO_IPV6}, true, true
		}
		return []byte{unix.NFPROTO_IPV4}, true, true
	case expr.MetaKeyPROTOCOL:
		if p.v6() {
			return binary.BigEndian.AppendUint16(nil, unix.ETH_P_IPV6), true, true
		}
		return binary.BigEndian.AppendUint16(nil, unix.ETH_P_IP), true, true
	case expr.MetaKeyMARK:
		return u32(ev.mark), ev.markKnown, true
	}
	return make([]byte, 16), false, true
}

// Conntrack state bits as ct state loads them.
const (
	ctInvalid     = 1
	ctEstablished = 2
	ctRelated     = 4
	ctNew         = 8
	ctUntracked   = 64
)

// ct loads a conntrack key: the request is NEW in the original direction,
// the reply ESTABLISHED in the reply direction.
func (ev *nftEval) ct(k expr.CtKey, p packet) ([]byte, bool) {
	switch k {
	case expr.CtKeySTATE:
		s := uint32(ctNew)
		if p.Reply {
			s = ctEstablished
		}
		return binary.NativeEndian.AppendUint32(nil, s), true
	case expr.CtKeyDIRECTION:
		if p.Reply {
			return []byte{1}, true
		}
		return []byte{0}, true
	case expr.CtKeyL3PROTOCOL:
		if p.v6() {
			return []byte{unix.NFPROTO_IPV6}, true
		}
		return []byte{unix.NFPROTO_IPV4}, true
	case expr.CtKeyPROTOCOL:
		return []byte{l4proto(p)}, true
	case expr.CtKeyMARK:
		return binary.NativeEndian.AppendUint32(nil, 0), ev.markKnown
	case expr.CtKeySTATUS:
		// The request's first packet, at forward or input: not yet
		// confirmed, no reply seen, destination NAT done (the binding
		// set up in prerouting), its DNAT bit set only if it was
		// translated: known when no rule of the namespace translates
		// destinations. Elsewhere, and for the reply, the bits depend
		// on what the walk does not follow.
		if p.Reply || ev.hook != "forward" && ev.hook != "input" || mayDNAT(ev.ns) {
			return make([]byte, 4), false
		}
		return binary.NativeEndian.AppendUint32(nil, ipsDstNATDone), true
	}
	return make([]byte, 16), false
}

// Conntrack status bits (IPS_*) as ct status loads them.
const (
	ipsDstNAT     = 0x20
	ipsDstNATDone = 0x100
)

// mayDNAT reports whether any rule of ns may translate a destination:
// an nft dnat or redirect, or an iptables DNAT or REDIRECT target.
func mayDNAT(ns *NSState) bool {
	for _, t := range ns.NFT {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				for _, e := range r.Exprs {
					switch e := e.(type) {
					case *expr.NAT:
						if e.Type == expr.NATTypeDestNAT {
							return true
						}
					case *expr.Redir:
						return true
					case *expr.Target:
						if e.Name == "DNAT" || e.Name == "REDIRECT" {
							return true
						}
					}
				}
			}
		}
	}
	for _, ts := range [][]Table{ns.IPTables, ns.IP6Tables} {
		for _, t := range ts {
			for _, c := range t.Chains {
				if slices.ContainsFunc(c.Rules, func(r Rule) bool {
					return strings.Contains(r.Spec, "-j DNAT") || strings.Contains(r.Spec, "-j REDIRECT")
				}) {
					return true
				}
			}
		}
	}
	return false
}

// Route types as fib ... type loads them (RTN_*).
const (
	rtnUnicast   = 1
	rtnLocal     = 2
	rtnBroadcast = 3
	rtnMulticast = 5
)

// fib answers fib daddr/saddr type (addrtype); other fib results (oif,
// oifname, presence) are not modelled.
func (ev *nftEval) fib(e *expr.Fib, p packet) ([]byte, bool) {
	if !e.ResultADDRTYPE {
		return make([]byte, 16), false
	}
	a := p.Src
	if e.FlagDADDR {
		a = p.Dst
	}
	dev := ""
	switch {
	case e.FlagIIF:
		dev = p.In
	case e.FlagOIF:
		dev = p.Out
	}
	t, ok := addrType(ev.ns, a, dev)
	return binary.NativeEndian.AppendUint32(nil, t), ok
}

// addrType classifies a as nft's fib ... type does: an IPv4 address as
// inet_dev_addr_type (addrType4); an IPv6 one local when ns holds it (on
// dev, when dev is given) or a local route covers it, multicast, else
// unicast.
func addrType(ns *NSState, a netip.Addr, dev string) (uint32, bool) {
	if !a.IsValid() || a.IsUnspecified() {
		return 0, false
	}
	if a.Is4() || a.Is4In6() {
		switch addrType4(ns, a.Unmap(), dev) {
		case RouteUnicast:
			return rtnUnicast, true
		case RouteLocal:
			return rtnLocal, true
		case RouteBroadcast:
			return rtnBroadcast, true
		case "multicast":
			return rtnMulticast, true
		case RouteBlackhole:
			return unix.RTN_BLACKHOLE, true
		case RouteUnreachable:
			return unix.RTN_UNREACHABLE, true
		case RouteProhibit:
			return unix.RTN_PROHIBIT, true
		}
		return 0, false
	}
	for _, l := range ns.Links {
		if (dev == "" || l.Name == dev) && l.HasAddr(a) {
			return rtnLocal, true
		}
	}
	for _, r := range ns.Routes {
		if r.Table == TableLocal && r.Type == RouteLocal && r.Dst.Contains(a) && (dev == "" || r.Dev == dev) {
			return rtnLocal, true
		}
	}
	if a.IsMulticast() {
		return rtnMulticast, true
	}
	return rtnUnicast, true
}

// lastAddr is the last address of an IPv4 prefix (its broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) | (1<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, v)))
}

// setsMarks reports whether any nft rule of ns sets a packet or conntrack
// mark, or an iptables rule does where the walk does not follow the mark
// (p.mark nil): without one, every packet's mark is 0. iptables MARK
// targets are followed by the walk (setMark) when the packet carries its
// mark.
func setsMarks(ns *NSState, p packet) bool {
	for _, t := range ns.NFT {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				for _, e := range r.Exprs {
					switch e := e.(type) {
					case *expr.Meta:
						if e.SourceRegister && e.Key == expr.MetaKeyMARK {
							return true
						}
					case *expr.Ct:
						if e.SourceRegister {
							return true
						}
					case *expr.Target:
						return true
					}
				}
			}
		}
	}
	if p.mark != nil {
		return false
	}
	for _, ts := range [][]Table{ns.IPTables, ns.IP6Tables} {
		for _, t := range ts {
			for _, c := range t.Chains {
				if slices.ContainsFunc(c.Rules, func(r Rule) bool {
					return strings.Contains(r.Spec, "MARK") || strings.Contains(r.Spec, "--set-mark") || strings.Contains(r.Spec, "--set-xmark")
				}) {
					return true
				}
			}
		}
	}
	return false
}

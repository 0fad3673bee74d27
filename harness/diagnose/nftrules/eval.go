package nftrules

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
)

// Evaluating nftables chains for a packet: pure, over the snapshot's
// expressions. A rule is run expression by expression on a register file
// (regs.go); a comparison on a value the walk does not know, or an
// expression this evaluator does not model, makes the rule a MayMatch
// and says why, and never matches or misses silently.

// evaluator evaluates the chains of one nftables table of one namespace.
type evaluator struct {
	env Env
	t   *Table
	// mark is the packet mark; markKnown is unset once a rule sets it
	// from something unknown, or from the start when the namespace has
	// rules that set marks in hooks the walk does not follow.
	mark      uint32
	markKnown bool
	// markSet is set once a rule sets the mark, for the packet's mark
	// to take it (Eval).
	markSet bool
	// hook is the base chain's hook ("forward"), and prio its priority,
	// for what conntrack has done to the packet by then.
	hook string
	prio int32
	// skip is a rule the evaluation leaves out, to see whether deleting
	// it would let the packet through.
	skip *netfilter.NFTPlace
}

// ruleOutcome is what one rule does to a packet.
type ruleOutcome struct {
	m netfilter.Match
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
func (ev *evaluator) evalRule(r *Rule, p netfilter.Packet, hd headers) ruleOutcome {
	var rs regs
	out := ruleOutcome{m: netfilter.Matches}
	unknown := func(format string, args ...any) {
		out.m = netfilter.MayMatch
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
					ev.mark, ev.markKnown = binary.NativeEndian.Uint32(b), known && out.m == netfilter.Matches
					ev.markSet = true
				}
				continue
			}
			b, known, present := ev.meta(e.Key, p)
			if !present {
				return ruleOutcome{m: netfilter.NoMatch} // the kernel breaks: no such device at this hook
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
				return ruleOutcome{m: netfilter.NoMatch}
			}
		case *expr.Range:
			b, ok := read(e.Register, len(e.FromData), "range")
			if ok {
				in := cmpBytes(b, e.FromData) >= 0 && cmpBytes(b, e.ToData) <= 0
				if in != (e.Op == expr.CmpOpEq) {
					return ruleOutcome{m: netfilter.NoMatch}
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
func (ev *evaluator) verdictOf(v *expr.Verdict, out ruleOutcome) ruleOutcome {
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
		out.m = netfilter.MayMatch
		out.why = append(out.why, fmt.Sprintf("verdict %d", v.Kind))
	}
	return out
}

// lookup runs a set, map or verdict map lookup. done is set when it ends
// the rule: a miss, or a verdict.
func (ev *evaluator) lookup(e *expr.Lookup, rs *regs, out *ruleOutcome, unknown func(string, ...any)) (ruleOutcome, bool) {
	s := ev.t.set(e.SetName, e.SetID)
	if s == nil {
		unknown("lookup in set %q, which the snapshot does not hold", e.SetName)
		return ruleOutcome{}, false
	}
	if len(s.Elems) == 0 {
		if e.Invert {
			return ruleOutcome{}, false
		}
		return ruleOutcome{m: netfilter.NoMatch}, true
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
	if m == netfilter.MayMatch {
		unknown("lookup in the concatenated ranges of @%s", s.Name)
		return ruleOutcome{}, false
	}
	found := m == netfilter.Matches
	if found == e.Invert {
		return ruleOutcome{m: netfilter.NoMatch}, true
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

// find looks key up in s: the element that holds it, and Matches,
// NoMatch, or MayMatch for a key inside a concatenated range (whose fields
// this reader cannot tell apart).
func (s *Set) find(key []byte) (*Elem, netfilter.Match) {
	if !s.Interval {
		for i := range s.Elems {
			if cmpBytes(s.Elems[i].Key, key) == 0 {
				return &s.Elems[i], netfilter.Matches
			}
		}
		return nil, netfilter.NoMatch
	}
	res := netfilter.NoMatch
	if s.Elems[0].KeyEnd != nil {
		for i := range s.Elems {
			el := &s.Elems[i]
			switch {
			case cmpBytes(el.Key, key) == 0 && cmpBytes(el.KeyEnd, key) == 0:
				return el, netfilter.Matches
			case cmpBytes(el.Key, key) <= 0 && cmpBytes(el.KeyEnd, key) >= 0:
				res = netfilter.MayMatch
			}
		}
		return nil, res
	}
	// Intervals: the element with the greatest key not above key decides;
	// an interval's end is exclusive, and sorts before a start at the
	// same key.
	var best *Elem
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
		return nil, netfilter.NoMatch
	}
	return best, netfilter.Matches
}

// nat makes the outcome of a dnat or snat statement, with its target
// from the registers.
func (ev *evaluator) nat(e *expr.NAT, rs *regs, out ruleOutcome, unknown func(string, ...any)) ruleOutcome {
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

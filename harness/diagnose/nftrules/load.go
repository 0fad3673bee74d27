package nftrules

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
)

// The loads of the nft evaluator: meta keys, conntrack keys and fib
// results, as the kernel supplies them for the probe's packet at a hook.

// meta loads a meta key: the bytes, whether they are known, and whether
// the key exists at this hook (an interface name where there is none
// makes the kernel end the rule).
func (ev *evaluator) meta(k expr.MetaKey, p netfilter.Packet) (b []byte, known, present bool) {
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
			index, _ := ev.env.NS.Link(name)
			if index == 0 {
				return make([]byte, 4), false, true
			}
			return u32(uint32(index)), true, true
		}
		t := uint16(unix.ARPHRD_ETHER)
		if _, lo := ev.env.NS.Link(name); lo {
			t = unix.ARPHRD_LOOPBACK
		}
		return binary.NativeEndian.AppendUint16(nil, t), true, true
	case expr.MetaKeyL4PROTO:
		return []byte{l4proto(p)}, true, true
	case expr.MetaKeyNFPROTO:
		if p.IPv6() {
			return []byte{unix.NFPROTO_IPV6}, true, true
		}
		return []byte{unix.NFPROTO_IPV4}, true, true
	case expr.MetaKeyPROTOCOL:
		if p.IPv6() {
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

// ctPriority is conntrack's hook priority (NF_IP_PRI_CONNTRACK): chains
// below it see packets that have no conntrack entry yet.
const ctPriority = -200

// ct loads a conntrack key: the request is NEW in the original direction,
// the reply ESTABLISHED in the reply direction.
func (ev *evaluator) ct(k expr.CtKey, p netfilter.Packet) ([]byte, bool) {
	switch k {
	case expr.CtKeySTATE:
		if ev.prio < ctPriority && (ev.hook == "prerouting" || ev.hook == "output") {
			// Before conntrack has seen the packet (a chain at raw
			// priority), it has no entry: its state reads as invalid.
			return binary.NativeEndian.AppendUint32(nil, ctInvalid), true
		}
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
		if p.IPv6() {
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
		if p.Reply || ev.hook != "forward" && ev.hook != "input" || ev.env.MayDNAT {
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

// Route types as fib ... type loads them (RTN_*).
const (
	rtnUnicast   = 1
	rtnLocal     = 2
	rtnBroadcast = 3
	rtnMulticast = 5
)

// fib answers fib daddr/saddr type (addrtype); other fib results (oif,
// oifname, presence) are not modelled.
func (ev *evaluator) fib(e *expr.Fib, p netfilter.Packet) ([]byte, bool) {
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
	t, ok := fibType(ev.env.NS, a, dev)
	return binary.NativeEndian.AppendUint32(nil, t), ok
}

// fibType is what fib ... type loads for a: the type the namespace's
// routing gives it, as the kernel's route type number.
func fibType(ns netfilter.Namespace, a netip.Addr, dev string) (uint32, bool) {
	if !a.IsValid() || a.IsUnspecified() {
		return 0, false
	}
	switch ns.AddrType(a, dev) {
	case "unicast":
		return rtnUnicast, true
	case "local":
		return rtnLocal, true
	case "broadcast":
		return rtnBroadcast, true
	case "multicast":
		return rtnMulticast, true
	case "blackhole":
		return unix.RTN_BLACKHOLE, true
	case "unreachable":
		return unix.RTN_UNREACHABLE, true
	case "prohibit":
		return unix.RTN_PROHIBIT, true
	}
	return 0, false
}

// TranslatesDestinations reports whether a rule of ts may translate a
// destination: a dnat or redirect statement, or an xtables DNAT or
// REDIRECT target.
func TranslatesDestinations(ts []Table) bool {
	return anyExpr(ts, func(e expr.Any) bool {
		switch e := e.(type) {
		case *expr.NAT:
			return e.Type == expr.NATTypeDestNAT
		case *expr.Redir:
			return true
		case *expr.Target:
			return e.Name == "DNAT" || e.Name == "REDIRECT"
		}
		return false
	})
}

// SetsMarks reports whether a rule of ts sets a packet or conntrack mark
// (meta mark set, ct ... set, or an xtables target): an evaluation that
// does not follow the mark through every hook cannot then take the mark
// as 0.
func SetsMarks(ts []Table) bool {
	return anyExpr(ts, func(e expr.Any) bool {
		switch e := e.(type) {
		case *expr.Meta:
			return e.SourceRegister && e.Key == expr.MetaKeyMARK
		case *expr.Ct:
			return e.SourceRegister
		case *expr.Target:
			return true
		}
		return false
	})
}

// anyExpr reports whether an expression of a rule of ts is one for which
// f holds.
func anyExpr(ts []Table, f func(expr.Any) bool) bool {
	for _, t := range ts {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				if slices.ContainsFunc(r.Exprs, f) {
					return true
				}
			}
		}
	}
	return false
}

package diagnose

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The loads of the nft evaluator: meta keys, conntrack keys and fib
// results, as the kernel supplies them for the probe's packet at a hook.

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

// ctPriority is conntrack's hook priority (NF_IP_PRI_CONNTRACK): chains
// below it see packets that have no conntrack entry yet.
const ctPriority = -200

// ct loads a conntrack key: the request is NEW in the original direction,
// the reply ESTABLISHED in the reply direction.
func (ev *nftEval) ct(k expr.CtKey, p packet) ([]byte, bool) {
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

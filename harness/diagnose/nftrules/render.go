package nftrules

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Writing a rule's expressions back as nft syntax, for evidence:
// "iifname "br0" ip daddr 10.88.0.0/16 counter packets 3 bytes 252 drop".
// It covers the expressions the evaluator models; anything else is
// written by its expression name in angle brackets.

// loaded is what a register holds while rendering: the selector that
// loaded it, and the prefix length a bitwise mask left on it.
type loaded struct {
	sel    string
	kind   string // "addr", "ifname", "port", "proto", "ctstate", "nfproto", "hex"
	prefix int    // -1 when no mask was applied
	mask   []byte // a ct state mask
}

// renderRule writes exprs as nft syntax.
func renderRule(exprs []expr.Any) string {
	var out []string
	regs := map[uint32]loaded{}
	var pending []uint32 // registers loaded, in order, for concatenations
	load := func(r uint32, l loaded) {
		l.prefix = -1
		regs[r] = l
		pending = append(pending, r)
	}
	take := func(r uint32) loaded {
		l, ok := regs[r]
		if !ok {
			return loaded{sel: "<?>", kind: "hex", prefix: -1}
		}
		pending = nil
		return l
	}
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Meta:
			if e.SourceRegister {
				out = append(out, "meta "+metaName(e.Key)+" set "+take(e.Register).sel)
				continue
			}
			load(e.Register, loaded{sel: metaSel(e.Key), kind: metaKind(e.Key)})
		case *expr.Payload:
			if e.OperationType != expr.PayloadLoad {
				out = append(out, "<payload write>")
				continue
			}
			sel, kind := payloadSel(e)
			load(e.DestRegister, loaded{sel: sel, kind: kind})
		case *expr.Ct:
			if e.SourceRegister {
				out = append(out, "ct set")
				continue
			}
			kind := "hex"
			if e.Key == expr.CtKeySTATE {
				kind = "ctstate"
			}
			load(e.Register, loaded{sel: "ct " + ctName(e.Key), kind: kind})
		case *expr.Fib:
			sel := "fib saddr"
			if e.FlagDADDR {
				sel = "fib daddr"
			}
			if e.FlagIIF {
				sel += " . iif"
			}
			if e.FlagOIF {
				sel += " . oif"
			}
			kind, res := "hex", " oif"
			if e.ResultADDRTYPE {
				kind, res = "addrtype", " type"
			}
			load(e.Register, loaded{sel: sel + res, kind: kind})
		case *expr.Bitwise:
			l := regs[e.SourceRegister]
			if ones, ok := prefixMask(e.Mask); ok && (l.kind == "addr") && allZero(e.Xor) {
				l.prefix = ones
			} else if l.kind == "ctstate" {
				l.mask = e.Mask
			} else {
				l.sel += " & 0x" + fmt.Sprintf("%x", e.Mask)
			}
			regs[e.DestRegister] = l
		case *expr.Cmp:
			l := take(e.Register)
			op := map[expr.CmpOp]string{expr.CmpOpEq: "", expr.CmpOpNeq: "!= ", expr.CmpOpLt: "< ", expr.CmpOpLte: "<= ", expr.CmpOpGt: "> ", expr.CmpOpGte: ">= "}[e.Op]
			if l.kind == "ctstate" && e.Op == expr.CmpOpNeq && allZero(e.Data) {
				// ct state & mask != 0: written as the mask's states.
				out = append(out, l.sel+" "+formatValue(l, l.mask))
				continue
			}
			out = append(out, l.sel+" "+op+formatValue(l, e.Data))
		case *expr.Range:
			l := take(e.Register)
			op := ""
			if e.Op == expr.CmpOpNeq {
				op = "!= "
			}
			out = append(out, l.sel+" "+op+formatValue(l, e.FromData)+"-"+formatValue(l, e.ToData))
		case *expr.Lookup:
			var sels []string
			for _, r := range pending {
				sels = append(sels, regs[r].sel)
			}
			pending = nil
			if len(sels) == 0 {
				sels = []string{regs[e.SourceRegister].sel}
			}
			op := ""
			if e.Invert {
				op = "!= "
			}
			what := "@" + e.SetName
			if e.IsDestRegSet && e.DestRegister == unix.NFT_REG_VERDICT {
				what = "vmap " + what
			} else if e.IsDestRegSet {
				what = "map " + what
				load(e.DestRegister, loaded{sel: strings.Join(sels, " . ") + " " + what, kind: "hex"})
				continue
			}
			out = append(out, strings.Join(sels, " . ")+" "+op+what)
		case *expr.Immediate:
			load(e.Register, loaded{sel: "0x" + fmt.Sprintf("%x", e.Data), kind: "hex"})
			regs[e.Register] = loaded{sel: immediateValue(e.Data), kind: "hex", prefix: -1}
		case *expr.Verdict:
			out = append(out, verdictText(e))
		case *expr.Counter:
			out = append(out, fmt.Sprintf("counter packets %d bytes %d", e.Packets, e.Bytes))
		case *expr.NAT:
			kind := "snat"
			if e.Type == expr.NATTypeDestNAT {
				kind = "dnat"
			}
			to := ""
			if e.RegAddrMin != 0 {
				to = regs[e.RegAddrMin].sel
			}
			if e.RegProtoMin != 0 {
				to += ":" + regs[e.RegProtoMin].sel
			}
			out = append(out, kind+" to "+to)
		case *expr.Masq:
			out = append(out, "masquerade")
		case *expr.Redir:
			s := "redirect"
			if e.RegisterProtoMin != 0 {
				s += " to :" + regs[e.RegisterProtoMin].sel
			}
			out = append(out, s)
		case *expr.Reject:
			out = append(out, "reject")
		case *expr.Queue:
			out = append(out, "queue")
		case *expr.Log:
			out = append(out, "log")
		case *expr.Limit:
			out = append(out, fmt.Sprintf("limit rate %d", e.Rate))
		case *expr.Notrack:
			out = append(out, "notrack")
		case *expr.Match:
			out = append(out, "xt match "+strconv.Quote(e.Name))
		case *expr.Target:
			out = append(out, "xt target "+strconv.Quote(e.Name))
		default:
			out = append(out, "<"+exprName(e)+">")
		}
	}
	return strings.Join(out, " ")
}

func verdictText(v *expr.Verdict) string {
	switch v.Kind {
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictJump:
		return "jump " + v.Chain
	case expr.VerdictGoto:
		return "goto " + v.Chain
	case expr.VerdictReturn:
		return "return"
	case expr.VerdictContinue:
		return "continue"
	case expr.VerdictQueue:
		return "queue"
	}
	return fmt.Sprintf("verdict %d", v.Kind)
}

// immediateValue writes an immediate's data: an address or a port, as
// the nat statement that reads it will.
func immediateValue(b []byte) string {
	switch len(b) {
	case 2:
		return strconv.Itoa(int(binary.BigEndian.Uint16(b)))
	case 4, 16:
		a, _ := netip.AddrFromSlice(b)
		return a.String()
	}
	return fmt.Sprintf("0x%x", b)
}

func metaName(k expr.MetaKey) string {
	names := map[expr.MetaKey]string{
		expr.MetaKeyIIFNAME: "iifname", expr.MetaKeyOIFNAME: "oifname", expr.MetaKeyIIF: "iif", expr.MetaKeyOIF: "oif",
		expr.MetaKeyL4PROTO: "l4proto", expr.MetaKeyNFPROTO: "nfproto", expr.MetaKeyMARK: "mark", expr.MetaKeyPROTOCOL: "protocol",
		expr.MetaKeyIIFTYPE: "iiftype", expr.MetaKeyOIFTYPE: "oiftype", expr.MetaKeyPKTTYPE: "pkttype",
	}
	if n, ok := names[k]; ok {
		return n
	}
	return fmt.Sprintf("key%d", k)
}

func metaSel(k expr.MetaKey) string {
	switch k {
	case expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME, expr.MetaKeyIIF, expr.MetaKeyOIF:
		return metaName(k)
	}
	return "meta " + metaName(k)
}

func metaKind(k expr.MetaKey) string {
	switch k {
	case expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME:
		return "ifname"
	case expr.MetaKeyL4PROTO:
		return "proto"
	case expr.MetaKeyNFPROTO:
		return "nfproto"
	case expr.MetaKeyIIF, expr.MetaKeyOIF:
		return "u32"
	}
	return "hex"
}

func ctName(k expr.CtKey) string {
	switch k {
	case expr.CtKeySTATE:
		return "state"
	case expr.CtKeyDIRECTION:
		return "direction"
	case expr.CtKeySTATUS:
		return "status"
	case expr.CtKeyMARK:
		return "mark"
	}
	return fmt.Sprintf("key%d", k)
}

// payloadSel names a payload load as nft does, for the fields rulesets
// use; others as raw "@nh,OFFSET,BITS".
func payloadSel(e *expr.Payload) (string, string) {
	switch e.Base {
	case expr.PayloadBaseNetworkHeader:
		switch {
		case e.Offset == 12 && e.Len == 4:
			return "ip saddr", "addr"
		case e.Offset == 16 && e.Len == 4:
			return "ip daddr", "addr"
		case (e.Offset == 12 || e.Offset == 16) && e.Len < 4:
			// nft loads only the bytes of a prefix on a byte boundary.
			return map[uint32]string{12: "ip saddr", 16: "ip daddr"}[e.Offset], "addr4/" + strconv.Itoa(int(e.Len))
		case (e.Offset == 8 || e.Offset == 24) && e.Len < 16:
			return map[uint32]string{8: "ip6 saddr", 24: "ip6 daddr"}[e.Offset], "addr16/" + strconv.Itoa(int(e.Len))
		case e.Offset == 9 && e.Len == 1:
			return "ip protocol", "proto"
		case e.Offset == 8 && e.Len == 16:
			return "ip6 saddr", "addr"
		case e.Offset == 24 && e.Len == 16:
			return "ip6 daddr", "addr"
		case e.Offset == 6 && e.Len == 1:
			return "ip6 nexthdr", "proto"
		}
		return fmt.Sprintf("@nh,%d,%d", e.Offset*8, e.Len*8), "hex"
	case expr.PayloadBaseTransportHeader:
		switch {
		case e.Offset == 0 && e.Len == 2:
			return "th sport", "port"
		case e.Offset == 2 && e.Len == 2:
			return "th dport", "port"
		}
		return fmt.Sprintf("@th,%d,%d", e.Offset*8, e.Len*8), "hex"
	}
	return fmt.Sprintf("@ll,%d,%d", e.Offset*8, e.Len*8), "hex"
}

// formatValue writes a compared value for the selector that loaded it.
func formatValue(l loaded, b []byte) string {
	if full, n, ok := strings.Cut(l.kind, "/"); ok && strings.HasPrefix(full, "addr") {
		size, _ := strconv.Atoi(strings.TrimPrefix(full, "addr"))
		if n, _ := strconv.Atoi(n); n == len(b) && size > n {
			a, _ := netip.AddrFromSlice(append(append([]byte(nil), b...), make([]byte, size-n)...))
			return netip.PrefixFrom(a, 8*n).String()
		}
	}
	switch l.kind {
	case "addr":
		if a, ok := netip.AddrFromSlice(b); ok {
			if l.prefix >= 0 && l.prefix < a.BitLen() {
				return netip.PrefixFrom(a, l.prefix).String()
			}
			return a.String()
		}
	case "ifname":
		return strconv.Quote(strings.TrimRight(string(b), "\x00"))
	case "port":
		if len(b) == 2 {
			return strconv.Itoa(int(binary.BigEndian.Uint16(b)))
		}
	case "proto":
		if len(b) == 1 {
			switch b[0] {
			case unix.IPPROTO_TCP:
				return "tcp"
			case unix.IPPROTO_UDP:
				return "udp"
			case unix.IPPROTO_ICMP:
				return "icmp"
			case unix.IPPROTO_ICMPV6:
				return "ipv6-icmp"
			}
			return strconv.Itoa(int(b[0]))
		}
	case "nfproto":
		if len(b) == 1 && b[0] == unix.NFPROTO_IPV4 {
			return "ipv4"
		}
		if len(b) == 1 && b[0] == unix.NFPROTO_IPV6 {
			return "ipv6"
		}
	case "ctstate":
		if len(b) == 4 {
			return ctStates(binary.NativeEndian.Uint32(b))
		}
	case "addrtype":
		if len(b) == 4 {
			switch binary.NativeEndian.Uint32(b) {
			case rtnLocal:
				return "local"
			case rtnUnicast:
				return "unicast"
			case rtnBroadcast:
				return "broadcast"
			case rtnMulticast:
				return "multicast"
			}
		}
	case "u32":
		if len(b) == 4 {
			return strconv.Itoa(int(binary.NativeEndian.Uint32(b)))
		}
	}
	return fmt.Sprintf("0x%x", b)
}

// ctStates writes a ct state bit set: "established,related".
func ctStates(v uint32) string {
	var s []string
	for _, st := range []struct {
		bit  uint32
		name string
	}{{ctInvalid, "invalid"}, {ctEstablished, "established"}, {ctRelated, "related"}, {ctNew, "new"}, {ctUntracked, "untracked"}} {
		if v&st.bit != 0 {
			s = append(s, st.name)
		}
	}
	return strings.Join(s, ",")
}

// prefixMask reports whether mask is a network prefix mask, and its length.
func prefixMask(mask []byte) (int, bool) {
	ones, done := 0, false
	for _, b := range mask {
		switch {
		case done && b != 0:
			return 0, false
		case b == 0xff:
			ones += 8
		default:
			n := bits.LeadingZeros8(^b)
			if b<<n != 0 {
				return 0, false
			}
			ones += n
			done = true
		}
	}
	return ones, true
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

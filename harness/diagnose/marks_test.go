package diagnose

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
)

// markFwd is a forwarded tcp request as the FORWARD hook sees it.
func markFwd() packet {
	return packet{Src: netip.MustParseAddr("10.88.0.2"), Dst: netip.MustParseAddr("203.0.113.8"), SPort: 40000, DPort: 443,
		Proto: "tcp", In: "br0", Out: "eth0", mark: &markState{known: true}}
}

// markOutcome names what filterHook made of the rule that drops by mark:
// "drop" when it drops, "maybe" when a note names it (note is a text of
// that rule's note), else "pass".
func markOutcome(drop *verdict, maybe []string, note string) string {
	if drop != nil {
		return "drop"
	}
	for _, m := range maybe {
		if strings.Contains(m, note) {
			return "maybe"
		}
	}
	return "pass"
}

// The rule that drops marked packets in filter FORWARD.
const markDrop = "-A FORWARD -m mark --mark 0x2000/0x2000 -j DROP\n"

// A mark set by a rule that only may match, in the chain itself or in one
// it jumps to, is unknown; -m connmark --mark is not the packet mark.
func TestMarkStateIPTables(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mangle string // mangle FORWARD rules and chains
		filter string // filter FORWARD rules before markDrop
		want   string
	}{
		{"definite MARK", "-A FORWARD -j MARK --set-xmark 0x2000/0x2000\n", "", "drop"},
		{"MARK that only may match", "-A FORWARD -m statistic --mode random --probability 0.5 -j MARK --set-xmark 0x2000/0x2000\n", "", "maybe"},
		{"MARK that cannot match", "-A FORWARD -p udp -j MARK --set-xmark 0x2000/0x2000\n", "", "pass"},
		{"may-match jump to a chain that marks", ":MARKIT - [0:0]\n-A FORWARD -m statistic --mode random --probability 0.5 -j MARKIT\n-A MARKIT -j MARK --set-xmark 0x2000/0x2000\n", "", "maybe"},
		{"may-match jump to a chain that jumps to one that marks", ":A - [0:0]\n:B - [0:0]\n-A FORWARD -m statistic --mode random --probability 0.5 -j A\n-A A -j B\n-A B -j MARK --set-xmark 0x2000/0x2000\n", "", "maybe"},
		{"may-match jump to a chain that restores the conntrack mark", ":R - [0:0]\n-A FORWARD -m statistic --mode random --probability 0.5 -j R\n-A R -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff\n", "", "maybe"},
		{"may-match jump to a chain that does not mark", ":L - [0:0]\n-A FORWARD -m statistic --mode random --probability 0.5 -j L\n-A L -j LOG\n", "", "pass"},
		{"unknown mark set again in full", "-A FORWARD -m statistic --mode random --probability 0.5 -j MARK --set-xmark 0x2000/0x2000\n-A FORWARD -j MARK --set-xmark 0x0/0xffffffff\n", "", "pass"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tables, err := ParseIPTablesSave("*mangle\n:FORWARD ACCEPT [0:0]\n" + tc.mangle + "COMMIT\n*filter\n:FORWARD ACCEPT [0:0]\n" + tc.filter + markDrop + "COMMIT\n")
			if err != nil {
				t.Fatal(err)
			}
			ns := &NSState{Name: "host", IPTables: tables}
			drop, maybe := filterHook(ns, "FORWARD", markFwd(), nil, false)
			if got := markOutcome(drop, maybe, "filter/FORWARD"); got != tc.want {
				t.Errorf("got %s, want %s (drop %+v, maybe %q)", got, tc.want, drop, maybe)
			}
		})
	}
}

// -m connmark --mark reads the conntrack mark, which the walk does not
// follow: it may match whatever the packet mark is.
func TestMarkConnmarkIsNotThePacketMark(t *testing.T) {
	for _, tc := range []struct {
		name, filter, want string
	}{
		{"connmark on an unmarked packet", "-A FORWARD -m connmark --mark 0x1 -j DROP\n", "maybe"},
		{"mark on an unmarked packet", "-A FORWARD -m mark --mark 0x1 -j DROP\n", "pass"},
		{"connmark on a marked packet", "-A FORWARD -j MARK --set-xmark 0x1/0xffffffff\n-A FORWARD -m connmark --mark 0x1 -j DROP\n", "maybe"},
		{"mark on a marked packet", "-A FORWARD -j MARK --set-xmark 0x1/0xffffffff\n-A FORWARD -m mark --mark 0x1 -j DROP\n", "drop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tables, err := ParseIPTablesSave("*filter\n:FORWARD ACCEPT [0:0]\n" + tc.filter + "COMMIT\n")
			if err != nil {
				t.Fatal(err)
			}
			ns := &NSState{Name: "host", IPTables: tables}
			drop, maybe := filterHook(ns, "FORWARD", markFwd(), nil, false)
			if got := markOutcome(drop, maybe, "filter/FORWARD"); got != tc.want {
				t.Errorf("got %s, want %s (drop %+v, maybe %q)", got, tc.want, drop, maybe)
			}
		})
	}
}

// nft expressions for the mark tests.
var (
	// nfMaybe may match: fib daddr oif is not modelled.
	nfMaybe = []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultOIF: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, 2)},
	}
	nfSetMark = []expr.Any{
		&expr.Immediate{Register: 1, Data: binary.NativeEndian.AppendUint32(nil, 0x2000)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}
	nfMarked = []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binary.NativeEndian.AppendUint32(nil, 0x2000), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, 0x2000)},
	}
)

// nft's meta mark set in a rule that only may match leaves the mark
// unknown; what nft sets, iptables after it reads, and the other way.
func TestMarkStateNFT(t *testing.T) {
	fwd := func(prio int32, rules ...NFTRule) NFTTable {
		return NFTTable{Family: "inet", Name: "t", Chains: []NFTChain{{Name: "fwd", Hook: "forward", Type: "filter", Priority: prio, Policy: "accept", Rules: rules}}}
	}
	ipt := func(save string) []Table {
		tables, err := ParseIPTablesSave(save)
		if err != nil {
			t.Fatal(err)
		}
		return tables
	}
	dropMarked := nfRule(9, nfMarked, v(expr.VerdictDrop, ""))
	for _, tc := range []struct {
		name string
		ns   *NSState
		note string
		want string
	}{
		{"nft sets, nft drops", &NSState{Name: "host", NFT: []NFTTable{fwd(0, nfRule(1, nfSetMark), dropMarked)}}, "handle 9", "drop"},
		{"nft may set, nft drops", &NSState{Name: "host", NFT: []NFTTable{fwd(0, nfRule(1, nfMaybe, nfSetMark), dropMarked)}}, "handle 9", "maybe"},
		{"nft sets, iptables drops", &NSState{Name: "host", NFT: []NFTTable{fwd(-150, nfRule(1, nfSetMark))},
			IPTables: ipt("*filter\n:FORWARD ACCEPT [0:0]\n" + markDrop + "COMMIT\n")}, "filter/FORWARD", "drop"},
		{"nft may set, iptables drops", &NSState{Name: "host", NFT: []NFTTable{fwd(-150, nfRule(1, nfMaybe, nfSetMark))},
			IPTables: ipt("*filter\n:FORWARD ACCEPT [0:0]\n" + markDrop + "COMMIT\n")}, "filter/FORWARD", "maybe"},
		{"iptables sets, nft drops", &NSState{Name: "host", NFT: []NFTTable{fwd(0, dropMarked)},
			IPTables: ipt("*mangle\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j MARK --set-xmark 0x2000/0x2000\nCOMMIT\n")}, "handle 9", "drop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drop, maybe := filterHook(tc.ns, "FORWARD", markFwd(), nil, false)
			if got := markOutcome(drop, maybe, tc.note); got != tc.want {
				t.Errorf("got %s, want %s (drop %+v, maybe %q)", got, tc.want, drop, maybe)
			}
		})
	}
}

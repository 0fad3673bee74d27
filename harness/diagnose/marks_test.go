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

// addrtypeNS has 10.0.0.2/24 and 2001:db8::2/64 on eth0 with their local
// and broadcast routes in table local, and blackhole, unreachable and
// prohibit routes in main.
func addrtypeNS() *NSState {
	pfx := netip.MustParsePrefix
	return &NSState{Name: "host",
		Links: []Link{
			{Name: "lo", Index: 1, Kind: "loopback", Up: true, Addrs: []netip.Prefix{pfx("127.0.0.1/8"), pfx("::1/128")}},
			{Name: "eth0", Index: 2, Up: true, Addrs: []netip.Prefix{pfx("10.0.0.2/24"), pfx("2001:db8::2/64")}},
		},
		Routes: []Route{
			{Table: TableLocal, Type: RouteLocal, Dst: pfx("127.0.0.0/8"), Dev: "lo"},
			{Table: TableLocal, Type: RouteLocal, Dst: pfx("10.0.0.2/32"), Dev: "eth0"},
			{Table: TableLocal, Type: RouteBroadcast, Dst: pfx("10.0.0.255/32"), Dev: "eth0"},
			{Table: TableLocal, Type: RouteBlackhole, Dst: pfx("192.0.2.0/24")},
			{Table: TableMain, Type: RouteUnicast, Dst: pfx("10.0.0.0/24"), Dev: "eth0"},
			{Table: TableMain, Type: RouteBlackhole, Dst: pfx("198.51.100.0/24")},
			{Table: TableMain, Type: RouteUnreachable, Dst: pfx("203.0.113.0/24")},
			{Table: TableLocal, Type: RouteLocal, Dst: pfx("::1/128"), Dev: "lo"},
			{Table: TableLocal, Type: RouteLocal, Dst: pfx("2001:db8::2/128"), Dev: "eth0"},
			{Table: TableMain, Type: RouteUnicast, Dst: pfx("2001:db8::/64"), Dev: "eth0"},
			{Table: TableMain, Type: RouteBlackhole, Dst: pfx("2001:db8:dead::/48")},
			{Table: TableMain, Type: RouteProhibit, Dst: pfx("2001:db8:beef::/48")},
			{Table: TableMain, Type: RouteUnreachable, Dst: pfx("2001:db8:cafe::/48")},
		}}
}

// IPv4 addrtype is the local table's word (inet_addr_type); IPv6's types
// are not exclusive and come from the full lookup (match_type6).
func TestAddrTypeMatch(t *testing.T) {
	ns := addrtypeNS()
	for _, tc := range []struct {
		addr, types string
		want        match
	}{
		{"10.0.0.2", "LOCAL", matches},
		{"10.0.0.2", "UNICAST", noMatch},
		{"127.0.0.5", "LOCAL", matches},
		{"10.0.0.9", "UNICAST", matches},
		{"10.0.0.255", "BROADCAST", matches},
		{"255.255.255.255", "BROADCAST", matches},
		{"0.1.2.3", "BROADCAST", matches},
		{"224.0.0.5", "MULTICAST", matches},
		{"224.0.0.5", "UNICAST", noMatch},
		// A blackhole or unreachable route in main is not the address's
		// type: only the local table is looked at.
		{"198.51.100.7", "BLACKHOLE", noMatch},
		{"198.51.100.7", "UNICAST", matches},
		{"203.0.113.8", "UNREACHABLE", noMatch},
		{"203.0.113.8", "UNICAST", matches},
		// One in the local table is.
		{"192.0.2.1", "BLACKHOLE", matches},
		{"192.0.2.1", "ANYCAST", mayMatch},

		// IPv6: a local address is both LOCAL and UNICAST.
		{"2001:db8::2", "LOCAL", matches},
		{"2001:db8::2", "UNICAST", matches},
		{"2001:db8::2", "LOCAL,UNICAST", matches},
		{"::1", "LOCAL", matches},
		{"2001:db8::9", "UNICAST", matches},
		{"2001:db8::9", "LOCAL", noMatch},
		{"2001:db8::9", "LOCAL,UNICAST", noMatch}, // each listed class must hold
		{"ff02::1", "MULTICAST", matches},
		{"ff02::1", "UNICAST", noMatch},
		{"2001:db8::9", "MULTICAST", noMatch},
		// Blackhole, prohibit and unreachable routes (RTF_REJECT) and no
		// route at all are UNREACHABLE.
		{"2001:db8:dead::1", "UNREACHABLE", matches},
		{"2001:db8:dead::1", "UNICAST", matches},
		{"2001:db8:beef::1", "UNREACHABLE", matches},
		{"2001:db8:cafe::1", "UNREACHABLE", matches},
		{"2001:db8:ffff::1", "UNREACHABLE", matches},
		{"2001:db8::9", "UNREACHABLE", noMatch},
		// The kernel refuses these for IPv6.
		{"2001:db8:dead::1", "BLACKHOLE", mayMatch},
	} {
		if got := addrTypeMatch(ns, netip.MustParseAddr(tc.addr), tc.types); got != tc.want {
			t.Errorf("%s --dst-type %s: got %v, want %v", tc.addr, tc.types, got, tc.want)
		}
	}
}

// nft fib daddr type classifies IPv4 by the local table too
// (inet_dev_addr_type).
func TestFibAddrType(t *testing.T) {
	ns := addrtypeNS()
	for _, tc := range []struct {
		addr, dev string
		want      uint32
	}{
		{"10.0.0.2", "", rtnLocal},
		{"10.0.0.2", "eth0", rtnLocal},
		{"10.0.0.2", "lo", rtnUnicast},
		{"10.0.0.255", "", rtnBroadcast},
		{"0.1.2.3", "", rtnBroadcast},
		{"224.0.0.5", "", rtnMulticast},
		{"198.51.100.7", "", rtnUnicast},
		{"192.0.2.1", "", 6}, // RTN_BLACKHOLE, from the local table
		{"2001:db8::2", "", rtnLocal},
		{"2001:db8::9", "", rtnUnicast},
	} {
		got, ok := addrType(ns, netip.MustParseAddr(tc.addr), tc.dev)
		if !ok || got != tc.want {
			t.Errorf("fib %s (dev %q) type: got %d %v, want %d", tc.addr, tc.dev, got, ok, tc.want)
		}
	}
}

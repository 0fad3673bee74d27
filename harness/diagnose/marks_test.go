package diagnose

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables/expr"

	"github.com/hopcheck/hopcheck/harness/diagnose/iptrules"
	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
	"github.com/hopcheck/hopcheck/harness/diagnose/nftrules"
	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

// markFwd is a forwarded tcp request as the FORWARD hook sees it.
func markFwd() netfilter.Packet {
	return netfilter.Packet{Src: netip.MustParseAddr("10.88.0.2"), Dst: netip.MustParseAddr("203.0.113.8"), SPort: 40000, DPort: 443,
		Proto: "tcp", In: "br0", Out: "eth0", Mark: &netfilter.Mark{Known: true}}
}

// markOutcome names what filterHook made of the rule that drops by mark:
// "drop" when it drops, "maybe" when a note names it (note is a text of
// that rule's note), else "pass".
func markOutcome(drop *netfilter.Verdict, maybe []string, note string) string {
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
			tables, err := iptrules.ParseSave("*mangle\n:FORWARD ACCEPT [0:0]\n" + tc.mangle + "COMMIT\n*filter\n:FORWARD ACCEPT [0:0]\n" + tc.filter + markDrop + "COMMIT\n")
			if err != nil {
				t.Fatal(err)
			}
			ns := &snapshot.NSState{Name: "host", IPTables: tables}
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
			tables, err := iptrules.ParseSave("*filter\n:FORWARD ACCEPT [0:0]\n" + tc.filter + "COMMIT\n")
			if err != nil {
				t.Fatal(err)
			}
			ns := &snapshot.NSState{Name: "host", IPTables: tables}
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
	fwd := func(prio int32, rules ...nftrules.Rule) nftrules.Table {
		return nftrules.Table{Family: "inet", Name: "t", Chains: []nftrules.Chain{{Name: "fwd", Hook: "forward", Type: "filter", Priority: prio, Policy: "accept", Rules: rules}}}
	}
	nfRule := func(handle uint64, parts ...[]expr.Any) nftrules.Rule {
		var ex []expr.Any
		for _, p := range parts {
			ex = append(ex, p...)
		}
		return nftrules.NewRule(handle, ex)
	}
	ipt := func(save string) []iptrules.Table {
		tables, err := iptrules.ParseSave(save)
		if err != nil {
			t.Fatal(err)
		}
		return tables
	}
	dropMarked := nfRule(9, nfMarked, []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}})
	for _, tc := range []struct {
		name string
		ns   *snapshot.NSState
		note string
		want string
	}{
		{"nft sets, nft drops", &snapshot.NSState{Name: "host", NFT: []nftrules.Table{fwd(0, nfRule(1, nfSetMark), dropMarked)}}, "handle 9", "drop"},
		{"nft may set, nft drops", &snapshot.NSState{Name: "host", NFT: []nftrules.Table{fwd(0, nfRule(1, nfMaybe, nfSetMark), dropMarked)}}, "handle 9", "maybe"},
		{"nft sets, iptables drops", &snapshot.NSState{Name: "host", NFT: []nftrules.Table{fwd(-150, nfRule(1, nfSetMark))},
			IPTables: ipt("*filter\n:FORWARD ACCEPT [0:0]\n" + markDrop + "COMMIT\n")}, "filter/FORWARD", "drop"},
		{"nft may set, iptables drops", &snapshot.NSState{Name: "host", NFT: []nftrules.Table{fwd(-150, nfRule(1, nfMaybe, nfSetMark))},
			IPTables: ipt("*filter\n:FORWARD ACCEPT [0:0]\n" + markDrop + "COMMIT\n")}, "filter/FORWARD", "maybe"},
		{"iptables sets, nft drops", &snapshot.NSState{Name: "host", NFT: []nftrules.Table{fwd(0, dropMarked)},
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
func addrtypeNS() *snapshot.NSState {
	pfx := netip.MustParsePrefix
	return &snapshot.NSState{Name: "host",
		Links: []snapshot.Link{
			{Name: "lo", Index: 1, Kind: "loopback", Up: true, Addrs: []netip.Prefix{pfx("127.0.0.1/8"), pfx("::1/128")}},
			{Name: "eth0", Index: 2, Up: true, Addrs: []netip.Prefix{pfx("10.0.0.2/24"), pfx("2001:db8::2/64")}},
		},
		Routes: []snapshot.Route{
			{Table: snapshot.TableLocal, Type: snapshot.RouteLocal, Dst: pfx("127.0.0.0/8"), Dev: "lo"},
			{Table: snapshot.TableLocal, Type: snapshot.RouteLocal, Dst: pfx("10.0.0.2/32"), Dev: "eth0"},
			{Table: snapshot.TableLocal, Type: snapshot.RouteBroadcast, Dst: pfx("10.0.0.255/32"), Dev: "eth0"},
			{Table: snapshot.TableLocal, Type: snapshot.RouteBlackhole, Dst: pfx("192.0.2.0/24")},
			{Table: snapshot.TableMain, Type: snapshot.RouteUnicast, Dst: pfx("10.0.0.0/24"), Dev: "eth0"},
			{Table: snapshot.TableMain, Type: snapshot.RouteBlackhole, Dst: pfx("198.51.100.0/24")},
			{Table: snapshot.TableMain, Type: snapshot.RouteUnreachable, Dst: pfx("203.0.113.0/24")},
			{Table: snapshot.TableLocal, Type: snapshot.RouteLocal, Dst: pfx("::1/128"), Dev: "lo"},
			{Table: snapshot.TableLocal, Type: snapshot.RouteLocal, Dst: pfx("2001:db8::2/128"), Dev: "eth0"},
			{Table: snapshot.TableMain, Type: snapshot.RouteUnicast, Dst: pfx("2001:db8::/64"), Dev: "eth0"},
			{Table: snapshot.TableMain, Type: snapshot.RouteBlackhole, Dst: pfx("2001:db8:dead::/48")},
			{Table: snapshot.TableMain, Type: snapshot.RouteProhibit, Dst: pfx("2001:db8:beef::/48")},
			{Table: snapshot.TableMain, Type: snapshot.RouteUnreachable, Dst: pfx("2001:db8:cafe::/48")},
		}}
}

// IPv4 addrtype is the local table's word (inet_addr_type); IPv6's types
// are not exclusive and come from the full lookup (match_type6).
func TestAddrTypeMatch(t *testing.T) {
	ns := rulesView{addrtypeNS()}
	for _, tc := range []struct {
		addr, types string
		want        netfilter.Match
	}{
		{"10.0.0.2", "LOCAL", netfilter.Matches},
		{"10.0.0.2", "UNICAST", netfilter.NoMatch},
		{"127.0.0.5", "LOCAL", netfilter.Matches},
		{"10.0.0.9", "UNICAST", netfilter.Matches},
		{"10.0.0.255", "BROADCAST", netfilter.Matches},
		{"255.255.255.255", "BROADCAST", netfilter.Matches},
		{"0.1.2.3", "BROADCAST", netfilter.Matches},
		{"224.0.0.5", "MULTICAST", netfilter.Matches},
		{"224.0.0.5", "UNICAST", netfilter.NoMatch},
		// A blackhole or unreachable route in main is not the address's
		// type: only the local table is looked at.
		{"198.51.100.7", "BLACKHOLE", netfilter.NoMatch},
		{"198.51.100.7", "UNICAST", netfilter.Matches},
		{"203.0.113.8", "UNREACHABLE", netfilter.NoMatch},
		{"203.0.113.8", "UNICAST", netfilter.Matches},
		// One in the local table is.
		{"192.0.2.1", "BLACKHOLE", netfilter.Matches},
		{"192.0.2.1", "ANYCAST", netfilter.MayMatch},

		// IPv6: a local address is both LOCAL and UNICAST.
		{"2001:db8::2", "LOCAL", netfilter.Matches},
		{"2001:db8::2", "UNICAST", netfilter.Matches},
		{"2001:db8::2", "LOCAL,UNICAST", netfilter.Matches},
		{"::1", "LOCAL", netfilter.Matches},
		{"2001:db8::9", "UNICAST", netfilter.Matches},
		{"2001:db8::9", "LOCAL", netfilter.NoMatch},
		{"2001:db8::9", "LOCAL,UNICAST", netfilter.NoMatch}, // each listed class must hold
		{"ff02::1", "MULTICAST", netfilter.Matches},
		{"ff02::1", "UNICAST", netfilter.NoMatch},
		{"2001:db8::9", "MULTICAST", netfilter.NoMatch},
		// Blackhole, prohibit and unreachable routes (RTF_REJECT) and no
		// route at all are UNREACHABLE.
		{"2001:db8:dead::1", "UNREACHABLE", netfilter.Matches},
		{"2001:db8:dead::1", "UNICAST", netfilter.Matches},
		{"2001:db8:beef::1", "UNREACHABLE", netfilter.Matches},
		{"2001:db8:cafe::1", "UNREACHABLE", netfilter.Matches},
		{"2001:db8:ffff::1", "UNREACHABLE", netfilter.Matches},
		{"2001:db8::9", "UNREACHABLE", netfilter.NoMatch},
		// The kernel refuses these for IPv6.
		{"2001:db8:dead::1", "BLACKHOLE", netfilter.MayMatch},
	} {
		p := netfilter.Packet{Dst: netip.MustParseAddr(tc.addr)}
		if got := iptrules.Parse("-m addrtype --dst-type "+tc.types).Match(p, ns); got != tc.want {
			t.Errorf("%s --dst-type %s: got %v, want %v", tc.addr, tc.types, got, tc.want)
		}
	}
}

// nft fib daddr type classifies IPv4 by the local table too
// (inet_dev_addr_type); IPv6 by the namespace's addresses and local
// routes.
func TestAddrType(t *testing.T) {
	ns := rulesView{addrtypeNS()}
	for _, tc := range []struct {
		addr, dev string
		want      string
	}{
		{"10.0.0.2", "", snapshot.RouteLocal},
		{"10.0.0.2", "eth0", snapshot.RouteLocal},
		{"10.0.0.2", "lo", snapshot.RouteUnicast},
		{"10.0.0.255", "", snapshot.RouteBroadcast},
		{"0.1.2.3", "", snapshot.RouteBroadcast},
		{"224.0.0.5", "", "multicast"},
		{"198.51.100.7", "", snapshot.RouteUnicast},
		{"192.0.2.1", "", snapshot.RouteBlackhole}, // from the local table
		{"2001:db8::2", "", snapshot.RouteLocal},
		{"2001:db8::9", "", snapshot.RouteUnicast},
	} {
		if got := ns.AddrType(netip.MustParseAddr(tc.addr), tc.dev); got != tc.want {
			t.Errorf("fib %s (dev %q) type: got %q, want %q", tc.addr, tc.dev, got, tc.want)
		}
	}
}

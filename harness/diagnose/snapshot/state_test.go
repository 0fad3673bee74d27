package snapshot

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/hopcheck/hopcheck/harness/diagnose/iptrules"
	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
	"github.com/hopcheck/hopcheck/harness/diagnose/nftrules"
)

func TestDelta(t *testing.T) {
	forward := func(policy uint64) []iptrules.Table {
		return []iptrules.Table{{Name: "filter", Chains: []iptrules.Chain{{Name: "FORWARD", Policy: "DROP", Packets: policy}}}}
	}
	nft := func(packets uint64) []nftrules.Table {
		return []nftrules.Table{{Family: "inet", Name: "filter", Chains: []nftrules.Chain{{Name: "forward",
			Rules: []nftrules.Rule{{Handle: 7, Text: "counter drop", Counter: true, Packets: packets}}}}}}
	}
	b := &State{Namespaces: []*NSState{{Name: "host", IPTables: forward(1), IP6Tables: forward(4), NFT: nft(3)}}}
	a := &State{Namespaces: []*NSState{{Name: "host", IPTables: forward(3), IP6Tables: forward(5), NFT: nft(6)}, {Name: "new", IPTables: forward(9)}}}
	got := Delta(b, a)
	want := []netfilter.Moved{
		{NS: "host", Table: "filter", Chain: "FORWARD", Target: "DROP", Packets: 2},
		{NS: "host", IPv6: true, Table: "filter", Chain: "FORWARD", Target: "DROP", Packets: 1},
		{NS: "host", Family: "inet", Handle: 7, Table: "filter", Chain: "forward", Rule: 1, Spec: "counter drop", Target: "DROP", Packets: 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Delta = %+v, want %+v", got, want)
	}
	if Delta(nil, a) != nil || Delta(b, nil) != nil {
		t.Error("Delta with a missing snapshot must be empty")
	}
}

func TestRouteGet(t *testing.T) {
	r := func(table int, typ, dst, via, dev string, metric int) Route {
		rt := Route{Table: table, Type: typ, Dst: netip.MustParsePrefix(dst), Dev: dev, Metric: metric}
		if via != "" {
			rt.Via = netip.MustParseAddr(via)
		}
		return rt
	}
	n := &NSState{
		Links: []Link{{Name: "eth0", Up: true}, {Name: "eth1", Up: true}, {Name: "down0", Up: false}},
		Routes: []Route{
			r(TableLocal, RouteLocal, "10.0.0.2/32", "", "eth0", 0),
			r(TableMain, RouteUnicast, "10.0.0.0/24", "", "eth0", 0),
			r(TableMain, RouteUnicast, "0.0.0.0/0", "10.0.0.1", "eth0", 100),
			r(TableMain, RouteUnicast, "0.0.0.0/0", "10.0.1.1", "eth1", 50),
			r(TableMain, RouteUnicast, "192.0.2.0/24", "", "down0", 0),
			r(TableMain, RouteThrow, "198.51.100.0/24", "", "", 0),
			r(TableDefault, RouteUnicast, "198.51.100.0/24", "10.0.0.9", "eth0", 0),
			r(7, RouteUnicast, "203.0.113.0/24", "10.0.0.7", "eth0", 0),
		},
	}
	for _, tc := range []struct {
		dst, want string
		ok        bool
	}{
		{"10.0.0.2", "local 10.0.0.2 dev eth0 table local", true},
		{"10.0.0.3", "10.0.0.0/24 dev eth0", true},
		{"8.8.8.8", "default via 10.0.1.1 dev eth1 metric 50", true},
		{"192.0.2.1", "default via 10.0.1.1 dev eth1 metric 50", true}, // the down link's route is gone
		{"198.51.100.1", "198.51.100.0/24 via 10.0.0.9 dev eth0 table 253", true},
		{"203.0.113.1", "default via 10.0.1.1 dev eth1 metric 50", true}, // table 7 has no rule
	} {
		got, ok := n.RouteGet(netip.MustParseAddr(tc.dst))
		if ok != tc.ok || got.String() != tc.want {
			t.Errorf("RouteGet(%s) = %q, %v; want %q, %v", tc.dst, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := (&NSState{}).RouteGet(netip.MustParseAddr("10.0.0.1")); ok {
		t.Error("an empty namespace has a route")
	}
}

func TestRouteString(t *testing.T) {
	for _, tc := range []struct {
		r    Route
		want string
	}{
		{Route{Table: TableMain, Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.0.0.1"), Dev: "veth_1"}, "default via 10.0.0.1 dev veth_1"},
		{Route{Table: TableLocal, Type: RouteLocal, Dst: netip.MustParsePrefix("10.0.0.2/32"), Dev: "eth0", Src: netip.MustParseAddr("10.0.0.2")}, "local 10.0.0.2 dev eth0 table local src 10.0.0.2"},
		{Route{Table: TableMain, Type: RouteUnreachable, Dst: netip.MustParsePrefix("192.0.2.0/24")}, "unreachable 192.0.2.0/24"},
		{Route{Table: TableMain, Dst: netip.MustParsePrefix("10.0.0.0/24"), Dev: "eth0", Metric: 5, LinkDown: true}, "10.0.0.0/24 dev eth0 metric 5 linkdown"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestSysctlPath(t *testing.T) {
	for key, want := range map[string]string{
		"net.ipv4.ip_forward":               "/proc/sys/net/ipv4/ip_forward",
		"net.ipv4.conf.all.rp_filter":       "/proc/sys/net/ipv4/conf/all/rp_filter",
		"net.ipv4.conf.eth0.100.rp_filter":  "/proc/sys/net/ipv4/conf/eth0.100/rp_filter",
		"net.ipv4.conf.veth_1.accept_local": "/proc/sys/net/ipv4/conf/veth_1/accept_local",
	} {
		if got := sysctlPath(key); got != want {
			t.Errorf("sysctlPath(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestNeighState(t *testing.T) {
	if got := neighState(0x20); got != "FAILED" {
		t.Errorf("0x20 = %q", got)
	}
	if got := neighState(0x02); got != "REACHABLE" {
		t.Errorf("0x02 = %q", got)
	}
	if got := neighState(0); got != "NONE" {
		t.Errorf("0 = %q", got)
	}
}

package netfilter

import (
	"net/netip"
	"testing"
)

func TestPacket(t *testing.T) {
	addr := netip.MustParseAddr
	for want, p := range map[string]Packet{
		"10.0.0.2:40000 > 203.0.113.8:80 tcp": {Src: addr("10.0.0.2"), Dst: addr("203.0.113.8"), SPort: 40000, DPort: 80, Proto: "tcp"},
		"10.0.0.2 > 203.0.113.8:53 udp":       {Src: addr("10.0.0.2"), Dst: addr("203.0.113.8"), DPort: 53, Proto: "udp"},
		"2001:db8::2 > 2001:db8::1 icmp":      {Src: addr("2001:db8::2"), Dst: addr("2001:db8::1"), SPort: 7, Proto: "icmp"},
		"invalid IP > ::ffff:10.0.0.1 icmp":   {Dst: addr("::ffff:10.0.0.1"), Proto: "icmp"},
	} {
		if got := p.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
	if (Packet{Dst: addr("::ffff:10.0.0.1")}).IPv6() || !(Packet{Dst: addr("2001:db8::1")}).IPv6() {
		t.Error("an IPv4-mapped destination is IPv4, an IPv6 one IPv6")
	}
	var none *Mark
	none.Forget() // a packet whose mark is not followed
	m := &Mark{Value: 1, Known: true}
	m.Forget()
	if m.Known || m.Value != 1 {
		t.Errorf("Forget: %+v", m)
	}
}

func TestVerdictDescribe(t *testing.T) {
	for _, tc := range []struct {
		v     Verdict
		want  string
		drops bool
	}{
		{Verdict{Target: "DROP", Table: "filter", Chain: "FORWARD"}, "the DROP policy of filter/FORWARD", true},
		{Verdict{Target: "REJECT", Table: "filter", Chain: "FORWARD", IPv6: true, Rule: 2, Spec: "-i br0 -j REJECT"}, "rule 2 of ip6 filter/FORWARD `-i br0 -j REJECT`", true},
		{Verdict{Target: "DNAT", Table: "nat", Chain: "PREROUTING", Rule: 1, Spec: "-j DNAT --to-destination 10.0.0.2"}, "rule 1 of nat/PREROUTING `-j DNAT --to-destination 10.0.0.2`", false},
		{Verdict{Target: "DROP", NFT: &NFTPlace{Family: "inet", Table: "filter", Chain: "forward", Handle: 7, Text: "ip daddr 10.88.0.0/16 drop"}},
			"nft: table inet filter chain forward handle 7: ip daddr 10.88.0.0/16 drop", true},
		{Verdict{Target: "DROP", NFT: &NFTPlace{Family: "inet", Table: "filter", Chain: "forward", Text: "DROP"}},
			"nft: the drop policy of table inet filter chain forward", true},
	} {
		if got := tc.v.Describe(); got != tc.want {
			t.Errorf("Describe() = %q, want %q", got, tc.want)
		}
		if got := tc.v.Drops(); got != tc.drops {
			t.Errorf("%s: Drops() = %v", tc.want, got)
		}
	}
}

func TestMoved(t *testing.T) {
	for _, tc := range []struct {
		m    Moved
		want string
	}{
		{Moved{NS: "host", Table: "filter", Chain: "FORWARD", Target: "DROP", Packets: 3}, "host: filter/FORWARD policy DROP: 3 packets during the probe"},
		{Moved{NS: "host", IPv6: true, Table: "filter", Chain: "FORWARD", Rule: 2, Spec: "-i br0 -j DROP", Target: "DROP", Packets: 1},
			"host: ip6 filter/FORWARD rule 2 `-i br0 -j DROP`: 1 packet during the probe"},
		{Moved{NS: "host", Family: "inet", Handle: 7, Table: "filter", Chain: "forward", Rule: 1, Spec: "counter drop", Target: "DROP", Packets: 2},
			"host: nft inet filter/forward handle 7 `counter drop`: 2 packets during the probe"},
	} {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
		if !tc.m.Drops() {
			t.Errorf("%s: does not drop", tc.want)
		}
	}
}

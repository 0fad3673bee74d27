package snapshot

import (
	"net/netip"
	"testing"
)

func flow(src, dst, iif string) Flow {
	f := Flow{Dst: netip.MustParseAddr(dst), IIf: iif}
	if src != "" {
		f.Src = netip.MustParseAddr(src)
	}
	return f
}

func TestRuleMatches(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		name string
		rule IPRule
		flow Flow
		want bool
	}{
		{"from all", IPRule{}, flow("", "10.2.0.2", "lo"), true},
		{"from a subnet, source in it", IPRule{From: p("10.1.0.0/24")}, flow("10.1.0.2", "10.2.0.2", "eth0"), true},
		{"from a subnet, source outside", IPRule{From: p("10.1.0.0/24")}, flow("10.3.0.2", "10.2.0.2", "eth0"), false},
		{"from a subnet, no source yet (an unbound socket's first lookup)", IPRule{From: p("10.1.0.0/24")}, flow("", "10.2.0.2", "lo"), false},
		{"to a host", IPRule{To: p("10.2.0.2/32")}, flow("", "10.2.0.2", "lo"), true},
		{"to another host", IPRule{To: p("10.2.0.2/32")}, flow("", "10.2.0.3", "lo"), false},
		{"iif lo matches locally generated packets", IPRule{IIf: "lo"}, flow("", "10.2.0.2", "lo"), true},
		{"iif eth0, forwarded from eth1", IPRule{IIf: "eth0"}, flow("10.1.0.2", "10.2.0.2", "eth1"), false},
		{"oif never matches an unbound probe", IPRule{OIf: "eth0"}, flow("", "10.2.0.2", "lo"), false},
		{"fwmark 1 on an unmarked packet", IPRule{Mark: 1, Mask: 0xffffffff}, flow("", "10.2.0.2", "lo"), false},
		{"fwmark 0/0 matches everything", IPRule{Mark: 0, Mask: 0}, flow("", "10.2.0.2", "lo"), true},
		{"not from a subnet", IPRule{Not: true, From: p("10.1.0.0/24")}, flow("10.3.0.2", "10.2.0.2", "eth0"), true},
		{"an IPv6 rule ignores IPv4 packets", IPRule{V6: true}, flow("", "10.2.0.2", "lo"), false},
		{"an IPv4 rule ignores IPv6 packets", IPRule{}, flow("", "2001:db8::2", "lo"), false},
		{"IPv6 from", IPRule{V6: true, From: p("2001:db8:1::/64")}, flow("2001:db8:1::2", "2001:db8:2::2", "eth0"), true},
	} {
		if got := tc.rule.matches(tc.flow); got != tc.want {
			t.Errorf("%s: %s matches %+v = %v, want %v", tc.name, tc.rule, tc.flow, got, tc.want)
		}
	}
}

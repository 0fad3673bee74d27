package iptrules

import (
	"net/netip"
	"testing"

	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
)

func TestMatch(t *testing.T) {
	req := netfilter.Packet{Src: netip.MustParseAddr("10.0.0.2"), Dst: netip.MustParseAddr("203.0.113.8"), SPort: 40000, DPort: 80, Proto: "tcp", In: "br0", Out: "eth0"}
	rep := netfilter.Packet{Src: req.Dst, Dst: req.Src, SPort: 80, DPort: 40000, Proto: "tcp", In: "eth0", Out: "br0", Reply: true}
	icmp := netfilter.Packet{Src: req.Src, Dst: req.Dst, Proto: "icmp", In: "br0", Out: "eth0"}
	for _, tc := range []struct {
		spec string
		p    netfilter.Packet
		want netfilter.Match
	}{
		{"-j ACCEPT", req, netfilter.Matches},
		{"-s 10.0.0.0/24 -j ACCEPT", req, netfilter.Matches},
		{"! -s 10.0.0.0/24 -j ACCEPT", req, netfilter.NoMatch},
		{"-s 10.0.0.0/24 ! -o br0 -j MASQUERADE", req, netfilter.Matches},
		{"-s 10.0.0.0/24 ! -o eth+ -j MASQUERADE", req, netfilter.NoMatch},
		{"-d 203.0.113.8/32 -p tcp -m tcp --dport 80 -j DROP", req, netfilter.Matches},
		{"-p tcp -m tcp --dport 443 -j DROP", req, netfilter.NoMatch},
		{"-p udp -j DROP", req, netfilter.NoMatch},
		{"-p tcp -m multiport --dports 22,80:90 -j DROP", req, netfilter.Matches},
		{"-i eth0 -o br0 -j ACCEPT", req, netfilter.NoMatch},
		{"-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", req, netfilter.NoMatch},
		{"-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", rep, netfilter.Matches},
		{"-m state --state NEW -j ACCEPT", req, netfilter.Matches},
		{"-p icmp -m icmp --icmp-type 8 -j DROP", icmp, netfilter.Matches},
		{"-p icmp -m icmp --icmp-type echo-reply -j DROP", icmp, netfilter.NoMatch},
		{"-m comment --comment \"-j DROP here\" -j ACCEPT", req, netfilter.Matches},
		{"-m mark --mark 0x1 -j DROP", req, netfilter.MayMatch},
		{"-p udp -m mark --mark 0x1 -j DROP", req, netfilter.NoMatch},
	} {
		if got := Parse(tc.spec).Match(tc.p, nil); got != tc.want {
			t.Errorf("%q on %s: %v, want %v", tc.spec, tc.p, got, tc.want)
		}
	}
}

func TestMatchIPv6(t *testing.T) {
	req := netfilter.Packet{Src: netip.MustParseAddr("2001:db8:1::2"), Dst: netip.MustParseAddr("2001:db8:2::2"), Proto: "icmp"}
	for spec, want := range map[string]netfilter.Match{
		"-p ipv6-icmp -j DROP": netfilter.Matches,
		"-p icmp -j DROP":      netfilter.NoMatch,
		"-p ipv6-icmp -m icmp6 --icmpv6-type 128 -j DROP": netfilter.Matches,
		"-p ipv6-icmp -m icmp6 --icmpv6-type 8 -j DROP":   netfilter.MayMatch,
		"-d 2001:db8:2::/64 -j DROP":                      netfilter.Matches,
	} {
		if got := Parse(spec).Match(req, nil); got != want {
			t.Errorf("%s: %v, want %v", spec, got, want)
		}
	}
}

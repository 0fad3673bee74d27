package trace

import (
	"net/netip"
	"testing"
)

func TestFilterMatch(t *testing.T) {
	a, b, c := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("203.0.113.8")
	icmp := Packet{Src: a, Dst: b, Proto: ProtoICMP}
	udp := Packet{Src: a, Dst: b, Proto: ProtoUDP, SrcPort: 4000, DstPort: 53}
	arp := Packet{Proto: ProtoARP, ARP: &ARP{SenderIP: a, TargetIP: c}}
	nd := Packet{Src: a, Dst: b, Proto: ProtoICMPv6, ICMP: &ICMP{Type: 135}, ARP: &ARP{SenderIP: a, TargetIP: b}}
	mld := Packet{Src: a, Dst: b, Proto: ProtoICMPv6, ICMP: &ICMP{Type: 143}}
	echo6 := Packet{Src: a, Dst: b, Proto: ProtoICMPv6, ICMP: &ICMP{Type: 128}}
	unreach := Packet{Src: b, Dst: a, Proto: ProtoICMP, Quoted: &Quoted{Src: a, Dst: c, Proto: ProtoUDP}}
	tunnel := Packet{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2"), Proto: ProtoUDP,
		Inner: &Packet{Src: a, Dst: c, Proto: ProtoTCP}}
	tests := []struct {
		name string
		f    Filter
		p    Packet
		want bool
	}{
		{"zero filter", Filter{}, udp, true},
		{"host as source", Filter{Host: a}, icmp, true},
		{"host absent", Filter{Host: c}, icmp, false},
		{"host as arp target", Filter{Host: c}, arp, true},
		{"host inside an icmp error", Filter{Host: c}, unreach, true},
		{"host inside a tunnel", Filter{Host: c}, tunnel, true},
		{"proto icmp", Filter{Proto: ProtoICMP}, icmp, true},
		{"proto icmp is not neighbor discovery", Filter{Proto: ProtoICMP}, nd, false},
		{"proto icmp is not an MLD report", Filter{Proto: ProtoICMP}, mld, false},
		{"proto icmp includes icmpv6 echo", Filter{Proto: ProtoICMP}, echo6, true},
		{"proto udp vs icmp", Filter{Proto: ProtoUDP}, icmp, false},
		{"proto udp quoted in an icmp error", Filter{Proto: ProtoUDP}, unreach, true},
		{"proto of the packet inside a tunnel", Filter{Proto: ProtoTCP}, tunnel, true},
		{"outer proto of a tunnel does not match", Filter{Proto: ProtoUDP}, tunnel, false},
		{"host and proto both needed", Filter{Host: c, Proto: ProtoICMP}, arp, false},
	}
	for _, tt := range tests {
		if got := tt.f.Match(tt.p); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
	if _, err := ParseProto("sctp"); err == nil {
		t.Error("ParseProto(sctp) accepted")
	}
}

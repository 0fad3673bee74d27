package trace

import (
	"net/netip"
	"testing"
	"time"
)

func TestPathContains(t *testing.T) {
	tr := Trace{Request: []Hop{
		{NS: "ns1", If: "veth_1", Dir: Egress},
		{NS: "host", If: "veth1", Dir: Ingress},
		{NS: "host", If: "br0", Dir: Ingress},
		{NS: "host", If: "veth2", Dir: Egress},
		{NS: "ns2", If: "veth_2", Dir: Ingress},
	}}
	tests := []struct {
		path        []string
		ok          bool
		wantMissing string
	}{
		{nil, true, ""},
		{[]string{"ns1/veth_1", "host/veth2", "ns2/veth_2"}, true, ""},
		{[]string{"host/br0"}, true, ""},
		{[]string{"ns2/veth_2", "ns1/veth_1"}, false, "ns1/veth_1"},
		{[]string{"ns1/veth_1", "host/eth0", "ns2/veth_2"}, false, "host/eth0"},
		{[]string{"ns1/veth_1", "ns1/veth_1"}, false, "ns1/veth_1"},
	}
	for _, tt := range tests {
		ok, missing := tr.PathContains(tt.path)
		if ok != tt.ok || missing != tt.wantMissing {
			t.Errorf("PathContains(%q) = %v, %q; want %v, %q", tt.path, ok, missing, tt.ok, tt.wantMissing)
		}
	}
}

func TestTranslated(t *testing.T) {
	ap := netip.MustParseAddrPort
	tr := Trace{Translations: []Translation{
		{Kind: SNAT, From: ap("10.0.0.2:41000"), To: ap("198.51.100.2:61000"), NS: "host", If: "eth0"},
		{Kind: DNAT, From: ap("198.51.100.2:8080"), To: ap("10.0.0.2:80"), NS: "host", If: "veth1"},
	}}
	tests := []struct {
		kind NATKind
		to   string
		ok   bool
	}{
		{SNAT, "198.51.100.2:0", true},
		{SNAT, "198.51.100.2:61000", true},
		{SNAT, "198.51.100.2:41000", false},
		{DNAT, "10.0.0.2:80", true},
		{DNAT, "10.0.0.2:0", true},
		{DNAT, "198.51.100.2:0", false},
		{SNAT, "10.0.0.2:0", false},
	}
	for _, tt := range tests {
		if _, ok := tr.Translated(tt.kind, ap(tt.to)); ok != tt.ok {
			t.Errorf("Translated(%s, %s) = %v, want %v", tt.kind, tt.to, ok, tt.ok)
		}
	}
}

func TestStrings(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		got, want string
	}{
		{Translation{Kind: SNAT, From: ap("10.0.0.2:0"), To: ap("198.51.100.2:0"), NS: "host", If: "eth0"}.String(),
			"SNAT 10.0.0.2 -> 198.51.100.2 at host/eth0"},
		{Translation{Kind: DNAT, From: ap("198.51.100.2:8080"), To: ap("[2001:db8::2]:80"), NS: "host", If: "veth1"}.String(),
			"DNAT 198.51.100.2:8080 -> [2001:db8::2]:80 at host/veth1"},
		{Drop{NS: "host", Reason: "NETFILTER_DROP", Location: "nf_hook_slow+0x9c"}.String(),
			"dropped in host at nf_hook_slow: NETFILTER_DROP"},
		{Drop{NS: "ns1", If: "veth_1", Reason: "NOT_SPECIFIED"}.String(),
			"dropped in ns1/veth_1: NOT_SPECIFIED"},
		{ICMPError{NS: "host", If: "veth1", From: netip.MustParseAddr("10.0.0.1"), Proto: ProtoICMP, Type: 3, Code: 3}.String(),
			"port unreachable from 10.0.0.1 at host/veth1"},
		{Hop{NS: "ns1", If: "veth_1", Dir: Egress, T: -1500 * time.Nanosecond, Src: ap("10.0.0.2:0"), Dst: ap("10.0.0.3:0"), Proto: "icmp", Len: 98}.String(),
			"-2µs ns1/veth_1 egress 10.0.0.2 > 10.0.0.3 icmp len 98"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

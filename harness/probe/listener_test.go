package probe

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPktinfoDst(t *testing.T) {
	v4 := netip.MustParseAddr("10.77.0.3")
	v6 := netip.MustParseAddr("fd00::2")
	tests := []struct {
		name string
		oob  []byte
		want netip.Addr
	}{
		{"IP_PKTINFO", unix.PktInfo4(&unix.Inet4Pktinfo{Ifindex: 2, Spec_dst: [4]byte{10, 77, 0, 2}, Addr: v4.As4()}), v4},
		{"IPV6_PKTINFO", unix.PktInfo6(&unix.Inet6Pktinfo{Addr: v6.As16(), Ifindex: 2}), v6},
		{"IPV6_PKTINFO for IPv4", unix.PktInfo6(&unix.Inet6Pktinfo{Addr: netip.AddrFrom16(v4.As16()).As16()}), netip.AddrFrom16(v4.As16())},
		{"other control message", unix.UnixRights(3), netip.Addr{}},
		{"none", nil, netip.Addr{}},
		{"truncated", unix.PktInfo6(&unix.Inet6Pktinfo{Addr: v6.As16()})[:12], netip.Addr{}},
	}
	for _, tt := range tests {
		if got := pktinfoDst(tt.oob); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

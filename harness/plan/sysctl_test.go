package plan

import "testing"

func TestSysctlPath(t *testing.T) {
	for _, tc := range []struct {
		key, want string
		ok        bool
	}{
		{"net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward", true},
		{"net.ipv4.conf.eth0/100.rp_filter", "/proc/sys/net/ipv4/conf/eth0.100/rp_filter", true},
		{"net.ipv6.conf.all.disable_ipv6", "/proc/sys/net/ipv6/conf/all/disable_ipv6", true},
		{"net", "", false},
		{"kernel.core_pattern", "", false},
		{"vm.swappiness", "", false},
		{"net..ip_forward", "", false},
		{"net.//.kernel.core_pattern", "", false},
		{"net./.x", "", false},
		{"net.ipv4.ip_forward.", "", false},
	} {
		got, err := SysctlPath(tc.key)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("SysctlPath(%q) = %q, %v; want %q, ok=%v", tc.key, got, err, tc.want, tc.ok)
		}
	}
}

func TestSysctlInterface(t *testing.T) {
	for _, tc := range []struct {
		key, ifname string
		scoped      bool
	}{
		{"net.ipv4.ip_forward", "", false},
		{"net.ipv4.conf.all.rp_filter", "", false},
		{"net.ipv4.conf.default.rp_filter", "", false},
		{"net.ipv6.conf.all.forwarding", "", false},
		{"net.ipv4.conf.eth0.rp_filter", "eth0", true},
		{"net.ipv4.conf.eth0/100.rp_filter", "eth0.100", true},
		{"net.ipv6.conf.veth_1.accept_dad", "veth_1", true},
		{"net.ipv4.neigh.br0.base_reachable_time_ms", "br0", true},
		{"net.ipv4.neigh.default.gc_thresh1", "", false},
		{"net.core.somaxconn", "", false},
		{"net.ipv4.tcp_syncookies", "", false},
	} {
		ifname, scoped := sysctlInterface(tc.key)
		if ifname != tc.ifname || scoped != tc.scoped {
			t.Errorf("sysctlInterface(%q) = %q, %v; want %q, %v", tc.key, ifname, scoped, tc.ifname, tc.scoped)
		}
	}
}

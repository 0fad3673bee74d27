package diagnose

import "testing"

func TestRunnableFix(t *testing.T) {
	env := Named{
		{Name: "node"},
		{Name: "red", Exec: []string{"ip", "netns", "exec", "red"}},
		{Name: "web", Exec: []string{"nsenter", "-t", "42", "-n"}},
		{Name: "odd", Exec: []string{"nsenter", "--net=/run/my ns"}},
	}
	for _, tc := range []struct{ fix, want string }{
		{"sysctl -w net.ipv4.ip_forward=1  # in node", "sysctl -w net.ipv4.ip_forward=1"},
		{"ip link set lo up  # in red", "ip netns exec red ip link set lo up"},
		{"ip route add default via 172.17.0.1 dev eth0  # in web", "nsenter -t 42 -n ip route add default via 172.17.0.1 dev eth0"},
		{"iptables -I FORWARD -i a -o b -j ACCEPT && iptables -I FORWARD -i b -o a -j ACCEPT  # in web",
			"nsenter -t 42 -n sh -c 'iptables -I FORWARD -i a -o b -j ACCEPT && iptables -I FORWARD -i b -o a -j ACCEPT'"},
		{"ip link set lo up  # in odd", `nsenter '--net=/run/my ns' ip link set lo up`},
		{"ip link set lo up  # in unknown", "ip link set lo up  # in unknown"},
		{"", ""},
		{"no namespace", "no namespace"},
	} {
		if got := RunnableFix(tc.fix, env.Enter); got != tc.want {
			t.Errorf("RunnableFix(%q):\n got %s\nwant %s", tc.fix, got, tc.want)
		}
	}
}

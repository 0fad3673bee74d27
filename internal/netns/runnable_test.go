package netns_test

import (
	"slices"
	"testing"

	"github.com/hopcheck/hopcheck/internal/netns"
)

func TestExecPrefix(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"ns1", []string{"ip", "netns", "exec", "ns1"}},
		{"cni-1234-abcd", []string{"ip", "netns", "exec", "cni-1234-abcd"}},
		{"/proc/4242/ns/net", []string{"nsenter", "--net=/proc/4242/ns/net"}},
		{"/run/docker/netns/abc", []string{"nsenter", "--net=/run/docker/netns/abc"}},
		{"./rel/path", []string{"nsenter", "--net=./rel/path"}},
	}
	for _, tt := range tests {
		if got := netns.ExecPrefix(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("ExecPrefix(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got, want := netns.ExecPID(4242), []string{"nsenter", "-t", "4242", "-n"}; !slices.Equal(got, want) {
		t.Errorf("ExecPID(4242) = %q, want %q", got, want)
	}
}

func TestCommand(t *testing.T) {
	tests := []struct {
		name   string
		prefix []string
		cmd    string
		want   string
	}{
		{"the node: as is", nil, "sysctl -w net.ipv4.ip_forward=1", "sysctl -w net.ipv4.ip_forward=1"},
		{"a named namespace", netns.ExecPrefix("ns1"), "ip route add default via 10.0.0.1",
			"ip netns exec ns1 ip route add default via 10.0.0.1"},
		{"a container", netns.ExecPID(4242), "iptables -P FORWARD ACCEPT",
			"nsenter -t 4242 -n iptables -P FORWARD ACCEPT"},
		{"a path that needs quoting", netns.ExecPrefix("/run/my netns/x"), "ip link set eth0 up",
			"nsenter '--net=/run/my netns/x' ip link set eth0 up"},
		{"a name with a quote", []string{"ip", "netns", "exec", "it's"}, "ip addr",
			`ip netns exec 'it'\''s' ip addr`},
		{"two commands run both inside", netns.ExecPrefix("ns1"), "ip link set veth0 up && ip route add 10.0.0.0/24 dev veth0",
			"ip netns exec ns1 sh -c 'ip link set veth0 up && ip route add 10.0.0.0/24 dev veth0'"},
		{"a redirection runs inside", netns.ExecPrefix("ns1"), "echo 1 > /proc/sys/net/ipv4/ip_forward",
			"ip netns exec ns1 sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := netns.Command(tt.prefix, tt.cmd); got != tt.want {
				t.Errorf("Command(%q, %q)\n got %s\nwant %s", tt.prefix, tt.cmd, got, tt.want)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "''"},
		{"eth0", "eth0"},
		{"--net=/proc/1/ns/net", "--net=/proc/1/ns/net"},
		{"a b", "'a b'"},
		{"$(reboot)", "'$(reboot)'"},
		{"it's", `'it'\''s'`},
	}
	for _, tt := range tests {
		if got := netns.ShellQuote(tt.in); got != tt.want {
			t.Errorf("ShellQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

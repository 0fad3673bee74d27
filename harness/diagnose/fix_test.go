package diagnose

import (
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

func TestRunnableFix(t *testing.T) {
	env := snapshot.Named{
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

// TestHostileNamesWithholdTheFix: a namespace's owner names its
// interfaces, and `$(id)` is a valid name; a fix that names one is not
// printed, whatever the cause.
func TestHostileNamesWithholdTheFix(t *testing.T) {
	for _, name := range []string{"v$(id)", "v`id`", "v;id", "v'x", "v\"x", "v*"} {
		t.Run(name, func(t *testing.T) {
			f := newFx(t)
			f.ns("node").bridge("br0", "10.0.0.1/24").port(name, "br0", "web/eth0").down(name)
			f.ns("web").veth("eth0", "node/"+name, "10.0.0.2/24").route("default via 10.0.0.1 dev eth0")
			d := Diagnose(Input{Probe: ping("web", "10.0.0.1"), After: f.build()})
			if d.Cause != LinkDown || d.Fix != "" {
				t.Errorf("got %s, fix %q; want link-down with no fix\n  %s", d.Cause, d.Fix, strings.Join(d.Evidence, "\n  "))
			}
		})
	}
	f := newFx(t)
	f.ns("node").bridge("br0", "10.0.0.1/24").port("veth-1.a@b", "br0", "web/eth0").down("veth-1.a@b")
	f.ns("web").veth("eth0", "node/veth-1.a@b", "10.0.0.2/24").route("default via 10.0.0.1 dev eth0")
	if d := Diagnose(Input{Probe: ping("web", "10.0.0.1"), After: f.build()}); d.Fix != "ip link set veth-1.a@b up  # in node" {
		t.Errorf("a plain name: fix %q", d.Fix)
	}
}

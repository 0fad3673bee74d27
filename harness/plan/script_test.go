package plan

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

func TestShellQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"10.0.0.2/24", "10.0.0.2/24"},
		{"hcab12cd-ns1", "hcab12cd-ns1"},
		{"veth_1", "veth_1"},
		{"net.ipv4.ip_forward=1", "net.ipv4.ip_forward=1"},
		{"!", "'!'"},
		{"", "''"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"$(reboot)", "'$(reboot)'"},
		{"*", "'*'"},
	} {
		if got := shellQuote(tc.in); got != tc.want {
			t.Errorf("shellQuote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestArgv(t *testing.T) {
	route := func(dst, via, dev string) *scenario.Route {
		r := &scenario.Route{Dst: netip.MustParsePrefix(dst), Dev: dev}
		if via != "" {
			r.Via = netip.MustParseAddr(via)
		}
		return r
	}
	for _, tc := range []struct {
		name string
		step Step
		want []string
	}{
		{"veth across namespaces", Step{Kind: CreateLink, NS: "a", If: "x", Type: scenario.TypeVeth, Peer: scenario.Endpoint{NS: "b", If: "y"}},
			[]string{"ip", "-n", "hcrun042-a", "link", "add", "x", "type", "veth", "peer", "name", "y", "netns", "hcrun042-b"}},
		{"veth inside one namespace", Step{Kind: CreateLink, NS: "a", If: "x", Type: scenario.TypeVeth, Peer: scenario.Endpoint{NS: "a", If: "y"}},
			[]string{"ip", "-n", "hcrun042-a", "link", "add", "x", "type", "veth", "peer", "name", "y"}},
		{"vxlan multicast group, default port", Step{Kind: CreateLink, NS: "a", If: "vx", Type: scenario.TypeVXLAN,
			VXLAN: &scenario.VXLAN{VNI: 5, Remote: netip.MustParseAddr("239.1.1.1"), Dev: "eth0"}},
			[]string{"ip", "-n", "hcrun042-a", "link", "add", "vx", "type", "vxlan", "id", "5", "group", "239.1.1.1", "dev", "eth0", "dstport", "4789"}},
		{"macvlan mode", Step{Kind: CreateLink, NS: "a", If: "m", Type: scenario.TypeMacvlan, Macvlan: &scenario.Macvlan{Parent: "eth0", Mode: "vepa"}},
			[]string{"ip", "-n", "hcrun042-a", "link", "add", "m", "link", "eth0", "type", "macvlan", "mode", "vepa"}},
		{"ipv6 address, with duplicate address detection", Step{Kind: AddAddress, NS: "a", If: "eth0", Addr: netip.MustParsePrefix("fd00::2/64")},
			[]string{"ip", "-n", "hcrun042-a", "addr", "add", "fd00::2/64", "dev", "eth0"}},
		{"ipv6 default route", Step{Kind: AddRoute, NS: "a", Route: route("::/0", "fe80::1", "eth0")},
			[]string{"ip", "-n", "hcrun042-a", "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0"}},
		{"on-link route", Step{Kind: AddRoute, NS: "a", Route: route("10.1.0.0/16", "", "eth1")},
			[]string{"ip", "-n", "hcrun042-a", "route", "add", "10.1.0.0/16", "dev", "eth1"}},
		{"rule to a table", Step{Kind: AddRule, NS: "a", Rule: mustRule(t, "from 10.1.0.0/24 lookup 100 pref 100")},
			[]string{"ip", "-n", "hcrun042-a", "rule", "add", "from", "10.1.0.0/24", "priority", "100", "table", "100"}},
		{"ipv6 rule on an input interface", Step{Kind: AddRule, NS: "a", Rule: mustRule(t, "-6 iif eth0 table main")},
			[]string{"ip", "-n", "hcrun042-a", "-6", "rule", "add", "iif", "eth0", "table", "main"}},
		{"iptables nat", Step{Kind: RunIPTables, NS: "a", IPTables: &scenario.IPTablesCommand{Table: "nat", Op: "-A", Chain: "POSTROUTING", Args: []string{"-j", "MASQUERADE"}}},
			[]string{"ip", "netns", "exec", "hcrun042-a", "iptables", "-t", "nat", "-A", "POSTROUTING", "-j", "MASQUERADE"}},
	} {
		if got := tc.step.Argv(runName); !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func mustRule(t *testing.T, raw string) *scenario.Rule {
	t.Helper()
	r, err := scenario.ParseRule(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &r
}

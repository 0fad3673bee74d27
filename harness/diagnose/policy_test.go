package diagnose

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

// rule adds policy routing rules in `ip rule add` syntax, numbered as the
// kernel numbers rules without a priority; the namespace keeps the
// default rules too.
func (b *nsFx) rule(specs ...string) *nsFx {
	if len(b.n.Rules) == 0 {
		b.n.Rules = append(defaultRules(false), defaultRules(true)...)
	}
	for _, spec := range specs {
		sr, err := scenario.ParseRule(spec)
		if err != nil {
			b.f.t.Fatal(err)
		}
		b.n.Rules = append(b.n.Rules, ipRuleFromScenario(b.n.Rules, sr))
	}
	return b
}

// ipRuleFromScenario is what the kernel holds after `ip rule add` of sr
// given the rules before it.
func ipRuleFromScenario(before []IPRule, sr scenario.Rule) IPRule {
	r := IPRule{V6: sr.V6, Not: sr.Not, From: sr.From, To: sr.To, IIf: sr.IIf, OIf: sr.OIf, Action: ActionLookup, Table: sr.Table}
	if r.Table == 0 {
		r.Table = TableMain
	}
	if sr.HasMark {
		r.Mark, r.Mask = sr.Mark, sr.Mask
	}
	r.Priority = int(sr.Priority)
	if sr.Priority < 0 {
		// One below the lowest priority above 0 of the family.
		low := 32766
		for _, o := range before {
			if o.V6 == sr.V6 && o.Priority > 0 && o.Priority <= low {
				low = o.Priority
			}
		}
		r.Priority = low - 1
	}
	return r
}

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

// A router with two uplinks: 10.1.0.0/24 leaves by isp-b through table
// 100, everything else by the main table's default to isp-a.
func policyState(t *testing.T, rules []string, table100 ...string) *State {
	f := newFx(t)
	f.ns("router").veth("lan1", "c1/eth0", "10.1.0.1/24").veth("lan2", "c2/eth0", "10.2.0.1/24").
		veth("wana", "ispa/eth0", "198.51.100.2/24").veth("wanb", "ispb/eth0", "203.0.113.2/24").
		route("default via 198.51.100.1").sysctl("net.ipv4.ip_forward", "1").rule(rules...)
	for _, r := range table100 {
		f.ns("router").route(r)
	}
	f.ns("c1").veth("eth0", "router/lan1", "10.1.0.2/24").route("default via 10.1.0.1")
	f.ns("c2").veth("eth0", "router/lan2", "10.2.0.2/24").route("default via 10.2.0.1")
	f.ns("ispa").veth("eth0", "router/wana", "198.51.100.1/24").addr("lo", "192.0.2.8/32")
	f.ns("ispb").veth("eth0", "router/wanb", "203.0.113.1/24").addr("lo", "192.0.2.8/32")
	return f.build()
}

func TestLookupFollowsRules(t *testing.T) {
	st := policyState(t, []string{"from 10.1.0.0/24 table 100 priority 100"}, "default via 203.0.113.1 table 100")
	r := st.NS("router")
	for _, tc := range []struct {
		name string
		flow Flow
		want string
	}{
		{"from the policy subnet: table 100", flow("10.1.0.2", "192.0.2.8", "lan1"), "default via 203.0.113.1 dev wanb table 100"},
		{"from elsewhere: main", flow("10.2.0.2", "192.0.2.8", "lan2"), "default via 198.51.100.1 dev wana"},
		{"the local table comes first", flow("10.1.0.2", "10.1.0.1", "lan1"), "local 10.1.0.1 dev lan1 table local src 10.1.0.1"},
		{"generated here, no source yet: main", flow("", "192.0.2.8", "lo"), "default via 198.51.100.1 dev wana"},
	} {
		l := r.Lookup(tc.flow)
		if !l.OK || l.Route.String() != tc.want {
			t.Errorf("%s: %v %s, want %s\n  %s", tc.name, l.OK, l.Route, tc.want, strings.Join(l.Trail, "\n  "))
		}
	}
	// A table without a route for the destination passes on to main.
	st = policyState(t, []string{"from 10.1.0.0/24 table 100 priority 100"}, "203.0.113.0/24 dev wanb table 100")
	l := st.NS("router").Lookup(flow("10.1.0.2", "10.2.0.2", "lan1"))
	if !l.OK || l.Route.Dev != "lan2" || l.Rule.Priority != 32766 || !strings.Contains(l.Trail[1], "table 100 has no route to 10.2.0.2") {
		t.Errorf("fall through: %v %s by rule %s\n  %s", l.OK, l.Route, l.Rule, strings.Join(l.Trail, "\n  "))
	}
	// Rules without a priority are numbered down from 32765, so the one
	// added last is consulted first.
	st = policyState(t, []string{"from 10.1.0.0/24 table 100", "from 10.1.0.0/24 table 200"}, "default via 203.0.113.1 table 100", "default via 198.51.100.1 table 200")
	l = st.NS("router").Lookup(flow("10.1.0.2", "192.0.2.8", "lan1"))
	if l.Route.Table != 200 || l.Rule.Priority != 32764 {
		t.Errorf("unnumbered rules: %s by %s", l.Route, l.Rule)
	}
}

func TestDiagnosePolicyRouting(t *testing.T) {
	runLayerCases(t, []layerCase{{
		name: "a rule sends the LAN to a table that lacks the other LAN's route",
		state: policyState(t, []string{"from 10.1.0.0/24 table 100 priority 100"},
			"default via 203.0.113.1 table 100"),
		probe: ping("c1", "10.2.0.2"),
		cause: NoRoute, ns: "router", ifname: "lan1",
		fix:     "ip route add 10.2.0.0/24 dev lan2 table 100  # in router",
		summary: []string{"rule `100: from 10.1.0.0/24 lookup 100`", "table 100 lacks it", "ispb, which has no route"},
	}, {
		name:  "the same table with the route: the way is open",
		state: policyState(t, []string{"from 10.1.0.0/24 table 100 priority 100"}, "default via 203.0.113.1 table 100", "10.2.0.0/24 dev lan2 table 100"),
		probe: ping("c1", "10.2.0.2"),
		cause: Unknown, ns: "c1",
	}, {
		name:  "a rule to a table with no route at all falls through to main: the way is open",
		state: policyState(t, []string{"from 10.1.0.0/24 table 100 priority 100"}),
		probe: ping("c1", "10.2.0.2"),
		cause: Unknown, ns: "c1",
	}})
}

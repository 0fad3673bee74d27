package diagnose

import (
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
	"github.com/hopcheck/hopcheck/harness/scenario"
)

// rule adds policy routing rules in `ip rule add` syntax, numbered as the
// kernel numbers rules without a priority; the namespace keeps the
// default rules too.
func (b *nsFx) rule(specs ...string) *nsFx {
	if len(b.n.Rules) == 0 {
		b.n.Rules = append(snapshot.DefaultRules(false), snapshot.DefaultRules(true)...)
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
func ipRuleFromScenario(before []snapshot.IPRule, sr scenario.Rule) snapshot.IPRule {
	r := snapshot.IPRule{V6: sr.V6, Not: sr.Not, From: sr.From, To: sr.To, IIf: sr.IIf, OIf: sr.OIf, Action: snapshot.ActionLookup, Table: sr.Table}
	if r.Table == 0 {
		r.Table = snapshot.TableMain
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

// A router with two uplinks: 10.1.0.0/24 leaves by isp-b through table
// 100, everything else by the main table's default to isp-a.
func policyState(t *testing.T, rules []string, table100 ...string) *snapshot.State {
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
		flow snapshot.Flow
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

// flow is what the walk looks up for a packet from src ("" for none
// chosen yet) to dst that arrived on iif.
func flow(src, dst, iif string) snapshot.Flow {
	p := packet{Packet: netfilter.Packet{Dst: mustAddr(dst)}}
	if src != "" {
		p.Src = mustAddr(src)
	}
	return flowOf(iif, p)
}

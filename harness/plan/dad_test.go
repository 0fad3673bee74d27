package plan

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/hopcheck/hopcheck/harness/plan/plantest"
	"github.com/hopcheck/hopcheck/harness/scenario"
)

func TestUsesIPv6(t *testing.T) {
	v4 := func() *plantest.Builder {
		return plantest.New("v4").
			NS("a").Iface("a", "eth0", "", plantest.Addrs("10.0.0.1/24")).
			NS("b").Iface("b", "eth0", "", plantest.Addrs("10.0.0.2/24")).
			Link("a/eth0", "b/eth0").
			Route("a", "default via 10.0.0.2")
	}
	withCheck := func(c scenario.Check) *scenario.Scenario {
		sc := v4().Scenario()
		sc.Checks = append(sc.Checks, c)
		return sc
	}
	v6 := netip.MustParseAddr("2001:db8::2")
	for _, tc := range []struct {
		name string
		sc   *scenario.Scenario
		want bool
	}{
		{"IPv4 only", v4().Scenario(), false},
		{"IPv4 checks", withCheck(scenario.Check{Kind: "ping", Ping: &scenario.PingCheck{From: "a", To: scenario.Target{Addr: netip.MustParseAddr("10.0.0.2")}}}), false},
		{"an IPv6 address", v4().Iface("b", "lo", scenario.TypeLoopback, plantest.Addrs("2001:db8::1/128")).Scenario(), true},
		{"an IPv6 route", v4().Route("a", "2001:db8::/64 dev eth0").Scenario(), true},
		{"an IPv6 neighbor", v4().Neighbor("a", "fe80::2", "02:00:00:00:00:02", "eth0").Scenario(), true},
		{"an IPv6 ping", withCheck(scenario.Check{Kind: "ping", Ping: &scenario.PingCheck{From: "a", To: scenario.Target{Addr: v6}}}), true},
		{"an IPv6 tcp check", withCheck(scenario.Check{Kind: "tcp", Conn: &scenario.ConnCheck{From: "a", To: netip.AddrPortFrom(v6, 80)}}), true},
		{"an IPv6 route check", withCheck(scenario.Check{Kind: "route", Route: &scenario.RouteCheck{In: "a", To: v6}}), true},
		{"an IPv6 link check", withCheck(scenario.Check{Kind: "link", Link: &scenario.LinkCheck{In: "a", Name: "eth0", Addresses: []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64")}}}), true},
	} {
		if got := UsesIPv6(tc.sc); got != tc.want {
			t.Errorf("%s: UsesIPv6 = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// dadSteps returns the BuildOnly steps of sc's plan as "ns key=value".
func dadSteps(t *testing.T, sc *scenario.Scenario) []string {
	t.Helper()
	p, err := New(sc)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range p.Steps {
		if s.BuildOnly {
			if s.Kind != SetSysctl {
				t.Errorf("BuildOnly step of kind %s", s.Kind)
			}
			out = append(out, s.NS+" "+s.Sysctl.Key+"="+s.Sysctl.Value)
		}
	}
	return out
}

func TestDADTuning(t *testing.T) {
	pair := func(addr string) *plantest.Builder {
		return plantest.New("pair").
			NS("a").Iface("a", "eth0", "", plantest.Addrs(addr)).
			NS("b").Iface("b", "eth0.5", "", plantest.Addrs("10.0.0.2/24")).
			Iface("b", "off", "", plantest.Down()).
			Iface("b", "peer", "", plantest.Down()).
			Link("a/eth0", "b/eth0.5").
			Link("b/off", "b/peer")
	}
	if got := dadSteps(t, pair("10.0.0.1/24").Scenario()); len(got) != 0 {
		t.Errorf("IPv4-only scenario has DAD settings %q", got)
	}

	got := dadSteps(t, pair("2001:db8::1/64").Scenario())
	want := []string{
		"a net.ipv6.conf.eth0.router_solicitation_delay=0",
		"a net.ipv6.neigh.eth0.retrans_time_ms=100",
		"b net.ipv6.conf.eth0/5.router_solicitation_delay=0",
		"b net.ipv6.neigh.eth0/5.retrans_time_ms=100",
	}
	if !slices.Equal(got, want) {
		t.Errorf("DAD settings\n%q\nwant (every up interface but lo, and no down one)\n%q", got, want)
	}

	// The scenario's own settings win, per interface or namespace-wide.
	own := pair("2001:db8::1/64").
		Sysctl("a", "net.ipv6.neigh.eth0.retrans_time", "2").
		Sysctl("b", "net.ipv6.conf.default.router_solicitation_delay", "1").
		Scenario()
	got = dadSteps(t, own)
	want = []string{
		"a net.ipv6.conf.eth0.router_solicitation_delay=0",
		"b net.ipv6.neigh.eth0/5.retrans_time_ms=100",
	}
	if !slices.Equal(got, want) {
		t.Errorf("with the scenario's own settings\n%q\nwant\n%q", got, want)
	}

	// Before the scenario's interface-scoped sysctls and every address.
	p, err := New(pair("2001:db8::1/64").Sysctl("a", "net.ipv6.conf.eth0.dad_transmits", "2").Scenario())
	if err != nil {
		t.Fatal(err)
	}
	lastTuning, firstOwn, firstAddr := -1, -1, -1
	for i, s := range p.Steps {
		switch {
		case s.BuildOnly:
			lastTuning = i
		case s.Kind == SetSysctl && s.If != "" && firstOwn < 0:
			firstOwn = i
		case s.Kind == AddAddress && firstAddr < 0:
			firstAddr = i
		}
	}
	if !(lastTuning < firstOwn && firstOwn < firstAddr) {
		t.Errorf("DAD settings end at step %d, the scenario's own interface sysctls start at %d, addresses at %d; want them in that order", lastTuning, firstOwn, firstAddr)
	}
}

func TestIPv6Knob(t *testing.T) {
	for _, tc := range []struct{ key, ifname, conf, neigh string }{
		{"net.ipv6.conf.eth0.router_solicitation_delay", "eth0", "router_solicitation_delay", ""},
		{"net.ipv6.conf.all.router_solicitation_delay", "eth0", "router_solicitation_delay", ""},
		{"net.ipv6.conf.eth1.router_solicitation_delay", "eth0", "", ""},
		{"net.ipv6.conf.eth0/5.dad_transmits", "eth0.5", "dad_transmits", ""},
		{"net.ipv6.neigh.default.retrans_time_ms", "eth0", "", "retrans_time_ms"},
		{"net.ipv6.neigh.all.retrans_time_ms", "eth0", "", ""},
		{"net.ipv4.neigh.eth0.retrans_time_ms", "eth0", "", ""},
		{"net.ipv6.neigh.eth0", "eth0", "", ""},
	} {
		if got := confKnob(tc.key, tc.ifname); got != tc.conf {
			t.Errorf("confKnob(%q, %q) = %q, want %q", tc.key, tc.ifname, got, tc.conf)
		}
		if got := neighKnob(tc.key, tc.ifname); got != tc.neigh {
			t.Errorf("neighKnob(%q, %q) = %q, want %q", tc.key, tc.ifname, got, tc.neigh)
		}
	}
}

package diagnose

import (
	"net/netip"
	"testing"

	"github.com/hopcheck/hopcheck/harness/check"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/trace"
)

func TestProbeOf(t *testing.T) {
	pingCheck := &scenario.Check{Kind: "ping", Ping: &scenario.PingCheck{From: "ns1", To: scenario.Target{If: scenario.Endpoint{NS: "ns2", If: "eth0"}}}}
	tcpCheck := &scenario.Check{Kind: "tcp", Conn: &scenario.ConnCheck{Proto: "tcp", From: "internet", To: netip.MustParseAddrPort("198.51.100.2:8080"), ListenNS: "ns1", ListenPort: 80}}
	for _, tc := range []struct {
		name string
		c    *scenario.Check
		r    check.Result
		want Probe
		ok   bool
	}{{
		name: "ping to an interface, resolved by the check",
		c:    pingCheck,
		r: check.Result{Summary: "0/1 replies from 10.0.0.3", Probe: &trace.Probe{Proto: trace.ProtoICMP, Dst: netip.MustParseAddrPort("10.0.0.3:0"), SrcNS: "ns1"},
			Details: []check.Detail{{Key: "icmp_errors", Value: "destination host unreachable from 10.0.0.1"}}},
		want: Probe{Proto: "icmp", From: "ns1", Dst: netip.MustParseAddrPort("10.0.0.3:0"), Outcome: OutcomeUnreachable, Size: 84, DF: true},
		ok:   true,
	}, {
		name: "ping that sent nothing",
		c:    &scenario.Check{Kind: "ping", Ping: &scenario.PingCheck{From: "ns1", To: scenario.Target{Addr: netip.MustParseAddr("203.0.113.8")}}},
		r:    check.Result{Details: []check.Detail{{Key: "send_error", Value: "network is unreachable"}}},
		want: Probe{Proto: "icmp", From: "ns1", Dst: netip.MustParseAddrPort("203.0.113.8:0"), Outcome: OutcomeError, Size: 84, DF: true},
		ok:   true,
	}, {
		name: "a sized IPv6 ping refused at send as too big",
		c:    &scenario.Check{Kind: "ping", Ping: &scenario.PingCheck{From: "ns1", To: scenario.Target{Addr: netip.MustParseAddr("2001:db8::8")}, Size: 1500}},
		r:    check.Result{Details: []check.Detail{{Key: "send_error", Value: "message too long"}, {Key: "outcome", Value: "too-big"}}},
		want: Probe{Proto: "icmp", From: "ns1", Dst: netip.MustParseAddrPort("[2001:db8::8]:0"), Outcome: OutcomeTooBig, Size: 1500, DF: true},
		ok:   true,
	}, {
		name: "a sized udp probe that may be fragmented",
		c:    &scenario.Check{Kind: "udp", Conn: &scenario.ConnCheck{Proto: "udp", From: "ns1", To: netip.MustParseAddrPort("10.0.0.3:53"), Size: 1400, Fragment: true}},
		r:    check.Result{Details: []check.Detail{{Key: "outcome", Value: "timeout"}}},
		want: Probe{Proto: "udp", From: "ns1", Dst: netip.MustParseAddrPort("10.0.0.3:53"), Outcome: OutcomeTimeout, Size: 1400},
		ok:   true,
	}, {
		name: "tcp refused, with the prober's bound source",
		c:    tcpCheck,
		r: check.Result{Probe: &trace.Probe{Proto: trace.ProtoTCP, Src: netip.MustParseAddrPort("198.51.100.1:40000"), Dst: netip.MustParseAddrPort("198.51.100.2:8080"), SrcNS: "internet"},
			Details: []check.Detail{{Key: "outcome", Value: "refused"}}},
		want: Probe{Proto: "tcp", From: "internet", Src: netip.MustParseAddrPort("198.51.100.1:40000"), Dst: netip.MustParseAddrPort("198.51.100.2:8080"),
			ListenNS: "ns1", ListenPort: 80, Outcome: OutcomeRefused},
		ok: true,
	}, {
		name: "not a probe",
		c:    &scenario.Check{Kind: "route", Route: &scenario.RouteCheck{In: "ns1"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ProbeOf(tc.c, tc.r)
			if ok != tc.ok || got != tc.want {
				t.Errorf("ProbeOf = %+v, %v\nwant      %+v, %v", got, ok, tc.want, tc.ok)
			}
			if IsProbe(tc.c) != tc.ok {
				t.Errorf("IsProbe = %v", !tc.ok)
			}
		})
	}
}

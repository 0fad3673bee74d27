package check

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
)

func TestApplyExpect(t *testing.T) {
	broken := errors.New("netlink: operation not permitted")
	tests := []struct {
		name       string
		expect     scenario.Expect
		in         Result
		wantPassed bool
		wantError  string // substring; "" means Error must be empty
	}{
		{
			name:       "success held",
			expect:     scenario.ExpectSuccess,
			in:         Result{Passed: true, Reached: true, Summary: "3/3 replies"},
			wantPassed: true,
		},
		{
			name:       "empty expect means success",
			expect:     "",
			in:         Result{Passed: true, Reached: true, Summary: "ok"},
			wantPassed: true,
		},
		{
			name:       "success not held keeps the kind's error",
			expect:     scenario.ExpectSuccess,
			in:         Result{Summary: "0/1 replies", Error: "ns1 got no reply from 10.0.0.3"},
			wantPassed: false,
			wantError:  "ns1 got no reply from 10.0.0.3",
		},
		{
			name:       "success not held without error falls back to the summary",
			expect:     scenario.ExpectSuccess,
			in:         Result{Summary: "no interface eth9 in ns1"},
			wantPassed: false,
			wantError:  "no interface eth9 in ns1",
		},
		{
			name:       "fail and nothing happened passes",
			expect:     scenario.ExpectFail,
			in:         Result{Summary: "0/1 replies", Error: "ns1 got no reply"},
			wantPassed: true,
		},
		{
			name:       "fail but it happened fails",
			expect:     scenario.ExpectFail,
			in:         Result{Passed: true, Reached: true, Summary: "1/1 replies from 10.0.0.3"},
			wantPassed: false,
			wantError:  "expected this to fail, but it did not: 1/1 replies from 10.0.0.3",
		},
		{
			name:   "fail but it happened, not as stated, still fails",
			expect: scenario.ExpectFail,
			// A route through the wrong gateway: reached, not passed.
			in:         Result{Reached: true, Summary: "203.0.113.8 via 10.0.0.254", Error: "expected via 10.0.0.1"},
			wantPassed: false,
			wantError:  "expected this to fail",
		},
		{
			name:       "evaluation error fails a success check",
			expect:     scenario.ExpectSuccess,
			in:         Result{Err: broken},
			wantPassed: false,
			wantError:  "operation not permitted",
		},
		{
			name:       "evaluation error fails a fail check",
			expect:     scenario.ExpectFail,
			in:         Result{Err: broken},
			wantPassed: false,
			wantError:  "operation not permitted",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &scenario.Check{Kind: "ping", Name: "ping ns1 -> 10.0.0.3", Expect: tt.expect}
			got := applyExpect(c, tt.in)
			if got.Passed != tt.wantPassed {
				t.Errorf("Passed = %v, want %v", got.Passed, tt.wantPassed)
			}
			if tt.wantError == "" && got.Error != "" {
				t.Errorf("Error = %q, want empty", got.Error)
			}
			if !strings.Contains(got.Error, tt.wantError) {
				t.Errorf("Error = %q, want it to contain %q", got.Error, tt.wantError)
			}
			if got.Check != c || got.Name != c.Name || got.Kind != c.Kind {
				t.Errorf("bookkeeping not copied: %+v", got)
			}
			want := tt.expect
			if want == "" {
				want = scenario.ExpectSuccess
			}
			if got.Expect != want {
				t.Errorf("Expect = %q, want %q", got.Expect, want)
			}
			if got.Reached != tt.in.Reached {
				t.Errorf("Reached changed from %v to %v", tt.in.Reached, got.Reached)
			}
		})
	}
}

// mapEnv is a topology made of nothing but names; every lookup misses.
type mapEnv map[string]netns.Handle

func (e mapEnv) NS(name string) netns.Handle {
	if h, ok := e[name]; ok {
		return h
	}
	return netns.Handle(-1)
}

func TestRunUnknownKind(t *testing.T) {
	c := &scenario.Check{Kind: "traceroute", Name: "hops", Expect: scenario.ExpectFail}
	r := Run(context.Background(), mapEnv{}, c)
	if r.Passed {
		t.Fatal("an unknown kind passed")
	}
	if !errors.Is(r.Err, ErrUnknownKind) {
		t.Errorf("Err = %v, want ErrUnknownKind", r.Err)
	}
}

func TestKindsTableCoversScenarioKinds(t *testing.T) {
	for _, k := range []string{"ping", "tcp", "udp", "arp", "route", "link", "iptables", "sysctl"} {
		if _, ok := lookup(k); !ok {
			t.Errorf("no kind for %q", k)
		}
	}
}

// A check naming a namespace the topology lacks cannot be evaluated, and so
// fails under either expect instead of passing as "nothing happened".
func TestRunMissingNamespace(t *testing.T) {
	checks := []*scenario.Check{
		{Kind: "route", Route: &scenario.RouteCheck{In: "ghost"}},
		{Kind: "link", Link: &scenario.LinkCheck{In: "ghost", Name: "eth0"}},
		{Kind: "arp", ARP: &scenario.ARPCheck{In: "ghost"}},
		{Kind: "sysctl", Sysctl: &scenario.SysctlCheck{In: "ghost", Key: "net.ipv4.ip_forward", Value: "1"}},
		{Kind: "iptables", IPTables: &scenario.IPTablesCheck{In: "ghost", Chain: "INPUT", Rule: "-j ACCEPT"}},
		{Kind: "ping", Ping: &scenario.PingCheck{From: "ghost"}},
		{Kind: "tcp", Conn: &scenario.ConnCheck{Proto: "tcp", From: "ghost"}},
	}
	for _, c := range checks {
		for _, e := range []scenario.Expect{scenario.ExpectSuccess, scenario.ExpectFail} {
			c.Expect = e
			r := Run(context.Background(), mapEnv{}, c)
			if r.Passed || !errors.Is(r.Err, ErrNoNamespace) {
				t.Errorf("%s expect %s: Passed=%v Err=%v, want a failure with ErrNoNamespace", c.Kind, e, r.Passed, r.Err)
			}
		}
	}
}

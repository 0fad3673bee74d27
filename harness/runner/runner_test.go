package runner

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/harness/report"
	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/hopcheck/hopcheck/trace"
)

func TestTraceAssertions(t *testing.T) {
	ap := netip.MustParseAddrPort
	hop := func(ns, ifc string) trace.Hop { return trace.Hop{NS: ns, If: ifc, Dir: trace.Egress} }
	tr := &trace.Trace{
		Request: []trace.Hop{hop("ns1", "eth0"), hop("host", "veth1"), hop("host", "br0"), hop("host", "eth0")},
		Translations: []trace.Translation{
			{Kind: trace.SNAT, From: ap("10.0.0.2:0"), To: ap("198.51.100.2:0"), NS: "host", If: "eth0"},
		},
	}
	ep := func(s string) scenario.Endpoint {
		ns, ifc, _ := strings.Cut(s, "/")
		return scenario.Endpoint{NS: ns, If: ifc}
	}
	addr := netip.MustParseAddr
	tests := []struct {
		name  string
		check scenario.Check
		want  []string // substrings of the failures, in order; none means it holds
	}{
		{"no assertions", scenario.Check{}, nil},
		{"path in order with hops between", scenario.Check{Path: []scenario.Endpoint{ep("ns1/eth0"), ep("host/eth0")}}, nil},
		{"path out of order", scenario.Check{Path: []scenario.Endpoint{ep("host/eth0"), ep("ns1/eth0")}},
			[]string{"path: the request did not cross", "ns1/eth0 -> host/veth1 -> host/br0 -> host/eth0"}},
		{"path through an interface never crossed", scenario.Check{Path: []scenario.Endpoint{ep("host/veth2")}},
			[]string{"host/veth2"}},
		{"snat seen", scenario.Check{SNAT: addr("198.51.100.2")}, nil},
		{"snat to another address", scenario.Check{SNAT: addr("198.51.100.9")},
			[]string{"snat: no hop shows the source translated to 198.51.100.9 (seen: SNAT 10.0.0.2 -> 198.51.100.2 at host/eth0)"}},
		{"dnat absent", scenario.Check{DNAT: addr("10.0.0.2")},
			[]string{"dnat: no hop shows the destination translated to 10.0.0.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(traceAssertions(&tt.check, tr), "\n")
			if len(tt.want) == 0 && got != "" {
				t.Fatalf("unexpected failure: %s", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("failures %q do not mention %q", got, w)
				}
			}
		})
	}
}

// panicObserver panics when the first check is done, standing for a bug in
// any stage after the build.
type panicObserver struct{}

func (panicObserver) ScenarioStart(report.Scenario)  {}
func (panicObserver) CheckDone(string, report.Check) { panic("observer bug") }
func (panicObserver) ScenarioDone(report.Scenario)   {}

// A panic half way through a scenario becomes that scenario's error, after
// teardown: nothing of the run is left, and the other scenario still runs.
func TestRunTearsDownAfterPanic(t *testing.T) {
	privtest.Require(t)
	const yaml = `name: %s
namespaces:
  pa:
    interfaces: {eth0: {addresses: [10.66.0.1/24]}}
  pb:
    interfaces: {eth0: {addresses: [10.66.0.2/24]}}
links:
  - [pa/eth0, pb/eth0]
checks:
  - ping: {from: pa, to: 10.66.0.2}
`
	var scs []*scenario.Scenario
	for _, name := range []string{"panic-one", "panic-two"} {
		sc, err := scenario.Parse(name+".yaml", []byte(strings.Replace(yaml, "%s", name, 1)))
		if err != nil {
			t.Fatal(err)
		}
		scs = append(scs, sc)
	}
	store := runs.Store{Dir: t.TempDir()}
	res := Run(context.Background(), scs, Options{Parallel: 2, Trace: TraceOff, Store: store, Observer: panicObserver{}})
	if res.Passed {
		t.Fatal("run passed despite a panic")
	}
	for _, s := range res.Scenarios {
		if !strings.Contains(s.Error, "internal error: observer bug") || s.BuildError {
			t.Errorf("%s: error %q, build error %v; want the panic as a non-build error", s.Name, s.Error, s.BuildError)
		}
	}
	recs, err := store.List()
	if err != nil || len(recs) != 0 {
		t.Errorf("records left: %v, %v", recs, err)
	}
	names, err := netns.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, "-pa") || strings.HasSuffix(n, "-pb") {
			t.Errorf("namespace %s left behind after the panic", n)
		}
	}
}

func TestLongestFirst(t *testing.T) {
	ping := func(count int, expect scenario.Expect, timeout time.Duration) scenario.Check {
		return scenario.Check{Kind: "ping", Expect: expect, Ping: &scenario.PingCheck{Count: count, Timeout: timeout}}
	}
	ns := func(n int) []*scenario.Namespace { return make([]*scenario.Namespace, n) }
	scs := []*scenario.Scenario{
		{Name: "quick", Namespaces: ns(2), Checks: []scenario.Check{ping(1, scenario.ExpectSuccess, time.Second)}},
		{Name: "waits-for-a-fail", Namespaces: ns(2), Checks: []scenario.Check{ping(1, scenario.ExpectFail, time.Second)}},
		{Name: "many-namespaces", Namespaces: ns(8)},
		{Name: "counted-ping", Namespaces: ns(2), Checks: []scenario.Check{ping(4, scenario.ExpectSuccess, time.Second)}},
		{Name: "quick-too", Namespaces: ns(2), Checks: []scenario.Check{ping(1, scenario.ExpectSuccess, time.Second)}},
	}
	var got []string
	for _, i := range longestFirst(scs) {
		got = append(got, scs[i].Name)
	}
	want := []string{"waits-for-a-fail", "counted-ping", "many-namespaces", "quick", "quick-too"}
	if !slices.Equal(got, want) {
		t.Errorf("longestFirst = %v, want %v", got, want)
	}
}

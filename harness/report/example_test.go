package report_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/hopcheck/hopcheck/harness/report"
)

// A runner streams checks to the text report as they finish, then writes
// the files CI reads.
func Example() {
	ping := report.Check{
		Name: "ping ns1 -> 203.0.113.8", Kind: "ping", Expect: "success",
		Error:   "no reply from 203.0.113.8 within 1s",
		Summary: "0/1 replies",
		Hops: []report.Hop{
			{NS: "ns1", If: "veth_1", Dir: "egress", TUS: 0, Src: "10.0.0.2", Dst: "203.0.113.8", Proto: "icmp", Leg: report.LegRequest},
			{NS: "host", If: "veth_1h", Dir: "ingress", TUS: 7, Src: "10.0.0.2", Dst: "203.0.113.8", Proto: "icmp", Leg: report.LegRequest},
		},
		Drop: &report.Drop{NS: "host", Reason: "NETFILTER_DROP", Location: "nf_hook_slow"},
		Diagnosis: &report.Diagnosis{
			Cause: "netfilter-drop", NS: "host", If: "veth_1h",
			Summary: "the FORWARD chain's policy DROP dropped it",
			Fix:     "iptables -P FORWARD ACCEPT",
		},
	}
	ping.Details.Set("sent", "1")
	ping.Details.Set("received", "0")
	scenario := report.Scenario{Name: "nat-egress", File: "scenarios/nat-egress.yaml", Checks: []report.Check{ping}}
	run := report.Run{Scenarios: []report.Scenario{scenario}, DurationMS: 1003.4, Tracing: report.Tracing{Enabled: true, Mode: "tcx"}}

	text := report.NewText(os.Stdout, report.TextOptions{Color: report.ColorEnabled(os.Stdout)})
	text.ScenarioStart(scenario)
	text.CheckDone(scenario.Name, ping)
	text.ScenarioDone(scenario)
	text.Summary(run)

	var junit strings.Builder
	if err := report.WriteJUnit(&junit, run); err != nil {
		fmt.Println(err)
	}
	fmt.Println(strings.Count(junit.String(), "<failure "), "failure in the JUnit report")
	// Output:
	// FAIL  nat-egress  ping ns1 -> 203.0.113.8  0/1 replies
	//       error: no reply from 203.0.113.8 within 1s
	//       ns1/veth_1    egress   +0us  10.0.0.2 -> 203.0.113.8 icmp
	//       host/veth_1h  ingress  +7us  10.0.0.2 -> 203.0.113.8 icmp
	//       dropped in host at nf_hook_slow: NETFILTER_DROP
	//       cause: netfilter-drop at host/veth_1h: the FORWARD chain's policy DROP dropped it
	//       fix: iptables -P FORWARD ACCEPT
	//
	// scenarios  0 passed, 1 failed
	// checks     0 passed, 1 failed
	// duration   1.00s
	// tracing    on (tcx)
	// FAIL
	// 1 failure in the JUnit report
}

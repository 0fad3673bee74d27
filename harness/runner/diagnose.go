package runner

import (
	"context"
	"fmt"

	"github.com/hopcheck/hopcheck/harness/check"
	"github.com/hopcheck/hopcheck/harness/diagnose"
	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
	"github.com/hopcheck/hopcheck/harness/report"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/trace"
)

// wantsDiagnosis reports whether a failed probe of c would be diagnosed:
// every probe check, whatever it expects. An `expect: fail` check without
// a `cause:` passes on any failure, but its report still says why the
// probe failed, so that an isolation that holds for the wrong reason (a
// link down instead of a firewall rule) shows.
func wantsDiagnosis(c *scenario.Check) bool {
	return diagnose.IsProbe(c)
}

// countersBefore takes the iptables counters of the topology just before
// a probe check that may need diagnosing, so that the diagnosis can tell
// which rules and policies the probe moved. nil for other checks, and when
// the counters cannot be read (the diagnosis then goes without them).
func countersBefore(ctx context.Context, env Env, sc *scenario.Scenario, c *scenario.Check) *snapshot.State {
	if !wantsDiagnosis(c) {
		return nil
	}
	st, err := snapshot.TakeCounters(ctx, counterScope{env, sc})
	if err != nil {
		return nil
	}
	return st
}

// counterScope narrows a topology to the namespaces whose iptables
// counters can move: those the scenario gives iptables commands. Nothing
// else writes iptables in the sandbox namespaces hopcheck makes (host is
// one of them), so the others hold no rules and ACCEPT policies, and
// skipping them keeps the snapshot before every probe to one iptables-save
// per namespace that matters, however many containers a scenario has.
// Without a scenario (namespaces hopcheck did not make) every namespace
// counts.
type counterScope struct {
	Env
	sc *scenario.Scenario
}

func (s counterScope) Namespaces() []string {
	if s.sc == nil {
		return s.Env.Namespaces()
	}
	var out []string
	for _, name := range s.Env.Namespaces() {
		if ns := s.sc.Namespace(name); ns != nil && (len(ns.IPTables) > 0 || ns.NFT != "") {
			out = append(out, name)
		}
	}
	return out
}

// diagnoseCheck explains a probe check whose probe did not get through,
// whether or not it was expected to, puts the diagnosis in rc, and judges
// an `expect: fail` check's cause: it passes only when the diagnosis names
// that cause. t is the probe's trace,
// nil when tracing is off.
func diagnoseCheck(ctx context.Context, env Env, sc *scenario.Scenario, c *scenario.Check, res check.Result, t *trace.Trace, before *snapshot.State, rc *report.Check) {
	if !wantsDiagnosis(c) || res.Err != nil {
		return // not a probe, or it could not run: nothing failed on the network
	}
	if c.Expect == scenario.ExpectFail {
		if res.Reached {
			return // it got through: the check already fails, and there is nothing to explain
		}
	} else if res.Passed {
		return
	}
	p, ok := diagnose.ProbeOf(c, res)
	if !ok {
		return
	}
	d := diagnose.Explain(ctx, env, diagnose.Input{Scenario: sc, Probe: p, Trace: t, Before: before})
	if en, ok := env.(enterer); ok {
		d.Fix = diagnose.RunnableFix(d.Fix, en.Enter)
	}
	rc.Diagnosis = &report.Diagnosis{
		Cause: d.Cause, NS: d.NS, If: d.If, Summary: d.Summary,
		Evidence: d.Evidence, Fix: d.Fix, FromStateOnly: d.FromStateOnly,
	}
	if c.Expect == scenario.ExpectFail && c.Cause != "" && d.Cause != c.Cause {
		rc.Passed = false
		rc.Error = joinMsg(rc.Error, fmt.Sprintf("probe failed as expected, but diagnosed as %s, not %s", d.Cause, c.Cause))
	}
}

// enterer is an Env of namespaces hopcheck did not build, which knows how a
// user runs a command in each (diagnose.Named): its fixes are printed as
// command lines that work when typed.
type enterer interface {
	Enter(ns string) (argv []string, ok bool)
}

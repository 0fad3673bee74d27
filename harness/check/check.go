package check

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/trace"
)

// ErrUnknownKind is returned (in Result.Err) for a check whose Kind has no
// entry in the table. The parser only produces known kinds, so seeing it
// means the parser and this package disagree.
var ErrUnknownKind = errors.New("unknown check kind")

// ErrNoNamespace is returned (in Result.Err) when a check names a namespace
// that the topology does not hold.
var ErrNoNamespace = errors.New("namespace not in the topology")

// Env is what a check needs from the built topology; build.Topology
// satisfies it.
type Env interface {
	// NS returns the open handle of the scenario namespace called name (the
	// scenario's name, not the kernel's), or a closed handle
	// (netns.Handle(-1)) when there is none.
	NS(name string) netns.Handle
}

// Kind is one kind of check. Run evaluates c as if it were an
// `expect: success` check: Result.Passed says whether the described thing
// held exactly as stated, Result.Reached whether it happened at all, and
// Result.Err whether it could not be evaluated. The package-level Run
// applies `expect` and fills the bookkeeping fields.
type Kind interface {
	Run(ctx context.Context, env Env, c *scenario.Check) Result
}

// lookup is the table of check kinds, keyed by the YAML key of the check.
// It is a switch rather than a map so that the table cannot be changed at
// run time.
func lookup(kind string) (Kind, bool) {
	switch kind {
	case "ping":
		return pingKind{}, true
	case "tcp", "udp":
		return connKind{}, true
	case "arp":
		return arpKind{}, true
	case "route":
		return routeKind{}, true
	case "link":
		return linkKind{}, true
	case "iptables":
		return iptablesKind{}, true
	case "sysctl":
		return sysctlKind{}, true
	}
	return nil, false
}

// Detail is one key figure of a result, kept in order for reports
// ("rtt_avg_ms" = "0.051").
type Detail struct {
	Key   string
	Value string
}

// Result is the outcome of one check.
type Result struct {
	Check *scenario.Check
	// Name, Kind and Expect are copied from Check for reports; Expect is
	// never empty.
	Name   string
	Kind   string
	Expect scenario.Expect

	// Passed is the verdict after applying Expect.
	Passed   bool
	Duration time.Duration
	// Summary is what happened, in one short line ("3/3 replies, rtt avg
	// 0.050ms", "no route to 203.0.113.8").
	Summary string
	// Error says why the check failed, as a sentence a person acts on
	// ("expected via 10.0.0.1, got via 10.0.0.254 dev eth1"); empty when
	// the check passed.
	Error string
	// Details are the key figures, in a stable order, for reports.
	Details []Detail
	// Probe tells the tracer how to find this check's packets; set for
	// ping, tcp and udp checks that sent something. The runner fills in
	// Start and End from the tracer's clock around Run.
	Probe *trace.Probe
	// Reached is the outcome of the probe or lookup before `expect` is
	// applied: the thing the check describes happened (a reply came back,
	// a route exists, the entry is there).
	Reached bool
	// Err is set when the check could not be evaluated at all (a namespace
	// missing, iptables not installed, netlink failing); such a check fails
	// whatever its Expect. Error then holds its message.
	Err error
}

// Run runs check c against env: it looks up the kind, times it, and
// applies c.Expect.
func Run(ctx context.Context, env Env, c *scenario.Check) Result {
	start := time.Now()
	var r Result
	if k, ok := lookup(c.Kind); ok {
		r = k.Run(ctx, env, c)
	} else {
		r.Err = fmt.Errorf("check %q: %w %q", c.Name, ErrUnknownKind, c.Kind)
	}
	r.Duration = time.Since(start)
	return applyExpect(c, r)
}

// applyExpect turns a kind's success-shaped result into the verdict for
// c.Expect and copies c's bookkeeping fields.
//
// An `expect: fail` check passes when the thing it describes did not happen
// (Reached is false), not merely when the success check would fail: a ping
// with some replies but too much loss is not isolation, and a route that
// exists through the wrong gateway is still a route.
func applyExpect(c *scenario.Check, r Result) Result {
	r.Check = c
	r.Name = c.Name
	r.Kind = c.Kind
	r.Expect = c.Expect
	if r.Expect == "" {
		r.Expect = scenario.ExpectSuccess
	}
	switch {
	case r.Err != nil:
		r.Passed = false
		r.Error = r.Err.Error()
	case r.Expect == scenario.ExpectFail:
		r.Passed = !r.Reached
		r.Error = ""
		if !r.Passed {
			r.Error = "expected this to fail, but it did not: " + r.Summary
		}
	default:
		if r.Passed {
			r.Error = ""
		} else if r.Error == "" {
			r.Error = r.Summary
		}
	}
	return r
}

// nsOf returns the handle of the scenario namespace name, or an error
// wrapping ErrNoNamespace.
func nsOf(env Env, name string) (netns.Handle, error) {
	h := env.NS(name)
	if !h.IsOpen() {
		return h, fmt.Errorf("%s: %w", name, ErrNoNamespace)
	}
	return h, nil
}

// failed returns the result of a check that could not be evaluated.
func failed(err error) Result {
	return Result{Err: err}
}

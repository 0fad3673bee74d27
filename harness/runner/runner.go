package runner

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/hopcheck/hopcheck/harness/probe"
	"github.com/hopcheck/hopcheck/trace/capture"

	"github.com/cilium/ebpf/btf"
	"github.com/hopcheck/hopcheck/harness/build"
	"github.com/hopcheck/hopcheck/harness/check"
	"github.com/hopcheck/hopcheck/harness/report"
	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/trace"
)

// TraceMode says whether probes are traced and when their hops are shown.
type TraceMode string

// The values of --trace.
const (
	// TraceOnFailure traces every probe and shows hops for failed checks.
	TraceOnFailure TraceMode = "on-failure"
	// TraceAlways traces every probe and shows hops for every check.
	TraceAlways TraceMode = "always"
	// TraceOff attaches nothing.
	TraceOff TraceMode = "off"
)

// Options control a run.
type Options struct {
	// Parallel is how many scenarios run at once; 0 means the number of CPUs.
	Parallel int
	// Keep leaves every topology up after its checks (as `hopcheck up`
	// does); `hopcheck down` removes them.
	Keep bool
	// Trace is the tracing mode; "" means TraceOnFailure.
	Trace TraceMode
	// Attach forces the tc attach method.
	Attach trace.AttachMode
	// PcapDir, when set, receives one pcapng file per scenario.
	PcapDir string
	// Store records runs so that `clean` can tell live runs from leftovers.
	Store runs.Store
	// Observer receives results as they happen; nil means none.
	Observer Observer
	// Progress, when set, is told of each scenario's build steps and
	// namespaces torn down as they happen (see build.Options.Progress);
	// calls for one scenario are serialised, those of scenarios running
	// at once are not.
	Progress func(scenario, phase string, done, total int)
}

// Observer is told about progress as it happens. Calls are serialised.
type Observer interface {
	ScenarioStart(s report.Scenario)
	CheckDone(scenario string, c report.Check)
	ScenarioDone(s report.Scenario)
}

// Run runs every scenario, at most opts.Parallel at once, and returns the
// report in the order the scenarios were given.
func Run(ctx context.Context, scs []*scenario.Scenario, opts Options) report.Run {
	start := time.Now()
	par := opts.Parallel
	if par <= 0 {
		par = runtime.NumCPU()
	}
	if opts.Store.Dir == "" {
		opts.Store = runs.Open()
	}
	obs := &serialObserver{o: opts.Observer}
	// Probing kernel features makes a scratch namespace, decoding kernel
	// BTF takes tens of milliseconds, and the kernel verifying the programs
	// most of a scenario's tracing cost: do them once per run, not once
	// per scenario.
	var shared sharedTrace
	if len(scs) > 0 {
		shared = loadSharedTrace(opts)
		defer shared.close()
	}
	out := report.Run{Scenarios: make([]report.Scenario, len(scs))}
	tracing := make([]report.Tracing, len(scs))

	// Workers take the scenarios that will wait longest first, so that a
	// long one does not start last and stretch the run; the report keeps
	// the order given.
	next := make(chan int, len(scs))
	for _, i := range longestFirst(scs) {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(par, len(scs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				sc := scs[i]
				if ctx.Err() != nil {
					out.Scenarios[i] = report.Scenario{Name: sc.Name, File: sc.File, Description: sc.Description,
						Error: "not run: " + context.Cause(ctx).Error()}
					continue
				}
				out.Scenarios[i], tracing[i] = runOne(ctx, sc, opts, shared, obs)
			}
		}()
	}
	wg.Wait()

	// No scenario (an empty CI shard) fails nothing.
	out.Passed = true
	for i, s := range out.Scenarios {
		out.Passed = out.Passed && s.Passed
		out.LostEvents += s.LostEvents
		out.CaptureLost += s.CaptureLost
		// The run traced if any scenario did; otherwise the first reason
		// tracing was off stands for all.
		if t := tracing[i]; t.Enabled && !out.Tracing.Enabled || !out.Tracing.Enabled && out.Tracing.Reason == "" {
			out.Tracing = t
		}
	}
	out.DurationMS = ms(time.Since(start))
	return out
}

// longestFirst returns the indexes of scs ordered by how long their checks
// are expected to wait, longest first (stable for ties). Waiting dominates:
// a probe that must fail waits out its timeout, a ping of count N spends
// N-1 intervals, and every namespace costs a little to build and trace.
func longestFirst(scs []*scenario.Scenario) []int {
	cost := make([]time.Duration, len(scs))
	for i, sc := range scs {
		cost[i] = time.Duration(len(sc.Namespaces)) * 10 * time.Millisecond
		for _, c := range sc.Checks {
			switch {
			case c.Ping != nil:
				cost[i] += time.Duration(max(c.Ping.Count-1, 0)) * probe.DefaultPingInterval
				if c.Expect == scenario.ExpectFail {
					cost[i] += c.Ping.Timeout
				}
			case c.Conn != nil && c.Expect == scenario.ExpectFail:
				cost[i] += c.Conn.Timeout
			}
		}
	}
	order := make([]int, len(scs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return cost[order[a]] > cost[order[b]] })
	return order
}

// runOne builds, checks and tears down one scenario. A panic on its
// goroutine, or inside a netns.Do it calls (Do raises it again here),
// becomes the scenario's error after teardown.
func runOne(ctx context.Context, sc *scenario.Scenario, opts Options, shared sharedTrace, obs Observer) (rep report.Scenario, tracing report.Tracing) {
	start := time.Now()
	rep = report.Scenario{Name: sc.Name, File: sc.File, Description: sc.Description}
	defer func() {
		if p := recover(); p != nil {
			rep.Passed = false
			rep.Error = fmt.Sprintf("internal error: %v\n%s", p, debug.Stack())
		}
		rep.DurationMS = ms(time.Since(start))
		obs.ScenarioDone(rep)
	}()
	obs.ScenarioStart(rep)

	tracing = report.Tracing{Reason: "not started"}
	rec, err := runs.New(sc.Name, sc.File, sc.NamespaceNames(), opts.Keep)
	if err != nil {
		rep.Error = err.Error()
		return rep, tracing
	}
	runID := rec.RunID
	// The record exists before the first namespace does, so a concurrent
	// `hopcheck clean` never mistakes this run's objects for leftovers.
	if err := opts.Store.Save(rec); err != nil {
		rep.Error = err.Error()
		return rep, tracing
	}

	bopts := build.Options{RunID: runID}
	if opts.Progress != nil {
		bopts.Progress = func(phase string, done, total int) { opts.Progress(sc.Name, phase, done, total) }
	}
	topo, err := build.Up(ctx, sc, bopts)
	if err != nil {
		rep.Error = err.Error()
		// Interrupted (SIGINT, SIGTERM) is not bad input.
		rep.BuildError = ctx.Err() == nil
		if gone, rerr := opts.Store.RemoveIfGone(rec); rerr != nil {
			rep.Error = joinMsg(rep.Error, rerr.Error())
		} else if !gone {
			rep.Error = joinMsg(rep.Error, "some namespaces of run "+runID+" remain; remove them with 'hopcheck clean'")
		}
		return rep, tracing
	}
	// Kept only once built, so that a run killed mid-build stays cleanable.
	if opts.Keep {
		if err := opts.Store.MarkKept(rec); err != nil {
			rep.Error = joinMsg(rep.Error, err.Error())
		}
	}
	defer func() {
		if opts.Keep {
			topo.Release()
			return
		}
		// Teardown must happen even when ctx is cancelled (SIGINT); Down
		// never stops half way, so it gets a context that is not.
		if err := topo.Down(context.WithoutCancel(ctx)); err != nil {
			rep.Passed = false
			rep.Error = joinMsg(rep.Error, "teardown: "+err.Error())
			return
		}
		if _, err := opts.Store.RemoveIfGone(rec); err != nil {
			rep.Error = joinMsg(rep.Error, err.Error())
		}
	}()

	tr, tracing := startTracer(ctx, topo, opts, shared, !opts.Keep)
	if tr != nil {
		defer func() {
			if lost, err := tr.Lost(); err == nil {
				rep.LostEvents = lost
			}
			if err := tr.Close(); err != nil {
				rep.Error = joinMsg(rep.Error, "detach tracer: "+err.Error())
			}
		}()
	}
	var capt *capture.Capture
	if opts.PcapDir != "" {
		var err error
		capt, err = startCapture(ctx, topo, filepath.Join(opts.PcapDir, sc.Name+".pcapng"))
		if err != nil {
			rep.Error = joinMsg(rep.Error, "capture: "+err.Error())
		} else {
			defer func() {
				stats, err := capt.Stop()
				if err != nil {
					rep.Error = joinMsg(rep.Error, "capture: "+err.Error())
				}
				for _, st := range stats {
					rep.CaptureLost += st.Dropped
				}
			}()
		}
	}

	rep.Passed = true
	for i := range sc.Checks {
		if ctx.Err() != nil {
			rep.Passed = false
			rep.Error = joinMsg(rep.Error, "interrupted: "+context.Cause(ctx).Error())
			break
		}
		c := runCheck(ctx, topo, sc, tr, capt, &sc.Checks[i], opts)
		rep.Checks = append(rep.Checks, c)
		rep.Passed = rep.Passed && c.Passed
		obs.CheckDone(sc.Name, c)
	}
	return rep, tracing
}

// startCapture opens a packet capture on every interface of the topology.
func startCapture(ctx context.Context, topo *build.Topology, path string) (*capture.Capture, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	var ifs []capture.Interface
	for _, i := range topo.Interfaces() {
		ifs = append(ifs, capture.Interface{NS: i.NS, Netns: topo.NS(i.NS), If: i.If})
	}
	return capture.Start(ctx, path, ifs)
}

// Env is a set of namespaces that checks run in: a built topology, or
// namespaces the user made (`hopcheck why --netns`).
type Env interface {
	// Namespaces returns the scenario names of the namespaces.
	Namespaces() []string
	// NS returns the open handle of the namespace called name.
	NS(name string) netns.Handle
}

// Probe runs one probe check (ping, tcp or udp) in env with a tracer of its
// own, and returns its report with the probe's trace and, when it did not
// get through, the diagnosis; sc describes env. It is `hopcheck why`.
func Probe(ctx context.Context, env Env, sc *scenario.Scenario, c *scenario.Check, opts Options) (report.Check, report.Tracing) {
	var shared sharedTrace
	if opts.Trace != TraceOff {
		f := trace.ProbeFeatures()
		shared.features = &f
	}
	tr, tracing := startTracer(ctx, env, opts, shared, false)
	if tr != nil {
		defer tr.Close()
	}
	return runCheck(ctx, env, sc, tr, nil, c, opts), tracing
}

// traceWait bounds the wait for a probe's events to be read. It decides
// no verdict: whether a trace is complete is read from the events (see
// traceComplete). A tracer still behind after this long is stuck, and the
// report says so as a tracing problem.
const traceWait = 30 * time.Second

// sharedTrace is what every scenario's tracer of one run shares.
type sharedTrace struct {
	features *trace.Features
	btf      *btf.Cache
	symbols  *trace.Symbols
	// programs are loaded once for the run; loadErr says why not, and
	// stands for every scenario's reason tracing is off.
	programs *trace.Programs
	loadErr  error
}

// loadSharedTrace probes the kernel and loads the programs that every
// scenario's tracer of a run uses (nothing with --trace off).
func loadSharedTrace(opts Options) sharedTrace {
	if opts.Trace == TraceOff {
		return sharedTrace{}
	}
	f := trace.ProbeFeatures()
	shared := sharedTrace{features: &f, btf: btf.NewCache(), symbols: trace.NewSymbols()}
	shared.programs, shared.loadErr = trace.LoadPrograms(trace.Options{
		Features: shared.features, BTF: shared.btf, Symbols: shared.symbols,
	})
	return shared
}

// close releases the programs once every tracer using them is closed.
func (s sharedTrace) close() {
	if s.programs != nil {
		s.programs.Close()
	}
}

// startTracer attaches the tracer to every interface of the topology. A
// tracer that cannot start is not an error: the checks still run, and the
// report says that tracing is off and why.
//
// ephemeral says env's namespaces are deleted when the scenario ends, so
// whatever is attached to them goes with them (trace.Options.Ephemeral).
func startTracer(ctx context.Context, env Env, opts Options, shared sharedTrace, ephemeral bool) (*trace.Tracer, report.Tracing) {
	if opts.Trace == TraceOff {
		return nil, report.Tracing{Reason: "--trace off"}
	}
	if shared.loadErr != nil {
		return nil, report.Tracing{Reason: shared.loadErr.Error()}
	}
	tr, err := trace.New(trace.Options{
		Attach: opts.Attach, Features: shared.features, BTF: shared.btf, Symbols: shared.symbols,
		Programs: shared.programs, Ephemeral: ephemeral,
	})
	if err != nil {
		return nil, report.Tracing{Reason: err.Error()}
	}
	fail := func(err error) (*trace.Tracer, report.Tracing) {
		tr.Close()
		return nil, report.Tracing{Reason: err.Error()}
	}
	for _, name := range env.Namespaces() {
		if err := tr.AddNamespace(name, env.NS(name)); err != nil {
			return fail(err)
		}
		if err := tr.AttachAll(name); err != nil {
			return fail(err)
		}
	}
	if err := tr.Start(ctx); err != nil {
		return fail(err)
	}
	return tr, report.Tracing{Enabled: true, Mode: tr.Mode().String()}
}

// runCheck runs one check and, for probes, correlates its trace, checks
// its trace assertions, names the probe's packets in the capture (capt,
// when there is one) and diagnoses a probe that did not get through
// (diagnose.go).
func runCheck(ctx context.Context, env Env, sc *scenario.Scenario, tr *trace.Tracer, capt *capture.Capture, c *scenario.Check, opts Options) report.Check {
	before := countersBefore(ctx, env, sc, c)
	var from time.Duration
	var lostBefore uint64
	if tr != nil {
		lostBefore, _ = tr.Lost()
		from = tr.Now()
	}
	wallFrom := time.Now()
	res := check.Run(ctx, env, c)
	wallTo := time.Now()
	rc := report.Check{
		Name:       c.Name,
		Kind:       c.Kind,
		Expect:     string(c.Expect),
		Cause:      c.Cause,
		Passed:     res.Passed,
		DurationMS: ms(res.Duration),
		Error:      res.Error,
		Summary:    res.Summary,
	}
	for _, d := range res.Details {
		rc.Details = append(rc.Details, report.Detail{Key: d.Key, Value: d.Value})
	}
	if res.Probe == nil {
		diagnoseCheck(ctx, env, sc, c, res, nil, before, &rc)
		return rc
	}
	if tr == nil {
		annotate(capt, sc, c, *res.Probe, wallFrom, wallTo, nil)
		rc.TraceNote = "tracing off"
		if len(c.Path) > 0 || c.SNAT.IsValid() || c.DNAT.IsValid() {
			// Degrade, don't die: without tracing the check stands on what
			// the probe itself saw, and the report says what went unchecked.
			rc.TraceNote = "tracing off: path/snat/dnat not checked"
		}
		diagnoseCheck(ctx, env, sc, c, res, nil, before, &rc)
		return rc
	}
	probe := *res.Probe
	probe.Start, probe.End = from, tr.Now()
	fctx, cancel := context.WithTimeout(ctx, traceWait)
	err := tr.Flush(fctx)
	cancel()
	events := tr.Take()
	annotate(capt, sc, c, probe, wallFrom, wallTo, events)
	t := trace.Correlate(probe, events)
	fillTrace(&rc, &t)
	var lost uint64
	if n, lerr := tr.Lost(); lerr == nil && n > lostBefore {
		lost = n - lostBefore
	}
	// A real service's udp answer carries no tag, and the programs report
	// untagged UDP only when they report everything: its arrival is not
	// a sign of a complete trace.
	untracedReply := probe.UntaggedReply && probe.Proto == trace.ProtoUDP
	if untracedReply {
		rc.TraceNote = "the service's answer carries no probe tag: its hops are not traced"
	}
	if why := traceIncomplete(err, lost, res.Reached && !untracedReply, t.ReplyArrived, probe.SrcNS); why != "" {
		// The tracer's trouble is no verdict on the network: the check
		// stands on what its probe saw, and says what went unchecked.
		rc.TraceIncomplete = true
		rc.TraceNote = "trace incomplete, a tracing problem and not the network's: " + why
		if len(c.Path) > 0 || c.SNAT.IsValid() || c.DNAT.IsValid() {
			rc.TraceNote += "; path/snat/dnat not checked"
		}
	} else if res.Reached || c.Expect == scenario.ExpectSuccess {
		for _, msg := range traceAssertions(c, &t) {
			rc.Passed = false
			rc.Error = joinMsg(rc.Error, msg)
		}
	}
	diagnoseCheck(ctx, env, sc, c, res, &t, before, &rc)
	return rc
}

// traceIncomplete says why a probe's trace cannot be trusted to be whole,
// or "" when it can. That is decided from the events, not the clock: the
// reader has read past the probe's end (flushErr is nil), the programs lost
// no event meanwhile (lost), and a probe that got its answer (reached) has
// that answer seen arriving back in its source namespace srcNS.
func traceIncomplete(flushErr error, lost uint64, reached, replyArrived bool, srcNS string) string {
	switch {
	case flushErr != nil:
		return "the tracer had not read the probe's events after " + traceWait.String() + " (" + flushErr.Error() +
			"); if it happens again on an idle machine, report it with `uname -r`"
	case lost > 0:
		return fmt.Sprintf("%d trace events lost while the probe ran: the machine was too busy for the tracer to keep up; run again with fewer scenarios at once (--parallel)", lost)
	case reached && !replyArrived:
		return "the probe got its answer, but the answer's arrival in " + srcNS + " is not in the trace: an interface it crossed has no tracing programs (made after tracing began?)"
	}
	return ""
}

// fillTrace copies a probe's trace into its report; the renderers decide
// how much of it to show.
func fillTrace(rc *report.Check, t *trace.Trace) {
	for _, leg := range []struct {
		name string
		hops []trace.Hop
	}{{"request", t.Request}, {"reply", t.Reply}} {
		for _, h := range leg.hops {
			rc.Hops = append(rc.Hops, report.Hop{
				NS: h.NS, If: h.If, Dir: h.Dir.String(), TUS: h.T.Microseconds(),
				Src: addrString(h.Src), Dst: addrString(h.Dst), Proto: h.Proto, Leg: leg.name,
			})
		}
	}
	for _, x := range t.Translations {
		rc.Translations = append(rc.Translations, x.String())
	}
	for _, a := range t.ARP {
		rc.ARP = append(rc.ARP, a.String())
	}
	if t.Drop != nil {
		rc.Drop = &report.Drop{NS: t.Drop.NS, If: t.Drop.If, Reason: t.Drop.Reason, Location: t.Drop.Location}
	}
}

// addrString formats a hop address, without the port when there is none.
func addrString(ap netip.AddrPort) string {
	if ap.Port() == 0 {
		return ap.Addr().String()
	}
	return ap.String()
}

func joinMsg(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// serialObserver serialises calls to an Observer from parallel scenarios.
type serialObserver struct {
	mu sync.Mutex
	o  Observer
}

func (s *serialObserver) ScenarioStart(r report.Scenario) {
	if s.o != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.o.ScenarioStart(r)
	}
}

func (s *serialObserver) CheckDone(sc string, c report.Check) {
	if s.o != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.o.CheckDone(sc, c)
	}
}

func (s *serialObserver) ScenarioDone(r report.Scenario) {
	if s.o != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.o.ScenarioDone(r)
	}
}

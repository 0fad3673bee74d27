package runner

import (
	"context"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/harness/build"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/hopcheck/hopcheck/trace"
)

func TestTraceIncomplete(t *testing.T) {
	for _, tc := range []struct {
		name         string
		flushErr     error
		lost         uint64
		reached      bool
		replyArrived bool
		want         string // substring; "" means complete
	}{
		{"answered and the answer seen home", nil, 0, true, true, ""},
		{"unanswered probe, everything read", nil, 0, false, false, ""},
		{"tracer stuck", context.DeadlineExceeded, 0, true, true, "had not read the probe's events"},
		{"events lost", nil, 3, true, true, "3 trace events lost"},
		{"answered but the answer not seen", nil, 0, true, false, "arrival in ns1 is not in the trace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := traceIncomplete(tc.flushErr, tc.lost, tc.reached, tc.replyArrived, "ns1")
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("traceIncomplete = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestIncompleteTraceIsNoVerdict: a probe that got through passes on what
// it saw when its trace cannot be completed (here: no programs where its
// answer arrives), and says so; with the whole trace, the same wrong path
// assertion fails the check.
func TestIncompleteTraceIsNoVerdict(t *testing.T) {
	privtest.Require(t)
	const yaml = `name: incomplete
namespaces:
  pa:
    interfaces: {eth0: {addresses: [10.67.0.1/24]}}
  pb:
    interfaces: {eth0: {addresses: [10.67.0.2/24]}}
links:
  - [pa/eth0, pb/eth0]
checks:
  - ping: {from: pa, to: 10.67.0.2, path: [pb/eth0, pa/eth0]}
`
	sc, err := scenario.Parse("incomplete.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	runID, err := netns.NewRunID()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	topo, err := build.Up(ctx, sc, build.Options{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := topo.Down(ctx); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	for _, whole := range []bool{true, false} {
		tr, err := trace.New(trace.Options{Ephemeral: true})
		if err != nil {
			privtest.Unavailable(t, "tracing: "+err.Error())
		}
		for _, ns := range []string{"pa", "pb"} {
			if err := tr.AddNamespace(ns, topo.NS(ns)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tr.AttachAll("pb"); err != nil {
			t.Fatal(err)
		}
		if whole {
			if err := tr.AttachAll("pa"); err != nil {
				t.Fatal(err)
			}
		}
		if err := tr.Start(ctx); err != nil {
			t.Fatal(err)
		}
		rc := runCheck(ctx, topo, sc, tr, nil, &sc.Checks[0], Options{Trace: TraceAlways})
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
		switch {
		case whole && (rc.Passed || rc.TraceIncomplete || !strings.Contains(rc.Error, "path")):
			t.Errorf("whole trace: passed %v, incomplete %v, error %q; want the path assertion to fail it",
				rc.Passed, rc.TraceIncomplete, rc.Error)
		case !whole && (!rc.Passed || !rc.TraceIncomplete || !strings.Contains(rc.TraceNote, "not in the trace")):
			t.Errorf("answer's arrival not traced: passed %v, incomplete %v, note %q, error %q; want a pass noted as an incomplete trace",
				rc.Passed, rc.TraceIncomplete, rc.TraceNote, rc.Error)
		}
	}
}

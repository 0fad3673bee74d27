package main

import (
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/vishvananda/netlink"
)

// TestRunTearsDownOnSignal interrupts a run in the middle of a long ping:
// hopcheck must catch the signal, tear down and exit with a non-zero code
// of its own (not die by the signal), leaving no namespace and no record.
func TestRunTearsDownOnSignal(t *testing.T) {
	t.Parallel()
	privtest.Require(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			p := e.start("run", "testdata/slow.yaml")
			rec := e.waitBuilt(p)
			waitResolving(t, p, rec, "a", slowTarget)
			p.signal(t, sig)
			res := p.wait()
			// ExitCode is -1 when the process died by the signal, which
			// would mean no teardown ran.
			if res.code <= 0 {
				t.Errorf("after %v: exit code %d, want a non-zero code hopcheck chose\n%v", sig, res.code, res)
			}
			if left := stillExisting(rec); len(left) > 0 {
				t.Errorf("after %v: namespaces of run %s remain: %v", sig, rec.RunID, left)
			}
			e.assertNothingLeft()
		})
	}
}

// slowTarget is the address that the one check of testdata/slow.yaml pings
// from namespace a and that nobody has.
var slowTarget = netip.MustParseAddr("10.9.0.3")

// waitResolving waits until namespace ns of rec holds a neighbor entry for
// addr, which only a probe to addr creates: the run is then in its checks.
func waitResolving(t *testing.T, p *proc, rec *runs.Record, ns string, addr netip.Addr) {
	t.Helper()
	h, err := netns.Open(rec.Namespaces[ns])
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatalf("netlink in %s: %v", ns, err)
	}
	defer nl.Close()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		neighs, err := nl.NeighList(0, netlink.FAMILY_V4)
		if err != nil {
			t.Fatalf("neighbors of %s: %v", ns, err)
		}
		for _, n := range neighs {
			if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == addr {
				return
			}
		}
		if p.exited() {
			t.Fatalf("hopcheck exited before it probed %s:\n%v", addr, p.wait())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no probe to %s from %s within 30s", addr, ns)
}

// TestCleanAfterSIGKILL kills a run with SIGKILL, which no process can
// catch, so its namespaces and record stay. `hopcheck clean` must remove
// exactly those: a run in progress in the same state directory, and one in
// progress in another (which clean has no record of), must keep their
// namespaces and pass.
func TestCleanAfterSIGKILL(t *testing.T) {
	t.Parallel()
	privtest.Require(t)
	e := newEnv(t)
	other := newEnv(t)

	killed := e.start("run", "testdata/slow.yaml")
	dead := e.waitBuilt(killed)
	killed.signal(t, syscall.SIGKILL)
	killed.wait()
	if !allExist(dead) {
		t.Fatalf("SIGKILL took the namespaces of run %s with it (%v remain); this test needs them left over", dead.RunID, stillExisting(dead))
	}

	// Both runs last about six seconds; clean runs while they do.
	live := e.start("run", "testdata/busy-pass.yaml")
	foreign := other.start("run", "testdata/busy-pass.yaml")
	liveRec, foreignRec := e.waitBuilt(live), other.waitBuilt(foreign)

	res := e.run("clean")
	if res.code != exitOK {
		t.Errorf("clean: %v", res)
	}
	for _, ns := range dead.NamespaceNames() {
		if want := "removed namespace " + dead.Namespaces[ns]; !strings.Contains(res.stdout, want+"\n") {
			t.Errorf("clean did not say %q:\n%v", want, res)
		}
	}
	if left := stillExisting(dead); len(left) > 0 {
		t.Errorf("clean left the killed run's namespaces: %v", left)
	}
	inProgress := []struct {
		what string
		p    *proc
		rec  *runs.Record
	}{
		{"the run in progress in the same state directory", live, liveRec},
		{"the run in progress in another state directory", foreign, foreignRec},
	}
	// Look at both before waiting for either. The text report prints a
	// check's line before the run's own teardown starts, so while a run's
	// stdout is still empty, any namespace it lacks was taken by clean.
	for _, run := range inProgress {
		present := allExist(run.rec)
		if out := run.p.stdoutSoFar(); out != "" {
			t.Fatalf("%s finished its check before the test looked, so it proves nothing (make busy-pass.yaml last longer):\n%s", run.what, out)
		}
		if !present {
			t.Errorf("clean removed namespaces of %s: only %v of %v remain", run.what, stillExisting(run.rec), run.rec.Namespaces)
		}
	}
	for _, run := range inProgress {
		if res := run.p.wait(); res.code != exitOK {
			t.Errorf("%s did not pass:\n%v", run.what, res)
		}
	}
	e.assertNothingLeft()
	other.assertNothingLeft()
}

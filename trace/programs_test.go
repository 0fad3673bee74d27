package trace

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// loadTestPrograms loads programs for Tracers to share, closed at the end
// of the test (after the Tracers, which Cleanup closes first).
func loadTestPrograms(t *testing.T, opts Options) *Programs {
	t.Helper()
	privtest.Require(t)
	p, err := LoadPrograms(opts)
	if err != nil {
		t.Fatalf("LoadPrograms: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Programs.Close: %v", err)
		}
	})
	return p
}

// wantOnlyOwnEvents checks that tr saw own's datagram at both ends and
// nothing of others'.
func wantOnlyOwnEvents(t *testing.T, name string, tr *Tracer, own Tag, others ...Tag) {
	t.Helper()
	if !seenAtBothEnds(tr.Events(), own) {
		t.Errorf("%s: its own tag %v is missing a hop:%s", name, own, describeEvents(eventsWithTag(tr.Events(), own)))
	}
	for _, tag := range others {
		if evs := eventsWithTag(tr.Events(), tag); len(evs) != 0 {
			t.Errorf("%s: got another tracer's events (tag %v):%s", name, tag, describeEvents(evs))
		}
	}
}

// TestSharedProgramsKeepTracersApart runs two Tracers on one load of the
// programs, each on a topology of its own, as two scenarios of a run do:
// each gets only its own namespaces' events, and closing one detaches its
// programs and leaves the other tracing.
func TestSharedProgramsKeepTracersApart(t *testing.T) {
	forEachAttachMode(t, func(t *testing.T, mode AttachMode, feat Features) {
		p := loadTestPrograms(t, Options{Features: &feat})
		topo1, topo2 := newVethTopology(t), newVethTopology(t)
		tr1 := newTestTracer(t, Options{Programs: p, Attach: mode}, topo1)
		tr2 := newTestTracer(t, Options{Programs: p, Attach: mode}, topo2)
		topo1.listenB(t)
		topo2.listenB(t)

		tags := testTags(3)
		topo1.sendTagged(t, tags[:1])
		topo2.sendTagged(t, tags[1:2])
		flushTracer(t, tr1)
		flushTracer(t, tr2)
		wantOnlyOwnEvents(t, "tracer 1", tr1, tags[0], tags[1])
		wantOnlyOwnEvents(t, "tracer 2", tr2, tags[1], tags[0])

		if err := tr1.Close(); err != nil {
			t.Fatalf("Close tracer 1: %v", err)
		}
		for _, ifc := range []string{testIfA, "lo"} {
			if tcx, clsact := attachedPrograms(t, topo1.a, ifc); tcx+clsact != 0 {
				t.Errorf("tracer 1's %s after its Close: %d tcx, %d clsact programs", ifc, tcx, clsact)
			}
			if tcx, clsact := attachedPrograms(t, topo2.a, ifc); tcx+clsact != 2 {
				t.Errorf("tracer 2's %s after tracer 1's Close: %d tcx, %d clsact programs, want 2", ifc, tcx, clsact)
			}
		}
		topo2.sendTagged(t, tags[2:])
		wantAllSeen(t, "tracer 2 after tracer 1's Close", tr2, tags[2:])
	})
}

// TestSharedRingHandedOnKeepsNoEvents closes a Tracer with events unread
// in its ring buffer and traces the same namespaces with the next Tracer,
// which is handed that ring: it must not report the first one's events as
// its own.
func TestSharedRingHandedOnKeepsNoEvents(t *testing.T) {
	p := loadTestPrograms(t, Options{})
	topo := newVethTopology(t)
	topo.listenB(t)

	tr1, err := New(Options{Programs: p})
	if err != nil {
		t.Fatal(err)
	}
	defer tr1.Close()
	tr1.pollEvery = time.Hour // nothing but a Flush makes it read
	traceTopology(t, tr1, topo)
	if err := tr1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	old := testTags(3)
	topo.sendUnread(t, tr1, old) // left in the ring
	slot := tr1.slot.index
	if err := tr1.Close(); err != nil {
		t.Fatal(err)
	}

	tr2 := newTestTracer(t, Options{Programs: p}, topo)
	if tr2.slot.index != slot {
		t.Fatalf("tracer 2 got ring %d, not tracer 1's %d", tr2.slot.index, slot)
	}
	fresh := testTags(1)
	topo.sendTagged(t, fresh)
	flushTracer(t, tr2)
	wantOnlyOwnEvents(t, "tracer 2", tr2, fresh[0], old...)
}

// TestSharedProgramsOneTracerPerNamespace: a namespace is traced by one
// Tracer of a load at a time, and free again once that one closes.
func TestSharedProgramsOneTracerPerNamespace(t *testing.T) {
	p := loadTestPrograms(t, Options{})
	topo := newVethTopology(t)
	tr1, err := New(Options{Programs: p})
	if err != nil {
		t.Fatal(err)
	}
	defer tr1.Close()
	tr2, err := New(Options{Programs: p})
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Close()
	if err := tr1.AddNamespace("A", topo.a); err != nil {
		t.Fatal(err)
	}
	if err := tr2.AddNamespace("A", topo.a); err == nil {
		t.Fatal("a second Tracer of the same programs traces a namespace the first one traces")
	}
	if err := tr1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr2.AddNamespace("A", topo.a); err != nil {
		t.Errorf("after the first Tracer closed: %v", err)
	}
}

// TestSharedProgramsCountLossesPerTracer overflows one Tracer's ring (a
// page, never read): its Tracer counts the losses, and another Tracer of
// the same programs, reading its own ring, loses nothing.
func TestSharedProgramsCountLossesPerTracer(t *testing.T) {
	p := loadTestPrograms(t, Options{RingSize: os.Getpagesize()})
	topo1, topo2 := newVethTopology(t), newVethTopology(t)
	topo1.listenB(t)
	topo2.listenB(t)

	full, err := New(Options{Programs: p})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	traceTopology(t, full, topo1) // never started: nothing reads its ring
	reading := newTestTracer(t, Options{Programs: p}, topo2)

	// 200 datagrams are 400 events of 184 bytes, many pages.
	topo1.sendTagged(t, testTags(200))
	tags := testTags(3)
	topo2.sendTagged(t, tags)
	wantAllSeen(t, "reading tracer", reading, tags)
	if lost, err := full.Lost(); err != nil || lost == 0 {
		t.Errorf("tracer with a full ring: Lost() = %d, %v; want some", lost, err)
	}
}

// TestProgramsReleasedWithLastTracer closes the Programs while a Tracer
// uses them: it goes on tracing, and the programs are released with it.
func TestProgramsReleasedWithLastTracer(t *testing.T) {
	privtest.Require(t)
	p, err := LoadPrograms(Options{})
	if err != nil {
		t.Fatal(err)
	}
	topo := newVethTopology(t)
	tr := newTestTracer(t, Options{Programs: p}, topo)
	if err := p.Close(); err != nil {
		t.Fatalf("Programs.Close while a Tracer uses them: %v", err)
	}
	topo.listenB(t)
	tags := testTags(1)
	topo.sendTagged(t, tags)
	flushTracer(t, tr)
	wantOnlyOwnEvents(t, "tracer", tr, tags[0])

	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	refs, dropLink, slots := p.refs, p.dropLink, len(p.slots)
	p.mu.Unlock()
	if refs != 0 || dropLink != nil || slots != 0 {
		t.Errorf("after the last Tracer closed: %d references, drop link %v, %d ring buffers; want none", refs, dropLink, slots)
	}
	if _, err := New(Options{Programs: p}); !errors.Is(err, ErrClosed) {
		t.Errorf("New with closed Programs = %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Programs.Close: %v", err)
	}
}

// TestSharedProgramsRejectOtherLoadOptions: what programs are loaded with
// is the same for every Tracer that shares them.
func TestSharedProgramsRejectOtherLoadOptions(t *testing.T) {
	p := loadTestPrograms(t, Options{})
	for _, opts := range []Options{
		{Programs: p, RingSize: DefaultRingSize * 2},
		{Programs: p, AllPackets: true},
	} {
		if tr, err := New(opts); err == nil {
			tr.Close()
			t.Errorf("New(%+v) accepted options the programs were not loaded with", opts)
		}
	}
	tr, err := New(Options{Programs: p, RingSize: DefaultRingSize})
	if err != nil {
		t.Fatalf("New with the programs' own ring size: %v", err)
	}
	tr.Close()
}

// BenchmarkTracerSetup measures what a scenario's tracing costs to set up
// and tear down on a two-namespace topology (New, AddNamespace and
// AttachAll for both, Start, Close), with programs shared by every
// iteration against programs loaded for each, as before they were
// shared. It reports both and their ratio (x-own).
func BenchmarkTracerSetup(b *testing.B) {
	privtest.Require(b)
	feat := ProbeFeatures()
	shared := Options{Features: &feat, BTF: btf.NewCache(), Symbols: NewSymbols(), Ephemeral: true}
	p, err := LoadPrograms(shared)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	own := shared
	shared.Programs = p
	topo := newVethTopology(b)
	setup := func(opts Options) time.Duration {
		start := time.Now()
		tr, err := New(opts)
		if err != nil {
			b.Fatal(err)
		}
		traceTopology(b, tr, topo)
		if err := tr.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		if err := tr.Close(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var withShared, withOwn time.Duration
	n := 0
	for b.Loop() {
		withShared += setup(shared)
		withOwn += setup(own)
		n++
	}
	b.ReportMetric(float64(withShared.Microseconds())/float64(n)/1000, "shared-ms")
	b.ReportMetric(float64(withOwn.Microseconds())/float64(n)/1000, "own-ms")
	b.ReportMetric(float64(withOwn)/float64(withShared), "x-own")
}

// TestSharedMapsHoldARunsNamespaces: one load of the programs serves every
// scenario of a run at once, so its per-namespace maps must hold what the
// scenarios running together trace, not what one Tracer traced when each
// had maps of its own. Eight 1000-container scenarios (--parallel 8) are
// 8,008 namespaces and some 24,000 addresses; a map that is full makes
// AddNamespace fail, and the scenario runs untraced, its path, snat and
// dnat assertions unchecked. The entries are made up (cookies no
// namespace has) and written straight to the maps.
func TestSharedMapsHoldARunsNamespaces(t *testing.T) {
	p := loadTestPrograms(t, Options{})
	const scenarios, namespaces, addrs = 8, 1001, 3
	zero := make([]uint64, p.cpus)
	for i := range scenarios * namespaces {
		cookie := uint64(1)<<62 + uint64(i)
		if err := p.lost.Update(cookie, zero, ebpf.UpdateNoExist); err != nil {
			t.Fatalf("namespace %d: add loss counter: %v", i, err)
		}
		if err := p.filter.Update(cookie, uint32(i%scenarios), ebpf.UpdateNoExist); err != nil {
			t.Fatalf("namespace %d: add to netns_filter: %v", i, err)
		}
		for a := range addrs {
			k := addrKey{Netns: cookie}
			k.Addr[15] = byte(a)
			if err := p.addrs.Put(k, uint8(1)); err != nil {
				t.Fatalf("namespace %d: add address %d to local_addrs: %v", i, a, err)
			}
		}
	}
}

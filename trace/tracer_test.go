package trace

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netlink"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// The test topology: namespaces A and B joined by one veth pair.
const (
	testAddrA = "10.99.0.1"
	testAddrB = "10.99.0.2"
	testIfA   = "veth_a"
	testIfB   = "veth_b"
	testPort  = 40999
)

// vethTopology is two fresh namespaces joined by a veth pair, deleted at
// the end of the test.
type vethTopology struct {
	a, b         netns.Handle
	nameA, nameB string // kernel names, hc<run>-a and hc<run>-b
}

func newVethTopology(t testing.TB) *vethTopology {
	t.Helper()
	privtest.Require(t)
	runID, err := netns.NewRunID()
	if err != nil {
		t.Fatal(err)
	}
	topo := &vethTopology{nameA: netns.Name(runID, "a"), nameB: netns.Name(runID, "b")}
	topo.a = createTestNamespace(t, topo.nameA)
	topo.b = createTestNamespace(t, topo.nameB)

	nlA := testNetlink(t, topo.a)
	// The peer is created directly in B: it never exists in the root
	// namespace, not even for a moment.
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: testIfA},
		PeerName:      testIfB,
		PeerNamespace: netlink.NsFd(topo.b),
	}
	if err := nlA.LinkAdd(veth); err != nil {
		t.Fatalf("%s: add veth %s/%s: %v", topo.nameA, testIfA, testIfB, err)
	}
	configureTestLink(t, nlA, testIfA, testAddrA+"/24")
	configureTestLink(t, testNetlink(t, topo.b), testIfB, testAddrB+"/24")
	return topo
}

func createTestNamespace(t testing.TB, name string) netns.Handle {
	t.Helper()
	h, err := netns.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		if err := netns.Delete(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return h
}

func testNetlink(t testing.TB, ns netns.Handle) *netlink.Handle {
	t.Helper()
	nl, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nl.Close)
	return nl
}

func configureTestLink(t testing.TB, nl *netlink.Handle, name, cidr string) {
	t.Helper()
	for _, ifName := range []string{"lo", name} {
		l, err := nl.LinkByName(ifName)
		if err != nil {
			t.Fatal(err)
		}
		if ifName == name {
			addr, err := netlink.ParseAddr(cidr)
			if err != nil {
				t.Fatal(err)
			}
			if err := nl.AddrAdd(l, addr); err != nil {
				t.Fatalf("%s: add address %s: %v", name, cidr, err)
			}
		}
		if err := nl.LinkSetUp(l); err != nil {
			t.Fatalf("%s: set up: %v", ifName, err)
		}
	}
}

// newTestTracer starts a tracer on both namespaces of topo, registered as
// "A" and "B", with every interface attached.
func newTestTracer(t *testing.T, opts Options, topo *vethTopology) *Tracer {
	t.Helper()
	tr, err := New(opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	traceTopology(t, tr, topo)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return tr
}

// traceTopology registers both namespaces of topo with tr, as "A" and
// "B", and attaches tr to every interface.
func traceTopology(t testing.TB, tr *Tracer, topo *vethTopology) {
	t.Helper()
	for name, h := range map[string]netns.Handle{"A": topo.a, "B": topo.b} {
		if err := tr.AddNamespace(name, h); err != nil {
			t.Fatal(err)
		}
		if err := tr.AttachAll(name); err != nil {
			t.Fatal(err)
		}
	}
}

// testTags returns n tags unique to this test run.
func testTags(n int) []Tag {
	base := Tag(time.Now().UnixNano()) << 8
	tags := make([]Tag, n)
	for i := range tags {
		tags[i] = base + Tag(i)
	}
	return tags
}

// sendTagged sends one UDP datagram per tag from A to B's testPort. The
// socket is opened inside A and used from here, outside it.
func (topo *vethTopology) sendTagged(t *testing.T, tags []Tag) {
	t.Helper()
	var conn *net.UDPConn
	err := netns.Do(topo.a, func() error {
		var err error
		conn, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(testAddrB), Port: testPort})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, tag := range tags {
		if _, err := conn.Write(tag.Append(nil)); err != nil {
			t.Fatalf("send %v: %v", tag, err)
		}
	}
}

// listenB opens a UDP listener in B, so the datagrams are delivered, not
// answered with ICMP port unreachable.
func (topo *vethTopology) listenB(t *testing.T) *net.UDPConn {
	t.Helper()
	var conn *net.UDPConn
	err := netns.Do(topo.b, func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(testAddrB), Port: testPort})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func flushTracer(t *testing.T, tr *Tracer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func eventsWithTag(evs []Event, tag Tag) []Event {
	want := tag.Append(nil)
	var out []Event
	for _, ev := range evs {
		if bytes.Contains(ev.Data, want) {
			out = append(out, ev)
		}
	}
	return out
}

func describeEvents(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  kind=%d ns=%s if=%s dir=%s len=%d reason=%s at %s",
			ev.Kind, ev.NS, ev.If, ev.Dir, ev.Len, ev.ReasonName, ev.Location)
	}
	return b.String()
}

func forEachAttachMode(t *testing.T, fn func(t *testing.T, mode AttachMode, feat Features)) {
	privtest.Require(t)
	feat := ProbeFeatures()
	for _, mode := range []AttachMode{AttachTCX, AttachClsact} {
		t.Run(mode.String(), func(t *testing.T) {
			if _, err := mode.resolve(feat, false); err != nil {
				privtest.Unavailable(t, fmt.Sprintf("tc attach mode %s (%v)", mode, err))
			}
			fn(t, mode, feat)
		})
	}
}

func TestTracerSeesPacketsAtEveryHop(t *testing.T) {
	forEachAttachMode(t, func(t *testing.T, mode AttachMode, feat Features) {
		topo := newVethTopology(t)
		tr := newTestTracer(t, Options{Attach: mode, Features: &feat}, topo)
		if tr.Mode() != mode {
			t.Fatalf("Mode() = %v, want %v", tr.Mode(), mode)
		}
		topo.listenB(t)

		tags := testTags(3)
		from := tr.Now()
		topo.sendTagged(t, tags)
		flushTracer(t, tr)
		to := tr.Now()

		cookieA, _ := netns.Cookie(topo.a)
		cookieB, _ := netns.Cookie(topo.b)
		all := tr.EventsBetween(from, to)
		for _, tag := range tags {
			evs := eventsWithTag(all, tag)
			var egressA, ingressB bool
			for _, ev := range evs {
				if ev.Kind != KindPacket || ev.Layer != LayerEthernet {
					continue
				}
				// Ethernet 14 + IPv4 20 + UDP 8 + tag 12.
				if ev.Len != 54 {
					t.Errorf("%v at %s/%s %s: Len = %d, want 54", tag, ev.NS, ev.If, ev.Dir, ev.Len)
				}
				switch {
				case ev.NS == "A" && ev.If == testIfA && ev.Dir == Egress && ev.Netns == cookieA:
					egressA = true
				case ev.NS == "B" && ev.If == testIfB && ev.Dir == Ingress && ev.Netns == cookieB:
					ingressB = true
				}
			}
			if !egressA || !ingressB {
				t.Errorf("tag %v: egress A/%s seen %v, ingress B/%s seen %v; events with the tag:%s",
					tag, testIfA, egressA, testIfB, ingressB, describeEvents(evs))
			}
		}

		// Events() holds the same events, in time order.
		evs := tr.Events()
		if len(evs) < len(all) {
			t.Errorf("Events() has %d events, EventsBetween %d", len(evs), len(all))
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].Time < evs[i-1].Time {
				t.Fatalf("Events() out of time order at %d", i)
			}
		}
		if lost, err := tr.Lost(); err != nil || lost != 0 {
			t.Errorf("Lost() = %d, %v; want 0", lost, err)
		}
	})
}

// dropUDPInB makes B's firewall drop the test datagrams. The rule lives in
// B's own netfilter tables, which go with the namespace.
func (topo *vethTopology) dropUDPInB(t *testing.T) {
	t.Helper()
	err := netns.Do(topo.b, func() error {
		ipt, err := iptables.New()
		if err != nil {
			return err
		}
		return ipt.Append("filter", "INPUT", "-p", "udp", "--dport", fmt.Sprint(testPort), "-j", "DROP")
	})
	if err != nil {
		t.Fatalf("%s: iptables: %v", topo.nameB, err)
	}
}

// netfilterLocation reports whether a drop location is netfilter freeing
// what a rule dropped: nf_hook_slow with xtables, nft_do_chain itself with
// the nftables backend of iptables on recent kernels (6.18 reports
// nft_do_chain+0x46f).
func netfilterLocation(loc string) bool {
	return strings.HasPrefix(loc, "nf_hook_slow+0x") || strings.HasPrefix(loc, "nft_do_chain+0x")
}

func TestTracerReportsDrops(t *testing.T) {
	forEachAttachMode(t, func(t *testing.T, mode AttachMode, feat Features) {
		topo := newVethTopology(t)
		tr := newTestTracer(t, Options{Attach: mode, Features: &feat}, topo)
		topo.dropUDPInB(t)

		tags := testTags(3)
		topo.sendTagged(t, tags)
		flushTracer(t, tr)

		for _, tag := range tags {
			evs := eventsWithTag(tr.Events(), tag)
			var drop *Event
			for i := range evs {
				if evs[i].Kind == KindDrop {
					drop = &evs[i]
				}
			}
			if drop == nil {
				t.Errorf("tag %v: no drop event; events with the tag:%s", tag, describeEvents(evs))
				continue
			}
			if drop.NS != "B" || drop.If != testIfB || drop.Layer != LayerIPv4 {
				t.Errorf("tag %v: drop in %s/%s layer %d, want B/%s IPv4", tag, drop.NS, drop.If, drop.Layer, testIfB)
			}
			// IPv4 20 + UDP 8 + tag 12, counted from the network header.
			if drop.Len != 40 {
				t.Errorf("tag %v: drop Len = %d, want 40", tag, drop.Len)
			}
			if feat.KfreeSkbHasReason && drop.ReasonName != "NETFILTER_DROP" {
				t.Errorf("tag %v: reason %d %q, want NETFILTER_DROP", tag, drop.Reason, drop.ReasonName)
			}
			if !netfilterLocation(drop.Location) {
				t.Errorf("tag %v: dropped at %q, want nf_hook_slow+0x... or nft_do_chain+0x...", tag, drop.Location)
			}
		}
		if lost, err := tr.Lost(); err != nil || lost != 0 {
			t.Errorf("Lost() = %d, %v; want 0", lost, err)
		}
	})
}

// TestTracerWithoutDropReason runs the raw_tp fallback that kernels before
// 5.17 get, on this kernel: drops are reported, without a reason.
func TestTracerWithoutDropReason(t *testing.T) {
	privtest.Require(t)
	feat := ProbeFeatures()
	feat.KfreeSkbHasReason = false
	topo := newVethTopology(t)
	tr := newTestTracer(t, Options{Features: &feat}, topo)
	topo.dropUDPInB(t)

	tags := testTags(1)
	topo.sendTagged(t, tags)
	flushTracer(t, tr)

	var drops []Event
	for _, ev := range eventsWithTag(tr.Events(), tags[0]) {
		if ev.Kind == KindDrop {
			drops = append(drops, ev)
		}
	}
	if len(drops) != 1 {
		t.Fatalf("%d drop events with the tag, want 1:%s", len(drops), describeEvents(drops))
	}
	d := drops[0]
	if d.NS != "B" || d.Reason != 0 || d.ReasonName != "" || !netfilterLocation(d.Location) {
		t.Errorf("drop = %s/%s reason %d %q at %q; want B, no reason, in netfilter", d.NS, d.If, d.Reason, d.ReasonName, d.Location)
	}
}

// TestTracerIgnoresUntracedNamespaces traces only A: B's events, and the
// drop there, must not show up.
func TestTracerIgnoresUntracedNamespaces(t *testing.T) {
	privtest.Require(t)
	topo := newVethTopology(t)
	tr, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	if err := tr.AddNamespace("A", topo.a); err != nil {
		t.Fatal(err)
	}
	if err := tr.AttachAll("A"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	topo.dropUDPInB(t)

	tags := testTags(1)
	topo.sendTagged(t, tags)
	flushTracer(t, tr)

	evs := eventsWithTag(tr.Events(), tags[0])
	var egressA bool
	for _, ev := range evs {
		if ev.NS != "A" {
			t.Errorf("event from an untraced namespace:%s", describeEvents([]Event{ev}))
		}
		egressA = egressA || (ev.If == testIfA && ev.Dir == Egress)
	}
	if !egressA {
		t.Errorf("no egress on A/%s:%s", testIfA, describeEvents(evs))
	}
}

// attachedPrograms counts tc programs on ifName in ns: TCX links and
// cls_bpf filters, whoever attached them.
func attachedPrograms(t *testing.T, ns netns.Handle, ifName string) (tcx, clsact int) {
	t.Helper()
	nl := testNetlink(t, ns)
	l, err := nl.LinkByName(ifName)
	if err != nil {
		t.Fatal(err)
	}
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		filters, err := nl.FilterList(l, parent)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			// No clsact qdisc: no filters.
			continue
		}
		clsact += len(filters)
	}
	// The query resolves the ifindex in the caller's namespace.
	err = netns.Do(ns, func() error {
		for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
			res, err := link.QueryPrograms(link.QueryOptions{Target: l.Attrs().Index, Attach: at})
			if err != nil {
				return err
			}
			tcx += len(res.Programs)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("query tcx programs on %s: %v", ifName, err)
	}
	return tcx, clsact
}

func hasClsactQdisc(t *testing.T, ns netns.Handle, ifName string) bool {
	t.Helper()
	nl := testNetlink(t, ns)
	l, err := nl.LinkByName(ifName)
	if err != nil {
		t.Fatal(err)
	}
	qdiscs, err := nl.QdiscList(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qdiscs {
		if q.Type() == "clsact" {
			return true
		}
	}
	return false
}

func TestTracerCloseDetaches(t *testing.T) {
	forEachAttachMode(t, func(t *testing.T, mode AttachMode, feat Features) {
		topo := newVethTopology(t)
		tr := newTestTracer(t, Options{Attach: mode, Features: &feat}, topo)

		type iface struct {
			ns   netns.Handle
			name string
		}
		ifs := []iface{{topo.a, testIfA}, {topo.a, "lo"}, {topo.b, testIfB}, {topo.b, "lo"}}
		for _, ifc := range ifs {
			tcx, clsact := attachedPrograms(t, ifc.ns, ifc.name)
			want := [2]int{2, 0}
			if mode == AttachClsact {
				want = [2]int{0, 2}
			}
			if [2]int{tcx, clsact} != want {
				t.Fatalf("%s attached: %d tcx, %d clsact; want %d, %d", ifc.name, tcx, clsact, want[0], want[1])
			}
		}
		// Attaching again is a no-op, not a second pair.
		if err := tr.Attach("A", testIfA); err != nil {
			t.Fatal(err)
		}
		if tcx, clsact := attachedPrograms(t, topo.a, testIfA); tcx+clsact != 2 {
			t.Fatalf("after a second Attach: %d tcx, %d clsact programs", tcx, clsact)
		}

		if err := tr.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		for _, ifc := range ifs {
			if tcx, clsact := attachedPrograms(t, ifc.ns, ifc.name); tcx+clsact != 0 {
				t.Errorf("%s after Close: %d tcx, %d clsact programs", ifc.name, tcx, clsact)
			}
			if hasClsactQdisc(t, ifc.ns, ifc.name) {
				t.Errorf("%s after Close: clsact qdisc left", ifc.name)
			}
		}
		if err := tr.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if err := tr.Attach("A", testIfA); !errors.Is(err, ErrClosed) {
			t.Errorf("Attach after Close = %v, want ErrClosed", err)
		}
		if err := tr.Flush(context.Background()); !errors.Is(err, ErrClosed) {
			t.Errorf("Flush after Close = %v, want ErrClosed", err)
		}
	})
}

// TestTracerCloseAfterInterfacesGone closes a tracer whose interfaces were
// deleted under it, as a teardown that removes links first does.
func TestTracerCloseAfterInterfacesGone(t *testing.T) {
	forEachAttachMode(t, func(t *testing.T, mode AttachMode, feat Features) {
		topo := newVethTopology(t)
		tr := newTestTracer(t, Options{Attach: mode, Features: &feat}, topo)
		nl := testNetlink(t, topo.a)
		l, err := nl.LinkByName(testIfA)
		if err != nil {
			t.Fatal(err)
		}
		if err := nl.LinkDel(l); err != nil {
			t.Fatal(err)
		}
		if err := tr.Close(); err != nil {
			t.Fatalf("Close after the veth pair was deleted: %v", err)
		}
	})
}

// TestTracerStopsWithContext cancels Start's context: the reader stops and
// Flush says so instead of waiting.
func TestTracerStopsWithContext(t *testing.T) {
	privtest.Require(t)
	tr, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	if err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
	cancel()
	// The reader stops shortly after the context ends; until then Flush
	// still succeeds. It must then fail with ErrClosed, not hang.
	deadline := time.Now().Add(10 * time.Second)
	for {
		fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := tr.Flush(fctx)
		fcancel()
		if errors.Is(err, ErrClosed) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("Flush after the context ended = %v, want ErrClosed", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := tr.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestTracerRejectsBadOptions(t *testing.T) {
	privtest.Require(t)
	feat := ProbeFeatures()
	if _, err := New(Options{RingSize: 3 << 20, Features: &feat}); err == nil {
		t.Error("New accepted a ring size that is not a power of two")
	}
	noBTF := feat
	noBTF.HasBTF = false
	noBTF.Missing = map[Feature]string{FeatureBTF: "kernel has no BTF (/sys/kernel/btf/vmlinux missing)"}
	if _, err := New(Options{Features: &noBTF}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("New without BTF = %v, want ErrUnavailable", err)
	}
}

// testFrame is an Ethernet/IPv4/UDP frame carrying tag, for running the tc
// programs with BPF_PROG_TEST_RUN.
func testFrame(tag Tag) []byte {
	payload := tag.Append(nil)
	f := []byte{
		0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, // Ethernet, IPv4
		0x45, 0, 0, byte(28 + len(payload)), 0, 0, 0x40, 0, 64, 17, 0, 0, // IPv4, UDP
		10, 99, 0, 1, 10, 99, 0, 2,
		0x9c, 0x40, byte(testPort >> 8), byte(testPort & 0xff), 0, byte(8 + len(payload)), 0, 0, // UDP
	}
	return append(f, payload...)
}

// runTC runs prog once on frame inside ns (the test run's skb belongs to
// the running thread's namespace) and returns its verdict.
func runTC(t testing.TB, ns netns.Handle, prog *ebpf.Program, frame []byte) uint32 {
	t.Helper()
	var ret uint32
	err := netns.Do(ns, func() error {
		var err error
		ret, err = prog.Run(&ebpf.RunOptions{Data: frame})
		return err
	})
	if err != nil {
		t.Fatalf("test run: %v", err)
	}
	return ret
}

// TestTCProgramsNeverInterfere runs both tc programs on a packet of a
// traced and of an untraced namespace: the verdict is always "no opinion"
// (TC_ACT_UNSPEC, TCX_NEXT), and only the traced one is reported.
func TestTCProgramsNeverInterfere(t *testing.T) {
	topo := newVethTopology(t)
	tr, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	if err := tr.AddNamespace("A", topo.a); err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}

	const unspec = 0xffffffff // TC_ACT_UNSPEC (-1) as the kernel returns it
	tags := testTags(2)
	for _, tc := range []struct {
		ns  netns.Handle
		tag Tag
	}{{topo.a, tags[0]}, {topo.b, tags[1]}} {
		for _, prog := range []*ebpf.Program{tr.programs.tc.ingress, tr.programs.tc.egress} {
			if ret := runTC(t, tc.ns, prog, testFrame(tc.tag)); ret != unspec {
				t.Errorf("%s returned %#x, want TC_ACT_UNSPEC", prog, ret)
			}
		}
	}
	flushTracer(t, tr)
	// The test run's skb is on the namespace's lo. The kernel frees it as
	// dropped after the run, which the drop program reports too.
	var dirs []Direction
	for _, ev := range eventsWithTag(tr.Events(), tags[0]) {
		if ev.Kind == KindPacket && ev.NS == "A" && ev.If == "lo" {
			dirs = append(dirs, ev.Dir)
		}
	}
	if len(dirs) != 2 || dirs[0] == dirs[1] {
		t.Errorf("traced namespace: packets seen in directions %v, want ingress and egress:%s",
			dirs, describeEvents(eventsWithTag(tr.Events(), tags[0])))
	}
	if evs := eventsWithTag(tr.Events(), tags[1]); len(evs) != 0 {
		t.Errorf("untraced namespace reported:%s", describeEvents(evs))
	}
}

// BenchmarkTCProgram measures one run of the tc program on a traced
// packet (filter lookup, ring-buffer record, 128-byte copy) with
// BPF_PROG_TEST_RUN, against a program that only returns, in the same run.
// It needs no kernel.bpf_stats_enabled.
func BenchmarkTCProgram(b *testing.B) {
	privtest.Require(b)
	runID, err := netns.NewRunID()
	if err != nil {
		b.Fatal(err)
	}
	name := netns.Name(runID, "bench")
	ns, err := netns.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ns.Close(); netns.Delete(name) })

	tr, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tr.Close() })
	if err := tr.AddNamespace("bench", ns); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	if err := tr.Start(ctx); err != nil {
		b.Fatal(err)
	}
	base, err := passProgram()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { base.Close() })

	frame := testFrame(1)
	perRun := func(p *ebpf.Program, n int) time.Duration {
		var d time.Duration
		err := netns.Do(ns, func() error {
			var err error
			_, d, err = p.Benchmark(frame, n, nil)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	b.ResetTimer()
	traced := perRun(tr.programs.tc.egress, b.N)
	b.StopTimer()
	baseline := perRun(base, b.N)
	b.ReportMetric(float64(traced.Nanoseconds()), "ns/run")
	b.ReportMetric(float64(baseline.Nanoseconds()), "baseline-ns/run")
	if baseline > 0 {
		b.ReportMetric(float64(traced)/float64(baseline), "x-baseline")
	}
}

// TestTracerWakeups checks the contract between the programs' wakeups and
// the reader: a few events do not wake the reader, Flush still returns
// every one of them, and a burst past the wakeup threshold wakes the
// reader without a Flush. The reader's own poll is put off for the whole
// test, so only a wakeup or a Flush can make it read.
func TestTracerWakeups(t *testing.T) {
	privtest.Require(t)
	topo := newVethTopology(t)
	// 128 KiB: a 16 KiB threshold, about 90 events, above what the few
	// datagrams below and the veths' own IPv6 chatter (router
	// solicitations, MLD) make, and below the burst's 200 events.
	const ringSize = 128 << 10
	tr, err := New(Options{RingSize: ringSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	tr.pollEvery = time.Hour
	traceTopology(t, tr, topo)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	topo.listenB(t)

	// A probe's worth of events stays in the ring: nothing wakes the
	// reader, so after a while it still has read none of them.
	few := testTags(3)
	topo.sendUnread(t, tr, few)

	// Flush reads them all, without a wakeup.
	flushTracer(t, tr)
	for _, tag := range few {
		if !seenAtBothEnds(tr.Events(), tag) {
			t.Errorf("after Flush, tag %v is missing a hop:%s", tag, describeEvents(eventsWithTag(tr.Events(), tag)))
		}
	}

	// A burst past the threshold wakes the reader: the first datagram's
	// events arrive without a Flush. (The last ones, after the wakeup's
	// drain, wait for the next poll or Flush again.)
	burst := testTags(100)
	topo.sendTagged(t, burst)
	deadline := time.Now().Add(5 * time.Second)
	for !seenAtBothEnds(tr.Events(), burst[0]) {
		if time.Now().After(deadline) {
			t.Fatalf("%d datagrams (%d events, more than 1/%d of a %d-byte ring) did not wake the reader",
				len(burst), 2*len(burst), wakeupShare, ringSize)
		}
		time.Sleep(10 * time.Millisecond)
	}

	wantAllSeen(t, "after Flush", tr, burst)
}

// wantAllSeen flushes tr and checks that it saw each tag's datagram
// leave A and enter B, and lost no event; who says which tracer, or when.
func wantAllSeen(t *testing.T, who string, tr *Tracer, tags []Tag) {
	t.Helper()
	flushTracer(t, tr)
	for _, tag := range tags {
		if !seenAtBothEnds(tr.Events(), tag) {
			t.Errorf("%s: tag %v is missing a hop:%s", who, tag, describeEvents(eventsWithTag(tr.Events(), tag)))
		}
	}
	if lost, err := tr.Lost(); err != nil || lost != 0 {
		t.Errorf("%s: Lost() = %d, %v; want 0", who, lost, err)
	}
}

// sendUnread sends tags' datagrams from A to B and checks, a while later,
// that tr, whose own poll is put off, has read none of their events:
// nothing woke its reader.
func (topo *vethTopology) sendUnread(t *testing.T, tr *Tracer, tags []Tag) {
	t.Helper()
	topo.sendTagged(t, tags)
	time.Sleep(200 * time.Millisecond)
	for _, tag := range tags {
		if evs := eventsWithTag(tr.Events(), tag); len(evs) != 0 {
			t.Fatalf("tag %v read before Flush: the programs woke the reader for a few events:%s", tag, describeEvents(evs))
		}
	}
}

// seenAtBothEnds reports whether tag's datagram was seen leaving A and
// entering B.
func seenAtBothEnds(evs []Event, tag Tag) bool {
	var egressA, ingressB bool
	for _, ev := range eventsWithTag(evs, tag) {
		if ev.Kind != KindPacket {
			continue
		}
		egressA = egressA || (ev.NS == "A" && ev.If == testIfA && ev.Dir == Egress)
		ingressB = ingressB || (ev.NS == "B" && ev.If == testIfB && ev.Dir == Ingress)
	}
	return egressA && ingressB
}

func TestEventLog(t *testing.T) {
	// times returns events with these times, added in this order.
	times := func(ts ...int) []Event {
		evs := make([]Event, len(ts))
		for i, ts := range ts {
			evs[i] = Event{Time: time.Duration(ts)}
		}
		return evs
	}
	// seq returns events with times 0..n-1.
	seq := func(n int) []Event {
		evs := make([]Event, n)
		for i := range evs {
			evs[i] = Event{Time: time.Duration(i)}
		}
		return evs
	}
	for _, tc := range []struct {
		name     string
		add      []Event
		from, to time.Duration
		want     []Event
	}{
		{"empty", nil, 0, math.MaxInt64, nil},
		{"all, in the order added", times(5, 3, 9), 0, math.MaxInt64, times(5, 3, 9)},
		{"bounds are inclusive", times(1, 2, 3, 4), 2, 3, times(2, 3)},
		{"nothing in range", times(1, 2), 3, 4, nil},
		{"one block", seq(logBlock), 0, math.MaxInt64, seq(logBlock)},
		{"across blocks", seq(2*logBlock + 1), 0, math.MaxInt64, seq(2*logBlock + 1)},
		{"range across a block boundary", seq(2 * logBlock), logBlock - 2, logBlock + 1,
			seq(2 * logBlock)[logBlock-2 : logBlock+2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l eventLog
			for _, ev := range tc.add {
				l.add(ev)
			}
			got := l.between(tc.from, tc.to)
			if len(got) != len(tc.want) {
				t.Fatalf("between(%d, %d) = %d events, want %d", tc.from, tc.to, len(got), len(tc.want))
			}
			for i := range got {
				if got[i].Time != tc.want[i].Time {
					t.Fatalf("event %d: Time %d, want %d", i, got[i].Time, tc.want[i].Time)
				}
			}
			for i, b := range l.blocks {
				if cap(b) != logBlock || (i < len(l.blocks)-1 && len(b) != logBlock) {
					t.Errorf("block %d: len %d cap %d; every block but the last must be full, of %d", i, len(b), cap(b), logBlock)
				}
			}
		})
	}
}

// TestTakeForgets checks that Take returns what was read, in time order,
// and leaves nothing behind for the next Take or Events.
func TestTakeForgets(t *testing.T) {
	var tr Tracer
	for _, ts := range []int{3, 1, 2} {
		tr.log.add(Event{Time: time.Duration(ts)})
	}
	got := tr.Take()
	if len(got) != 3 || got[0].Time != 1 || got[1].Time != 2 || got[2].Time != 3 {
		t.Fatalf("Take() = %v, want times 1, 2, 3", got)
	}
	if evs := tr.Take(); evs != nil {
		t.Errorf("second Take() = %v, want nothing", evs)
	}
	if evs := tr.Events(); evs != nil {
		t.Errorf("Events() after Take = %v, want nothing", evs)
	}
}

// BenchmarkRecord measures what the reader spends on one packet record:
// decoding it, naming its namespace and interface, and keeping it, with a
// Take a second at 60,000 events per second (a traced TCP stream). The
// reader's CPU is taken from the traffic it traces.
func BenchmarkRecord(b *testing.B) {
	const cookie, ifindex, takeEvery = 7, 3, 60_000
	n := &namespace{name: "A", cookie: cookie, ifs: map[uint32]iface{ifindex: {name: testIfA, index: ifindex, ethernet: true}}}
	tr := &Tracer{namespaces: map[string]*namespace{"A": n}, byCookie: map[uint64]*namespace{cookie: n}}
	raw := make([]byte, recordSize)
	binary.LittleEndian.PutUint64(raw[offNetns:], cookie)
	binary.LittleEndian.PutUint32(raw[offIfindex:], ifindex)
	binary.LittleEndian.PutUint32(raw[offLen:], 1500)
	binary.LittleEndian.PutUint16(raw[offCapLen:], uint16(recordSnapLen))
	raw[offKind], raw[offDir], raw[offLayer] = byte(KindPacket), byte(Egress), byte(LayerEthernet)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		binary.LittleEndian.PutUint64(raw[offTime:], uint64(i))
		tr.record(raw)
		if i%takeEvery == takeEvery-1 {
			tr.Take()
		}
	}
}

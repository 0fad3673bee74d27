package trace_test

// The overhead benchmarks of the tracer (issue 3): what one run of the tc
// program costs, how much TCP throughput tracing takes, how many events
// per second the reader keeps up with, and how long attaching to 100
// interfaces takes. They need root and build their own namespaces; every
// figure is reported, none is asserted.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/hopcheck/hopcheck/trace"
)

// The benchmark pair: namespaces A and B joined by one veth pair, with
// addresses that exist only inside them.
const (
	pairAddrA = "10.98.0.1"
	pairAddrB = "10.98.0.2"
	pairIfA   = "veth_a"
	pairIfB   = "veth_b"
	udpPort   = 40997
	tcpPort   = 40998
)

// benchPair is the two namespaces of a benchmark, deleted at its end.
type benchPair struct {
	a, b netns.Handle
}

func newBenchPair(b *testing.B) benchPair {
	b.Helper()
	runID, err := netns.NewRunID()
	if err != nil {
		b.Fatal(err)
	}
	p := benchPair{a: benchNamespace(b, netns.Name(runID, "a")), b: benchNamespace(b, netns.Name(runID, "b"))}
	nlA, nlB := benchNetlink(b, p.a), benchNetlink(b, p.b)
	// The peer is made directly in B; it never exists in the root namespace.
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: pairIfA},
		PeerName:      pairIfB,
		PeerNamespace: netlink.NsFd(p.b),
	}
	if err := nlA.LinkAdd(veth); err != nil {
		b.Fatalf("a/%s: add veth: %v", pairIfA, err)
	}
	benchLinkUp(b, nlA, pairIfA, pairAddrA+"/24")
	benchLinkUp(b, nlB, pairIfB, pairAddrB+"/24")
	return p
}

// benchNamespace creates a namespace that b.Cleanup deletes.
func benchNamespace(b *testing.B, name string) netns.Handle {
	b.Helper()
	h, err := netns.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		h.Close()
		if err := netns.Delete(name); err != nil {
			b.Errorf("cleanup: %v", err)
		}
	})
	return h
}

func benchNetlink(b *testing.B, ns netns.Handle) *netlink.Handle {
	b.Helper()
	nl, err := netlink.NewHandleAt(ns)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nl.Close)
	return nl
}

// benchLinkUp gives interface name the address cidr and sets it and lo up.
func benchLinkUp(b *testing.B, nl *netlink.Handle, name, cidr string) {
	b.Helper()
	l, err := nl.LinkByName(name)
	if err != nil {
		b.Fatal(err)
	}
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		b.Fatal(err)
	}
	if err := nl.AddrAdd(l, addr); err != nil {
		b.Fatalf("%s: add address %s: %v", name, cidr, err)
	}
	for _, ifName := range []string{"lo", name} {
		l, err := nl.LinkByName(ifName)
		if err != nil {
			b.Fatal(err)
		}
		if err := nl.LinkSetUp(l); err != nil {
			b.Fatalf("%s: set up: %v", ifName, err)
		}
	}
}

// tracerFactory makes Tracers that share one feature probe and one
// decoded kernel BTF, so that making one costs what a run pays per
// scenario, not per benchmark round.
type tracerFactory struct {
	feat trace.Features
	btf  *btf.Cache
}

func newTracerFactory(b *testing.B) *tracerFactory {
	b.Helper()
	privtest.Require(b)
	f := &tracerFactory{feat: trace.ProbeFeatures(), btf: btf.NewCache()}
	for _, need := range []trace.Feature{trace.FeatureBTF, trace.FeatureLoad} {
		if why, missing := f.feat.Missing[need]; missing {
			privtest.Unavailable(b, string(need)+" ("+why+")")
		}
	}
	return f
}

// start returns a started Tracer with every interface of the named
// namespaces attached; it is closed by the returned function, which
// b.Cleanup also calls.
func (f *tracerFactory) start(b *testing.B, mode trace.AttachMode, nss map[string]netns.Handle) (*trace.Tracer, func()) {
	b.Helper()
	tr := f.newTracer(b, mode)
	for name, h := range nss {
		if err := tr.AddNamespace(name, h); err != nil {
			b.Fatal(err)
		}
		if err := tr.AttachAll(name); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := tr.Start(ctx); err != nil {
		cancel()
		b.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := tr.Close(); err != nil {
				b.Errorf("close tracer: %v", err)
			}
		})
	}
	b.Cleanup(stop)
	return tr, stop
}

// newTracer makes a Tracer with nothing attached yet; b.Cleanup closes it.
func (f *tracerFactory) newTracer(b *testing.B, mode trace.AttachMode) *trace.Tracer {
	b.Helper()
	tr, err := trace.New(trace.Options{Attach: mode, Features: &f.feat, BTF: f.btf})
	if errors.Is(err, trace.ErrUnavailable) {
		privtest.Unavailable(b, err.Error())
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tr.Close() })
	return tr
}

// flush waits until the tracer has read every event made so far.
func flush(b *testing.B, tr *trace.Tracer) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Flush(ctx); err != nil {
		b.Fatalf("flush: %v", err)
	}
}

func lost(b *testing.B, tr *trace.Tracer) uint64 {
	b.Helper()
	n, err := tr.Lost()
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// udpSink receives datagrams in B until closed, so that they are delivered
// instead of answered with ICMP port unreachable.
type udpSink struct {
	conn *net.UDPConn
	done chan struct{}
}

func newUDPSink(b *testing.B, p benchPair) *udpSink {
	b.Helper()
	var conn *net.UDPConn
	err := netns.Do(p.b, func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(pairAddrB), Port: udpPort})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	s := &udpSink{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 2048)
		for {
			if _, err := conn.Read(buf); err != nil {
				return // closed
			}
		}
	}()
	b.Cleanup(s.close)
	return s
}

// close stops the receiver and waits for its goroutine.
func (s *udpSink) close() {
	s.conn.Close()
	<-s.done
}

// udpSender sends tagged datagrams from A to the sink in B; each one makes
// two tc events (egress of veth_a, ingress of veth_b).
type udpSender struct {
	conn *net.UDPConn
	buf  []byte
	tag  trace.Tag
	// untagged sends datagrams that carry no probe tag.
	untagged bool
}

func newUDPSender(b *testing.B, p benchPair) *udpSender {
	b.Helper()
	var conn *net.UDPConn
	// The socket is made inside A and stays there when used from here.
	err := netns.Do(p.a, func() error {
		var err error
		conn, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(pairAddrB), Port: udpPort})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return &udpSender{conn: conn, tag: trace.Tag(time.Now().UnixNano())}
}

// send sends n datagrams as fast as the socket takes them.
func (s *udpSender) send(b *testing.B, n int) {
	b.Helper()
	for range n {
		s.tag++
		s.buf = s.tag.Append(s.buf[:0])
		if s.untagged {
			s.buf[0] = 'h' // no probe's: the programs leave it in the kernel
		}
		if _, err := s.conn.Write(s.buf); err != nil && !errors.Is(err, unix.ECONNREFUSED) {
			b.Fatalf("send: %v", err)
		}
	}
}

// BenchmarkTCInvocation measures what one run of the tc program costs on
// real traffic, from the kernel's own accounting (Tracer.TCStats: run
// time / run count), two ways:
//
//   - paced: 20,000 events per second, so the reader is idle and each
//     event's submit wakes it, the cost a probe's packets see;
//   - burst: 10,000 events at once, which fit in the ring buffer; while
//     the reader is busy draining, fewer submits have to wake it.
//
// Beside the tracer's programs, on the same two hooks, runs the smallest
// tc program (return TC_ACT_UNSPEC), accounted the same way: what the
// accounting itself and a program call cost on this machine, the floor
// under any figure.
//
// The kernel counts only while BPF statistics are on. They are turned on
// with BPF_ENABLE_STATS, which keeps them on only while the returned
// descriptor is open, so kernel.bpf_stats_enabled is back as it was when
// the benchmark ends, even if the process dies. Goal: under 150 ns.
func BenchmarkTCInvocation(b *testing.B) {
	f := newTracerFactory(b)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		privtest.Unavailable(b, fmt.Sprintf("BPF run-time statistics (BPF_ENABLE_STATS: %v)", err))
	}
	b.Cleanup(func() { stats.Close() })

	p := newBenchPair(b)
	newUDPSink(b, p)
	snd := newUDPSender(b, p)
	tr, _ := f.start(b, trace.AttachAuto, map[string]netns.Handle{"A": p.a, "B": p.b})
	base := attachBaseline(b, f, p)

	for _, v := range []struct {
		name string
		send func()
	}{
		{"paced", func() { pace(b, snd, 20_000, time.Second) }},
		{"burst", func() { snd.send(b, 5_000) }},
		// Traffic that is no probe's, the bulk of what crosses a traced
		// interface: classified and left in the kernel, never reserved.
		{"non-probe", func() {
			snd.untagged = true
			defer func() { snd.untagged = false }()
			pace(b, snd, 20_000, time.Second)
		}},
	} {
		b.Run(v.name, func(b *testing.B) {
			tr0, base0 := tcStats(b, tr), progStats(b, base)
			lost0 := lost(b, tr)
			for b.Loop() {
				v.send()
				flush(b, tr)
				tr.Take() // keeps memory flat across ops
			}
			traced, baseline := since(tcStats(b, tr), tr0), since(progStats(b, base), base0)
			if traced.RunCount == 0 {
				b.Fatal("the tc programs did not run: no traffic reached the traced interfaces")
			}
			b.ReportMetric(float64(traced.PerRun().Nanoseconds()), "ns/invocation")
			if base != nil {
				b.ReportMetric(float64(baseline.PerRun().Nanoseconds()), "baseline-ns/invocation")
			}
			b.ReportMetric(float64(traced.RunCount)/float64(b.N), "invocations/op")
			b.ReportMetric(float64(lost(b, tr)-lost0), "lost-events")
		})
	}
}

// since returns the runs between two readings of the same counters.
func since(now, then trace.ProgramStats) trace.ProgramStats {
	return trace.ProgramStats{RunTime: now.RunTime - then.RunTime, RunCount: now.RunCount - then.RunCount}
}

func tcStats(b *testing.B, tr *trace.Tracer) trace.ProgramStats {
	b.Helper()
	s, err := tr.TCStats()
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func progStats(b *testing.B, progs []*ebpf.Program) trace.ProgramStats {
	b.Helper()
	var total trace.ProgramStats
	for _, p := range progs {
		s, err := p.Stats()
		if err != nil {
			b.Fatalf("%s: stats: %v", p, err)
		}
		total.RunTime += s.Runtime
		total.RunCount += s.RunCount
	}
	return total
}

// attachBaseline attaches the smallest tc program (return TC_ACT_UNSPEC)
// where the benchmark's packets pass: egress of veth_a, ingress of
// veth_b. It needs TCX, which lets several programs share a hook; without
// it there is no baseline (nil).
func attachBaseline(b *testing.B, f *tracerFactory, p benchPair) []*ebpf.Program {
	b.Helper()
	if why, missing := f.feat.Missing[trace.FeatureTCX]; missing {
		b.Logf("no baseline: it needs %s (%s)", trace.FeatureTCX, why)
		return nil
	}
	var progs []*ebpf.Program
	for _, hook := range []struct {
		ns     netns.Handle
		ifName string
		attach ebpf.AttachType
	}{{p.a, pairIfA, ebpf.AttachTCXEgress}, {p.b, pairIfB, ebpf.AttachTCXIngress}} {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Name:         "baseline",
			Type:         ebpf.SchedCLS,
			License:      "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Return()}, // TC_ACT_UNSPEC
		})
		if err != nil {
			b.Fatalf("load baseline program: %v", err)
		}
		b.Cleanup(func() { prog.Close() })
		nl := benchNetlink(b, hook.ns)
		l, err := nl.LinkByName(hook.ifName)
		if err != nil {
			b.Fatal(err)
		}
		// A TCX link resolves its interface index in the caller's
		// namespace, so it is made inside the interface's.
		var tcx link.Link
		err = netns.Do(hook.ns, func() error {
			var err error
			tcx, err = link.AttachTCX(link.TCXOptions{Interface: l.Attrs().Index, Program: prog, Attach: hook.attach})
			return err
		})
		if err != nil {
			b.Fatalf("%s: attach baseline program: %v", hook.ifName, err)
		}
		b.Cleanup(func() { tcx.Close() })
		progs = append(progs, prog)
	}
	return progs
}

// BenchmarkTCPThroughput streams TCP from A to B, in this process, without
// and with tracing, and reports both rates and the share tracing takes.
// Each op streams 16 times for streamFor each (4 s in all), in rounds of
// untraced, traced, traced, untraced, so that drift in the machine's load
// falls on both sides alike. Goal: under 10% loss.
func BenchmarkTCPThroughput(b *testing.B) {
	const (
		streamFor = 250 * time.Millisecond
		rounds    = 4
	)
	f := newTracerFactory(b)
	p := newBenchPair(b)
	ln := newTCPListener(b, p)

	var off, on rate
	var lostEvents uint64
	var events int
	var tracedFor time.Duration
	for b.Loop() {
		for i := range 4 * rounds {
			traced := i%4 == 1 || i%4 == 2
			if !traced {
				off.add(stream(b, p, ln, streamFor))
				continue
			}
			tr, stop := f.start(b, trace.AttachAuto, map[string]netns.Handle{"A": p.a, "B": p.b})
			r := stream(b, p, ln, streamFor)
			on.add(r)
			flush(b, tr)
			events += len(tr.Take())
			lostEvents += lost(b, tr)
			tracedFor += r.d
			stop()
		}
	}
	b.ReportMetric(off.mbps(), "off-MB/s")
	b.ReportMetric(on.mbps(), "on-MB/s")
	b.ReportMetric(100*(1-on.mbps()/off.mbps()), "%-loss")
	// What the tracer handled meanwhile. Lost events at full TCP speed are
	// reported, not a failure: the goal of no lost events is about
	// scenarios (BenchmarkLibrary in harness/runner).
	b.ReportMetric(float64(events)/tracedFor.Seconds(), "events/s")
	b.ReportMetric(float64(lostEvents), "lost-events")
}

// rate accumulates bytes over time.
type rate struct {
	bytes int64
	d     time.Duration
}

func (r *rate) add(o rate) { r.bytes += o.bytes; r.d += o.d }

func (r rate) mbps() float64 {
	if r.d == 0 {
		return 0
	}
	return float64(r.bytes) / 1e6 / r.d.Seconds()
}

func newTCPListener(b *testing.B, p benchPair) net.Listener {
	b.Helper()
	var ln net.Listener
	err := netns.Do(p.b, func() error {
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(pairAddrB, fmt.Sprint(tcpPort)))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	return ln
}

// stream connects from A to ln in B, writes for d, and returns what the
// receiver got and how long it took to get it. Both ends are closed and
// the receiving goroutine has ended when it returns.
func stream(b *testing.B, p benchPair, ln net.Listener, d time.Duration) rate {
	b.Helper()
	type received struct {
		n   int64
		end time.Time
		err error
	}
	got := make(chan received, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- received{err: err}
			return
		}
		defer c.Close()
		n, err := io.Copy(io.Discard, c)
		got <- received{n: n, end: time.Now(), err: err}
	}()

	var conn net.Conn
	err := netns.Do(p.a, func() error {
		var err error
		conn, err = net.DialTimeout("tcp4", net.JoinHostPort(pairAddrB, fmt.Sprint(tcpPort)), 5*time.Second)
		return err
	})
	if err != nil {
		ln.(*net.TCPListener).SetDeadline(time.Now()) // ends the Accept
		<-got
		ln.(*net.TCPListener).SetDeadline(time.Time{})
		b.Fatalf("connect: %v", err)
	}
	buf := make([]byte, 256<<10)
	start := time.Now()
	conn.SetWriteDeadline(start.Add(d))
	for {
		if _, err := conn.Write(buf); err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				conn.Close()
				<-got
				b.Fatalf("send: %v", err)
			}
			break
		}
	}
	conn.Close()
	r := <-got
	if r.err != nil {
		b.Fatalf("receive: %v", r.err)
	}
	return rate{bytes: r.n, d: r.end.Sub(start)}
}

// BenchmarkEventRate finds how many events per second the tracer reads
// without losing any. Each op offers UDP traffic at rising paced rates,
// for stepFor each, until events are lost or the sender cannot go faster,
// then floods unpaced for as long. It reports the fastest rate read with
// no loss, and the flood's rate and losses.
func BenchmarkEventRate(b *testing.B) {
	const stepFor = 500 * time.Millisecond
	f := newTracerFactory(b)
	p := newBenchPair(b)
	newUDPSink(b, p)
	snd := newUDPSender(b, p)
	tr, _ := f.start(b, trace.AttachAuto, map[string]netns.Handle{"A": p.a, "B": p.b})

	var best, flood float64
	var floodLost uint64
	for b.Loop() {
		for offered := 25_000.0; ; offered *= 2 {
			got, n := offer(b, tr, snd, offered, stepFor)
			if n > 0 || got < offered*0.8 {
				// Lost events, or the sender's limit reached: stop raising.
				if n == 0 {
					best = max(best, got)
				}
				break
			}
			best = max(best, got)
		}
		got, n := offer(b, tr, snd, 0, stepFor)
		flood, floodLost = max(flood, got), floodLost+n
		if n == 0 {
			best = max(best, got)
		}
	}
	b.ReportMetric(best, "events/s-lossless")
	b.ReportMetric(flood, "flood-events/s")
	b.ReportMetric(float64(floodLost), "flood-lost")
}

// offer sends datagrams at perSec events per second (0: as fast as
// possible) for d, waits until the tracer has read them, and returns the
// rate of events read and how many were lost meanwhile.
func offer(b *testing.B, tr *trace.Tracer, snd *udpSender, perSec float64, d time.Duration) (float64, uint64) {
	b.Helper()
	flush(b, tr)
	tr.Take()
	lost0 := lost(b, tr)

	start := time.Now()
	pace(b, snd, perSec, d)
	flush(b, tr)
	elapsed := time.Since(start)
	read := 0
	for _, ev := range tr.Take() {
		if ev.Kind == trace.KindPacket && ev.If != "lo" {
			read++
		}
	}
	return float64(read) / elapsed.Seconds(), lost(b, tr) - lost0
}

// pace sends datagrams for d at perSec tc events per second (two per
// datagram: egress of veth_a, ingress of veth_b), or as fast as the
// socket takes them when perSec is 0.
func pace(b *testing.B, snd *udpSender, perSec float64, d time.Duration) {
	b.Helper()
	const tick = time.Millisecond
	const eventsPerDatagram = 2
	start := time.Now()
	sent := 0
	for now := start; now.Sub(start) < d; now = time.Now() {
		if perSec == 0 {
			snd.send(b, 256)
			continue
		}
		// Catch up with the schedule, then sleep a tick.
		due := int(perSec / eventsPerDatagram * now.Sub(start).Seconds())
		if due > sent {
			snd.send(b, due-sent)
			sent = due
		}
		time.Sleep(tick)
	}
}

// attachIfaces is how many interfaces BenchmarkAttach attaches to: this
// many veth ends, lo among them, in one namespace.
const attachIfaces = 100

// BenchmarkAttach times AttachAll on a namespace of 100 interfaces (lo
// and 99 veth ends whose peers are in a second namespace), with each
// attach method the kernel has, and the Close that detaches them. Goal:
// attach under 200 ms.
func BenchmarkAttach(b *testing.B) {
	f := newTracerFactory(b)
	runID, err := netns.NewRunID()
	if err != nil {
		b.Fatal(err)
	}
	a := benchNamespace(b, netns.Name(runID, "a"))
	peers := benchNamespace(b, netns.Name(runID, "b"))
	nl := benchNetlink(b, a)
	for i := range attachIfaces - 1 {
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: fmt.Sprintf("va%d", i)},
			PeerName:      fmt.Sprintf("vb%d", i),
			PeerNamespace: netlink.NsFd(peers),
		}
		if err := nl.LinkAdd(veth); err != nil {
			b.Fatalf("a/va%d: add veth: %v", i, err)
		}
	}
	if links, err := nl.LinkList(); err != nil || len(links) != attachIfaces {
		b.Fatalf("namespace a has %d interfaces (%v), want %d", len(links), err, attachIfaces)
	}

	for _, m := range []struct {
		mode    trace.AttachMode
		feature trace.Feature
	}{{trace.AttachTCX, trace.FeatureTCX}, {trace.AttachClsact, trace.FeatureClsact}} {
		b.Run(m.mode.String(), func(b *testing.B) {
			if why, missing := f.feat.Missing[m.feature]; missing {
				b.Skipf("no %s on this kernel: %s", m.feature, why)
			}
			var attach, detach time.Duration
			for b.Loop() {
				b.StopTimer()
				tr := f.newTracer(b, m.mode)
				if err := tr.AddNamespace("a", a); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				if err := tr.AttachAll("a"); err != nil {
					b.Fatal(err)
				}
				attach += time.Since(start)
				b.StopTimer()
				start = time.Now()
				if err := tr.Close(); err != nil {
					b.Fatal(err)
				}
				detach += time.Since(start)
				b.StartTimer()
			}
			b.ReportMetric(ms(attach)/float64(b.N), "attach-ms")
			b.ReportMetric(ms(detach)/float64(b.N), "detach-ms")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

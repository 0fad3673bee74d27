package trace

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/bpf"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/nl"
)

// ErrUnavailable is wrapped by New's error when this kernel or process
// cannot trace; the message says why ("tracing off: kernel has no BTF
// (/sys/kernel/btf/vmlinux missing)"). Callers run their checks untraced
// and report the reason.
var ErrUnavailable = errors.New("tracing off")

// ErrClosed is returned by the methods of a Tracer after Close, and by
// Flush once the reader has stopped because Start's context ended.
var ErrClosed = errors.New("tracer closed")

// DefaultRingSize is the ring buffer's size unless Options say otherwise:
// room for about 23,000 events between two reads.
const DefaultRingSize = 4 << 20

// pollInterval is how long the reader sleeps at most. The programs submit
// most events without waking it (see submit in bpf/trace.c), so this is
// the delay before an event reaches Take when nothing else wakes the
// reader: short beside the 100 ms a live trace prints at, long enough that
// an idle reader costs nothing worth measuring.
const pollInterval = 25 * time.Millisecond

// wakeupShare is the fraction of the ring (1/wakeupShare) that, once
// unread, makes the programs wake the reader at once. Below it events
// wait for the next poll; above it the rest of the ring is the room the
// reader has to catch up before events are lost.
const wakeupShare = 8

// Options configure New.
type Options struct {
	// Attach says how tc programs are attached; AttachAuto picks TCX where
	// the kernel has it.
	Attach AttachMode
	// RingSize is the ring buffer's size in bytes: a power of two and a
	// multiple of the page size. Zero means DefaultRingSize.
	RingSize int
	// Features is the result of an earlier ProbeFeatures. Probing creates
	// and deletes a namespace, so a caller making many Tracers probes once
	// and passes the result. Nil means New probes.
	Features *Features
	// BTF caches the kernel's BTF, which takes tens of milliseconds to
	// decode. Callers making many Tracers share one (btf.NewCache()). Nil
	// means a cache for this Tracer only.
	BTF *btf.Cache
	// Symbols names kernel addresses (drop locations). Callers making
	// many Tracers share one (NewSymbols()). Nil means one for this Tracer
	// only.
	Symbols *Symbols
	// AllPackets reports every packet of the traced namespaces, as a live
	// trace or a capture wants. By default only what correlating and
	// diagnosing probes needs leaves the kernel: tagged probe packets,
	// TCP connection set-up and tear-down, ICMP errors, and neighbor
	// resolution where the namespace asks or is asked (see bpf/trace.c).
	AllPackets bool
	// Ephemeral says the traced namespaces are deleted when tracing ends
	// (hopcheck's own topologies, not kept): AttachAuto then picks clsact,
	// whose attach costs no RCU grace period per interface, and Close
	// leaves the programs to go with the namespaces' devices instead of
	// detaching them one by one (see AttachMode.resolve).
	Ephemeral bool
}

// Tracer follows packets through the namespaces registered with
// AddNamespace: tc programs on the interfaces given to Attach report every
// packet, and a program on skb:kfree_skb reports drops in those
// namespaces. Events are read after Start and kept in memory.
//
// A Tracer is safe for concurrent use. Close releases everything it
// attached and loaded.
type Tracer struct {
	mode      AttachMode
	ephemeral bool
	attachFn  attachFunc
	hasReason bool
	reasons   dropReasons
	feat      Features // what the kernel can do; netnsID asks it

	tc       tcPrograms
	drop     *ebpf.Program
	dropLink link.Link
	filter   *ebpf.Map
	addrs    *ebpf.Map // local_addrs: the traced namespaces' addresses
	scratch  *ebpf.Map
	lost     *ebpf.Map
	events   *ebpf.Map
	rd       *ringbuf.Reader

	// pollEvery is the reader's longest sleep, pollInterval unless a test
	// sets it before Start.
	pollEvery time.Duration

	// syms names drop locations; it is loaded in New, never by the
	// reader.
	syms *Symbols

	// attachMu serialises Attach and AttachAll, so that two calls for one
	// interface cannot both see it unattached and attach it twice.
	attachMu sync.Mutex

	mu         sync.Mutex
	closed     bool
	namespaces map[string]*namespace // by scenario name
	byCookie   map[uint64]*namespace
	attached   map[ifaceKey]attachment
	order      []ifaceKey // attach order, detached in reverse
	log        eventLog
	readErr    error  // why the reader stopped, if not Close
	malformed  uint64 // records that did not decode

	// Reader lifecycle: set by Start. cancelWG covers the function that
	// closes the reader when Start's context is done.
	started    bool
	readerDone chan struct{}
	stopCancel func() bool
	cancelWG   sync.WaitGroup

	// Flush bookkeeping: flushReq counts Flush requests, flushServed the
	// highest request known to be served; flushCh is closed (and replaced)
	// whenever flushServed moves; flushWaits are the requests not yet
	// served, with the time each was made. Guarded by mu.
	flushReq    uint64
	flushServed uint64
	flushCh     chan struct{}
	flushWaits  []flushWait

	closeOnce sync.Once
	closeErr  error
}

// flushWait is one Flush request: its number and when it was made.
type flushWait struct {
	req uint64
	at  time.Duration
}

// namespace is a traced network namespace.
type namespace struct {
	name   string
	cookie uint64
	handle netns.Handle    // owned duplicate of the caller's handle
	nl     *netlink.Handle // netlink socket inside the namespace
	ifs    map[uint32]iface
}

type ifaceKey struct {
	ns      string
	ifindex int
}

// New loads the programs and maps, attaches the drop program, and prepares
// the ring-buffer reader. Nothing is attached to interfaces yet. If the
// kernel or the process cannot trace, the error wraps ErrUnavailable.
func New(opts Options) (*Tracer, error) {
	var feat Features
	if opts.Features != nil {
		feat = *opts.Features
	} else {
		feat = ProbeFeatures()
	}
	if err := feat.usable(); err != nil {
		return nil, err
	}
	mode, err := opts.Attach.resolve(feat, opts.Ephemeral)
	if err != nil {
		return nil, err
	}

	cache := opts.BTF
	if cache == nil {
		cache = btf.NewCache()
	}
	syms := opts.Symbols
	if syms == nil {
		syms = NewSymbols()
	}
	kernel, err := cache.Kernel()
	if err != nil {
		return nil, fmt.Errorf("%w: kernel BTF: %v", ErrUnavailable, err)
	}

	t := &Tracer{
		mode:       mode,
		ephemeral:  opts.Ephemeral,
		hasReason:  feat.KfreeSkbHasReason,
		feat:       feat,
		namespaces: make(map[string]*namespace),
		byCookie:   make(map[uint64]*namespace),
		attached:   make(map[ifaceKey]attachment),
		flushCh:    make(chan struct{}),
		pollEvery:  pollInterval,
		syms:       syms,
	}
	t.attachFn = attachTCX
	if mode == AttachClsact {
		t.attachFn = attachClsact
	}
	if t.hasReason {
		if t.reasons, err = loadDropReasons(kernel); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}

	if err := t.load(opts, cache); err != nil {
		t.closeObjects()
		return nil, err
	}
	return t, nil
}

// load loads the collection, attaches the kfree_skb program and opens the
// ring-buffer reader.
func (t *Tracer) load(opts Options, cache *btf.Cache) error {
	spec, err := bpf.LoadTrace()
	if err != nil {
		return fmt.Errorf("load BPF object: %w", err)
	}
	ringSize := opts.RingSize
	if ringSize == 0 {
		ringSize = DefaultRingSize
	}
	if ringSize < 0 || ringSize&(ringSize-1) != 0 || ringSize%unix.Getpagesize() != 0 {
		return fmt.Errorf("ring size %d: want a power of two and a multiple of the page size", ringSize)
	}
	spec.Maps[bpf.TraceMapEvents].MaxEntries = uint32(ringSize)
	var all uint8
	if opts.AllPackets {
		all = 1
	}
	// Without sock_rfree's address (addresses hidden), packets freed
	// unread from a closing socket are reported as drops; nothing else
	// changes.
	for name, v := range map[string]any{
		bpf.TraceVarWakeupBytes:   uint64(ringSize / wakeupShare),
		bpf.TraceVarAllPackets:    all,
		bpf.TraceVarSockRfreeAddr: t.syms.Addr("sock_rfree"),
		bpf.TraceVarNetnsByInum:   boolByte(!t.feat.HasNetnsCookie),
	} {
		sv := spec.Variables[name]
		if sv == nil {
			return fmt.Errorf("load BPF object: variable %s missing", name)
		}
		if err := sv.Set(v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}

	// Only one kfree_skb variant can pass the verifier on a given kernel:
	// the one reading a reason argument is rejected where there is none.
	// LoadAndAssign loads only what the struct names, so the chosen variant
	// is given one more name, dropKey, for the struct to ask for.
	dropName := bpf.TraceProgKfreeSkbNoreason
	if t.hasReason {
		dropName = bpf.TraceProgKfreeSkbReason
	}
	const dropKey = "kfree_skb"
	spec.Programs[dropKey] = spec.Programs[dropName]
	var objs struct {
		bpf.TraceMaps
		TcIngress *ebpf.Program `ebpf:"tc_ingress"`
		TcEgress  *ebpf.Program `ebpf:"tc_egress"`
		Drop      *ebpf.Program `ebpf:"kfree_skb"`
	}
	err = spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{Cache: cache})
	if err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			// %v keeps the verifier's last lines; the whole log (%+v) is
			// hundreds of lines, too much for a report's summary.
			return fmt.Errorf("%w: the kernel's verifier rejected hopcheck's BPF programs (%v); please report it with `uname -r`", ErrUnavailable, verr)
		}
		return fmt.Errorf("%w: load BPF programs: %v", ErrUnavailable, err)
	}
	t.tc = tcPrograms{ingress: objs.TcIngress, egress: objs.TcEgress}
	t.drop, t.filter, t.lost, t.events = objs.Drop, objs.NetnsFilter, objs.Lost, objs.Events
	t.addrs, t.scratch = objs.LocalAddrs, objs.Scratch

	if t.hasReason {
		t.dropLink, err = link.AttachTracing(link.TracingOptions{Program: t.drop, AttachType: ebpf.AttachTraceRawTp})
	} else {
		t.dropLink, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: "kfree_skb", Program: t.drop})
	}
	if err != nil {
		return fmt.Errorf("%w: attach %s to skb:kfree_skb: %v", ErrUnavailable, dropName, err)
	}

	t.rd, err = ringbuf.NewReader(t.events)
	if err != nil {
		return fmt.Errorf("ring buffer reader: %w", err)
	}
	return nil
}

// Mode returns how tc programs are attached (never AttachAuto).
func (t *Tracer) Mode() AttachMode { return t.mode }

// AddNamespace registers ns under its scenario name ("host", "ns1"): the
// programs start reporting for it, and its events carry that name. The
// Tracer keeps its own handle; the caller may close ns.
func (t *Tracer) AddNamespace(name string, ns netns.Handle) error {
	cookie, err := t.feat.netnsID(ns)
	if err != nil {
		return fmt.Errorf("trace %s: %w", name, err)
	}
	fd, err := unix.FcntlInt(uintptr(ns), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("trace %s: duplicate namespace handle: %w", name, err)
	}
	n := &namespace{name: name, cookie: cookie, handle: netns.Handle(fd), ifs: make(map[uint32]iface)}
	if n.nl, err = nl.HandleAt(n.handle); err != nil {
		n.handle.Close()
		return fmt.Errorf("trace %s: netlink: %w", name, err)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	err = func() error {
		switch {
		case t.closed:
			return ErrClosed
		case t.namespaces[name] != nil:
			return errors.New("already traced")
		case t.byCookie[cookie] != nil:
			return fmt.Errorf("same namespace as %s", t.byCookie[cookie].name)
		}
		if err := t.putAddrs(n); err != nil {
			return err
		}
		if err := t.filter.Put(cookie, uint8(1)); err != nil {
			return fmt.Errorf("add to netns_filter: %w", err)
		}
		return nil
	}()
	if err != nil {
		n.nl.Close()
		n.handle.Close()
		return fmt.Errorf("trace %s: %w", name, err)
	}
	t.namespaces[name] = n
	t.byCookie[cookie] = n
	return nil
}

// addrKey mirrors struct addr_key in bpf/trace.c.
type addrKey struct {
	Netns uint64
	Addr  [16]byte // IPv4 as IPv4-mapped IPv6
}

// putAddrs tells the programs every address of n, so that they report the
// neighbor resolution n takes part in (see want_neighbor in bpf/trace.c).
// Addresses are read once: hopcheck traces topologies after building them.
func (t *Tracer) putAddrs(n *namespace) error {
	addrs, err := nl.Dump(func() ([]netlink.Addr, error) { return n.nl.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.Unmap().IsLoopback() {
			continue // loopback addresses are never resolved
		}
		if err := t.addrs.Put(addrKey{Netns: n.cookie, Addr: ip.As16()}, uint8(1)); err != nil {
			return fmt.Errorf("add %s to local_addrs: %w", ip, err)
		}
	}
	return nil
}

// Attach attaches the tc programs to ingress and egress of interface ifName
// in the namespace registered as nsName. Attaching twice is a no-op.
func (t *Tracer) Attach(nsName, ifName string) error {
	n, err := t.namespace(nsName)
	if err != nil {
		return err
	}
	l, err := n.nl.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("%s/%s: %w", nsName, ifName, err)
	}
	return t.attach(n, []iface{ifaceOf(l)})
}

// AttachAll attaches the tc programs to every interface in the namespace
// registered as nsName, lo included: packets to the namespace's own
// addresses only ever cross lo.
func (t *Tracer) AttachAll(nsName string) error {
	n, err := t.namespace(nsName)
	if err != nil {
		return err
	}
	links, err := nl.Dump(n.nl.LinkList)
	if err != nil {
		return fmt.Errorf("%s: list links: %w", nsName, err)
	}
	ifs := make([]iface, 0, len(links))
	for _, l := range links {
		ifs = append(ifs, ifaceOf(l))
	}
	return t.attach(n, ifs)
}

func (t *Tracer) namespace(name string) (*namespace, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	n := t.namespaces[name]
	if n == nil {
		return nil, fmt.Errorf("namespace %s: not traced (AddNamespace first)", name)
	}
	return n, nil
}

func (t *Tracer) attach(n *namespace, ifs []iface) error {
	t.attachMu.Lock()
	defer t.attachMu.Unlock()
	// Remember names first, so events racing the attach resolve; skip
	// interfaces already attached.
	t.mu.Lock()
	todo := ifs[:0:0]
	for _, ifc := range ifs {
		n.ifs[uint32(ifc.index)] = ifc
		if _, ok := t.attached[ifaceKey{n.name, ifc.index}]; !ok {
			todo = append(todo, ifc)
		}
	}
	t.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}

	done, err := t.attachFn(n, todo, t.tc)

	t.mu.Lock()
	defer t.mu.Unlock()
	for i, a := range done {
		k := ifaceKey{n.name, todo[i].index}
		if t.closed {
			// Close ran meanwhile; it cannot see these, so undo them here.
			err = errors.Join(err, a.detach())
			continue
		}
		t.attached[k] = a
		t.order = append(t.order, k)
	}
	if t.closed && err == nil {
		err = ErrClosed
	}
	return err
}

// Start starts reading events. The reader stops at Close or when ctx is
// done; Events keeps what was read.
func (t *Tracer) Start(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return ErrClosed
	case t.started:
		return errors.New("tracer already started")
	}
	t.started = true
	t.readerDone = make(chan struct{})
	// Closing the reader is what interrupts a blocked read.
	t.cancelWG.Add(1)
	t.stopCancel = context.AfterFunc(ctx, func() {
		defer t.cancelWG.Done()
		_ = t.rd.Close()
	})
	go t.read()
	return nil
}

// read is the reader goroutine: it decodes records until the ring-buffer
// reader is closed, and serves Flush requests.
//
// The programs wake it only when a burst has filled part of the ring, so
// it also wakes itself: every read has a deadline at most pollEvery away,
// and when the deadline passes ReadInto returns what is in the ring, woken
// or not, before it reports ErrDeadlineExceeded.
//
// Flush signals the reader (ringbuf.Reader.Flush), which makes ReadInto
// return ErrFlushed once it has drained the ring. That drain may have
// started before later Flush calls were signalled, so the reader notes the
// requests signalled so far and drains once more without blocking (a
// deadline of now); when that drain ends (ErrDeadlineExceeded), every
// record produced before those requests has been handled, and they are
// served. None of this depends on the programs' wakeups: a drain reads
// every committed record.
func (t *Tracer) read() {
	defer close(t.readerDone)
	var (
		rec     ringbuf.Record
		pending uint64 // requests to serve at the end of the next drain
	)
	t.rd.SetDeadline(time.Now().Add(t.pollEvery))
	for {
		err := t.rd.ReadInto(&rec)
		switch {
		case err == nil:
			t.record(rec.RawSample)
		case errors.Is(err, ringbuf.ErrFlushed):
			t.mu.Lock()
			pending = t.flushReq
			t.mu.Unlock()
			t.rd.SetDeadline(time.Now())
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The ring was drained after the deadline passed: serve the
			// requests noted before it, then sleep until the next poll.
			t.serveFlush(pending)
			t.rd.SetDeadline(time.Now().Add(t.pollEvery))
		case errors.Is(err, ringbuf.ErrClosed):
			return
		default:
			t.mu.Lock()
			t.readErr = fmt.Errorf("read ring buffer: %w", err)
			t.mu.Unlock()
			return
		}
	}
}

// serveFlush marks Flush requests up to req as served.
func (t *Tracer) serveFlush(req uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.markServedLocked(req)
}

func (t *Tracer) markServedLocked(req uint64) {
	for len(t.flushWaits) > 0 && t.flushWaits[0].req <= req {
		t.flushWaits = t.flushWaits[1:]
	}
	if req > t.flushServed {
		t.flushServed = req
		close(t.flushCh)
		t.flushCh = make(chan struct{})
	}
}

// record decodes one record and keeps it if its namespace is traced.
func (t *Tracer) record(raw []byte) {
	ev, location, err := parseRecord(raw)
	if err != nil {
		// Only a mismatched object makes one; count it as lost rather
		// than stop reading.
		t.mu.Lock()
		t.malformed++
		t.mu.Unlock()
		return
	}

	t.mu.Lock()
	n := t.byCookie[ev.Netns]
	t.mu.Unlock()
	if n == nil {
		t.passed(ev.Time)
		return // a namespace this tracer does not know (any more)
	}
	ev.NS = n.name

	if ev.Ifindex != 0 {
		ifc, ok := t.ifaceByIndex(n, ev.Ifindex)
		if ok {
			ev.If = ifc.name
			if ev.Kind == KindPacket && !ifc.ethernet {
				ev.Layer = layerFromVersion(ev.Data)
			}
		}
	}

	if ev.Kind == KindDrop {
		if t.hasReason {
			ev.ReasonName = t.reasons.name(ev.Reason)
		}
		ev.Location = t.syms.Name(location)
		if pkt, err := Decode(ev); err == nil && FreedAfterDelivery(&ev, &pkt) {
			t.passed(ev.Time)
			return
		}
	}

	t.mu.Lock()
	t.log.add(ev)
	t.serveBeforeLocked(ev.Time)
	t.mu.Unlock()
}

// flushGuard is how much later than a Flush request an event must be
// stamped to prove that the reader has read everything before the
// request. Records sit in the ring in the order they were reserved, and a
// program stamps its event right after reserving it, so only the moment
// between the two can reorder them.
const flushGuard = time.Millisecond

// passed notes that the reader has read an event stamped at.
func (t *Tracer) passed(at time.Duration) {
	t.mu.Lock()
	t.serveBeforeLocked(at)
	t.mu.Unlock()
}

// serveBeforeLocked serves the Flush requests made well before an event
// stamped at, which the reader has just read: everything reserved before
// them has been read too. It lets Flush finish while traffic never lets
// the ring run empty. Called with mu held.
func (t *Tracer) serveBeforeLocked(at time.Duration) {
	var req uint64
	for len(t.flushWaits) > 0 && t.flushWaits[0].at+flushGuard < at {
		req = t.flushWaits[0].req
		t.flushWaits = t.flushWaits[1:]
	}
	if req > 0 {
		t.markServedLocked(req)
	}
}

// ifaceByIndex resolves an interface index in n, asking the kernel for
// interfaces not seen at attach time (drops on interfaces without tc
// programs, interfaces created later).
func (t *Tracer) ifaceByIndex(n *namespace, ifindex uint32) (iface, bool) {
	t.mu.Lock()
	ifc, ok := n.ifs[ifindex]
	t.mu.Unlock()
	if ok {
		return ifc, true
	}
	l, err := n.nl.LinkByIndex(int(ifindex))
	if err != nil {
		return iface{}, false
	}
	ifc = ifaceOf(l)
	t.mu.Lock()
	n.ifs[ifindex] = ifc
	t.mu.Unlock()
	return ifc, true
}

// layerFromVersion reads the IP version of a packet that starts at its IP
// header (tc on an interface without a link-layer header).
func layerFromVersion(data []byte) Layer {
	if len(data) > 0 && data[0]>>4 == 6 {
		return LayerIPv6
	}
	return LayerIPv4
}

// Flush waits until every event produced before the call has been read, so
// that Events includes them. Call it after a probe completes and before
// correlating its events.
func (t *Tracer) Flush(ctx context.Context) error {
	t.mu.Lock()
	switch {
	case t.closed:
		t.mu.Unlock()
		return ErrClosed
	case !t.started:
		t.mu.Unlock()
		return errors.New("flush: tracer not started")
	}
	t.flushReq++
	want := t.flushReq
	t.flushWaits = append(t.flushWaits, flushWait{req: want, at: t.Now()})
	ch := t.flushCh
	// Signalled under mu: the reader reads flushReq under mu too, so every
	// request it counts has been signalled.
	if err := t.rd.Flush(); err != nil {
		// The reader was closed (Start's context ended) and is exiting;
		// wait for it below to report why it stopped.
		ch = nil
	}
	t.mu.Unlock()

	for {
		select {
		case <-ch:
			t.mu.Lock()
			served := t.flushServed >= want
			ch = t.flushCh
			t.mu.Unlock()
			if served {
				return nil
			}
		case <-t.readerDone:
			t.mu.Lock()
			defer t.mu.Unlock()
			if t.readErr != nil {
				return t.readErr
			}
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Take returns the events read so far, in time order, and forgets them,
// so a long-running trace (hopcheck trace) does not grow without bound.
func (t *Tracer) Take() []Event {
	t.mu.Lock()
	l := t.log
	t.log = eventLog{}
	t.mu.Unlock()
	evs := l.between(0, math.MaxInt64)
	sortByTime(evs)
	return evs
}

// Events returns a copy of every event read so far, in time order.
func (t *Tracer) Events() []Event {
	return t.EventsBetween(0, math.MaxInt64)
}

// EventsBetween returns the events with from <= Time <= to, in time order.
// Take from and to with Now around a probe.
func (t *Tracer) EventsBetween(from, to time.Duration) []Event {
	t.mu.Lock()
	evs := t.log.between(from, to)
	t.mu.Unlock()
	sortByTime(evs)
	return evs
}

// logBlock is how many events one block of an eventLog holds.
const logBlock = 1024

// eventLog holds the events read, in blocks of logBlock. It grows by whole
// blocks so that adding an event never copies the ones before it: at the
// tens of thousands of events per second of a TCP stream, regrowing one
// slice (clearing a bigger array, copying every event into it, while the
// GC waits to preempt the copy) was most of what the reader cost, and took
// its CPU from the traffic being traced.
type eventLog struct {
	blocks [][]Event
}

func (l *eventLog) add(ev Event) {
	if n := len(l.blocks); n == 0 || len(l.blocks[n-1]) == logBlock {
		l.blocks = append(l.blocks, make([]Event, 0, logBlock))
	}
	last := &l.blocks[len(l.blocks)-1]
	*last = append(*last, ev)
}

// between returns a copy of the events with from <= Time <= to, in the
// order they were added.
func (l *eventLog) between(from, to time.Duration) []Event {
	in := func(ev *Event) bool { return ev.Time >= from && ev.Time <= to }
	// Counted first, so the copy is made once, at its size.
	n := 0
	for _, b := range l.blocks {
		for i := range b {
			if in(&b[i]) {
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	evs := make([]Event, 0, n)
	for _, b := range l.blocks {
		for i := range b {
			if in(&b[i]) {
				evs = append(evs, b[i])
			}
		}
	}
	return evs
}

// sortByTime orders events by kernel time. Records from different CPUs
// reach the ring buffer slightly out of order.
func sortByTime(evs []Event) {
	slices.SortStableFunc(evs, func(a, b Event) int {
		switch {
		case a.Time < b.Time:
			return -1
		case a.Time > b.Time:
			return 1
		}
		return 0
	})
}

// Now returns the current time on the clock events are stamped with
// (CLOCK_MONOTONIC, which bpf_ktime_get_ns reads), to mark a probe's window.
func (t *Tracer) Now() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		// CLOCK_MONOTONIC cannot fail on Linux; a zero would only widen
		// a window, never lose events.
		return 0
	}
	return time.Duration(ts.Nano())
}

// Lost returns how many events were lost: those that did not fit in the
// ring buffer (counted by the programs, on every CPU) and any record that
// did not decode.
func (t *Tracer) Lost() (uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, ErrClosed
	}
	var perCPU []uint64
	if err := t.lost.Lookup(uint32(0), &perCPU); err != nil {
		return 0, fmt.Errorf("read lost counter: %w", err)
	}
	sum := t.malformed
	for _, n := range perCPU {
		sum += n
	}
	return sum, nil
}

// ProgramStats is the kernel's accounting of a program's runs. The kernel
// only counts while the sysctl kernel.bpf_stats_enabled is 1.
type ProgramStats struct {
	RunTime  time.Duration
	RunCount uint64
}

// PerRun returns the mean run time, or zero if the program has not run.
func (s ProgramStats) PerRun() time.Duration {
	if s.RunCount == 0 {
		return 0
	}
	return s.RunTime / time.Duration(s.RunCount)
}

// TCStats returns the run statistics of the two tc programs together.
func (t *Tracer) TCStats() (ProgramStats, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ProgramStats{}, ErrClosed
	}
	var total ProgramStats
	for _, p := range []*ebpf.Program{t.tc.ingress, t.tc.egress} {
		s, err := p.Stats()
		if err != nil {
			return ProgramStats{}, fmt.Errorf("tc program stats: %w", err)
		}
		total.RunTime += s.Runtime
		total.RunCount += s.RunCount
	}
	return total, nil
}

// Close stops the reader, detaches every program, and releases maps,
// programs and namespace handles. It is safe to call more than once; later
// calls return the first call's result.
func (t *Tracer) Close() error {
	t.closeOnce.Do(func() { t.closeErr = t.close() })
	return t.closeErr
}

func (t *Tracer) close() error {
	t.mu.Lock()
	t.closed = true
	started := t.started
	atts := make([]attachment, 0, len(t.order))
	for _, k := range t.order {
		atts = append(atts, t.attached[k])
	}
	t.order = nil
	clear(t.attached)
	t.mu.Unlock()

	var errs []error
	if started && t.stopCancel() {
		t.cancelWG.Done() // the context was not done: it will never run
	}
	if t.rd != nil {
		if err := t.rd.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close ring buffer reader: %w", err))
		}
	}
	if started {
		<-t.readerDone
		t.cancelWG.Wait()
	}

	// TCX links are file descriptors and must be closed in any case;
	// clsact filters on ephemeral namespaces go with their devices.
	if !t.ephemeral || t.mode == AttachTCX {
		for i := len(atts) - 1; i >= 0; i-- {
			if err := atts[i].detach(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	t.mu.Lock()
	for _, n := range t.namespaces {
		n.nl.Close()
		if err := n.handle.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close namespace %s: %w", n.name, err))
		}
	}
	clear(t.namespaces)
	clear(t.byCookie)
	t.mu.Unlock()

	errs = append(errs, t.closeObjects())
	return errors.Join(errs...)
}

// closeObjects detaches the drop program and closes programs and maps; it
// tolerates a partly loaded Tracer.
func (t *Tracer) closeObjects() error {
	var errs []error
	if t.dropLink != nil {
		if err := t.dropLink.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach kfree_skb program: %w", err))
		}
		t.dropLink = nil
	}
	if t.rd != nil {
		_ = t.rd.Close() // idempotent; already closed on the normal path
	}
	for _, c := range []interface{ Close() error }{t.tc.ingress, t.tc.egress, t.drop, t.filter, t.addrs, t.scratch, t.lost, t.events} {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

package trace

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/nl"
)

// ErrUnavailable is wrapped by the error of New and LoadPrograms when this
// kernel or process cannot trace; the message says why ("tracing off:
// kernel has no BTF (/sys/kernel/btf/vmlinux missing)"). Callers run their
// checks untraced and report the reason.
var ErrUnavailable = errors.New("tracing off")

// ErrClosed is returned by the methods of a Tracer after Close, by Flush
// once the reader has stopped because Start's context ended, and by New
// with Programs after their Close.
var ErrClosed = errors.New("tracer closed")

// DefaultRingSize is the ring buffer's size unless Options say otherwise:
// room for about 23,000 events between two reads.
const DefaultRingSize = 4 << 20

// Options configure New (and LoadPrograms, which uses the fields that
// concern loading).
type Options struct {
	// Programs are programs loaded earlier by LoadPrograms, for Tracers
	// that share them; nil means New loads the Tracer's own. With
	// Programs, the programs' Features, BTF and Symbols are used, and
	// RingSize and AllPackets must be zero or what they were loaded with.
	Programs *Programs
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
// attached and made, and the programs too if no one else uses them.
type Tracer struct {
	mode      AttachMode
	ephemeral bool
	attachFn  attachFunc

	programs *Programs       // shared, or loaded for this Tracer alone
	slot     *ringSlot       // this Tracer's ring buffer, while it has it
	rd       *ringbuf.Reader // reads the slot's ring
	// made is when the Tracer was made: events stamped before it are a
	// previous Tracer's, left in a ring buffer handed on.
	made time.Duration

	// pollEvery is the reader's longest sleep, pollInterval unless a test
	// sets it before Start.
	pollEvery time.Duration

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

// namespace is a traced network namespace.
type namespace struct {
	name   string
	cookie uint64
	handle netns.Handle    // owned duplicate of the caller's handle
	nl     *netlink.Handle // netlink socket inside the namespace
	ifs    map[uint32]iface
	addrs  []addrKey // its entries in local_addrs
}

type ifaceKey struct {
	ns      string
	ifindex int
}

// New prepares a Tracer with the programs of opts.Programs, or with
// programs of its own (loaded and verified, the drop program attached),
// and a ring buffer and its reader. Nothing is attached to interfaces yet.
// If the kernel or the process cannot trace, the error wraps
// ErrUnavailable.
func New(opts Options) (*Tracer, error) {
	p := opts.Programs
	var feat Features
	switch {
	case p != nil:
		if err := p.fits(opts); err != nil {
			return nil, err
		}
		feat = p.feat
	case opts.Features != nil:
		feat = *opts.Features
	default:
		feat = ProbeFeatures()
		opts.Features = &feat
	}
	if err := feat.usable(); err != nil {
		return nil, err
	}
	mode, err := opts.Attach.resolve(feat, opts.Ephemeral)
	if err != nil {
		return nil, err
	}
	if p == nil {
		if p, err = LoadPrograms(opts); err != nil {
			return nil, err
		}
		// The Tracer holds the only reference left once New returns.
		defer p.Close()
	}
	if err := p.acquire(); err != nil {
		return nil, fmt.Errorf("shared programs: %w", err)
	}

	t := &Tracer{
		mode:       mode,
		ephemeral:  opts.Ephemeral,
		programs:   p,
		namespaces: make(map[string]*namespace),
		byCookie:   make(map[uint64]*namespace),
		attached:   make(map[ifaceKey]attachment),
		flushCh:    make(chan struct{}),
		pollEvery:  pollInterval,
	}
	t.attachFn = attachTCX
	if mode == AttachClsact {
		t.attachFn = attachClsact
	}
	t.made = t.Now()
	if t.slot, err = p.takeSlot(); err == nil {
		if t.rd, err = ringbuf.NewReader(t.slot.ring); err != nil {
			err = fmt.Errorf("ring buffer reader: %w", err)
		}
	}
	if err != nil {
		return nil, errors.Join(err, t.closeObjects())
	}
	return t, nil
}

// Mode returns how tc programs are attached (never AttachAuto).
func (t *Tracer) Mode() AttachMode { return t.mode }

// AddNamespace registers ns under its scenario name ("host", "ns1"): the
// programs start reporting for it, and its events carry that name. The
// Tracer keeps its own handle; the caller may close ns.
func (t *Tracer) AddNamespace(name string, ns netns.Handle) error {
	cookie, err := t.programs.feat.netnsID(ns)
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
		return t.programs.startReporting(n, t.slot)
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

	done, err := t.attachFn(n, todo, t.programs.tc)

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

// Close stops the reader, makes the programs stop reporting the Tracer's
// namespaces, detaches them from its interfaces, and releases its ring
// buffer and namespace handles, and the programs once no one else uses
// them. It is safe to call more than once; later calls return the first
// call's result.
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

	// The programs stop reporting this Tracer's namespaces first: shared
	// programs go on running on their interfaces until they are detached
	// (or, for clsact filters on ephemeral namespaces, until the
	// namespaces go).
	t.mu.Lock()
	for _, n := range t.namespaces {
		if err := t.programs.stopReporting(n); err != nil {
			errs = append(errs, fmt.Errorf("untrace %s: %w", n.name, err))
		}
	}
	t.mu.Unlock()

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

// closeObjects closes the ring buffer's reader, hands the ring on and
// gives up the Tracer's reference to its programs; it tolerates a partly
// made Tracer. The programs no longer report to the ring: no namespace
// names its slot any more.
func (t *Tracer) closeObjects() error {
	if t.rd != nil {
		_ = t.rd.Close() // idempotent; already closed on the normal path
	}
	if t.slot != nil {
		t.programs.giveSlot(t.slot)
		t.slot = nil
	}
	return t.programs.release()
}

package trace

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/bpf"
)

// wakeupShare is the fraction of the ring (1/wakeupShare) that, once
// unread, makes the programs wake the reader at once. Below it events
// wait for the next poll; above it the rest of the ring is the room the
// reader has to catch up before events are lost.
const wakeupShare = 8

// Programs are hopcheck's BPF programs, loaded and verified, and the maps
// they share: the kfree_skb program is attached, the tc programs wait for
// Tracers to attach them. Loading is most of what starting a Tracer costs
// (the kernel verifies every program: tens of milliseconds, on a CPU the
// traced traffic wants too), so a caller making many Tracers loads
// Programs once and passes them in Options.Programs. Each Tracer still has
// a ring buffer of its own, which the programs find by the namespace's
// cookie (see routing.go), so it reads only its own namespaces' events and
// counts only its own losses.
//
// Programs are safe for concurrent use. They are released once Close has
// been called and every Tracer using them is closed.
type Programs struct {
	feat       Features // what the kernel can do; netnsID asks it
	hasReason  bool
	reasons    dropReasons
	syms       *Symbols // names drop locations; loaded here, never by a reader
	ringSize   int
	allPackets bool
	ringSpec   *ebpf.MapSpec // each Tracer's ring buffer
	cpus       int           // possible CPUs: the length of a per-CPU value
	maxRings   uint32        // slots in rings

	tc       tcPrograms
	drop     *ebpf.Program
	dropLink link.Link
	rings    *ebpf.Map // each Tracer's ring, by slot
	filter   *ebpf.Map // netns_filter: namespace cookie to its Tracer's slot
	addrs    *ebpf.Map // local_addrs: the traced namespaces' addresses
	scratch  *ebpf.Map
	lost     *ebpf.Map // per namespace, per CPU

	mu        sync.Mutex
	refs      int         // one for the caller of LoadPrograms until Close, one per Tracer
	closed    bool        // Close was called
	relErr    error       // what releasing them returned
	slots     []*ringSlot // every slot filled, in slot order
	freeSlots []*ringSlot // those no Tracer uses
}

// LoadPrograms loads and verifies the programs and maps and attaches the
// kfree_skb program, with opts' Features, BTF, Symbols, RingSize and
// AllPackets; the other fields are each Tracer's own. If the kernel or the
// process cannot trace, the error wraps ErrUnavailable.
func LoadPrograms(opts Options) (*Programs, error) {
	var feat Features
	if opts.Features != nil {
		feat = *opts.Features
	} else {
		feat = ProbeFeatures()
	}
	if err := feat.usable(); err != nil {
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
	ringSize := opts.RingSize
	if ringSize == 0 {
		ringSize = DefaultRingSize
	}
	if ringSize < 0 || ringSize&(ringSize-1) != 0 || ringSize%unix.Getpagesize() != 0 {
		return nil, fmt.Errorf("ring size %d: want a power of two and a multiple of the page size", ringSize)
	}

	p := &Programs{
		feat:       feat,
		hasReason:  feat.KfreeSkbHasReason,
		syms:       syms,
		ringSize:   ringSize,
		allPackets: opts.AllPackets,
		refs:       1,
	}
	if p.cpus, err = ebpf.PossibleCPU(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if p.hasReason {
		if p.reasons, err = loadDropReasons(kernel); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	if err := p.load(cache); err != nil {
		return nil, errors.Join(err, p.closeObjects())
	}
	return p, nil
}

// load loads the collection and attaches the kfree_skb program.
func (p *Programs) load(cache *btf.Cache) error {
	spec, err := bpf.LoadTrace()
	if err != nil {
		return fmt.Errorf("load BPF object: %w", err)
	}
	rings := spec.Maps[bpf.TraceMapRings]
	if rings == nil || rings.InnerMap == nil {
		return fmt.Errorf("load BPF object: map %s or its ring buffer missing", bpf.TraceMapRings)
	}
	rings.InnerMap.MaxEntries = uint32(p.ringSize)
	p.ringSpec = rings.InnerMap.Copy()
	p.maxRings = rings.MaxEntries
	var all uint8
	if p.allPackets {
		all = 1
	}
	// Without sock_rfree's address (addresses hidden), packets freed
	// unread from a closing socket are reported as drops; nothing else
	// changes.
	for name, v := range map[string]any{
		bpf.TraceVarWakeupBytes:   uint64(p.ringSize / wakeupShare),
		bpf.TraceVarAllPackets:    all,
		bpf.TraceVarSockRfreeAddr: p.syms.Addr("sock_rfree"),
		bpf.TraceVarNetnsByInum:   boolByte(!p.feat.HasNetnsCookie),
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
	if p.hasReason {
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
	p.tc = tcPrograms{ingress: objs.TcIngress, egress: objs.TcEgress}
	p.drop, p.rings, p.filter, p.lost = objs.Drop, objs.Rings, objs.NetnsFilter, objs.Lost
	p.addrs, p.scratch = objs.LocalAddrs, objs.Scratch

	if p.hasReason {
		p.dropLink, err = link.AttachTracing(link.TracingOptions{Program: p.drop, AttachType: ebpf.AttachTraceRawTp})
	} else {
		p.dropLink, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: "kfree_skb", Program: p.drop})
	}
	if err != nil {
		return fmt.Errorf("%w: attach %s to skb:kfree_skb: %v", ErrUnavailable, dropName, err)
	}
	return nil
}

// fits checks that a Tracer with opts can use p: what the programs were
// loaded with cannot differ per Tracer.
func (p *Programs) fits(opts Options) error {
	if opts.RingSize != 0 && opts.RingSize != p.ringSize {
		return fmt.Errorf("ring size %d: the shared programs were loaded for %d", opts.RingSize, p.ringSize)
	}
	if opts.AllPackets != p.allPackets {
		return fmt.Errorf("all packets %t: the shared programs were loaded with %t", opts.AllPackets, p.allPackets)
	}
	return nil
}

// acquire takes a reference for a Tracer.
func (p *Programs) acquire() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.refs++
	return nil
}

// release drops a reference; the last one detaches the kfree_skb program
// and closes programs and maps.
func (p *Programs) release() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refs--
	if p.refs == 0 {
		p.relErr = p.closeObjects()
	}
	return p.relErr
}

// Close gives up the reference LoadPrograms returned. The programs are
// released now if no Tracer uses them, else when the last one closes. It
// is safe to call more than once; it returns what releasing returned, or
// nil while Tracers still use them.
func (p *Programs) Close() error {
	p.mu.Lock()
	if p.closed {
		defer p.mu.Unlock()
		return p.relErr
	}
	p.closed = true
	p.mu.Unlock()
	return p.release()
}

// closeObjects detaches the drop program and closes programs and maps; it
// tolerates partly loaded Programs.
func (p *Programs) closeObjects() error {
	var errs []error
	if p.dropLink != nil {
		if err := p.dropLink.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach kfree_skb program: %w", err))
		}
		p.dropLink = nil
	}
	for _, c := range []interface{ Close() error }{p.tc.ingress, p.tc.egress, p.drop, p.rings, p.filter, p.addrs, p.scratch, p.lost} {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range p.slots {
		if err := s.ring.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close ring buffer %d: %w", s.index, err))
		}
	}
	p.slots, p.freeSlots = nil, nil
	return errors.Join(errs...)
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

// TCStats returns the run statistics of the two tc programs together,
// for every Tracer that shares them.
func (t *Tracer) TCStats() (ProgramStats, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ProgramStats{}, ErrClosed
	}
	var total ProgramStats
	for _, p := range []*ebpf.Program{t.programs.tc.ingress, t.programs.tc.egress} {
		s, err := p.Stats()
		if err != nil {
			return ProgramStats{}, fmt.Errorf("tc program stats: %w", err)
		}
		total.RunTime += s.Runtime
		total.RunCount += s.RunCount
	}
	return total, nil
}

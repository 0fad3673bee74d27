package trace

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/bpf"
)

// wakeupShare is the fraction of the ring (1/wakeupShare) that, once
// unread, makes the programs wake the reader at once. Below it events
// wait for the next poll; above it the rest of the ring is the room the
// reader has to catch up before events are lost.
const wakeupShare = 8

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

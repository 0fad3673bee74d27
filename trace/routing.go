package trace

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/hopcheck/hopcheck/internal/nl"
)

// The programs route each traced namespace's events to the ring buffer of
// the Tracer that traces it. Three maps, keyed by the namespace's cookie,
// hold what they need: lost (its loss counter), local_addrs (its
// addresses) and netns_filter (its Tracer's slot in rings). A namespace is
// traced by one Tracer at a time: its loss counter is the claim, made
// first and given up last.
//
// Writing a map of maps (rings) waits for an RCU grace period, some
// milliseconds, and would be paid per namespace, twice, if each Tracer put
// its ring there. So slots are filled once and handed from Tracer to
// Tracer: a run with N scenarios at once pays N grace periods, not one per
// namespace. A slot handed on may still hold events of the namespaces of
// the Tracer before; they name namespaces the new Tracer does not know,
// and are stamped before it was made, so its reader skips them.

// ringSlot is a ring buffer in rings, with its index there.
type ringSlot struct {
	index uint32
	ring  *ebpf.Map
}

// takeSlot returns a slot no Tracer uses, filling a new one (a ring
// buffer made and put in rings) when every filled slot is in use.
func (p *Programs) takeSlot() (*ringSlot, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.freeSlots); n > 0 {
		s := p.freeSlots[n-1]
		p.freeSlots = p.freeSlots[:n-1]
		return s, nil
	}
	index := uint32(len(p.slots))
	if index >= p.maxRings {
		return nil, fmt.Errorf("%d Tracers already share these programs, the most they can serve at once", p.maxRings)
	}
	ring, err := ebpf.NewMap(p.ringSpec)
	if err != nil {
		return nil, fmt.Errorf("%w: create ring buffer: %v", ErrUnavailable, err)
	}
	if err := p.rings.Update(index, ring, ebpf.UpdateAny); err != nil {
		ring.Close()
		return nil, fmt.Errorf("add ring buffer %d to rings: %w", index, err)
	}
	s := &ringSlot{index: index, ring: ring}
	p.slots = append(p.slots, s)
	return s, nil
}

// giveSlot returns a slot to the pool once its Tracer reports to it no
// more.
func (p *Programs) giveSlot(s *ringSlot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.freeSlots = append(p.freeSlots, s)
}

// addrKey mirrors struct addr_key in bpf/trace.c.
type addrKey struct {
	Netns uint64
	Addr  [16]byte // IPv4 as IPv4-mapped IPv6
}

// startReporting makes the programs report namespace n to slot: it claims
// n's loss counter, tells the programs n's addresses, then adds n to
// netns_filter, which turns reporting on. On error, nothing of n is left
// in the maps.
func (p *Programs) startReporting(n *namespace, slot *ringSlot) error {
	zero := make([]uint64, p.cpus)
	if err := p.lost.Update(n.cookie, zero, ebpf.UpdateNoExist); err != nil {
		if errors.Is(err, ebpf.ErrKeyExist) {
			return errors.New("traced by another Tracer sharing its programs")
		}
		return fmt.Errorf("add loss counter: %w", err)
	}
	err := p.putAddrs(n)
	if err == nil {
		if err = p.filter.Update(n.cookie, slot.index, ebpf.UpdateNoExist); err != nil {
			err = fmt.Errorf("add to netns_filter: %w", err)
		}
	}
	if err != nil {
		return errors.Join(err, p.stopReporting(n))
	}
	return nil
}

// putAddrs tells the programs every address of n, so that they report the
// neighbor resolution n takes part in (see want_neighbor in bpf/trace.c).
// Addresses are read once: hopcheck traces topologies after building them.
func (p *Programs) putAddrs(n *namespace) error {
	addrs, err := nl.Dump(func() ([]netlink.Addr, error) { return n.nl.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.Unmap().IsLoopback() {
			continue // loopback addresses are never resolved
		}
		k := addrKey{Netns: n.cookie, Addr: ip.As16()}
		if err := p.addrs.Put(k, uint8(1)); err != nil {
			return fmt.Errorf("add %s to local_addrs: %w", ip, err)
		}
		n.addrs = append(n.addrs, k)
	}
	return nil
}

// stopReporting undoes startReporting, as far as it went: n's
// netns_filter entry first (the programs stop reporting n), its addresses,
// and last its loss counter, the claim.
func (p *Programs) stopReporting(n *namespace) error {
	var errs []error
	forget := func(m *ebpf.Map, what string, key any) {
		if err := m.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", what, err))
		}
	}
	forget(p.filter, "from netns_filter", n.cookie)
	for _, k := range n.addrs {
		forget(p.addrs, netip.AddrFrom16(k.Addr).Unmap().String()+" from local_addrs", k)
	}
	n.addrs = nil
	forget(p.lost, "loss counter", n.cookie)
	return errors.Join(errs...)
}

// lostIn returns how many of n's events did not fit in its ring buffer,
// on every CPU together.
func (p *Programs) lostIn(n *namespace) (uint64, error) {
	var perCPU []uint64
	if err := p.lost.Lookup(n.cookie, &perCPU); err != nil {
		return 0, fmt.Errorf("read loss counter of %s: %w", n.name, err)
	}
	var sum uint64
	for _, v := range perCPU {
		sum += v
	}
	return sum, nil
}

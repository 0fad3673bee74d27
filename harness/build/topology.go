package build

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/nl"
	"github.com/vishvananda/netlink"
)

// Topology is a scenario built in namespaces of one run. It holds an open
// handle to every namespace for the checks and the tracer, and knows what
// it made, so Down removes exactly that.
type Topology struct {
	// RunID names this run's kernel objects: netns.Name(RunID, ns).
	RunID    string
	Scenario *scenario.Scenario

	mu sync.Mutex
	// nss are the namespaces this topology holds, in the order they were
	// recorded; byName indexes them by scenario name.
	nss    []*namespace
	byName map[string]*namespace
	ifaces []Interface
	// progress is Options.Progress, told of namespaces deleted by Down.
	progress func(phase string, done, total int)
}

// namespace is one namespace of a topology.
type namespace struct {
	name   string // as the scenario writes it
	kernel string // netns.Name(runID, name)
	h      netns.Handle
	// nl is a netlink handle whose socket lives in the namespace.
	nl *netlink.Handle
	// index caches ifindexes by interface name while building.
	index map[string]int
}

// Interface is one interface of a built topology, for the tracer and the
// checks.
type Interface struct {
	scenario.Endpoint
	Type scenario.LinkType
	// Index is the ifindex inside the interface's namespace.
	Index int
	// MAC is the hardware address after the build (kernel-chosen unless
	// the scenario set one; a bridge's may come from its ports).
	MAC net.HardwareAddr
}

func newTopology(runID string, sc *scenario.Scenario) *Topology {
	return &Topology{RunID: runID, Scenario: sc, byName: map[string]*namespace{}}
}

// KernelName returns the name the kernel knows scenario namespace name by
// (what `ip netns list` shows): netns.Name(RunID, name).
func (t *Topology) KernelName(name string) string { return netns.Name(t.RunID, name) }

// NS returns the open handle of the scenario namespace called name, or a
// closed handle (netns.Handle(-1)) when the topology has no such namespace
// or has been torn down. The handle stays owned by t.
func (t *Topology) NS(name string) netns.Handle {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ns, ok := t.byName[name]; ok {
		return ns.h
	}
	return netns.Handle(-1)
}

// Namespaces returns the scenario names of the namespaces t holds, in
// scenario order.
func (t *Topology) Namespaces() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, n := range t.Scenario.Namespaces {
		if _, ok := t.byName[n.Name]; ok {
			out = append(out, n.Name)
		}
	}
	return out
}

// Interfaces returns every interface of the scenario, lo included, in
// scenario order (namespaces, then interfaces as the scenario lists them).
func (t *Topology) Interfaces() []Interface {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.ifaces)
}

// MAC returns the hardware address of the interface at ep.
func (t *Topology) MAC(ep scenario.Endpoint) (net.HardwareAddr, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, i := range t.ifaces {
		if i.Endpoint == ep {
			return i.MAC, true
		}
	}
	return nil, false
}

// Down removes every namespace t holds, which removes their links,
// addresses, routes, neighbors and iptables rules (a veth pair dies with
// either end), and closes t's handles. It is idempotent and safe on a
// partially built topology. Teardown is never cut short: ctx is accepted
// for the callers' plumbing, but stopping half way would leave objects
// behind, which is what Down exists to prevent. Every namespace is
// attempted; the errors are joined.
func (t *Topology) Down(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	p := newProgress(t.progress, PhaseTeardown, len(t.nss))
	for i := len(t.nss) - 1; i >= 0; i-- {
		ns := t.nss[i]
		ns.close()
		if err := netns.Delete(ns.kernel); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ns.name, err))
		}
		p.step()
	}
	t.forget()
	return errors.Join(errs...)
}

// Release closes t's handles and keeps the namespaces: they are named, so
// they outlive the process (`hopcheck up`). Down after Release does
// nothing; remove released namespaces with Open and Down, or Clean.
func (t *Topology) Release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ns := range t.nss {
		ns.close()
	}
	t.forget()
}

func (t *Topology) forget() {
	t.nss = nil
	t.byName = map[string]*namespace{}
}

func (ns *namespace) close() {
	if ns.nl != nil {
		ns.nl.Close()
		ns.nl = nil
	}
	if ns.h.IsOpen() {
		ns.h.Close()
	}
}

// add records ns as held by t.
func (t *Topology) add(ns *namespace) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.nss = append(t.nss, ns)
	t.byName[ns.name] = ns
}

// attach gives ns a netlink handle whose socket lives in the namespace.
func (ns *namespace) attach() error {
	h, err := nl.HandleAt(ns.h)
	if err != nil {
		return fmt.Errorf("netlink socket in %s: %w", ns.kernel, err)
	}
	ns.nl = h
	return nil
}

// Open returns the topology of scenario sc that run runID built and left
// up (`hopcheck up`), with fresh handles to its namespaces. Down on it
// removes those namespaces; Release only closes the handles.
func Open(sc *scenario.Scenario, runID string) (*Topology, error) {
	t := newTopology(runID, sc)
	for _, n := range sc.Namespaces {
		kernel := netns.Name(runID, n.Name)
		h, err := netns.Open(kernel)
		if err != nil {
			t.Release()
			return nil, fmt.Errorf("open %s of run %s: %w", n.Name, runID, err)
		}
		ns := &namespace{name: n.Name, kernel: kernel, h: h, index: map[string]int{}}
		t.add(ns)
		if err := ns.attach(); err != nil {
			t.Release()
			return nil, err
		}
	}
	// An opened topology has been up for a while: nothing to wait for.
	if _, err := t.collect(); err != nil {
		t.Release()
		return nil, err
	}
	return t, nil
}

// collect records every scenario interface's index and MAC, with one link
// dump per namespace, once the build is complete (a bridge's MAC can
// change while ports join). It returns the veth ends that should carry
// traffic (both ends set up) but are not operationally up yet.
func (t *Topology) collect() ([]scenario.Endpoint, error) {
	var (
		ifaces  []Interface
		pending []scenario.Endpoint
	)
	for _, n := range t.Scenario.Namespaces {
		ns := t.byName[n.Name]
		links, err := nl.Dump(ns.nl.LinkList)
		if err != nil {
			return nil, fmt.Errorf("%s: list links: %w", n.Name, err)
		}
		byName := map[string]netlink.Link{}
		for _, l := range links {
			byName[l.Attrs().Name] = l
		}
		for _, ifc := range n.Interfaces {
			l, ok := byName[ifc.Name]
			if !ok {
				return nil, fmt.Errorf("%s/%s: interface missing after build", n.Name, ifc.Name)
			}
			ep := scenario.Endpoint{NS: n.Name, If: ifc.Name}
			ifaces = append(ifaces, Interface{
				Endpoint: ep,
				Type:     ifc.Type,
				Index:    l.Attrs().Index,
				MAC:      slices.Clone(l.Attrs().HardwareAddr),
			})
			if t.carries(ifc) && l.Attrs().OperState != netlink.OperUp {
				pending = append(pending, ep)
			}
		}
	}
	t.mu.Lock()
	t.ifaces = ifaces
	t.mu.Unlock()
	return pending, nil
}

// carries reports whether ifc must reach operational state up before the
// topology carries traffic: a veth end that the scenario brings up together
// with its peer, or an up bridge with such a port. A bridge turns
// operationally up only once the linkwatch work has enabled a port, and
// until then it drops the replies it should send, so waiting for the ports
// alone is not enough.
func (t *Topology) carries(ifc *scenario.Interface) bool {
	if !ifc.Up {
		return false
	}
	switch ifc.Type {
	case scenario.TypeVeth:
		peer := t.Scenario.Interface(ifc.Peer)
		return peer != nil && peer.Up
	case scenario.TypeBridge:
		ns := t.Scenario.Namespace(ifc.NS)
		if ns == nil {
			return false
		}
		for _, port := range ns.Interfaces {
			if port.Master == ifc.Name && t.carries(port) {
				return true
			}
		}
	}
	return false
}

// readyTimeout bounds the wait for links to come up; the kernel delays
// the events it does not consider urgent by at most a second.
const readyTimeout = 3 * time.Second

// ready waits until the pending veth ends are operationally up. The
// kernel turns a link's carrier on, attaches its queueing discipline and
// enables it as a bridge port from a work item ("linkwatch") that it runs
// up to a second after the link comes up, for links it does not deem
// urgent: a veth whose peer has the same ifindex in its own namespace,
// which is common since every namespace numbers from 1. Until then the
// link drops what it should send and a bridge drops what arrives on it, so
// the first probe of a check would be lost. Up therefore returns only when
// the topology can carry traffic.
func (t *Topology) ready(ctx context.Context, pending []scenario.Endpoint) error {
	if len(pending) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var still []scenario.Endpoint
		for _, ep := range pending {
			l, err := t.byName[ep.NS].nl.LinkByName(ep.If)
			if err != nil {
				return fmt.Errorf("%s: %w", ep, err)
			}
			if l.Attrs().OperState != netlink.OperUp {
				still = append(still, ep)
			}
		}
		if pending = still; len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s did not come up within %v (carrier still off)", pending[0], readyTimeout)
			}
			return context.Cause(ctx)
		case <-tick.C:
		}
	}
}

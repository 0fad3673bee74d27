package trace

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/nl"
)

// AttachMode says how the tc programs are attached to interfaces.
type AttachMode uint8

const (
	// AttachAuto picks TCX where the kernel has it, clsact otherwise.
	AttachAuto AttachMode = iota
	// AttachTCX attaches through BPF links (Linux 6.6 and later). Closing
	// the link detaches, even if the process dies.
	AttachTCX
	// AttachClsact adds a clsact qdisc and direct-action cls_bpf filters
	// (any kernel hopcheck supports). Filters outlive the process, so Close
	// must delete them.
	AttachClsact
)

// String returns the mode's name as ParseAttachMode accepts it.
func (m AttachMode) String() string {
	switch m {
	case AttachAuto:
		return "auto"
	case AttachTCX:
		return "tcx"
	case AttachClsact:
		return "clsact"
	}
	return fmt.Sprintf("AttachMode(%d)", uint8(m))
}

// ParseAttachMode parses "auto", "tcx" or "clsact" (the --tc-attach flag).
func ParseAttachMode(s string) (AttachMode, error) {
	for _, m := range []AttachMode{AttachAuto, AttachTCX, AttachClsact} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("tc attach mode %q: want auto, tcx or clsact", s)
}

// resolve turns AttachAuto into a mode this kernel supports, and checks
// that a forced mode is supported.
//
// Every TCX attach and detach waits, under the RTNL lock, for an RCU grace
// period (tcx_entry_sync, bpf_mprog_commit), so attaching to N interfaces
// takes 2N grace periods one after the other, whatever the number of
// threads: milliseconds each on a busy or many-core machine, minutes for a
// thousand containers. clsact's filters cost no grace period. TCX's gain is
// that its links go when the process dies; that matters only where the
// namespaces outlive the trace. So namespaces that are deleted when
// tracing ends (ephemeral: hopcheck's own topologies) get clsact, and
// anyone else's get TCX where the kernel has it.
func (m AttachMode) resolve(f Features, ephemeral bool) (AttachMode, error) {
	switch m {
	case AttachAuto:
		if f.HasTCX && !(ephemeral && f.HasClsact) {
			return AttachTCX, nil
		}
		if f.HasClsact {
			return AttachClsact, nil
		}
		return 0, fmt.Errorf("%w: cannot attach tc programs (TCX: %s; clsact: %s)",
			ErrUnavailable, f.why(FeatureTCX), f.why(FeatureClsact))
	case AttachTCX:
		if !f.HasTCX {
			return 0, fmt.Errorf("%w: tc attach mode tcx: %s", ErrUnavailable, f.why(FeatureTCX))
		}
		return m, nil
	case AttachClsact:
		if !f.HasClsact {
			return 0, fmt.Errorf("%w: tc attach mode clsact: %s", ErrUnavailable, f.why(FeatureClsact))
		}
		return m, nil
	}
	return 0, fmt.Errorf("tc attach mode %s: unknown", m)
}

// tcPrograms are the two classifiers every interface gets.
type tcPrograms struct {
	ingress, egress *ebpf.Program
}

// iface is an interface inside a traced namespace.
type iface struct {
	name  string
	index int
	// ethernet is false for interfaces without a link-layer header (tun,
	// wireguard, ipip), whose packets start at the IP header in tc.
	ethernet bool
}

func ifaceOf(l netlink.Link) iface {
	a := l.Attrs()
	// EncapType is the ARPHRD name: "ether" for veth, bridge, vxlan,
	// macvlan; "loopback" for lo, which carries a zeroed Ethernet header.
	return iface{name: a.Name, index: a.Index, ethernet: a.EncapType == "ether" || a.EncapType == "loopback"}
}

// attachment is one interface's pair of tc programs, however attached.
type attachment interface {
	// detach removes both programs. It succeeds if the interface or its
	// namespace has already gone, taking the programs with it.
	detach() error
}

// attachFunc attaches progs to ifs, all in namespace ns, and returns one
// attachment per interface done (also on error, for the ones done before).
type attachFunc func(ns *namespace, ifs []iface, progs tcPrograms) ([]attachment, error)

// tcxAttachment holds the two TCX links of one interface.
type tcxAttachment struct {
	where string // "ns/if", for errors
	links []link.Link
}

func (a *tcxAttachment) detach() error {
	var errs []error
	for _, l := range a.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: detach tcx link: %w", a.where, err))
		}
	}
	return errors.Join(errs...)
}

// attachTCX creates TCX links at the head of each interface's chain, so the
// programs see packets before anything else there can redirect or drop
// them. The link syscall resolves ifindex in the caller's namespace, so it
// runs inside ns: all interfaces in one switch.
func attachTCX(ns *namespace, ifs []iface, progs tcPrograms) ([]attachment, error) {
	var done []attachment
	err := netns.Do(ns.handle, func() error {
		for _, ifc := range ifs {
			a := &tcxAttachment{where: ns.name + "/" + ifc.name}
			for _, p := range []struct {
				prog *ebpf.Program
				at   ebpf.AttachType
			}{{progs.ingress, ebpf.AttachTCXIngress}, {progs.egress, ebpf.AttachTCXEgress}} {
				l, err := link.AttachTCX(link.TCXOptions{
					Interface: ifc.index,
					Program:   p.prog,
					Attach:    p.at,
					Anchor:    link.Head(),
				})
				if err != nil {
					// Undo the half-attached interface; report the rest.
					return errors.Join(fmt.Errorf("%s: attach tcx %s: %w", a.where, p.at, err), a.detach())
				}
				a.links = append(a.links, l)
			}
			done = append(done, a)
		}
		return nil
	})
	return done, err
}

// clsact filter identity: one priority and handle for hopcheck's filters,
// so that Close deletes exactly them and nothing a user added.
const (
	clsactPriority = 1
	clsactHandle   = 0x4843 // "HC"
)

func clsactQdisc(ifindex int) *netlink.GenericQdisc {
	return &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{
			LinkIndex: ifindex,
			Handle:    netlink.MakeHandle(0xffff, 0),
			Parent:    netlink.HANDLE_CLSACT,
		},
		QdiscType: "clsact",
	}
}

func clsactFilter(ifindex int, dir Direction, prog *ebpf.Program) *netlink.BpfFilter {
	parent := uint32(netlink.HANDLE_MIN_INGRESS)
	name := "hopcheck_ingress"
	if dir == Egress {
		parent = netlink.HANDLE_MIN_EGRESS
		name = "hopcheck_egress"
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: ifindex,
			Parent:    parent,
			Handle:    clsactHandle,
			Priority:  clsactPriority,
			Protocol:  unix.ETH_P_ALL,
		},
		Name:         name,
		DirectAction: true,
	}
	if prog != nil {
		f.Fd = prog.FD()
	}
	return f
}

// clsactAttachment is one interface's pair of cls_bpf filters, and the
// clsact qdisc if hopcheck added it.
type clsactAttachment struct {
	where    string
	nl       *netlink.Handle
	ifindex  int
	ownQdisc bool
	ingress  bool
	egress   bool
}

// gone reports errors that mean the object is already gone: the filter,
// qdisc or device was deleted (with its namespace, say). The kernel answers
// a filter deletion under a clsact qdisc that no longer exists with EINVAL
// ("parent qdisc doesn't exist"), not ENOENT.
func gone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EINVAL)
}

func (a *clsactAttachment) detach() error {
	var errs []error
	for _, d := range []struct {
		dir Direction
		on  bool
	}{{Ingress, a.ingress}, {Egress, a.egress}} {
		if !d.on {
			continue
		}
		if err := a.nl.FilterDel(clsactFilter(a.ifindex, d.dir, nil)); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("%s: delete %s filter: %w", a.where, d.dir, err))
		}
	}
	if a.ownQdisc {
		if err := a.nl.QdiscDel(clsactQdisc(a.ifindex)); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("%s: delete clsact qdisc: %w", a.where, err))
		}
	}
	return errors.Join(errs...)
}

// attachClsact adds a clsact qdisc (unless the interface has one) and an
// ingress and an egress cls_bpf filter in direct-action mode, through a
// netlink handle that lives in ns, so no thread switches namespace.
func attachClsact(ns *namespace, ifs []iface, progs tcPrograms) ([]attachment, error) {
	var done []attachment
	for _, ifc := range ifs {
		a := &clsactAttachment{where: ns.name + "/" + ifc.name, nl: ns.nl, ifindex: ifc.index}
		err := ns.nl.QdiscAdd(clsactQdisc(ifc.index))
		switch {
		case err == nil:
			a.ownQdisc = true
		case errors.Is(err, unix.EEXIST):
			// Someone else's clsact (a CNI, a user): share it, keep it.
		default:
			return done, fmt.Errorf("%s: add clsact qdisc: %w", a.where, err)
		}
		// Replace, not add: a filter with hopcheck's handle and priority
		// is one an earlier tracer left (a killed trace, an ephemeral
		// tracer's namespace kept after all), and ours takes its place.
		if err := ns.nl.FilterReplace(clsactFilter(ifc.index, Ingress, progs.ingress)); err != nil {
			return done, errors.Join(fmt.Errorf("%s: add ingress filter: %w", a.where, err), a.detach())
		}
		a.ingress = true
		if err := ns.nl.FilterReplace(clsactFilter(ifc.index, Egress, progs.egress)); err != nil {
			return done, errors.Join(fmt.Errorf("%s: add egress filter: %w", a.where, err), a.detach())
		}
		a.egress = true
		done = append(done, a)
	}
	return done, nil
}

// DetachStale removes what a hopcheck tracer that was killed left attached
// with clsact in namespace ns: the filters of hopcheck's identity
// (priority 1, handle 0x4843) on ingress and egress of every interface,
// and the clsact qdiscs of ownQdiscs, the interfaces where that tracer
// added them, when they hold no other filter. `hopcheck clean` calls it;
// nothing else of anyone's is touched.
func DetachStale(ns netns.Handle, ownQdiscs []string) error {
	h, err := nl.HandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	links, err := nl.Dump(h.LinkList)
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	own := map[string]bool{}
	for _, n := range ownQdiscs {
		own[n] = true
	}
	var errs []error
	for _, l := range links {
		a := &clsactAttachment{where: l.Attrs().Name, nl: h, ifindex: l.Attrs().Index, ingress: true, egress: true}
		if err := a.detach(); err != nil {
			errs = append(errs, err)
			continue
		}
		if !own[l.Attrs().Name] {
			continue
		}
		left := 0
		for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
			fs, err := h.FilterList(l, parent)
			if err != nil && !gone(err) {
				errs = append(errs, fmt.Errorf("%s: list filters: %w", l.Attrs().Name, err))
				left++ // unknown: keep the qdisc
			}
			left += len(fs)
		}
		if left == 0 {
			if err := h.QdiscDel(clsactQdisc(l.Attrs().Index)); err != nil && !gone(err) {
				errs = append(errs, fmt.Errorf("%s: delete clsact qdisc: %w", l.Attrs().Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// OwnQdiscs returns, for each traced namespace, the interfaces whose
// clsact qdisc this tracer added (empty with TCX).
func (t *Tracer) OwnQdiscs() map[string][]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string][]string{}
	for k, a := range t.attached {
		if c, ok := a.(*clsactAttachment); ok && c.ownQdisc {
			if n := t.namespaces[k.ns]; n != nil {
				out[k.ns] = append(out[k.ns], n.ifs[uint32(k.ifindex)].name)
			}
		}
	}
	return out
}

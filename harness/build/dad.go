package build

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/hopcheck/hopcheck/harness/plan"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/nl"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DuplicateAddressError says that IPv6 duplicate address detection (DAD)
// found an interface's address on another interface of the same segment:
// the kernel marked it "dadfailed" and will never use it.
type DuplicateAddressError struct {
	scenario.Endpoint
	Addr netip.Addr
	// Others are the scenario's other interfaces with Addr; none when the
	// scenario does not name Addr (a link-local address the kernel made).
	Others []scenario.Endpoint
}

// Error names the interface, the address and, when the scenario says, who
// else has it.
func (e *DuplicateAddressError) Error() string {
	msg := fmt.Sprintf("%s: address %s is a duplicate (DAD failed): another interface on that segment has it", e.Endpoint, e.Addr)
	if len(e.Others) == 0 {
		return msg
	}
	names := make([]string, len(e.Others))
	for i, o := range e.Others {
		names[i] = o.String()
	}
	verb := "has"
	if len(names) > 1 {
		verb = "have"
	}
	return msg + " (" + strings.Join(names, " and ") + " " + verb + " it too in this scenario)"
}

// dadTimeout bounds the wait for duplicate address detection. It is
// generous: with the plan's settings DAD takes about 100 ms, but a
// scenario may slow it down itself (dad_transmits, retrans_time_ms), and
// a loaded machine runs the kernel's timers late.
const dadTimeout = 30 * time.Second

// dadPoll is the longest the wait sleeps between looks: how soon it
// notices a cancelled context, and the safety net for a lost event.
const dadPoll = 50 * time.Millisecond

// linkLocalGrace is how long an interface with a carrier may lack a
// link-local address before the wait takes it that the kernel gives it
// none (IPv6 disabled on it, an MTU below 1280, addr_gen_mode none). The
// kernel adds that address just after it marks the link operationally
// up, so a look can fall between the two.
const linkLocalGrace = 500 * time.Millisecond

// ifDAD is what the wait needs to know of one interface.
type ifDAD struct {
	name string
	// ready: up with a carrier, so DAD runs on its addresses. An
	// interface without one (its veth peer is down) keeps its addresses
	// tentative, as the scenario made it; nothing to wait for.
	ready bool
	// wantsLL: the kernel gives the interface a link-local address when
	// it becomes ready (it does ARP/ND and is not lo).
	wantsLL bool
	addrs   []addrDAD
}

type addrDAD struct {
	addr  netip.Addr
	flags int // IFA_F_*
}

// dadState is the judgement of one namespace's interfaces.
type dadState struct {
	tentative []addrOn // still being checked
	failed    []addrOn // duplicates
	noLL      []string // ready interfaces without a link-local address yet
}

type addrOn struct {
	If   string
	Addr netip.Addr
}

// judgeDAD sorts the IPv6 addresses of ready interfaces into tentative
// and failed ones, and lists the ready interfaces that still lack the
// link-local address the kernel will give them.
func judgeDAD(ifs []ifDAD) dadState {
	var st dadState
	for _, i := range ifs {
		if !i.ready {
			continue
		}
		hasLL := false
		for _, a := range i.addrs {
			if a.addr.IsLinkLocalUnicast() {
				hasLL = true
			}
			switch {
			case a.flags&unix.IFA_F_DADFAILED != 0:
				st.failed = append(st.failed, addrOn{i.name, a.addr})
			case a.flags&unix.IFA_F_TENTATIVE != 0:
				st.tentative = append(st.tentative, addrOn{i.name, a.addr})
			}
		}
		if i.wantsLL && !hasLL {
			st.noLL = append(st.noLL, i.name)
		}
	}
	return st
}

// settled reports whether nothing in st is left to wait for, a missing
// link-local address only until the grace period is over.
func (st dadState) settled(graceOver bool) bool {
	return len(st.tentative) == 0 && len(st.failed) == 0 && (graceOver || len(st.noLL) == 0)
}

// settleIPv6 waits until no IPv6 address on a ready interface of t's
// namespaces is tentative any more: each has passed duplicate address
// detection and is usable, the routers' link-local addresses included
// (a router solicits its neighbors from its link-local address, so until
// that is usable it forwards nothing). The wait is event-driven: it
// subscribes to each namespace's link and IPv6 address changes, then
// looks, and looks again at a namespace only when it has news (or every
// dadPoll, as a safety net). A duplicate returns a *StepError for the
// address's line with a *DuplicateAddressError; running past dadTimeout
// or ctx returns an error naming an address still tentative.
func (t *Topology) settleIPv6(ctx context.Context, p *plan.Plan) error {
	start := time.Now()
	deadline := start.Add(dadTimeout)
	nss := t.nss
	fds := make([]unix.PollFd, 0, len(nss))
	defer func() {
		for _, f := range fds {
			unix.Close(int(f.Fd))
		}
	}()
	for _, ns := range nss {
		fd, err := subscribeAddrs(ns.h)
		if err != nil {
			return fmt.Errorf("%s: watch addresses: %w", ns.name, err)
		}
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	states := make([]dadState, len(nss))
	dirty := make([]bool, len(nss))
	for i := range dirty {
		dirty[i] = true
	}
	for {
		graceOver := time.Since(start) >= linkLocalGrace
		done := true
		for i, ns := range nss {
			if dirty[i] {
				st, err := ns.lookDAD()
				if err != nil {
					return fmt.Errorf("%s: %w", ns.name, err)
				}
				states[i], dirty[i] = st, false
			}
			if len(states[i].failed) > 0 {
				return duplicates(p, nss, states)
			}
			if !states[i].settled(graceOver) {
				done = false
			}
		}
		if done {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("build interrupted while IPv6 addresses were tentative: %w", context.Cause(ctx))
		}
		left := time.Until(deadline)
		if left <= 0 {
			return stillTentative(nss, states)
		}
		n, err := unix.Poll(fds, int(min(left, dadPoll)/time.Millisecond)+1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("wait for address changes: %w", err)
		}
		for i := range fds {
			switch {
			case n <= 0:
				// Nothing happened: look again where something is
				// awaited (a missing link-local address may be past
				// its grace now).
				dirty[i] = !states[i].settled(graceOver)
			case fds[i].Revents != 0:
				drain(int(fds[i].Fd))
				dirty[i] = true
			}
			fds[i].Revents = 0
		}
	}
}

// subscribeAddrs opens, inside h, a non-blocking netlink socket that
// receives the namespace's link and IPv6 address changes. The caller
// closes it.
func subscribeAddrs(h netns.Handle) (int, error) {
	fd := -1
	err := netns.Do(h, func() error {
		s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK | unix.RTMGRP_IPV6_IFADDR}
		if err := unix.Bind(s, sa); err != nil {
			unix.Close(s)
			return err
		}
		fd = s
		return nil
	})
	return fd, err
}

// drain reads what the socket holds. The messages themselves are not
// needed: they only say that the namespace is worth another look. An
// overrun (ENOBUFS) says the same.
func drain(fd int) {
	var buf [16 << 10]byte
	for range 4096 {
		_, _, err := unix.Recvfrom(fd, buf[:], 0)
		if err != nil && !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.ENOBUFS) {
			return // EAGAIN: empty
		}
	}
}

// lookDAD reads the namespace's links and IPv6 addresses and judges them.
func (ns *namespace) lookDAD() (dadState, error) {
	links, err := nl.Dump(ns.nl.LinkList)
	if err != nil {
		return dadState{}, fmt.Errorf("list links: %w", err)
	}
	addrs, err := nl.Dump(func() ([]netlink.Addr, error) { return ns.nl.AddrList(nil, netlink.FAMILY_V6) })
	if err != nil {
		return dadState{}, fmt.Errorf("list addresses: %w", err)
	}
	byIndex := map[int]*ifDAD{}
	ifs := make([]ifDAD, len(links))
	for i, l := range links {
		a := l.Attrs()
		up := a.RawFlags&unix.IFF_UP != 0
		oper := a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown
		ifs[i] = ifDAD{
			name:    a.Name,
			ready:   up && oper,
			wantsLL: a.RawFlags&(unix.IFF_NOARP|unix.IFF_LOOPBACK) == 0,
		}
		byIndex[a.Index] = &ifs[i]
	}
	for _, a := range addrs {
		i, ok := byIndex[a.LinkIndex]
		if !ok {
			continue
		}
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			i.addrs = append(i.addrs, addrDAD{addr: ip.Unmap(), flags: a.Flags})
		}
	}
	return judgeDAD(ifs), nil
}

// stillTentative is the error for a wait that ran out.
func stillTentative(nss []*namespace, states []dadState) error {
	for i, st := range states {
		if len(st.tentative) > 0 {
			a := st.tentative[0]
			return fmt.Errorf("%s/%s: address %s is still tentative after %v: duplicate address detection did not finish (see the scenario's dad_transmits and retrans_time_ms settings)",
				nss[i].name, a.If, a.Addr, dadTimeout)
		}
	}
	return fmt.Errorf("IPv6 addresses did not settle within %v", dadTimeout)
}

// duplicates returns the error for the failed addresses in states, one
// *StepError per duplicate in scenario order; an address whose other
// holder was already named is not reported again from that side.
func duplicates(p *plan.Plan, nss []*namespace, states []dadState) error {
	failed := map[scenario.Endpoint][]netip.Addr{}
	for i, st := range states {
		for _, f := range st.failed {
			ep := scenario.Endpoint{NS: nss[i].name, If: f.If}
			failed[ep] = append(failed[ep], f.Addr)
		}
	}
	return duplicateErrors(p, failed)
}

// duplicateErrors is duplicates over the failed addresses by interface.
func duplicateErrors(p *plan.Plan, failed map[scenario.Endpoint][]netip.Addr) error {
	type named struct {
		ep   scenario.Endpoint
		addr netip.Addr
	}
	seen := map[named]bool{}
	var errs []error
	for _, n := range p.Scenario.Namespaces {
		for _, ifc := range n.Interfaces {
			ep := scenario.Endpoint{NS: n.Name, If: ifc.Name}
			for _, a := range failed[ep] {
				if seen[named{ep, a}] {
					continue
				}
				d := &DuplicateAddressError{Endpoint: ep, Addr: a, Others: holders(p.Scenario, a, ep)}
				for _, o := range d.Others {
					seen[named{o, a}] = true
				}
				errs = append(errs, stepErrorFor(p, d))
			}
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// holders returns the scenario's interfaces other than not that have a.
func holders(sc *scenario.Scenario, a netip.Addr, not scenario.Endpoint) []scenario.Endpoint {
	var out []scenario.Endpoint
	for _, n := range sc.Namespaces {
		for _, ifc := range n.Interfaces {
			ep := scenario.Endpoint{NS: n.Name, If: ifc.Name}
			if ep == not {
				continue
			}
			for _, p := range ifc.Addresses {
				if p.Addr() == a {
					out = append(out, ep)
					break
				}
			}
		}
	}
	return out
}

// stepErrorFor locates d at the scenario text of the step that added its
// address, or else of the step that brought its interface up (the kernel
// made a link-local address then).
func stepErrorFor(p *plan.Plan, d *DuplicateAddressError) error {
	var up *plan.Step
	for i, s := range p.Steps {
		if s.NS != d.NS || s.If != d.If {
			continue
		}
		switch {
		case s.Kind == plan.AddAddress && s.Addr.Addr() == d.Addr:
			return &StepError{Pos: s.Pos, Field: s.Field, Step: s, Err: d}
		case s.Kind == plan.SetUp && up == nil:
			up = &p.Steps[i]
		}
	}
	if up != nil {
		return &StepError{Pos: up.Pos, Field: up.Field, Step: *up, Err: d}
	}
	return d
}

// Package nl holds the netlink idioms every kernel-facing package of
// hopcheck shares: a handle whose socket lives in a given namespace, dumps
// repeated when a concurrent change interrupts them, and interface
// addresses as netip prefixes.
package nl

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/internal/netns"
)

// DumpRetries bounds how often Dump repeats an interrupted dump.
const DumpRetries = 5

// HandleAt opens a netlink handle whose sockets live in ns, for the given
// protocols (NETLINK_ROUTE when none are given). The sockets are opened
// inside netns.Do rather than with netlink.NewHandleAt, so that setns stays
// in the one helper that never hands a thread back in the wrong namespace
// (NewHandleAt unlocks its thread even when switching back failed). A
// socket keeps its namespace, so the handle works from any thread.
func HandleAt(ns netns.Handle, protocols ...int) (*netlink.Handle, error) {
	if len(protocols) == 0 {
		protocols = []int{unix.NETLINK_ROUTE}
	}
	var h *netlink.Handle
	err := netns.Do(ns, func() error {
		var err error
		h, err = netlink.NewHandle(protocols...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	return h, nil
}

// Dump runs a netlink dump, repeating it while the kernel reports that a
// concurrent change interrupted it (NLM_F_DUMP_INTR), so that callers never
// act on a partial table. After DumpRetries it returns the last error.
func Dump[T any](fn func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range DumpRetries {
		if v, err = fn(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// Prefix converts an interface address as netlink reports it (address and
// mask) to a prefix that keeps the host bits: 10.0.0.2/24, not 10.0.0.0/24.
// IPv4 addresses in 16-byte form with a 128-bit mask are unmapped.
func Prefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	if a.Is4In6() && bits == 128 {
		ones -= 96
	}
	return netip.PrefixFrom(a.Unmap(), ones), true
}

package check

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/nl"
)

// withHandle opens a netlink handle in the scenario namespace nsName, runs fn
// with it and closes it.
func withHandle(env Env, nsName string, fn func(h *netlink.Handle) error) error {
	ns, err := nsOf(env, nsName)
	if err != nil {
		return err
	}
	h, err := nl.HandleAt(ns)
	if err != nil {
		return fmt.Errorf("%s: %w", nsName, err)
	}
	defer h.Close()
	return fn(h)
}

// isNotFound reports whether err says that a link does not exist.
func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// linkAddrs returns the addresses of link as prefixes, in the kernel's order.
func linkAddrs(h *netlink.Handle, link netlink.Link, family int) ([]netip.Prefix, error) {
	addrs, err := nl.Dump(func() ([]netlink.Addr, error) { return h.AddrList(link, family) })
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		if p, ok := nl.Prefix(a.IPNet); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// ifaceAddr returns the first address of interface ep that a probe can be
// sent to: IPv4 when it has one, else a global IPv6 address (a link-local
// one would need a zone the scenario cannot name).
func ifaceAddr(env Env, ep scenario.Endpoint) (netip.Addr, error) {
	var addr netip.Addr
	err := withHandle(env, ep.NS, func(h *netlink.Handle) error {
		link, err := h.LinkByName(ep.If)
		if err != nil {
			return fmt.Errorf("%s: find interface: %w", ep, err)
		}
		addrs, err := linkAddrs(h, link, netlink.FAMILY_ALL)
		if err != nil {
			return fmt.Errorf("%s: list addresses: %w", ep, err)
		}
		var ok bool
		if addr, ok = pickAddr(addrs); !ok {
			return fmt.Errorf("%s has no IPv4 or global IPv6 address to send to", ep)
		}
		return nil
	})
	return addr, err
}

// pickAddr chooses the address a probe to an interface goes to: the first
// IPv4 address, else the first IPv6 address that is not link-local.
func pickAddr(addrs []netip.Prefix) (netip.Addr, bool) {
	for _, p := range addrs {
		if p.Addr().Is4() {
			return p.Addr(), true
		}
	}
	for _, p := range addrs {
		if a := p.Addr(); a.Is6() && !a.IsLinkLocalUnicast() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// ifaceMAC returns the hardware address of interface ep.
func ifaceMAC(env Env, ep scenario.Endpoint) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := withHandle(env, ep.NS, func(h *netlink.Handle) error {
		link, err := h.LinkByName(ep.If)
		if err != nil {
			return fmt.Errorf("%s: find interface: %w", ep, err)
		}
		mac = link.Attrs().HardwareAddr
		if len(mac) == 0 {
			return fmt.Errorf("%s has no hardware address", ep)
		}
		return nil
	})
	return mac, err
}

// linkName returns the name of the link with index idx, or "if<idx>" when
// it cannot be found (it may have gone between two calls).
func linkName(h *netlink.Handle, idx int) string {
	if idx == 0 {
		return ""
	}
	if l, err := h.LinkByIndex(idx); err == nil {
		return l.Attrs().Name
	}
	return fmt.Sprintf("if%d", idx)
}

// addrOf converts an IP from netlink to a netip.Addr, unmapping IPv4.
func addrOf(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

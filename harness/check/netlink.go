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

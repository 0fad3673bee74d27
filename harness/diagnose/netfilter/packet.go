package netfilter

import (
	"fmt"
	"net/netip"
)

// Packet is the probe packet as a namespace's netfilter hooks see it.
type Packet struct {
	Src, Dst     netip.Addr
	SPort, DPort uint16
	// Proto is "icmp", "tcp" or "udp".
	Proto string
	// In and Out are the input and output interfaces at this hook; ""
	// when the hook has none (In on OUTPUT, Out on PREROUTING).
	In, Out string
	// Reply marks the reply leg: conntrack state ESTABLISHED, where the
	// request is NEW. NAT rules see only the request.
	Reply bool
	// Mark is the packet's netfilter mark inside the namespace it is in
	// (MARK and nft's meta mark set set it, -m mark and meta mark read it;
	// runtimes mark published-port traffic in nat PREROUTING to
	// masquerade it in POSTROUTING); shared by the copies of the packet
	// in that namespace, so that what one hook's rule sets the next
	// hook's rules see; nil when the caller does not follow it.
	Mark *Mark
}

// Mark is a packet's mark as far as it is known: Known is unset once a
// rule that only may match, or a chain the evaluation cannot say is
// entered, may have changed it.
type Mark struct {
	Value uint32
	Known bool
}

// Forget makes the mark unknown (a no-op on a nil Mark).
func (m *Mark) Forget() {
	if m != nil {
		m.Known = false
	}
}

// IPv6 reports whether p is an IPv6 packet.
func (p Packet) IPv6() bool { return p.Dst.Is6() && !p.Dst.Is4In6() }

// String formats p as "10.0.0.2 > 203.0.113.8 icmp", with the ports that
// are known for tcp and udp.
func (p Packet) String() string {
	src, dst := p.Src.String(), p.Dst.String()
	if p.Proto != "icmp" {
		if p.SPort != 0 {
			src = netip.AddrPortFrom(p.Src, p.SPort).String()
		}
		if p.DPort != 0 {
			dst = netip.AddrPortFrom(p.Dst, p.DPort).String()
		}
	}
	return fmt.Sprintf("%s > %s %s", src, dst, p.Proto)
}

// Namespace is what matching a rule asks of the namespace whose hook it
// is: what its routing makes of an address, and its interfaces.
type Namespace interface {
	// AddrType is the type of address a as `-m addrtype` and nft's
	// `fib ... type` see it, in `ip route`'s words ("local", "unicast",
	// "broadcast", "multicast", "blackhole", "unreachable",
	// "prohibit"): for IPv4 the kernel's inet_dev_addr_type (the local
	// table), counting only routes of device dev when dev is not ""; for
	// IPv6 "local" when the namespace holds a (on dev) or a local route
	// covers it, else "multicast" or "unicast". a is valid.
	AddrType(a netip.Addr, dev string) string
	// RouteType is the type of the route the namespace's full lookup
	// (policy rules, then their tables) finds for a; ok is false when it
	// finds none.
	RouteType(a netip.Addr) (typ string, ok bool)
	// Link returns the index of the interface called name (0 when
	// unknown or there is none) and whether it is the loopback.
	Link(name string) (index int, loopback bool)
}

package probe

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Fragmentation says whether a probe's packets may be fragmented on the
// way. The zero value keeps the kernel's default.
type Fragmentation int

const (
	// FragKernel keeps the socket's default (IP_PMTUDISC_WANT): DF is set
	// while the packet fits the path MTU the sender knows, and the sender
	// fragments it when not.
	FragKernel Fragmentation = iota
	// FragNever sets DF (IPv4) or forbids the sender's fragmentation
	// (IPV6_DONTFRAG), like `ping -M probe`: a packet larger than the
	// egress interface's MTU fails at send with EMSGSIZE, and a router
	// with a smaller MTU on the way drops it and answers "fragmentation
	// needed" (ICMPv6 "packet too big"). The path MTU the sender learnt
	// from such answers is deliberately ignored (IP_PMTUDISC_PROBE): a
	// probe sent after the link is repaired, or a second one, must cross
	// the path again rather than fail at send from a cached MTU.
	FragNever
	// FragAllow clears DF (IP_PMTUDISC_DONT): the sender fragments to
	// its egress MTU and IPv4 routers fragment further. IPv6 routers
	// never fragment; the IPv6 sender fragments to the MTU it knows.
	FragAllow
)

// setFragmentation applies f to the socket behind c, of the family v6.
func setFragmentation(c syscall.Conn, v6 bool, f Fragmentation) error {
	if f == FragKernel {
		return nil
	}
	if c == nil {
		return errors.New("the socket has no file descriptor")
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = fragOpts(int(fd), v6, f)
	})
	return errors.Join(err, serr)
}

// fragOpts sets the socket options of f on fd.
func fragOpts(fd int, v6 bool, f Fragmentation) error {
	if v6 {
		mode, dontfrag := unix.IPV6_PMTUDISC_PROBE, 1
		if f == FragAllow {
			mode, dontfrag = unix.IPV6_PMTUDISC_DONT, 0
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, mode); err != nil {
			return fmt.Errorf("IPV6_MTU_DISCOVER: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, dontfrag); err != nil {
			return fmt.Errorf("IPV6_DONTFRAG: %w", err)
		}
		return nil
	}
	mode := unix.IP_PMTUDISC_PROBE
	if f == FragAllow {
		mode = unix.IP_PMTUDISC_DONT
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, mode); err != nil {
		return fmt.Errorf("IP_MTU_DISCOVER: %w", err)
	}
	return nil
}

// Header sizes that turn a probe's IP packet size into its payload.
const (
	ipv4Header = 20
	ipv6Header = 40
	// l4Header is the ICMP echo header, and the UDP header: 8 bytes each.
	l4Header = 8
)

// PayloadFor returns the ICMP or UDP payload that makes an IP packet of
// size bytes (no IP options, no IPv6 extension headers) for the family of
// v6.
func PayloadFor(size int, v6 bool) int {
	h := ipv4Header
	if v6 {
		h = ipv6Header
	}
	return size - h - l4Header
}

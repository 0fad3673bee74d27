package probe

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// zoneIndex returns the interface index that a's zone names (0 for none).
// It must run inside the probe's namespace: interface names and indexes are
// per namespace, and Go's own zone cache looks them up in whatever namespace
// the calling thread happens to be in.
func zoneIndex(a netip.Addr) (int, error) {
	zone := a.Zone()
	if zone == "" {
		return 0, nil
	}
	if i, err := strconv.Atoi(zone); err == nil {
		return i, nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, fmt.Errorf("zone of %s: %w", a, err)
	}
	return ifi.Index, nil
}

// sockaddr converts an address and port to the kernel's form. zone is an
// interface index from zoneIndex.
func sockaddr(ap netip.AddrPort, zone int) unix.Sockaddr {
	a := ap.Addr()
	if a.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16(), ZoneId: uint32(zone)}
}

// addrPort converts a kernel socket address back, in the form of
// plainAddrPort.
func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// family returns the socket domain for a.
func family(a netip.Addr) int {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// plainAddrPort returns ap in the form every result of this package uses:
// an IPv4-mapped IPv6 address made IPv4, and no zone. Go names a received
// packet's zone from the interfaces of the caller's namespace, not the
// socket's, so the name would be wrong (the address itself is right).
func plainAddrPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}

// deadliner is what ctxDeadline drives: a socket or file whose blocking
// calls honour deadlines.
type deadliner interface {
	SetDeadline(t time.Time) error
	SetReadDeadline(t time.Time) error
}

// ctxDeadline ties the deadline of a socket to a context, so that a blocked
// read or write returns when the context is done, without a goroutine of our
// own waiting on it. Once the context is done, every later deadline set
// through it is in the past: a deadline set just after cancellation cannot
// undo the cancellation.
type ctxDeadline struct {
	conn  deadliner
	stop  func() bool
	fired chan struct{} // closed when the cancellation function has run

	mu       sync.Mutex
	canceled bool
}

// watchContext starts tying conn's deadline to ctx. The caller must call
// release before it closes conn.
func watchContext(ctx context.Context, conn deadliner) *ctxDeadline {
	d := &ctxDeadline{conn: conn, fired: make(chan struct{})}
	d.stop = context.AfterFunc(ctx, func() {
		defer close(d.fired)
		d.mu.Lock()
		defer d.mu.Unlock()
		d.canceled = true
		_ = conn.SetDeadline(longAgo()) // the blocked call returns a timeout
	})
	return d
}

// set sets conn's read and write deadline to t, or to the past if the
// context is done.
func (d *ctxDeadline) set(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.canceled {
		t = longAgo()
	}
	return d.conn.SetDeadline(t)
}

// setRead sets only conn's read deadline, for loops that wait for replies
// between sends: a send must not fail because the wait before it ended.
func (d *ctxDeadline) setRead(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.canceled {
		t = longAgo()
	}
	return d.conn.SetReadDeadline(t)
}

// longAgo returns a deadline that has always passed.
func longAgo() time.Time { return time.Unix(1, 0) }

// release stops watching the context and waits for the cancellation
// function if it had already started, so that nothing touches conn after
// release returns.
func (d *ctxDeadline) release() {
	if !d.stop() {
		<-d.fired
	}
}

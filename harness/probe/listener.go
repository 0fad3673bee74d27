package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/trace"
	"golang.org/x/sys/unix"
)

// Proto is the transport protocol of a Connect probe or a Listener.
type Proto string

// The protocols a Listener serves and Connect probes.
const (
	TCP Proto = "tcp"
	UDP Proto = "udp"
)

// connIOTimeout bounds how long the listener waits for a TCP client's
// request and for its reply to be sent, so that a client that connects and
// says nothing cannot hold a handler forever.
const connIOTimeout = 5 * time.Second

// Listener answers TCP or UDP probes inside a namespace: for each request it
// replies with the request and the source address and port it saw, so the
// client learns what NAT on the way made of it. Traffic that is not a
// probe's request is recorded (Seen) but not answered. It listens on all
// addresses of the namespace (IPv4 and IPv6 on one dual-stack socket where
// the kernel has IPv6) and serves until Close, or until the context given
// to Listen is done.
type Listener struct {
	proto Proto
	addr  netip.AddrPort

	tcp net.Listener  // TCP
	udp *datagramConn // UDP

	stopCtx  func() bool   // stops the context watch started by Listen
	ctxFired chan struct{} // closed when that watch has shut the listener down
	unwatch  sync.Once     // Close's part: stop or wait for the watch
	shutOnce sync.Once
	closeErr error
	wg       sync.WaitGroup // the serving goroutine and TCP handlers

	mu      sync.Mutex
	closed  bool
	conns   map[net.Conn]struct{} // open TCP connections, closed by Close
	seen    []netip.AddrPort
	seenSet map[netip.AddrPort]struct{}
	arrived map[trace.Tag]netip.AddrPort
}

// Listen starts a listener for proto on port (0 picks a free port; see
// Addr) on all addresses of namespace ns.
func Listen(ctx context.Context, ns netns.Handle, proto Proto, port uint16) (*Listener, error) {
	if proto != TCP && proto != UDP {
		return nil, fmt.Errorf("listen %s/%d: unknown protocol %q (want %q or %q)", proto, port, proto, TCP, UDP)
	}
	l := &Listener{
		proto:    proto,
		ctxFired: make(chan struct{}),
		conns:    make(map[net.Conn]struct{}),
		seenSet:  make(map[netip.AddrPort]struct{}),
		arrived:  make(map[trace.Tag]netip.AddrPort),
	}
	// "tcp"/"udp" with no address: Go opens a dual-stack IPv6 socket, or an
	// IPv4 one on kernels without IPv6. A background context: the listening
	// itself never blocks, and ctx governs serving, below.
	addr := ":" + strconv.Itoa(int(port))
	err := netns.Do(ns, func() error {
		var lc net.ListenConfig
		switch proto {
		case TCP:
			ln, err := lc.Listen(context.Background(), "tcp", addr)
			if err != nil {
				return err
			}
			l.tcp = ln
			l.addr = plainAddrPort(ln.Addr().(*net.TCPAddr).AddrPort())
		case UDP:
			pc, err := lc.ListenPacket(context.Background(), "udp", addr)
			if err != nil {
				return err
			}
			uc := pc.(*net.UDPConn)
			dc, err := newDatagramConn(uc)
			if err != nil {
				uc.Close()
				return err
			}
			l.udp = dc
			l.addr = plainAddrPort(uc.LocalAddr().(*net.UDPAddr).AddrPort())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s/%d: %w", proto, port, err)
	}
	l.wg.Add(1)
	if proto == TCP {
		go l.serveTCP()
	} else {
		go l.serveUDP()
	}
	l.stopCtx = context.AfterFunc(ctx, func() {
		defer close(l.ctxFired)
		_ = l.shutdown() // Close reports the error
	})
	return l, nil
}

// Proto returns the protocol the listener serves.
func (l *Listener) Proto() Proto { return l.proto }

// Addr returns the address the listener is bound to: the unspecified
// address and the listening port.
func (l *Listener) Addr() netip.AddrPort { return l.addr }

// Seen returns every distinct peer (source address and port) that reached
// the listener, in the order they first did, whether or not it sent a
// valid request.
func (l *Listener) Seen() []netip.AddrPort {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]netip.AddrPort(nil), l.seen...)
}

// Arrived reports whether a request carrying tag reached the listener, and
// from which peer. It tells a probe whose reply was lost on the way back
// (the request arrived) from one whose request never arrived.
func (l *Listener) Arrived(tag trace.Tag) (netip.AddrPort, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	from, ok := l.arrived[tag]
	return from, ok
}

// Close stops the listener and returns once its goroutines have exited.
// Open TCP connections are closed. Calling Close more than once is safe.
func (l *Listener) Close() error {
	l.unwatch.Do(func() {
		if !l.stopCtx() {
			// ctx was done first: the watch is shutting the listener
			// down, or has; wait until it has returned.
			<-l.ctxFired
		}
	})
	return l.shutdown()
}

// shutdown closes the sockets and waits for the goroutines, once.
func (l *Listener) shutdown() error {
	l.shutOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		for c := range l.conns {
			c.Close()
		}
		l.mu.Unlock()
		if l.tcp != nil {
			l.closeErr = l.tcp.Close()
		} else {
			l.closeErr = l.udp.Close()
		}
		l.wg.Wait()
		if l.closeErr != nil {
			l.closeErr = fmt.Errorf("close %s listener on %s: %w", l.proto, l.addr, l.closeErr)
		}
	})
	return l.closeErr
}

// see records a peer, and the tag of its request when it sent a valid one.
func (l *Listener) see(from netip.AddrPort, tag trace.Tag, tagged bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seenSet[from]; !ok {
		l.seenSet[from] = struct{}{}
		l.seen = append(l.seen, from)
	}
	if _, ok := l.arrived[tag]; tagged && !ok {
		l.arrived[tag] = from
	}
}

// serveTCP accepts connections until the listener is closed, each served by
// a handler goroutine that Close waits for.
func (l *Listener) serveTCP() {
	defer l.wg.Done()
	for {
		c, err := l.tcp.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// A transient failure (a connection reset before accept, out
			// of file descriptors): pause instead of spinning.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !l.track(c) {
			c.Close()
			return
		}
		go l.handleTCP(c)
	}
}

// track registers an accepted connection and its handler with Close; false
// when the listener is already closed.
func (l *Listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = struct{}{}
	l.wg.Add(1)
	return true
}

// handleTCP reads the client's request and answers it.
func (l *Listener) handleTCP(c net.Conn) {
	defer l.wg.Done()
	defer func() {
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
		c.Close()
	}()
	from := plainAddrPort(c.RemoteAddr().(*net.TCPAddr).AddrPort())
	l.see(from, 0, false) // a peer that connects has been seen, request or not
	_ = c.SetDeadline(time.Now().Add(connIOTimeout))
	req := make([]byte, requestLen)
	if _, err := io.ReadFull(c, req); err != nil {
		return
	}
	tag, _, ok := parseRequest(req)
	if !ok {
		return
	}
	l.see(from, tag, true)
	_, _ = c.Write(appendReply(nil, req, from))
}

// serveUDP answers datagrams until the listener is closed.
func (l *Listener) serveUDP() {
	defer l.wg.Done()
	buf, oob := make([]byte, 64<<10), newOOB()
	for {
		n, from, dst, err := l.udp.read(buf, oob)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Not seen on Linux for an unconnected UDP socket; pause
			// rather than spin should a persistent one appear.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		tag, _, ok := parseRequest(buf[:n])
		l.see(plainAddrPort(from), tag, ok)
		if !ok {
			continue // not a probe: seen, but not answered
		}
		// The padding of a sized request is not echoed: the reply
		// stays small, so a probe's size tests the way there, and a
		// reply is never larger than the request it answers plus the
		// address.
		req := buf[:n]
		if isPadded(req) {
			req = req[:requestLen]
		}
		reply := appendReply(make([]byte, 0, len(req)+64), req, plainAddrPort(from))
		_ = l.udp.write(reply, from, dst)
	}
}

// datagramConn is a UDP socket that reports the address each datagram was
// sent to and replies from that address. Without this, the kernel picks the
// reply's source by route, which in a namespace with several addresses can
// differ from the one the client sent to, and the client's connected socket
// would drop the reply.
type datagramConn struct {
	uc *net.UDPConn
	v6 bool // an IPv6 socket, dual-stack: IPv4 peers appear IPv4-mapped
}

// newDatagramConn enables packet information on uc.
func newDatagramConn(uc *net.UDPConn) (*datagramConn, error) {
	d := &datagramConn{uc: uc, v6: uc.LocalAddr().(*net.UDPAddr).IP.To4() == nil}
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if d.v6 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return nil, fmt.Errorf("enable packet information: %w", err)
	}
	return d, nil
}

// newOOB returns a buffer for one IP_PKTINFO or IPV6_PKTINFO control
// message.
func newOOB() []byte { return make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo)) }

// read reads a datagram into b and its control message into oob (from
// newOOB), and returns the sender and the address the datagram was sent to
// (invalid if the kernel did not say).
func (d *datagramConn) read(b, oob []byte) (n int, from netip.AddrPort, dst netip.Addr, err error) {
	n, oobn, _, from, err := d.uc.ReadMsgUDPAddrPort(b, oob)
	if err != nil {
		return 0, netip.AddrPort{}, netip.Addr{}, err
	}
	return n, from, pktinfoDst(oob[:oobn]), nil
}

// write sends b to to, from src if valid. On a dual-stack socket, the
// kernel takes an IPv4-mapped IPV6_PKTINFO source for an IPv4 peer.
func (d *datagramConn) write(b []byte, to netip.AddrPort, src netip.Addr) error {
	var oob []byte
	switch {
	case !src.IsValid():
	case d.v6:
		oob = unix.PktInfo6(&unix.Inet6Pktinfo{Addr: src.As16()})
	case src.Is4():
		oob = unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: src.As4()})
	}
	_, _, err := d.uc.WriteMsgUDPAddrPort(b, oob, to)
	return err
}

// Close closes the socket.
func (d *datagramConn) Close() error { return d.uc.Close() }

// pktinfoDst returns the destination address that an IP_PKTINFO
// (struct in_pktinfo: ifindex, spec_dst, addr) or IPV6_PKTINFO (struct
// in6_pktinfo: addr, ifindex) control message reports, as the kernel put
// it: IPv4-mapped for an IPv4 datagram on an IPv6 socket.
func pktinfoDst(oob []byte) netip.Addr {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= unix.SizeofInet4Pktinfo:
			return netip.AddrFrom4([4]byte(m.Data[8:12]))
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo:
			return netip.AddrFrom16([16]byte(m.Data[0:16]))
		}
	}
	return netip.Addr{}
}

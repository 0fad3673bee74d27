package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"time"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/trace"
	"golang.org/x/sys/unix"
)

// Timeout bounds of Connect.
const (
	DefaultConnectTimeout = 2 * time.Second
	MaxConnectTimeout     = 30 * time.Second
)

// udpAttempts is how many datagrams a UDP probe sends at most, spread over
// its timeout, so that one lost datagram (or one dropped while the first
// hop resolved its neighbour) does not fail the probe.
const udpAttempts = 3

// ConnResult is what a TCP or UDP probe saw. Network failures are described
// by Err, not returned as errors.
type ConnResult struct {
	// Proto is the protocol of the probe.
	Proto Proto
	// Tag is the probe's tag: in every UDP datagram and in the TCP
	// request, so the tracer and the listener know the probe.
	Tag trace.Tag
	// Local is the source address and port, bound before the first packet
	// left: the tracer finds a TCP probe's SYN by it. Valid even when the
	// connection failed; invalid only when there was no route to Dst.
	Local netip.AddrPort
	// Dst is the destination as probed.
	Dst netip.AddrPort
	// Seen is the source address and port the listener saw, from its
	// reply: Local, or what NAT on the way made of it.
	Seen netip.AddrPort
	// RTT is, for TCP, the time the handshake took (connect to
	// established); for UDP, from sending the answered datagram to
	// receiving its reply.
	RTT time.Duration
	// Attempts counts the datagrams sent (UDP) or connections tried (TCP,
	// always 1).
	Attempts int
	// Err is nil when the listener answered. Otherwise it wraps one of
	// ErrRefused, ErrTimeout, ErrUnreachable, ErrFiltered or ErrBadReply,
	// together with the kernel's error where there was one.
	Err error
}

// Connect probes dst with proto from inside namespace ns: it connects (TCP)
// or sends datagrams (UDP), sends the probe's request and waits for a
// Listener's reply, all within timeout (0 means DefaultConnectTimeout). A
// zero tag picks a random one, reported in the result.
//
// The error is non-nil only when no probe could be sent: invalid
// arguments, no socket, or ctx done (then the result holds what was known
// until then).
func Connect(ctx context.Context, ns netns.Handle, proto Proto, dst netip.AddrPort, tag trace.Tag, timeout time.Duration) (ConnResult, error) {
	return ConnectWith(ctx, ns, proto, dst, ConnOptions{Tag: tag, Timeout: timeout})
}

// Service is a real service that a probe talks to instead of a Listener.
type Service struct {
	// Payload is what a UDP probe sends; empty means the probe's request,
	// which carries its tag (padded to ConnOptions.Size).
	Payload []byte
	// Reply, when set, is what a UDP answer must contain.
	Reply []byte
}

// ConnOptions configures ConnectWith. The zero value is Connect's
// defaults: a random tag, DefaultConnectTimeout, requests as small as
// they come, the kernel's fragmentation, hopcheck's Listener answering.
type ConnOptions struct {
	Tag     trace.Tag
	Timeout time.Duration
	// Size pads each UDP request datagram to this many bytes of IP
	// packet (PayloadFor); 0, or a size below the request's own, sends
	// the request unpadded. TCP ignores it.
	Size int
	// Frag says whether UDP requests may be fragmented. TCP ignores it.
	Frag Fragmentation
	// Service, when set, is the real service that answers at dst instead
	// of a Listener: a TCP probe passes when the handshake completes (it
	// then closes the connection, sending nothing); a UDP probe sends
	// Service.Payload, up to three times, and passes on the first answer
	// (that contains Service.Reply). Seen stays unset, since no listener
	// reports the source.
	Service *Service
}

// ConnectWith is Connect with options.
func ConnectWith(ctx context.Context, ns netns.Handle, proto Proto, dst netip.AddrPort, opt ConnOptions) (ConnResult, error) {
	tag, timeout, svc := opt.Tag, opt.Timeout, opt.Service
	// Keep the zone: it names an interface inside ns.
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	if tag == 0 {
		tag = trace.Tag(rand.Uint64() | 1)
	}
	res := ConnResult{Proto: proto, Tag: tag, Dst: dst}
	if timeout == 0 {
		timeout = DefaultConnectTimeout
	}
	if err := checkConnectArgs(proto, dst, timeout); err != nil {
		return res, fmt.Errorf("%s probe to %s: %w", proto, dst, err)
	}
	deadline := time.Now().Add(timeout)

	probe, route, err := openSockets(ns, proto, dst)
	if err != nil {
		return res, fmt.Errorf("%s probe to %s: %w", proto, dst, err)
	}
	defer probe.close()
	if route != nil {
		defer route.close()
	}
	if proto == TCP {
		err = probeTCP(ctx, probe, route, &res, deadline, svc)
	} else {
		v6 := dst.Addr().Is6()
		if ferr := setFragmentation(probe.f, v6, opt.Frag); ferr != nil {
			return res, fmt.Errorf("%s probe to %s: set fragmentation: %w", proto, dst, ferr)
		}
		err = probeUDP(ctx, probe, &res, deadline, PayloadFor(opt.Size, v6), svc)
	}
	if err != nil {
		return res, fmt.Errorf("%s probe %s: %w", proto, res.flow(), err)
	}
	if res.Err != nil {
		res.Err = fmt.Errorf("%s %s: %w", proto, res.flow(), res.Err)
	}
	return res, nil
}

// flow names the probe's addresses for messages: "10.0.0.2:41234 ->
// 10.0.1.2:80", or "-> 10.0.1.2:80" before a source is known.
func (r ConnResult) flow() string {
	if !r.Local.IsValid() {
		return "-> " + r.Dst.String()
	}
	return r.Local.String() + " -> " + r.Dst.String()
}

// checkConnectArgs validates the arguments of Connect.
func checkConnectArgs(proto Proto, dst netip.AddrPort, timeout time.Duration) error {
	switch {
	case proto != TCP && proto != UDP:
		return fmt.Errorf("unknown protocol %q (want %q or %q)", proto, TCP, UDP)
	case !dst.Addr().IsValid() || dst.Addr().IsUnspecified():
		return errors.New("no destination address")
	case dst.Port() == 0:
		return errors.New("no destination port")
	case timeout < 0 || timeout > MaxConnectTimeout:
		return fmt.Errorf("timeout %v is outside 0..%v", timeout, MaxConnectTimeout)
	}
	return nil
}

// socket is a non-blocking socket wrapped in an os.File, so that its reads,
// writes and connect wait in Go's poller with deadlines instead of blocking
// a thread.
type socket struct {
	f  *os.File
	sa unix.Sockaddr // the destination, with its zone resolved in the namespace
}

func (s *socket) close() { s.f.Close() }

// control runs fn on the socket's descriptor.
func (s *socket) control(fn func(fd int) error) error {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// connectDatagram connects a UDP socket: no packet is sent, but the kernel
// looks up the route and picks the source address and port, which it
// returns. An error is the kernel's verdict on the route (ENETUNREACH).
func (s *socket) connectDatagram() (unix.Sockaddr, error) {
	var local unix.Sockaddr
	err := s.control(func(fd int) error {
		if err := unix.Connect(fd, s.sa); err != nil {
			return err
		}
		var err error
		local, err = unix.Getsockname(fd)
		return err
	})
	return local, err
}

// openSockets opens, inside ns, the probe's socket and, for TCP, a UDP
// socket that looks up the source address the kernel would use. Only the
// socket(2) calls and the zone lookup run in the namespace.
func openSockets(ns netns.Handle, proto Proto, dst netip.AddrPort) (probe, route *socket, err error) {
	sotype := unix.SOCK_DGRAM
	if proto == TCP {
		sotype = unix.SOCK_STREAM
	}
	err = netns.Do(ns, func() error {
		zone, err := zoneIndex(dst.Addr())
		if err != nil {
			return err
		}
		sa := sockaddr(dst, zone)
		probe, err = newSocket(family(dst.Addr()), sotype, sa)
		if err != nil {
			return err
		}
		if proto == TCP {
			route, err = newSocket(family(dst.Addr()), unix.SOCK_DGRAM, sa)
			if err != nil {
				probe.close()
				return err
			}
		}
		return nil
	})
	return probe, route, err
}

func newSocket(domain, sotype int, dst unix.Sockaddr) (*socket, error) {
	fd, err := unix.Socket(domain, sotype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	// Non-blocking, so os.NewFile registers it with the poller.
	return &socket{f: os.NewFile(uintptr(fd), "probe socket"), sa: dst}, nil
}

// probeTCP binds the source, connects, sends the request and reads the
// reply, filling res.
func probeTCP(ctx context.Context, s, route *socket, res *ConnResult, deadline time.Time, svc *Service) error {
	// The source address first, as the kernel would pick it for dst, so
	// that the socket can be bound to it: an explicitly bound address and
	// port stay on the socket even when the connect fails, and the tracer
	// needs them to find the SYN.
	src, err := route.connectDatagram()
	if err != nil {
		res.Err = fmt.Errorf("route: %w", classify(err))
		return nil
	}
	setPort(src, 0)
	err = s.control(func(fd int) error {
		if err := unix.Bind(fd, src); err != nil {
			return fmt.Errorf("bind %s: %w", addrPort(src).Addr(), err)
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			return fmt.Errorf("getsockname: %w", err)
		}
		res.Local = addrPort(sa)
		return nil
	})
	if err != nil {
		return err
	}

	wd := watchContext(ctx, s.f)
	defer wd.release()
	if err := wd.set(deadline); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	start := time.Now()
	res.Attempts = 1
	if err := connectStream(s); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			res.Err = fmt.Errorf("connect: no answer within %v: %w", deadline.Sub(start).Round(time.Millisecond), ErrTimeout)
		} else {
			res.Err = fmt.Errorf("connect: %w", classify(err))
		}
		return nil
	}
	res.RTT = time.Since(start)
	if svc != nil {
		return nil // the handshake is the service's answer
	}

	if _, err := s.f.Write(appendRequest(nil, res.Tag, 0)); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		res.Err = fmt.Errorf("send request: %w", classify(err))
		return nil
	}
	reply, err := readReply(s.f)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			res.Err = fmt.Errorf("connected, but no reply within %v: %w", deadline.Sub(start).Round(time.Millisecond), ErrTimeout)
		} else {
			res.Err = fmt.Errorf("read reply: %w", classify(err))
		}
		return nil
	}
	tag, _, seen, err := parseReply(reply)
	switch {
	case err != nil:
		res.Err = err
	case tag != res.Tag:
		res.Err = fmt.Errorf("reply carries tag %s, not the probe's %s: %w", tag, res.Tag, ErrBadReply)
	default:
		res.Seen = seen
	}
	return nil
}

// setPort sets the port of a socket address in place.
func setPort(sa unix.Sockaddr, port int) {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		sa.Port = port
	case *unix.SockaddrInet6:
		sa.Port = port
	}
}

// connectStream connects a non-blocking stream socket and waits for the
// handshake in the poller, until the file's deadline. The error is the
// kernel's (ECONNREFUSED on a reset, EHOSTUNREACH on an ICMP error) or
// os.ErrDeadlineExceeded.
func connectStream(s *socket) error {
	err := s.control(func(fd int) error { return unix.Connect(fd, s.sa) })
	if err == nil {
		return nil // connected at once (a local destination can be)
	}
	if !errors.Is(err, unix.EINPROGRESS) {
		return err
	}
	rc, err := s.f.SyscallConn()
	if err != nil {
		return err
	}
	var result error
	werr := rc.Write(func(fd uintptr) bool {
		// Called once at once, then each time the socket turns writable,
		// which is when the handshake has ended either way.
		soerr, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			result = err
			return true
		}
		if soerr != 0 {
			result = unix.Errno(soerr)
			return true
		}
		if _, err := unix.Getpeername(int(fd)); err == nil {
			return true // established
		}
		return false // still in progress
	})
	if werr != nil {
		return werr
	}
	return result
}

// readReply reads a listener's reply from a TCP connection: up to the
// newline that ends it, which may not come before the request it repeats.
func readReply(f *os.File) ([]byte, error) {
	buf := make([]byte, 0, maxReplyLen)
	for len(buf) < maxReplyLen {
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > requestLen && bytes.IndexByte(buf[requestLen:], '\n') >= 0 {
			return buf, nil
		}
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("connection closed after %d bytes of reply: %w", len(buf), ErrBadReply)
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("reply longer than %d bytes: %w", maxReplyLen, ErrBadReply)
}

// probeUDP connects the socket (which picks the source), then sends up to
// udpAttempts tagged datagrams spread over the time left, and waits for the
// first reply, an ICMP error reported on the socket, or the deadline.
func probeUDP(ctx context.Context, s *socket, res *ConnResult, deadline time.Time, payload int, svc *Service) error {
	local, err := s.connectDatagram()
	if err != nil {
		res.Err = fmt.Errorf("route: %w", classify(err))
		return nil
	}
	res.Local = addrPort(local)

	wd := watchContext(ctx, s.f)
	defer wd.release()
	start := time.Now()
	gap := deadline.Sub(start) / udpAttempts
	var sentAt [udpAttempts]time.Time
	var next time.Time
	buf := make([]byte, maxReplyLen+1) // one more: a longer datagram is not a reply
	if svc != nil {
		buf = make([]byte, 1<<16) // a service's answer may be any datagram
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := time.Now()
		if !now.Before(deadline) {
			res.Err = fmt.Errorf("no reply to %d datagrams within %v: %w", res.Attempts, deadline.Sub(start).Round(time.Millisecond), ErrTimeout)
			return nil
		}
		if res.Attempts < udpAttempts && !now.Before(next) {
			// A send can fail with an error the kernel kept from an
			// earlier datagram's ICMP error (ECONNREFUSED).
			req := appendPadded(nil, res.Tag, uint16(res.Attempts), payload)
			if svc != nil && len(svc.Payload) > 0 {
				req = svc.Payload
			}
			if _, err := s.f.Write(req); err != nil {
				if ctxErr := ctx.Err(); ctxErr != nil {
					return ctxErr
				}
				res.Err = fmt.Errorf("send: %w", classify(err))
				return nil
			}
			sentAt[res.Attempts] = now
			res.Attempts++
			next = now.Add(gap)
			continue
		}
		wait := deadline
		if res.Attempts < udpAttempts {
			wait = next
		}
		if err := wd.setRead(wait); err != nil {
			return fmt.Errorf("set deadline: %w", err)
		}
		n, err := s.f.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue // time to send again, to give up, or ctx is done
		}
		if svc != nil && (err == nil || errors.Is(err, io.EOF)) {
			// Any datagram from the service answers (connected: only
			// the service's reach the socket); retries are alike, so
			// the round trip counts from the last one sent.
			res.RTT = time.Since(sentAt[res.Attempts-1])
			if len(svc.Reply) > 0 && !bytes.Contains(buf[:n], svc.Reply) {
				res.Err = fmt.Errorf("answer %q does not contain %q: %w", truncate(buf[:n], 64), svc.Reply, ErrBadReply)
			}
			return nil
		}
		if errors.Is(err, io.EOF) { // an empty datagram
			res.Err = fmt.Errorf("empty datagram: %w", ErrBadReply)
			return nil
		}
		if err != nil {
			res.Err = fmt.Errorf("receive: %w", classify(err))
			return nil
		}
		at := time.Now()
		tag, attempt, seen, err := parseReply(buf[:n])
		switch {
		case err != nil:
			res.Err = err
		case tag != res.Tag || int(attempt) >= res.Attempts:
			res.Err = fmt.Errorf("reply to tag %s attempt %d, not to this probe: %w", tag, attempt, ErrBadReply)
		default:
			res.Seen = seen
			res.RTT = at.Sub(sentAt[attempt])
		}
		return nil
	}
}

// truncate shortens b to at most n bytes for a message.
func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

package probe

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/trace"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Defaults and bounds of PingOptions. The bounds keep every ping finite:
// a ping takes at most (Count-1)*Interval + Timeout.
const (
	DefaultPingInterval = 200 * time.Millisecond
	DefaultPingTimeout  = time.Second
	// DefaultPayloadSize is ping(8)'s default: 56 data bytes.
	DefaultPayloadSize = 56

	MaxPingCount    = 1000
	MinPingInterval = 10 * time.Millisecond
	MaxPingInterval = 10 * time.Second
	MaxPingTimeout  = 30 * time.Second
	// MaxPayloadSize is the most ICMP data an IPv4 datagram can carry.
	MaxPayloadSize = 65535 - 20 - 8
)

// PingOptions configures Ping. The zero value sends one echo request with
// the defaults above and a random tag.
type PingOptions struct {
	// Count is the number of echo requests to send (default 1).
	Count int
	// Interval is the time between two requests (default 200ms).
	Interval time.Duration
	// Timeout is how long each request waits for its reply (default 1s).
	// A reply that comes later counts as lost.
	Timeout time.Duration
	// Tag starts every request's payload, so that the tracer finds the
	// ping's packets. Zero picks a random tag, reported in the result.
	Tag trace.Tag
	// PayloadSize is the number of ICMP data bytes per request, tag
	// included (default 56; sizes below trace.TagLen are raised to it).
	// PayloadFor turns an IP packet size into it.
	PayloadSize int
	// Frag says whether the requests may be fragmented (default: the
	// kernel's choice).
	Frag Fragmentation
}

// withDefaults fills in the defaults and checks the bounds.
func (o PingOptions) withDefaults() (PingOptions, error) {
	if o.Count == 0 {
		o.Count = 1
	}
	if o.Interval == 0 {
		o.Interval = DefaultPingInterval
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultPingTimeout
	}
	if o.PayloadSize == 0 {
		o.PayloadSize = DefaultPayloadSize
	}
	o.PayloadSize = max(o.PayloadSize, trace.TagLen)
	switch {
	case o.Count < 1 || o.Count > MaxPingCount:
		return o, fmt.Errorf("ping count %d is outside 1..%d", o.Count, MaxPingCount)
	case o.Interval < MinPingInterval || o.Interval > MaxPingInterval:
		return o, fmt.Errorf("ping interval %v is outside %v..%v", o.Interval, MinPingInterval, MaxPingInterval)
	case o.Timeout < 0 || o.Timeout > MaxPingTimeout:
		return o, fmt.Errorf("ping timeout %v is outside 0..%v", o.Timeout, MaxPingTimeout)
	case o.Frag < FragKernel || o.Frag > FragAllow:
		return o, fmt.Errorf("unknown fragmentation mode %d", o.Frag)
	case o.PayloadSize > MaxPayloadSize:
		return o, fmt.Errorf("ping payload of %d bytes is over %d", o.PayloadSize, MaxPayloadSize)
	}
	return o, nil
}

// Reply is one echo reply that answered a request of the ping.
type Reply struct {
	// From is the address the reply came from (the destination, or an
	// address it was translated to on the way back).
	From netip.Addr
	// Seq is the sequence number of the request it answers (from 1).
	Seq int
	// RTT is the time from sending the request to receiving the reply.
	RTT time.Duration
}

// PingResult is what a ping saw. Network failures are described here, not
// returned as errors.
type PingResult struct {
	// Dst is the destination as pinged.
	Dst netip.Addr
	// Tag is the tag every request carried (chosen by Ping when the options
	// had none).
	Tag trace.Tag
	// ID is the ICMP echo identifier of the requests.
	ID int
	// Sent counts the echo requests attempted, including those the kernel
	// refused to send (SendErrors), as ping(8) counts "transmitted".
	Sent int
	// Received counts the requests that got a reply within Timeout.
	Received int
	// Duplicates counts further replies to requests already answered.
	Duplicates int
	// RTTs are the round-trip times of the replies, in arrival order (the
	// RTT of each entry of Replies).
	RTTs []time.Duration
	// Replies are the replies counted in Received, in arrival order.
	Replies []Reply
	// ICMPErrors are the ICMP errors that came back about the requests
	// ("destination host unreachable" from the last router, ...).
	ICMPErrors []ICMPError
	// SendErrors counts the requests the kernel refused to send.
	SendErrors int
	// SendErr is the first error the kernel returned when sending, for
	// example ENETUNREACH ("network is unreachable") when the namespace has
	// no route to Dst; classified, so errors.Is(SendErr, ErrUnreachable)
	// holds in that case.
	SendErr error
}

// Loss returns the fraction of requests that got no reply, from 0 to 1; 1
// when none was sent.
func (r PingResult) Loss() float64 {
	if r.Sent == 0 {
		return 1
	}
	return 1 - float64(r.Received)/float64(r.Sent)
}

// Ping sends ICMP echo requests from inside namespace ns to dst (IPv4 or
// IPv6; a link-local IPv6 address may name its interface as zone) and
// collects the replies and ICMP errors that belong to them. It takes at most
// (Count-1)*Interval + Timeout, and returns early when every request has
// been answered or when ctx is done.
//
// The error is non-nil only when the ping could not run: invalid options, a
// raw socket that could not be opened, or ctx done (then the result holds
// what was seen until then).
func Ping(ctx context.Context, ns netns.Handle, dst netip.Addr, opt PingOptions) (PingResult, error) {
	// A random identifier per call: other pings in the namespace see our
	// replies on their raw sockets and tell them apart by it.
	return ping(ctx, ns, dst, opt, int(rand.N[uint16](1<<16-1)+1))
}

// ping is Ping with a given echo identifier, so that tests can make two
// pings collide on it.
func ping(ctx context.Context, ns netns.Handle, dst netip.Addr, opt PingOptions, id int) (PingResult, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return PingResult{}, fmt.Errorf("ping %s: %w", dst, err)
	}
	dst = dst.Unmap()
	if !dst.IsValid() {
		return PingResult{}, errors.New("ping: no destination address")
	}
	if opt.Tag == 0 {
		opt.Tag = trace.Tag(rand.Uint64() | 1)
	}
	conn, to, err := openICMP(ns, dst, opt.Frag)
	if err != nil {
		return PingResult{}, fmt.Errorf("ping %s: %w", dst, err)
	}
	defer conn.Close()
	wd := watchContext(ctx, conn)
	defer wd.release()

	p := pinger{
		opt:      opt,
		v6:       dst.Is6(),
		conn:     conn,
		to:       to,
		sentAt:   make([]time.Time, opt.Count+1), // by sequence number, from 1
		done:     make([]bool, opt.Count+1),
		answered: make([]bool, opt.Count+1),
		res:      PingResult{Dst: dst, Tag: opt.Tag, ID: id},
	}
	err = p.run(ctx, wd)
	if err != nil {
		err = fmt.Errorf("ping %s: %w", dst, err)
	}
	return p.res, err
}

// openICMP opens a raw ICMP socket for dst inside ns, with a kernel filter
// that passes only echo replies and the ICMP errors that can concern a
// request, and returns it with the address to send to.
func openICMP(ns netns.Handle, dst netip.Addr, frag Fragmentation) (*icmp.PacketConn, *net.IPAddr, error) {
	var (
		conn *icmp.PacketConn
		to   = &net.IPAddr{IP: dst.AsSlice()}
	)
	err := netns.Do(ns, func() error {
		zone, err := zoneIndex(dst)
		if err != nil {
			return err
		}
		if zone != 0 {
			to.Zone = strconv.Itoa(zone)
		}
		if dst.Is4() {
			conn, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		} else {
			conn, err = icmp.ListenPacket("ip6:ipv6-icmp", "::")
		}
		if err != nil {
			return fmt.Errorf("open raw ICMP socket: %w", err)
		}
		if err := setICMPFilter(conn, dst.Is6()); err != nil {
			conn.Close()
			return fmt.Errorf("set ICMP filter: %w", err)
		}
		if err := setFragmentation(rawConn(conn, dst.Is6()), dst.Is6(), frag); err != nil {
			conn.Close()
			return fmt.Errorf("set fragmentation: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return conn, to, nil
}

// rawConn returns the socket behind an ICMP connection.
func rawConn(c *icmp.PacketConn, v6 bool) syscall.Conn {
	var pc net.PacketConn
	if v6 {
		pc = c.IPv6PacketConn().PacketConn
	} else {
		pc = c.IPv4PacketConn().PacketConn
	}
	sc, _ := pc.(syscall.Conn)
	return sc
}

// setICMPFilter lets only the message types a ping reads reach the socket:
// without it, every raw ICMP socket in the namespace wakes up for every
// neighbour solicitation, router advertisement and echo request.
func setICMPFilter(conn *icmp.PacketConn, v6 bool) error {
	if v6 {
		var f ipv6.ICMPFilter
		f.SetAll(true)
		for _, t := range []ipv6.ICMPType{ipv6.ICMPTypeEchoReply, ipv6.ICMPTypeDestinationUnreachable,
			ipv6.ICMPTypePacketTooBig, ipv6.ICMPTypeTimeExceeded, ipv6.ICMPTypeParameterProblem} {
			f.Accept(t)
		}
		return conn.IPv6PacketConn().SetICMPFilter(&f)
	}
	var f ipv4.ICMPFilter
	f.SetAll(true)
	for _, t := range []ipv4.ICMPType{ipv4.ICMPTypeEchoReply, ipv4.ICMPTypeDestinationUnreachable,
		ipv4.ICMPTypeTimeExceeded, ipv4.ICMPTypeParameterProblem} {
		f.Accept(t)
	}
	return conn.IPv4PacketConn().SetICMPFilter(&f)
}

// pinger is the state of one ping between its sends and reads.
type pinger struct {
	opt  PingOptions
	v6   bool
	conn *icmp.PacketConn
	to   *net.IPAddr

	sentAt   []time.Time // when each sequence number was sent
	done     []bool      // the request needs no more waiting: replied, errored or not sent
	answered []bool      // the request got its (first) reply
	pending  int         // requests sent and not done
	res      PingResult
}

// run sends the requests one Interval apart, reading replies in between,
// until every request is done or the last one's Timeout has passed. It runs
// on the caller's goroutine: the read deadline is the only clock.
func (p *pinger) run(ctx context.Context, wd *ctxDeadline) error {
	// Room for the largest reply or ICMP error, and for an IPv4 header with
	// options, which the raw socket reads before Go strips it.
	buf := make([]byte, max(p.opt.PayloadSize+128, 1500))
	var next, end time.Time // next send; end of the wait for the last request
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := time.Now()
		if p.res.Sent < p.opt.Count && !now.Before(next) {
			if err := p.send(ctx, now); err != nil {
				return err
			}
			next = now.Add(p.opt.Interval)
			end = now.Add(p.opt.Timeout)
			continue
		}
		wait := next
		if p.res.Sent == p.opt.Count {
			if p.pending == 0 || !now.Before(end) {
				return nil
			}
			wait = end
		}
		if err := wd.setRead(wait); err != nil {
			return fmt.Errorf("set read deadline: %w", err)
		}
		n, from, err := p.conn.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue // time to send, to give up, or ctx is done: the loop decides
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		p.receive(buf[:n], from, time.Now())
	}
}

// send sends the next request. A send the kernel refuses is recorded in the
// result; only a failure to encode one, or ctx ending, is an error.
func (p *pinger) send(ctx context.Context, now time.Time) error {
	seq := p.res.Sent + 1
	b, err := echoRequest(p.v6, p.res.ID, seq, p.opt.Tag, p.opt.PayloadSize)
	if err != nil {
		return err
	}
	p.res.Sent++
	p.sentAt[seq] = now
	if _, err := p.conn.WriteTo(b, p.to); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr // the cancellation's deadline failed the write
		}
		p.res.SendErrors++
		if p.res.SendErr == nil {
			p.res.SendErr = classify(err)
		}
		p.done[seq] = true
		return nil
	}
	p.pending++
	return nil
}

// receive records one ICMP message if it belongs to this ping.
func (p *pinger) receive(b []byte, from net.Addr, at time.Time) {
	ev, ok := parseEcho(b, p.v6)
	if !ok || !ev.belongsTo(p.res.ID, p.opt.Tag) || ev.seq < 1 || ev.seq > p.res.Sent {
		return
	}
	var src netip.Addr
	if ip, ok := from.(*net.IPAddr); ok {
		src, _ = netip.AddrFromSlice(ip.IP)
		src = src.Unmap()
	}
	if !ev.reply {
		p.res.ICMPErrors = append(p.res.ICMPErrors, ICMPError{From: src, Seq: ev.seq, Type: ev.typ, Code: ev.code})
		p.finish(ev.seq)
		return
	}
	if p.answered[ev.seq] {
		p.res.Duplicates++
		return
	}
	rtt := at.Sub(p.sentAt[ev.seq])
	if rtt > p.opt.Timeout {
		return // late: counted as lost, as Timeout promises
	}
	p.answered[ev.seq] = true
	p.res.Received++
	p.res.RTTs = append(p.res.RTTs, rtt)
	p.res.Replies = append(p.res.Replies, Reply{From: src, Seq: ev.seq, RTT: rtt})
	p.finish(ev.seq)
}

// finish marks request seq as needing no more waiting.
func (p *pinger) finish(seq int) {
	if !p.done[seq] {
		p.done[seq] = true
		p.pending--
	}
}

package capture

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/hopcheck/hopcheck/internal/netns"
)

// ErrNoInterfaces is returned by Start when given nothing to capture.
var ErrNoInterfaces = errors.New("trace: capture: no interfaces")

const (
	// maxReadFailures ends capture on a ring after this many errors in a
	// row other than ENETDOWN, which a socket bound to one interface
	// reports once when the interface goes down, then reads on.
	maxReadFailures = 3
	// ringMinBlocks and ringMaxBlocks bound a ring's size: three blocks,
	// so that one may be read while the kernel fills another, and a frame
	// too big for the rest of a block can follow one more as big within
	// the same softirq (a 60 KB loopback datagram is seen leaving and
	// arriving back to back, before the reader can run); and one more for
	// every ringIfsPerBlock interfaces it serves (a bridge's namespace sees
	// every port's frames).
	ringMinBlocks   = 3
	ringMaxBlocks   = 64
	ringIfsPerBlock = 4
	// ringParallel is how many rings are set up or closed at once. Each
	// of these waits for RCU grace periods in the kernel, which
	// overlapping waits share, holding a thread meanwhile.
	ringParallel = 256
)

// Interface names one interface to capture on.
type Interface struct {
	// NS is the scenario's name for the namespace ("host", "ns1"), and
	// Netns an open handle to it. The handle is only used by Start.
	NS    string
	Netns netns.Handle
	// If is the interface name inside the namespace.
	If string
}

// Stats counts what was captured on one interface.
type Stats struct {
	// Name is "ns/if", as in the file's interface block.
	Name string
	// Packets and Bytes count the frames written (Bytes at their full
	// length on the wire).
	Packets, Bytes uint64
	// Dropped counts frames that hopcheck did not keep: the kernel found
	// the ring full (the reader fell behind), or they were still in it,
	// unread, when reading stopped. Where one ring serves a whole
	// namespace, the kernel counts them per namespace: they are then in a
	// stats entry of their own, named "ns/*".
	Dropped uint64
	// Err is the read error that ended capture on this interface early.
	Err error
}

// Capture writes every frame that crosses a set of interfaces, in any
// number of namespaces, into one pcapng file with one interface block per
// "ns/if". It reads through AF_PACKET sockets with receive rings (see
// packetRing), each opened inside its namespace, where it stays: one per
// namespace, bound to all its interfaces, where the kernel keeps the taps
// of such sockets per namespace (namespaceTaps), else one per interface.
// One goroutine waits on every ring and copies full frames into their
// interface's spool (memory up to a share of a fixed budget, then sorted
// runs in an unlinked temporary file beside the capture), and Stop merges
// the spools so the file is in time order across interfaces (see
// spool.go). Each packet block says whether the frame arrived or left;
// packets of a probe named by Annotate carry a comment; frames the kernel
// could not keep for hopcheck are counted in the file's statistics blocks
// and in Stop's result.
type Capture struct {
	file  *os.File
	bw    *bufio.Writer // the file's buffer, under w's
	w     *pcapgo.NgWriter
	ifs   []*captureIf
	rings []*captureRing
	// epoll holds every ring and wake, which Stop or the context's end
	// signals to end reading.
	epoll, wake int
	wg          sync.WaitGroup
	readAfter   <-chan struct{} // see captureOptions
	unctx       func() bool     // stops the context.AfterFunc that halts the rings
	// monoToWall converts the kernel's monotonic clock (trace.Event.Time) to
	// wall-clock time, as frames are stamped.
	monoToWall time.Duration

	haltOnce sync.Once
	stopOnce sync.Once
	stats    []Stats
	stopErr  error

	mu          sync.Mutex // guards annotations
	annotations []Annotation
}

// captureIf is one interface being captured. Its spool and counts are the
// reader's alone until it exits, then Stop's.
type captureIf struct {
	name           string
	id             int // interface block index in the file
	ifName         string
	ring           *captureRing
	spool          *spool
	packets, bytes uint64
}

// captureRing is one ring and the interfaces whose frames it receives.
// Its counts are the reader's alone until it exits, then Stop's.
type captureRing struct {
	name  string // "ns", or "ns/if" for a ring bound to one interface
	ns    string
	netns netns.Handle
	r     *packetRing
	ifs   []*captureIf
	// bound is the index of the one interface the socket is bound to, or
	// 0 for every interface of the namespace.
	bound   int
	byIndex map[int]*captureIf
	keep    func(ringFrame) // copies a frame to its interface's spool

	read     uint64 // frames read, of interfaces not captured too
	failures int
	err      error // what ended reading early
	halted   bool  // the kernel writes to the ring no more (see halt)
	// lost counts frames the kernel took but hopcheck did not keep.
	lost uint64
}

// Start opens a packet socket with a receive ring on every
// namespace in ifaces (or on every interface, see Capture), creates the
// pcapng file at path, and starts reading. Cancelling ctx ends reading
// early; Stop must be called in every case to read what the rings hold,
// flush and close the file, and wait for the reader. On error nothing is
// left open and no file is left behind.
func Start(ctx context.Context, path string, ifaces []Interface) (*Capture, error) {
	return startCapture(ctx, path, ifaces, captureOptions{perNamespace: namespaceTaps()})
}

// captureOptions say how startCapture captures.
type captureOptions struct {
	// perNamespace: one ring per namespace, else one per interface.
	perNamespace bool
	// readAfter, if not nil, holds the reader until it is closed, which
	// must be before Stop: tests make rings overflow with it.
	readAfter <-chan struct{}
}

// startCapture is Start as opts say.
func startCapture(ctx context.Context, path string, ifaces []Interface, opts captureOptions) (*Capture, error) {
	perNamespace := opts.perNamespace
	if len(ifaces) == 0 {
		return nil, ErrNoInterfaces
	}
	c := &Capture{epoll: -1, wake: -1, readAfter: opts.readAfter}
	type ringKey struct {
		ns    string
		netns netns.Handle
		iface int
	}
	rings := map[ringKey]*captureRing{}
	for i, asked := range ifaces {
		k := ringKey{asked.NS, asked.Netns, -1}
		if !perNamespace {
			k.iface = i
		}
		cr := rings[k]
		if cr == nil {
			cr = &captureRing{name: asked.NS, ns: asked.NS, netns: asked.Netns, byIndex: map[int]*captureIf{}}
			if !perNamespace {
				cr.name = asked.NS + "/" + asked.If
			}
			rings[k] = cr
			c.rings = append(c.rings, cr)
		}
		ci := &captureIf{name: asked.NS + "/" + asked.If, id: i, ifName: asked.If, ring: cr}
		cr.ifs = append(cr.ifs, ci)
		c.ifs = append(c.ifs, ci)
	}
	if err := c.openRings(perNamespace); err != nil {
		return nil, err
	}
	if err := c.create(path); err != nil {
		c.closeRings()
		return nil, err
	}
	share := max(spoolMinShare, spoolBudget/len(c.ifs))
	for _, ci := range c.ifs {
		ci.spool = newSpool(filepath.Dir(path), share)
	}
	if err := c.watchRings(); err != nil {
		c.closeRings()
		c.file.Close()
		os.Remove(path)
		return nil, err
	}
	c.monoToWall = monoToWall()
	c.wg.Add(1)
	go c.read()
	c.unctx = context.AfterFunc(ctx, c.halt)
	return c, nil
}

// openRings opens and starts every ring, concurrently (see ringParallel),
// and returns the first error, having closed them all.
func (c *Capture) openRings(perNamespace bool) error {
	errs := make([]error, len(c.rings))
	concurrently(len(c.rings), func(i int) {
		cr := c.rings[i]
		err := netns.Do(cr.netns, func() (err error) {
			cr.r, err = openPacketRing()
			return err
		})
		if err != nil {
			errs[i] = fmt.Errorf("trace: capture %s: %w", cr.name, err)
			return
		}
		for _, ci := range cr.ifs {
			index, err := cr.r.ifindex(ci.ifName)
			if err != nil {
				errs[i] = fmt.Errorf("trace: capture %s: %w", ci.name, err)
				return
			}
			cr.byIndex[index] = ci
			if !perNamespace {
				cr.bound = index
			}
		}
		cr.keep = c.keeper(cr)
		blocks := min(ringMinBlocks+len(cr.ifs)/ringIfsPerBlock, ringMaxBlocks)
		if err := cr.r.start(cr.bound, blocks); err != nil {
			errs[i] = fmt.Errorf("trace: capture %s: %w", cr.name, err)
		}
	})
	if err := errors.Join(errs...); err != nil {
		c.closeRings()
		return err
	}
	return nil
}

// keeper returns the function that copies a frame of cr to its
// interface's spool.
func (c *Capture) keeper(cr *captureRing) func(ringFrame) {
	return func(f ringFrame) {
		cr.read++
		ci := cr.byIndex[f.ifindex]
		if ci == nil {
			return // an interface of the namespace not asked for
		}
		ci.spool.add(f.data, f.info)
		ci.bytes += uint64(f.info.length)
		ci.packets++
	}
}

// watchRings makes the epoll instance the reader waits on: every ring,
// and the eventfd that ends reading.
func (c *Capture) watchRings() (err error) {
	if c.epoll, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("trace: capture: epoll: %w", err)
	}
	if c.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fmt.Errorf("trace: capture: eventfd: %w", err)
	}
	add := func(fd int, id int32) error {
		return unix.EpollCtl(c.epoll, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: id})
	}
	if err := add(c.wake, -1); err != nil {
		return fmt.Errorf("trace: capture: epoll: %w", err)
	}
	for i, cr := range c.rings {
		if err := add(cr.r.fd, int32(i)); err != nil {
			return fmt.Errorf("trace: capture %s: epoll: %w", cr.name, err)
		}
	}
	return nil
}

// concurrently calls fn(i) for every i below n, at most ringParallel at
// once, and waits for them all.
func concurrently(n int, fn func(i int)) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, ringParallel)
	for i := range n {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			fn(i)
		})
	}
	wg.Wait()
}

// monoToWall returns wall-clock time minus the kernel's monotonic clock.
func monoToWall() time.Duration {
	var mono unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
		return 0
	}
	return time.Duration(time.Now().UnixNano() - mono.Nano())
}

// Annotate asks for the packets of one probe to carry a comment, and for
// its drops to be written as packets; see Annotation. It may be called
// until Stop, from any goroutine.
func (c *Capture) Annotate(a Annotation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.annotations = append(c.annotations, a)
}

// read copies frames out of the rings as the kernel hands blocks over,
// until halt wakes it. A ring that fails repeatedly is read no more.
func (c *Capture) read() {
	defer c.wg.Done()
	if c.readAfter != nil {
		<-c.readAfter
	}
	events := make([]unix.EpollEvent, min(len(c.rings)+1, 256))
	for {
		n, err := unix.EpollWait(c.epoll, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			for _, cr := range c.rings {
				cr.err = cmp.Or(cr.err, fmt.Errorf("trace: capture %s: wait: %w", cr.name, err))
			}
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd < 0 {
				return
			}
			c.serve(c.rings[ev.Fd], ev.Events)
		}
	}
}

// errUnsaidSocketError is a ring's failure when its socket signals an
// error (EPOLLERR) but SO_ERROR holds none.
var errUnsaidSocketError = errors.New("the socket signals an error but holds none")

// serve reads what ring cr has handed over, and clears the error it
// reports, if any. An error other than ENETDOWN that comes back before
// any frame does counts towards maxReadFailures; the epoll instance is
// level-triggered, so an error that did not clear would otherwise wake the
// reader for ever.
func (c *Capture) serve(cr *captureRing, events uint32) {
	if events&unix.EPOLLERR != 0 {
		if err := cr.r.socketError(); !errors.Is(err, unix.ENETDOWN) {
			if cr.failures++; cr.failures == maxReadFailures {
				cr.err = fmt.Errorf("trace: capture %s: %w", cr.name, cmp.Or(err, errUnsaidSocketError))
				unix.EpollCtl(c.epoll, unix.EPOLL_CTL_DEL, cr.r.fd, nil)
				return
			}
		}
	}
	if cr.r.readReady(cr.keep) > 0 {
		cr.failures = 0
	}
}

// halt stops the kernel writing to the rings and wakes the reader, which
// returns. The frames the rings hold stay for Stop. Every ring refuses
// frames first; then one grace period lets the frames being written
// finish (see quiesce).
func (c *Capture) halt() {
	c.haltOnce.Do(func() {
		refused := false
		for _, cr := range c.rings {
			if cr.r.refuse() == nil {
				cr.halted = true
				refused = true
			}
		}
		if refused && quiesce() != nil {
			for _, cr := range c.rings {
				cr.halted = false
			}
		}
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		unix.Write(c.wake, one[:])
	})
}

// closeRings closes every ring and the reader's epoll instance, for a
// capture that failed to start.
func (c *Capture) closeRings() {
	concurrently(len(c.rings), func(i int) {
		if r := c.rings[i].r; r != nil {
			r.close()
		}
	})
	c.closeEpoll()
}

// closeEpoll closes the reader's epoll instance and eventfd.
func (c *Capture) closeEpoll() {
	for _, fd := range []int{c.epoll, c.wake} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// finishRings reads what the rings still hold after halt (the reader has
// returned), counts, per ring, the frames the kernel took and hopcheck did
// not keep, and closes each ring once read. A close waits for two RCU
// grace periods: closing goes on, on closing's goroutines, while Stop
// writes the file.
func (c *Capture) finishRings(closing *sync.WaitGroup) {
	for _, cr := range c.rings {
		if cr.halted {
			cr.r.readRest(cr.keep)
		} else {
			// The kernel may still be writing the block it fills.
			cr.r.readReady(cr.keep)
		}
		queued, dropped, err := cr.r.stats()
		closing.Go(func() { cr.r.close() })
		if err != nil {
			cr.err = cmp.Or(cr.err, fmt.Errorf("trace: capture %s: %w", cr.name, err))
			continue
		}
		cr.lost = dropped
		if queued > cr.read {
			cr.lost += queued - cr.read
		}
	}
}

// Stop stops reading, reads what the rings still hold, writes every frame
// in time order with the annotations' comments and drops, and flushes and
// closes the file. It returns the counts per interface, in the order
// given to Start, then one per namespace whose lost frames the
// kernel does not count per interface (see Stats), and the first
// error writing the file. Calling it again returns the same.
func (c *Capture) Stop() ([]Stats, error) {
	c.stopOnce.Do(func() {
		c.unctx()
		c.halt()
		c.wg.Wait()
		c.closeEpoll()
		var closing sync.WaitGroup
		defer closing.Wait()
		c.finishRings(&closing)
		defer func() {
			for _, ci := range c.ifs {
				ci.spool.close()
			}
		}()
		c.stopErr = c.write()
	})
	return c.stats, c.stopErr
}

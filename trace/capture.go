package trace

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/hopcheck/hopcheck/internal/netns"
)

// ErrNoInterfaces is returned by StartCapture when given nothing to capture.
var ErrNoInterfaces = errors.New("trace: capture: no interfaces")

const (
	// drainTimeout bounds how long Stop waits for frames already queued on
	// the sockets to be written.
	drainTimeout = time.Second
	// drainPoll is how often Stop checks whether the queues are empty.
	drainPoll = time.Millisecond
	// maxReadFailures ends capture on an interface after this many read
	// errors in a row. A single error is normal: a packet socket reports
	// ENETDOWN once when its interface goes down, then reads on.
	maxReadFailures = 3
)

// CaptureInterface names one interface to capture on.
type CaptureInterface struct {
	// NS is the scenario's name for the namespace ("host", "ns1"), and
	// Netns an open handle to it. The handle is only used by StartCapture.
	NS    string
	Netns netns.Handle
	// If is the interface name inside the namespace.
	If string
}

// CaptureStats counts what was captured on one interface.
type CaptureStats struct {
	// Name is "ns/if", as in the file's interface block.
	Name string
	// Packets and Bytes count the frames written (Bytes at their full
	// length on the wire).
	Packets, Bytes uint64
	// Dropped counts frames the kernel discarded because the socket's
	// queue was full: the reader fell behind.
	Dropped uint64
	// Err is the read error that ended capture on this interface early.
	Err error
}

// Capture writes every frame that crosses a set of interfaces, in any
// number of namespaces, into one pcapng file with one interface block per
// "ns/if". It reads through AF_PACKET sockets (see packetSocket), each
// opened inside its namespace, where it stays; one goroutine per interface
// reads full frames into that interface's spool (memory up to a share of a
// fixed budget, then sorted runs in an unlinked temporary file beside the
// capture), and Stop merges the spools so the file is in time order across
// interfaces (see spool.go). Each packet block says whether the frame
// arrived or left; packets of a probe named by Annotate carry a comment;
// frames the kernel could not queue for hopcheck are counted, per
// interface, in the file's statistics blocks and in Stop's result.
type Capture struct {
	file  *os.File
	w     *pcapgo.NgWriter
	ifs   []*captureIf
	wg    sync.WaitGroup
	unctx func() bool // stops the context.AfterFunc that closes sockets
	// monoToWall converts the kernel's monotonic clock (Event.Time) to
	// wall-clock time, as frames are stamped.
	monoToWall time.Duration

	closeOnce sync.Once
	closing   atomic.Bool
	stopOnce  sync.Once
	stats     []CaptureStats
	stopErr   error

	mu          sync.Mutex // guards annotations
	annotations []Annotation
}

// captureIf is one interface being captured.
type captureIf struct {
	name  string
	id    int // interface block index in the file
	s     *packetSocket
	spool *spool // the reader's alone until it exits

	// packets and bytes are written by the reader; packets is also read by
	// Stop while draining.
	packets, bytes atomic.Uint64
	err            error // set by the reader before it exits

	// mu guards the kernel's counts, which Stop and the context's closer
	// may both collect.
	mu      sync.Mutex
	queued  uint64 // frames the kernel put on the socket's queue
	dropped uint64
}

// StartCapture opens a packet socket on every interface in ifaces, creates
// the pcapng file at path, and starts reading. Cancelling ctx ends reading
// early; Stop must be called in every case to flush and close the file and
// to wait for the readers. On error nothing is left open and no file is
// left behind.
func StartCapture(ctx context.Context, path string, ifaces []CaptureInterface) (*Capture, error) {
	if len(ifaces) == 0 {
		return nil, ErrNoInterfaces
	}
	c := &Capture{}
	for i, ci := range ifaces {
		name := ci.NS + "/" + ci.If
		var s *packetSocket
		err := netns.Do(ci.Netns, func() (err error) {
			s, err = openPacketSocket(ci.If)
			return err
		})
		if err != nil {
			c.closeHandles()
			return nil, fmt.Errorf("trace: capture %s: %w", name, err)
		}
		c.ifs = append(c.ifs, &captureIf{name: name, id: i, s: s})
	}
	if err := c.create(path); err != nil {
		c.closeHandles()
		return nil, err
	}
	share := max(spoolMinShare, spoolBudget/len(c.ifs))
	for _, ci := range c.ifs {
		ci.spool = newSpool(filepath.Dir(path), share)
	}
	c.monoToWall = monoToWall()
	for _, ci := range c.ifs {
		c.wg.Add(1)
		go c.read(ci)
	}
	c.unctx = context.AfterFunc(ctx, c.closeSockets)
	return c, nil
}

// create makes the file and writes its section header and one interface
// block per interface, in the order of c.ifs.
func (c *Capture) create(path string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("trace: capture: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Hardware:    runtime.GOARCH,
		OS:          runtime.GOOS,
		Application: "hopcheck",
	}}
	intf := func(ci *captureIf) pcapgo.NgInterface {
		// Linux gives loopback a (zeroed) Ethernet header too.
		return pcapgo.NgInterface{
			Name:                ci.name,
			OS:                  runtime.GOOS,
			LinkType:            layers.LinkTypeEthernet,
			SnapLength:          captureSnapLen,
			TimestampResolution: 9,
		}
	}
	w, err := pcapgo.NewNgWriterInterface(f, intf(c.ifs[0]), opts)
	if err != nil {
		return fmt.Errorf("trace: capture %s: write header: %w", path, err)
	}
	for _, ci := range c.ifs[1:] {
		if _, err := w.AddInterface(intf(ci)); err != nil {
			return fmt.Errorf("trace: capture %s: add interface %s: %w", path, ci.name, err)
		}
	}
	c.file, c.w = f, w
	return nil
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

// read spools frames from one socket until the socket is closed or fails
// repeatedly.
func (c *Capture) read(ci *captureIf) {
	defer c.wg.Done()
	failures := 0
	for {
		// The frame is written before the next read reuses its buffer.
		data, fi, err := ci.s.read()
		if err != nil {
			if c.closing.Load() || errors.Is(err, os.ErrClosed) {
				return
			}
			if failures++; failures == maxReadFailures {
				ci.err = fmt.Errorf("trace: capture %s: %w", ci.name, err)
				return
			}
			continue
		}
		failures = 0
		ci.spool.add(data, fi)
		ci.bytes.Add(uint64(fi.length))
		ci.packets.Add(1)
	}
}

// frameFlags are the enhanced packet block flags for a frame: its
// direction, and for frames received how they were addressed.
func frameFlags(fi frameInfo) *pcapgo.NgEpbFlags {
	if fi.out {
		return &pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionOutbound}
	}
	f := &pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionInbound}
	switch fi.pktType {
	case unix.PACKET_HOST:
		f.Reception = pcapgo.NgEpbFlagReceptionTypeUnicast
	case unix.PACKET_BROADCAST:
		f.Reception = pcapgo.NgEpbFlagReceptionTypeBroadcast
	case unix.PACKET_MULTICAST:
		f.Reception = pcapgo.NgEpbFlagReceptionTypeMulticast
	case unix.PACKET_OTHERHOST:
		f.Reception = pcapgo.NgEpbFlagReceptionTypePromiscuous
	}
	return f
}

// collect adds the kernel's counts for ci since the last call (the kernel
// resets them on every read). Without them, Stop neither waits for queued
// frames nor reports drops; the capture itself is unaffected.
func (ci *captureIf) collect() {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	queued, dropped, err := ci.s.stats()
	if err != nil {
		return
	}
	ci.queued += queued
	ci.dropped += dropped
}

// drain waits, at most drainTimeout, until every frame that was queued on
// the sockets when it was called has been written.
func (c *Capture) drain() {
	want := make([]uint64, len(c.ifs))
	for i, ci := range c.ifs {
		ci.collect()
		ci.mu.Lock()
		want[i] = ci.queued
		ci.mu.Unlock()
	}
	deadline := time.Now().Add(drainTimeout)
	for i := 0; i < len(c.ifs) && time.Now().Before(deadline); {
		if c.closing.Load() || c.ifs[i].packets.Load() >= want[i] {
			i++
			continue
		}
		time.Sleep(drainPoll)
	}
}

// closeSockets ends reading: readers return once their socket is closed.
func (c *Capture) closeSockets() {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		for _, ci := range c.ifs {
			ci.collect()
		}
		c.closeHandles()
	})
}

// closeHandles closes every socket at once: each close waits for an RCU
// grace period, and closed together they share one.
func (c *Capture) closeHandles() {
	var wg sync.WaitGroup
	for _, ci := range c.ifs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ci.s.close()
		}()
	}
	wg.Wait()
}

// Stop drains what the sockets already hold, stops reading, waits for the
// readers to exit, writes every frame in time order with the annotations'
// comments and drops, and flushes and closes the file. It returns the counts
// per interface, in the order given to StartCapture, and the first error
// writing the file. Calling it again returns the same.
func (c *Capture) Stop() ([]CaptureStats, error) {
	c.stopOnce.Do(func() {
		c.unctx()
		c.drain()
		c.closeSockets()
		c.wg.Wait()

		for _, ci := range c.ifs {
			ci.mu.Lock()
			dropped := ci.dropped
			ci.mu.Unlock()
			c.stats = append(c.stats, CaptureStats{
				Name:    ci.name,
				Packets: ci.packets.Load(),
				Bytes:   ci.bytes.Load(),
				Dropped: dropped,
				Err:     ci.err,
			})
		}
		defer func() {
			for _, ci := range c.ifs {
				if ci.spool != nil {
					ci.spool.close()
				}
			}
		}()
		errs := []error{c.writePackets()}
		// Interface statistics blocks: Wireshark's capture file
		// properties show what each interface lost (isb_ifdrop).
		now := time.Now()
		for i, st := range c.stats {
			err := c.w.WriteInterfaceStats(c.ifs[i].id, pcapgo.NgInterfaceStatistics{
				LastUpdate: now, PacketsReceived: st.Packets + st.Dropped, PacketsDropped: st.Dropped,
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("trace: capture %s: statistics of %s: %w", c.file.Name(), st.Name, err))
				break
			}
		}
		if err := c.w.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("trace: capture %s: flush: %w", c.file.Name(), err))
		}
		if err := c.file.Close(); err != nil {
			errs = append(errs, fmt.Errorf("trace: capture: %w", err))
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stats, c.stopErr
}

// dropsInterface is the name of the interface block that holds the drops
// of annotated probes: packets the kernel freed, as the tracer saw them.
const dropsInterface = "drops"

// writePackets merges the spools into the file in time order, annotated.
func (c *Capture) writePackets() error {
	c.mu.Lock()
	anns := slices.Clone(c.annotations)
	c.mu.Unlock()
	spools := make([]*spool, 0, len(c.ifs)+1)
	var errs []error
	for _, ci := range c.ifs {
		if ci.spool.err != nil {
			errs = append(errs, fmt.Errorf("trace: capture %s: %w", ci.name, ci.spool.err))
		}
		spools = append(spools, ci.spool)
	}
	// Drops are one more spool, never spilled, whose frames' sequence
	// numbers index drops.
	var drops []Event
	dropIf, dropID := -1, 0
	for _, a := range anns {
		drops = append(drops, a.Drops...)
	}
	if len(drops) > 0 {
		var err error
		dropID, err = c.w.AddInterface(pcapgo.NgInterface{
			Name: dropsInterface, Description: "packets the kernel dropped (skb:kfree_skb), as hopcheck's tracer saw them",
			OS: runtime.GOOS, LinkType: layers.LinkTypeEthernet, SnapLength: captureSnapLen, TimestampResolution: 9,
		})
		if err != nil {
			return fmt.Errorf("trace: capture %s: add interface %s: %w", c.file.Name(), dropsInterface, err)
		}
		dropIf = len(spools)
		sp := newSpool("", math.MaxInt)
		for _, e := range drops {
			data := dropFrame(e)
			sp.add(data, frameInfo{at: time.Unix(0, int64(e.Time+c.monoToWall)), length: int(e.Len) + len(data) - len(e.Data)})
		}
		spools = append(spools, sp)
	}
	ann := newAnnotator(anns)
	ifIDs := make([]int, len(spools))
	nsOf := make([]string, len(spools))
	for i, ci := range c.ifs {
		ifIDs[i] = ci.id
		// "ns/if": interface names hold no "/", namespace paths do.
		if j := strings.LastIndex(ci.name, "/"); j >= 0 {
			nsOf[i] = ci.name[:j]
		}
	}
	if dropIf >= 0 {
		ifIDs[dropIf] = dropID
	}
	err := mergeSpools(spools, func(f mergedFrame) error {
		at := time.Unix(0, f.at)
		opts := pcapgo.NgPacketOptions{}
		if f.iface == dropIf {
			opts.Comments = []string{ann.dropComment(at, drops[f.seq])}
		} else {
			opts.Flags = frameFlags(f.info)
			if len(anns) > 0 && mayBeProbe(f.data) {
				if pkt, err := Decode(Event{Layer: LayerEthernet, Data: f.data}); err == nil {
					if cm := ann.comment(at, nsOf[f.iface], f.info.out, &pkt); cm != "" {
						opts.Comments = []string{cm}
					}
				}
			}
		}
		info := gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(f.data), Length: max(f.info.length, len(f.data)), InterfaceIndex: ifIDs[f.iface]}
		if err := c.w.WritePacketWithOptions(info, f.data, opts); err != nil {
			return fmt.Errorf("trace: capture %s: write: %w", c.file.Name(), err)
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// mayBeProbe reports whether an Ethernet frame can be a probe's packet: an
// IPv4 or IPv6 one, or one behind a VLAN tag. Decoding costs microseconds, and most frames of a
// large capture are ARP broadcasts flooded to every port.
func mayBeProbe(frame []byte) bool {
	if len(frame) < 14 {
		return false
	}
	t := uint16(frame[12])<<8 | uint16(frame[13])
	switch layers.EthernetType(t) {
	case layers.EthernetTypeIPv4, layers.EthernetTypeIPv6, layers.EthernetTypeDot1Q, layers.EthernetTypeQinQ:
		return true
	}
	return false
}

// dropFrame returns a drop event's bytes as an Ethernet frame: a drop
// seen before its packet had a MAC header gets a zeroed one.
func dropFrame(e Event) []byte {
	var etherType uint16
	switch e.Layer {
	case LayerIPv4:
		etherType = uint16(layers.EthernetTypeIPv4)
	case LayerIPv6:
		etherType = uint16(layers.EthernetTypeIPv6)
	default:
		return e.Data
	}
	f := make([]byte, 14, 14+len(e.Data))
	f[12], f[13] = byte(etherType>>8), byte(etherType)
	return append(f, e.Data...)
}

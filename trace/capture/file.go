package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/hopcheck/hopcheck/trace"
)

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
	// pcapgo writes the blocks other than packets; packet blocks, written
	// by hopcheck for speed, go straight to bw, below pcapgo's own buffer.
	bw := bufio.NewWriterSize(f, captureWriteBuffer)
	w, err := pcapgo.NewNgWriterInterface(bw, interfaceBlock(c.ifs[0].name, ""), opts)
	if err != nil {
		return fmt.Errorf("trace: capture %s: write header: %w", path, err)
	}
	for _, ci := range c.ifs[1:] {
		if _, err := w.AddInterface(interfaceBlock(ci.name, "")); err != nil {
			return fmt.Errorf("trace: capture %s: add interface %s: %w", path, ci.name, err)
		}
	}
	c.file, c.bw, c.w = f, bw, w
	return nil
}

// interfaceBlock is the interface block of one of the file's interfaces.
// Linux gives loopback a (zeroed) Ethernet header too.
func interfaceBlock(name, description string) pcapgo.NgInterface {
	return pcapgo.NgInterface{
		Name: name, Description: description, OS: runtime.GOOS,
		LinkType: layers.LinkTypeEthernet, SnapLength: captureSnapLen, TimestampResolution: 9,
	}
}

// write writes the frames, the statistics, and closes the file.
func (c *Capture) write() error {
	var nsLost []*captureRing
	for _, ci := range c.ifs {
		st := Stats{Name: ci.name, Packets: ci.packets, Bytes: ci.bytes, Err: ci.ring.err}
		if len(ci.ring.ifs) == 1 {
			st.Dropped = ci.ring.lost
		}
		c.stats = append(c.stats, st)
	}
	for _, cr := range c.rings {
		if len(cr.ifs) > 1 && cr.lost > 0 {
			nsLost = append(nsLost, cr)
			c.stats = append(c.stats, Stats{Name: cr.ns + "/*", Dropped: cr.lost})
		}
	}
	errs := []error{c.writePackets()}
	// Interface statistics blocks: Wireshark's capture file properties
	// show what each interface lost (isb_ifdrop). A namespace's losses
	// are an interface of their own.
	now := time.Now()
	isb := func(id int, received, dropped uint64) error {
		return c.w.WriteInterfaceStats(id, pcapgo.NgInterfaceStatistics{LastUpdate: now, PacketsReceived: received, PacketsDropped: dropped})
	}
	for i, ci := range c.ifs {
		st := c.stats[i]
		received, dropped := st.Packets+st.Dropped, st.Dropped
		if len(ci.ring.ifs) > 1 && ci.ring.lost > 0 {
			dropped = pcapgo.NgNoValue64 // the kernel does not say
		}
		if err := isb(ci.id, received, dropped); err != nil {
			errs = append(errs, fmt.Errorf("trace: capture %s: statistics of %s: %w", c.file.Name(), ci.name, err))
			break
		}
	}
	for _, cr := range nsLost {
		id, err := c.w.AddInterface(interfaceBlock(cr.ns+"/*", "frames of namespace "+cr.ns+
			" that the kernel could not keep for hopcheck; it counts them per namespace, not per interface"))
		if err == nil {
			err = isb(id, cr.lost, cr.lost)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("trace: capture %s: statistics of %s/*: %w", c.file.Name(), cr.ns, err))
			break
		}
	}
	if err := errors.Join(c.w.Flush(), c.bw.Flush()); err != nil {
		errs = append(errs, fmt.Errorf("trace: capture %s: flush: %w", c.file.Name(), err))
	}
	if err := c.file.Close(); err != nil {
		errs = append(errs, fmt.Errorf("trace: capture: %w", err))
	}
	return errors.Join(errs...)
}

// frameFlags are the enhanced packet block flags for a frame: its
// direction, and for frames received how they were addressed.
func frameFlags(fi frameInfo) uint32 {
	if fi.out {
		f := pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionOutbound}
		return f.ToUint32()
	}
	f := pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionInbound}
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
	return f.ToUint32()
}

// Enhanced packet blocks (pcapng, RFC draft section 4.3).
const (
	blockTypeEnhancedPacket = 6
	optEndOfOptions         = 0
	optComment              = 1
	optPacketFlags          = 2
	// captureWriteBuffer is the file's write buffer.
	captureWriteBuffer = 256 << 10
)

// appendPacketBlock appends to b the enhanced packet block of one frame:
// on interface block ifID, at at (Unix nanoseconds, the interfaces'
// resolution), data of length bytes on the wire, with flags and comment
// as options where not zero. pcapgo's own writer costs several times as
// much, and a capture writes tens of thousands of these.
func appendPacketBlock(b []byte, ifID int, at int64, data []byte, length int, flags uint32, comment string) []byte {
	padding := func(n int) int { return (4 - n&3) & 3 }
	comment = comment[:min(len(comment), math.MaxUint16)]
	opts := 0
	if flags != 0 {
		opts += 4 + 4
	}
	if comment != "" {
		opts += 4 + len(comment) + padding(len(comment))
	}
	if opts > 0 {
		opts += 4 // the end of options
	}
	total := 28 + len(data) + padding(len(data)) + opts + 4
	var zeros [3]byte
	le := binary.LittleEndian
	b = le.AppendUint32(b, blockTypeEnhancedPacket)
	b = le.AppendUint32(b, uint32(total))
	b = le.AppendUint32(b, uint32(ifID))
	b = le.AppendUint32(b, uint32(uint64(at)>>32))
	b = le.AppendUint32(b, uint32(at))
	b = le.AppendUint32(b, uint32(len(data)))
	b = le.AppendUint32(b, uint32(length))
	b = append(b, data...)
	b = append(b, zeros[:padding(len(data))]...)
	if flags != 0 {
		b = le.AppendUint16(b, optPacketFlags)
		b = le.AppendUint16(b, 4)
		b = le.AppendUint32(b, flags)
	}
	if comment != "" {
		b = le.AppendUint16(b, optComment)
		b = le.AppendUint16(b, uint16(len(comment)))
		b = append(b, comment...)
		b = append(b, zeros[:padding(len(comment))]...)
	}
	if opts > 0 {
		b = le.AppendUint16(b, optEndOfOptions)
		b = le.AppendUint16(b, 0)
	}
	return le.AppendUint32(b, uint32(total))
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
	var drops []trace.Event
	dropIf, dropID := -1, 0
	for _, a := range anns {
		drops = append(drops, a.Drops...)
	}
	if len(drops) > 0 {
		var err error
		dropID, err = c.w.AddInterface(interfaceBlock(dropsInterface, "packets the kernel dropped (skb:kfree_skb), as hopcheck's tracer saw them"))
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
	// What pcapgo holds goes first.
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("trace: capture %s: write: %w", c.file.Name(), err)
	}
	err := mergeSpools(spools, func(f mergedFrame) error {
		var flags uint32
		var comment string
		if f.iface == dropIf {
			comment = ann.dropComment(time.Unix(0, f.at), drops[f.seq])
		} else {
			flags = frameFlags(f.info)
			if len(anns) > 0 && mayBeProbe(f.data) {
				if pkt, err := trace.Decode(trace.Event{Layer: trace.LayerEthernet, Data: f.data}); err == nil {
					comment = ann.comment(time.Unix(0, f.at), nsOf[f.iface], f.info.out, &pkt)
				}
			}
		}
		block := appendPacketBlock(c.bw.AvailableBuffer(), ifIDs[f.iface], f.at, f.data, max(f.info.length, len(f.data)), flags, comment)
		if _, err := c.bw.Write(block); err != nil {
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
func dropFrame(e trace.Event) []byte {
	var etherType uint16
	switch e.Layer {
	case trace.LayerIPv4:
		etherType = uint16(layers.EthernetTypeIPv4)
	case trace.LayerIPv6:
		etherType = uint16(layers.EthernetTypeIPv6)
	default:
		return e.Data
	}
	f := make([]byte, 14, 14+len(e.Data))
	f[12], f[13] = byte(etherType>>8), byte(etherType)
	return append(f, e.Data...)
}

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A capture reads frames through AF_PACKET sockets with a TPACKET_V3
// receive ring (PACKET_MMAP): the kernel copies each frame into memory
// shared with hopcheck, in blocks, and wakes the reader once per full
// block, so a frame costs no system call. Reading one frame per recvmsg
// was most of what a capture cost: 82,000 frames of a 200-container run
// took 0.31 s of CPU in recvmsg and the wakeups around it.
//
// Setting up a ring (PACKET_RX_RING) waits for an RCU grace period
// (synchronize_net, 4-15 ms here), so rings are set up concurrently; see
// Start. Opening the socket with protocol 0 and binding it with
// ETH_P_ALL once the ring is in place costs no other: such a socket is
// hooked nowhere until the bind.

const (
	// ringBlockSize is the size of a ring block. A frame must fit in one
	// block with its headers, so this bounds the frames kept whole.
	ringBlockSize = 64 << 10
	// ringBlockHeader is the block descriptor (struct tpacket_block_desc)
	// at the start of each block, 8-byte aligned.
	ringBlockHeader = 48
	// ringFrameHeader is the most a frame's headers take in a block:
	// struct tpacket3_hdr and the sockaddr_ll after it, the MAC header
	// then placed so that the network header is 16-byte aligned (for a
	// link-layer header of up to 16 bytes).
	ringFrameHeader = 96
	// captureSnapLen is the longest frame a capture keeps whole: every
	// frame, even one merged by segmentation offload, up to 64 KiB less
	// the ring's headers. A longer one is cut, and its length on the
	// wire is kept.
	captureSnapLen = ringBlockSize - ringBlockHeader - ringFrameHeader
	// ringRetireTimeout is how long the kernel waits before handing over
	// a block that is not full (tp_retire_blk_tov, in ms; the kernel keeps
	// 16 bits). A capture needs its frames only when it stops, which
	// reads the open block itself (see quiesce), so blocks are
	// handed over when full and the timer all but never fires: each
	// expiry is a timer interrupt, and at a few milliseconds, hundreds of
	// rings cost tens of percent of a CPU while idle.
	ringRetireTimeout = 65535
)

// Offsets in the ring's kernel structures (include/uapi/linux/if_packet.h).
const (
	// struct tpacket_block_desc, header variant tpacket_hdr_v1.
	blockStatusOff     = 8
	blockNumPktsOff    = 12
	blockFirstFrameOff = 16
	blockSeqOff        = 24
	// struct tpacket3_hdr.
	frameNextOff    = 0
	frameSecOff     = 4
	frameNsecOff    = 8
	frameSnaplenOff = 12
	frameLenOff     = 16
	frameMacOff     = 24
	// The sockaddr_ll after struct tpacket3_hdr (TPACKET_ALIGN(48)).
	frameAddrOff    = 48
	addrIfindexOff  = frameAddrOff + 4
	addrPkttypeOff  = frameAddrOff + 10
	frameHeaderSize = frameAddrOff + 20
)

// packetRing is an AF_PACKET socket with a TPACKET_V3 receive ring, bound
// to one interface or, with ifindex 0, to every interface of its
// namespace.
type packetRing struct {
	fd     int
	mem    []byte // the ring, mapped; nil until start
	blocks int

	// next is the block to read next, and lastSeq the sequence number of
	// the block read last (the kernel numbers blocks from 1 as it opens
	// them). Only the reader uses them, and after it, Stop.
	next    int
	lastSeq uint64
}

// frameInfo is what the kernel says about a frame.
type frameInfo struct {
	at     time.Time
	length int  // on the wire; the frame kept may be shorter
	out    bool // sent through the interface (PACKET_OUTGOING)
	// pktType is the link-layer reception type (PACKET_HOST, _BROADCAST,
	// _MULTICAST, _OTHERHOST) of a frame received.
	pktType uint8
}

// ringFrame is one frame in a ring; data stays valid until its block is
// handed back to the kernel.
type ringFrame struct {
	data    []byte
	ifindex int
	info    frameInfo
}

// htons returns v in network byte order, as a sockaddr_ll's protocol
// wants it, on any host byte order.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// openPacketRing opens the socket of a ring in the calling thread's
// namespace, which it stays in: call it inside netns.Do. The socket
// receives nothing until start.
func openPacketRing() (*packetRing, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open packet socket: %w", err)
	}
	return &packetRing{fd: fd}, nil
}

// ifindex returns the index of interface ifName in the socket's
// namespace. It asks by ioctl, not net.InterfaceByName, which dumps every
// interface of the namespace for each one: quadratic on a bridge's host
// with hundreds of ports.
func (r *packetRing) ifindex(ifName string) (int, error) {
	ifr, err := unix.NewIfreq(ifName)
	if err != nil {
		return 0, fmt.Errorf("interface %q: %w", ifName, err)
	}
	if err := unix.IoctlIfreq(r.fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("interface %q: %w", ifName, err)
	}
	return int(ifr.Uint32()), nil
}

// start sets up a ring of blocks blocks, maps it, and binds the socket to
// interface ifindex (0: every interface of the namespace), after which
// frames arrive. It waits for an RCU grace period.
func (r *packetRing) start(ifindex, blocks int) error {
	if err := unix.SetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fmt.Errorf("packet socket: TPACKET_V3: %w", err)
	}
	req := unix.TpacketReq3{
		Block_size: ringBlockSize, Block_nr: uint32(blocks),
		// Frames vary in size in a V3 ring; these only have to divide
		// the blocks.
		Frame_size: ringBlockSize, Frame_nr: uint32(blocks),
		Retire_blk_tov: ringRetireTimeout,
	}
	if err := unix.SetsockoptTpacketReq3(r.fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fmt.Errorf("packet socket: receive ring of %d KiB: %w", blocks*ringBlockSize>>10, err)
	}
	mem, err := unix.Mmap(r.fd, 0, blocks*ringBlockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("packet socket: map receive ring: %w", err)
	}
	r.mem, r.blocks = mem, blocks
	if err := unix.Bind(r.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return fmt.Errorf("bind packet socket: %w", err)
	}
	return nil
}

// block returns block i of the ring.
func (r *packetRing) block(i int) []byte {
	return r.mem[i*ringBlockSize : (i+1)*ringBlockSize]
}

// blockStatus is the word through which the kernel hands a block over
// (TP_STATUS_USER) and hopcheck hands it back (TP_STATUS_KERNEL).
func blockStatus(b []byte) *uint32 {
	return (*uint32)(unsafe.Pointer(&b[blockStatusOff]))
}

// ready reports whether the kernel has handed over the next block.
func (r *packetRing) ready() bool {
	return atomic.LoadUint32(blockStatus(r.block(r.next)))&unix.TP_STATUS_USER != 0
}

// readReady calls fn with every frame of every block the kernel has
// handed over, in order, and hands the blocks back. It returns how many
// frames it read.
func (r *packetRing) readReady(fn func(ringFrame)) int {
	n := 0
	for r.ready() {
		b := r.block(r.next)
		n += walkBlock(b, fn)
		r.lastSeq = binary.NativeEndian.Uint64(b[blockSeqOff:])
		atomic.StoreUint32(blockStatus(b), unix.TP_STATUS_KERNEL)
		r.next = (r.next + 1) % r.blocks
	}
	return n
}

// readRest calls fn with the frames left in the ring after quiesce: those of
// blocks handed over, then those of the block the kernel was filling,
// which it never hands over now. It returns how many frames it read.
func (r *packetRing) readRest(fn func(ringFrame)) int {
	return r.readReady(fn) + r.readOpen(fn)
}

// readOpen calls fn with the frames of the block the kernel was filling
// when the ring was halted: the next one, if the kernel opened it after
// the last block read (the kernel numbers blocks as it opens them; an
// older number means it has not opened it again since hopcheck read it).
//
// Only the retire timer still writes to the ring then, once every
// ringRetireTimeout: when the ring had been full, the timer may open that
// block again, rewriting its header (sequence number first, then the
// frame count) to say it is a new, empty one. Read during the rewrite, the
// header would give the new number with the old count, and the frames of
// an earlier round, already read, would be added again. So the frames are
// kept aside while the block is walked, and given to fn only if its
// number and count are the same afterwards. The rewrite's two stores are
// adjacent: a header read half rewritten is still read so after the walk
// only if the timer stalls between them for all of it.
func (r *packetRing) readOpen(fn func(ringFrame)) int {
	b := r.block(r.next)
	seq, num := blockHeader(b)
	if seq != r.lastSeq+1 || num == 0 {
		return 0
	}
	var frames []ringFrame
	walkBlock(b, func(f ringFrame) { frames = append(frames, f) })
	if seqAfter, numAfter := blockHeader(b); seqAfter != seq || numAfter != num {
		return 0
	}
	for _, f := range frames {
		fn(f)
	}
	return len(frames)
}

// blockHeader returns block b's sequence number and frame count, read
// atomically (the retire timer may be writing them).
func blockHeader(b []byte) (seq uint64, num uint32) {
	seq = atomic.LoadUint64((*uint64)(unsafe.Pointer(&b[blockSeqOff])))
	num = atomic.LoadUint32((*uint32)(unsafe.Pointer(&b[blockNumPktsOff])))
	return seq, num
}

// walkBlock calls fn with each frame of block b and returns how many there
// were. It trusts nothing in the block to stay within it.
func walkBlock(b []byte, fn func(ringFrame)) int {
	num := int(binary.NativeEndian.Uint32(b[blockNumPktsOff:]))
	off := int(binary.NativeEndian.Uint32(b[blockFirstFrameOff:]))
	n := 0
	for ; n < num; n++ {
		if off < ringBlockHeader || off+frameHeaderSize > len(b) {
			break
		}
		h := b[off:]
		mac := int(binary.NativeEndian.Uint16(h[frameMacOff:]))
		snap := int(binary.NativeEndian.Uint32(h[frameSnaplenOff:]))
		if mac < frameHeaderSize || mac+snap > len(h) {
			break
		}
		pktType := h[addrPkttypeOff]
		fn(ringFrame{
			data:    h[mac : mac+snap],
			ifindex: int(int32(binary.NativeEndian.Uint32(h[addrIfindexOff:]))),
			info: frameInfo{
				at:      time.Unix(int64(binary.NativeEndian.Uint32(h[frameSecOff:])), int64(binary.NativeEndian.Uint32(h[frameNsecOff:]))),
				length:  int(binary.NativeEndian.Uint32(h[frameLenOff:])),
				out:     pktType == unix.PACKET_OUTGOING,
				pktType: pktType,
			},
		})
		next := int(binary.NativeEndian.Uint32(h[frameNextOff:]))
		if next == 0 {
			n++
			break
		}
		off += next
	}
	return n
}

// refuse attaches a filter that refuses every frame: the kernel writes
// no frame to the ring that reaches the socket after it, and counts none.
// One may still be being written; see quiesce.
func (r *packetRing) refuse() error {
	refuseAll := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	prog := unix.SockFprog{Len: uint16(len(refuseAll)), Filter: &refuseAll[0]}
	if err := unix.SetsockoptSockFprog(r.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return fmt.Errorf("packet socket: attach filter: %w", err)
	}
	return nil
}

// quiesce waits for an RCU grace period: frames are written to rings
// inside RCU read-side sections, so when it returns, every frame that
// reached any ring before its refuse has been written. After refuse on
// every ring of a capture, one quiesce halts them all, and readRest may
// read the blocks the kernel was filling.
//
// It closes a packet socket of its own, never hooked (protocol 0): the
// kernel releases a packet socket only after synchronize_net, whatever
// its state, and close returns once it has. Rebinding a ring's socket
// would wait only if that socket is hooked, which one bound to an
// interface that is down or gone is not.
func quiesce() error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("packet socket: quiesce: %w", err)
	}
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("packet socket: quiesce: %w", err)
	}
	return nil
}

// stats returns the frames the kernel put in the ring and the ones it
// dropped because the ring was full, since the last call (the kernel
// resets them on every read).
func (r *packetRing) stats() (queued, dropped uint64, err error) {
	st, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0, 0, fmt.Errorf("packet socket: statistics: %w", err)
	}
	// tp_packets counts the drops too.
	return uint64(st.Packets - st.Drops), uint64(st.Drops), nil
}

// socketError returns and clears the error the kernel reported on the
// socket (ENETDOWN when the interface it is bound to goes down).
func (r *packetRing) socketError() error {
	errno, err := unix.GetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if errno != 0 {
		return unix.Errno(errno)
	}
	return nil
}

// close unmaps the ring and closes the socket. The kernel releases the
// socket once both are gone, waiting for two RCU grace periods.
func (r *packetRing) close() error {
	var errs []error
	if r.mem != nil {
		errs = append(errs, unix.Munmap(r.mem))
		r.mem = nil
	}
	errs = append(errs, unix.Close(r.fd))
	return errors.Join(errs...)
}

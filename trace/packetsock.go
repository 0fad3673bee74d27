package trace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// captureSnapLen is how much of each frame a capture keeps: a whole frame,
// even one merged by segmentation offload (up to 64 KiB).
const captureSnapLen = 1 << 16

// captureRcvBuf is the receive buffer a capture socket asks for, so that
// bursts wait in the kernel rather than being dropped while the file is
// written.
const captureRcvBuf = 4 << 20

// packetSocket is an AF_PACKET socket that receives every frame crossing
// one interface, in both directions.
//
// It is opened with protocol 0, which hooks it nowhere, and bound to the
// interface with ETH_P_ALL. A socket opened with ETH_P_ALL is hooked to
// every interface at once, and binding it then unhooks it first, which
// waits for an RCU grace period (synchronize_net); so does every close. A
// capture of hundreds of interfaces paid hundreds of grace periods, one
// after the other, at start and again at stop: 8.5 ms per open and 13 ms
// per close here, 4 s for 100 interfaces. Opening unhooked costs none, and
// closing all sockets at once (Capture.Stop) lets their grace periods
// overlap.
type packetSocket struct {
	f   *os.File
	rc  syscall.RawConn
	buf []byte
	oob []byte
}

// frameInfo is what the kernel says about a frame read.
type frameInfo struct {
	at     time.Time
	length int  // on the wire; the frame read may be shorter
	out    bool // sent through the interface (PACKET_OUTGOING)
	// pktType is the link-layer reception type (PACKET_HOST, _BROADCAST,
	// _MULTICAST, _OTHERHOST) of a frame received.
	pktType uint8
}

// htons returns v in network byte order, as a sockaddr_ll's protocol
// wants it, on any host byte order.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// openPacketSocket opens a capture socket on interface ifName of the
// calling thread's namespace, which it stays in: call it inside netns.Do.
func openPacketSocket(ifName string) (*packetSocket, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open packet socket: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	// The index by ioctl, not net.InterfaceByName, which dumps every
	// interface of the namespace for each one: quadratic on a bridge's
	// host with hundreds of ports.
	ifr, err := unix.NewIfreq(ifName)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", ifName, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return nil, fmt.Errorf("interface %q: %w", ifName, err)
	}
	ifindex := int(ifr.Uint32())
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return nil, fmt.Errorf("packet socket: SO_TIMESTAMPNS: %w", err)
	}
	// Root may exceed rmem_max; where it may not, the default stands.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, captureRcvBuf)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return nil, fmt.Errorf("bind packet socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "packet")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		ok = true // f owns fd now
		return nil, err
	}
	ok = true
	return &packetSocket{
		f:   f,
		rc:  rc,
		buf: make([]byte, captureSnapLen),
		oob: make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{})))),
	}, nil
}

// read waits for the next frame and returns it (valid until the next read)
// with what the kernel says of it. It returns an error wrapping
// os.ErrClosed once the socket is closed.
func (s *packetSocket) read() ([]byte, frameInfo, error) {
	var (
		n, oobn int
		from    unix.Sockaddr
		rerr    error
	)
	err := s.rc.Read(func(fd uintptr) bool {
		// MSG_TRUNC: n is the frame's real length, even past the buffer.
		n, oobn, _, from, rerr = unix.Recvmsg(int(fd), s.buf, s.oob, unix.MSG_TRUNC)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, frameInfo{}, err
	}
	info := frameInfo{length: n, at: time.Now()}
	if ll, ok := from.(*unix.SockaddrLinklayer); ok {
		info.out = ll.Pkttype == unix.PACKET_OUTGOING
		info.pktType = ll.Pkttype
	}
	if msgs, err := unix.ParseSocketControlMessage(s.oob[:oobn]); err == nil {
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS &&
				len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
				ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
				info.at = time.Unix(ts.Unix())
			}
		}
	}
	return s.buf[:min(n, len(s.buf))], info, nil
}

// stats returns the frames the kernel queued for the socket and the ones
// it dropped because the queue was full, since the last call (the kernel
// resets them on every read).
func (s *packetSocket) stats() (queued, dropped uint64, err error) {
	var st *unix.TpacketStats
	cerr := s.rc.Control(func(fd uintptr) {
		st, err = unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
	})
	if cerr != nil {
		return 0, 0, cerr
	}
	if err != nil {
		return 0, 0, err
	}
	// tp_packets counts the drops too.
	return uint64(st.Packets - st.Drops), uint64(st.Drops), nil
}

func (s *packetSocket) close() error { return s.f.Close() }

package nftrules

import (
	"bytes"
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
)

// The data the nftables evaluator works on: the register file of one
// rule, and the packet's headers as bytes, with which of them are known.

// regs is nftables' register file: the four 16-byte registers NFT_REG_1..4
// overlay the sixteen 4-byte registers NFT_REG32_00..15, as in the kernel.
// A byte that no expression of the rule wrote, or that holds something the
// walk does not know (a TTL, a sequence number), is not known.
type regs struct {
	data  [64]byte
	known [64]bool
	// written marks bytes an expression wrote, known or not: reading one
	// that none wrote means the rule has an expression the netlink
	// library could not decode, which the evaluator must not ignore.
	written [64]bool
}

// regOffset returns a register's offset in the file, or -1.
func regOffset(r uint32) int {
	switch {
	case r >= unix.NFT_REG_1 && r <= unix.NFT_REG_4:
		return int(r-unix.NFT_REG_1) * 16
	case r >= unix.NFT_REG32_00 && r <= unix.NFT_REG32_15:
		return int(r-unix.NFT_REG32_00) * 4
	}
	return -1
}

// set writes b (known or not) into register r, zeroing the rest of its
// last 32-bit word as the kernel does.
func (rs *regs) set(r uint32, b []byte, known bool) bool {
	off := regOffset(r)
	n := (len(b) + 3) / 4 * 4
	if off < 0 || off+n > len(rs.data) {
		return false
	}
	for i := range n {
		rs.data[off+i] = 0
		if i < len(b) {
			rs.data[off+i] = b[i]
		}
		rs.known[off+i], rs.written[off+i] = known, true
	}
	return true
}

// setBytes writes b with a known-mask of its own.
func (rs *regs) setBytes(r uint32, b []byte, known []bool) bool {
	if !rs.set(r, b, true) {
		return false
	}
	off := regOffset(r)
	for i := range b {
		rs.known[off+i] = known[i]
	}
	return true
}

// get reads n bytes from register r: the value, whether all of it is
// known, and whether all of it was written.
func (rs *regs) get(r uint32, n int) (b []byte, known, written bool) {
	off := regOffset(r)
	if off < 0 || n < 0 || off+n > len(rs.data) {
		return nil, false, false
	}
	known, written = true, true
	for i := range n {
		known = known && rs.known[off+i]
		written = written && rs.written[off+i]
	}
	return append([]byte(nil), rs.data[off:off+n]...), known, written
}

// headers are the probe packet's network and transport headers, built as
// bytes so that any payload load reads them as the kernel would.
type headers struct {
	nh, th           []byte
	nhKnown, thKnown []bool
}

// packetHeaders builds p's headers. Fields the walk does not know (TTL,
// identification, sequence numbers, checksums) are left unknown; so are
// an unknown source address and port.
func packetHeaders(p netfilter.Packet) headers {
	var h headers
	proto := l4proto(p)
	if p.IPv6() {
		h.nh = make([]byte, 40)
		h.nhKnown = make([]bool, 40)
		h.nh[0] = 0x60
		h.nh[6] = proto
		h.nhKnown[6] = true
		putAddr(h.nh[8:24], h.nhKnown[8:24], p.Src)
		putAddr(h.nh[24:40], h.nhKnown[24:40], p.Dst)
	} else {
		h.nh = make([]byte, 20)
		h.nhKnown = make([]bool, 20)
		h.nh[0] = 0x45
		h.nhKnown[0] = true
		h.nh[9] = proto
		h.nhKnown[9] = true
		putAddr(h.nh[12:16], h.nhKnown[12:16], p.Src)
		putAddr(h.nh[16:20], h.nhKnown[16:20], p.Dst)
	}
	switch p.Proto {
	case "tcp", "udp":
		n := 8
		if p.Proto == "tcp" {
			n = 20
		}
		h.th, h.thKnown = make([]byte, n), make([]bool, n)
		putPort(h.th[0:2], h.thKnown[0:2], p.SPort)
		putPort(h.th[2:4], h.thKnown[2:4], p.DPort)
		if p.Proto == "tcp" {
			h.th[13] = 0x02 // SYN
			if p.Reply {
				h.th[13] = 0x12 // SYN|ACK
			}
			h.thKnown[13] = true
		}
	default:
		h.th, h.thKnown = make([]byte, 8), make([]bool, 8)
		req, rep := byte(8), byte(0)
		if p.IPv6() {
			req, rep = 128, 129
		}
		h.th[0] = req
		if p.Reply {
			h.th[0] = rep
		}
		h.thKnown[0], h.thKnown[1] = true, true
	}
	return h
}

func putAddr(b []byte, known []bool, a netip.Addr) {
	if !a.IsValid() || a.IsUnspecified() {
		return
	}
	copy(b, a.AsSlice())
	for i := range known {
		known[i] = true
	}
}

func putPort(b []byte, known []bool, port uint16) {
	if port == 0 {
		return
	}
	binary.BigEndian.PutUint16(b, port)
	known[0], known[1] = true, true
}

// l4proto is p's IP protocol number.
func l4proto(p netfilter.Packet) byte {
	switch p.Proto {
	case "tcp":
		return unix.IPPROTO_TCP
	case "udp":
		return unix.IPPROTO_UDP
	}
	if p.IPv6() {
		return unix.IPPROTO_ICMPV6
	}
	return unix.IPPROTO_ICMP
}

// ifname pads an interface name to IFNAMSIZ, as meta iifname loads it.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// cmpBytes compares as the kernel's nft_cmp does: memcmp.
func cmpBytes(a, b []byte) int { return bytes.Compare(a, b) }

package trace

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Protocol names, as used in Packet.Proto, Probe.Proto and Hop.Proto.
const (
	ProtoARP    = "arp"
	ProtoICMP   = "icmp"
	ProtoICMPv6 = "icmpv6"
	ProtoTCP    = "tcp"
	ProtoUDP    = "udp"
)

// ARPOp is the operation of an ARP message, or of the IPv6 neighbor
// discovery message that plays the same part.
type ARPOp uint16

const (
	// ARPRequest asks who has TargetIP (an IPv6 neighbor solicitation).
	ARPRequest ARPOp = 1
	// ARPReply answers that SenderIP is at SenderMAC (an IPv6 neighbor
	// advertisement).
	ARPReply ARPOp = 2
)

// String returns "request", "reply" or the number.
func (o ARPOp) String() string {
	switch o {
	case ARPRequest:
		return "request"
	case ARPReply:
		return "reply"
	}
	return fmt.Sprintf("op %d", uint16(o))
}

// ARP is a neighbor resolution message: an ARP request or reply, or for IPv6
// a neighbor solicitation or advertisement, in ARP's terms. A solicitation's
// sender is its IPv6 source; an advertisement's sender is the address it
// advertises and its target is the IPv6 destination, so a reply answers a
// request exactly when its sender is the request's target and the other way
// round, for both protocols.
type ARP struct {
	Op        ARPOp
	SenderMAC net.HardwareAddr
	SenderIP  netip.Addr
	TargetMAC net.HardwareAddr
	TargetIP  netip.Addr
}

// ICMP holds the header fields of an ICMP or ICMPv6 message. ID and Seq are
// set for echo requests and replies only.
type ICMP struct {
	Type, Code uint8
	ID, Seq    uint16
}

// TCPFlags are the flags of a TCP header, with the bit values they have in
// its 13th byte.
type TCPFlags uint8

// TCP flags.
const (
	TCPFin TCPFlags = 1 << iota
	TCPSyn
	TCPRst
	TCPPsh
	TCPAck
	TCPUrg
	TCPEce
	TCPCwr
)

// Has reports whether all flags in g are set in f.
func (f TCPFlags) Has(g TCPFlags) bool { return f&g == g }

// String lists the set flags joined by "|" ("SYN|ACK"), or "none".
func (f TCPFlags) String() string {
	var names []string
	for i, n := range [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"} {
		if f&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

// TCP holds the TCP header fields correlation follows a connection by.
type TCP struct {
	Flags    TCPFlags
	Seq, Ack uint32
}

// Quoted is the start of the packet that an ICMP error was sent about, as
// quoted inside the error: enough to tie a "port unreachable" or "host
// unreachable" to the probe that caused it. Only the first 8 bytes after
// the quoted IP header are guaranteed (RFC 792), so ports, the TCP sequence
// number and the echo ID/sequence are read from those; a tag is read when
// the quote goes further.
type Quoted struct {
	Src, Dst         netip.Addr
	Proto            string
	SrcPort, DstPort uint16
	// ICMP is set when the quoted packet was an ICMP echo.
	ICMP *ICMP
	// TCPSeq is the quoted segment's sequence number (Proto "tcp").
	TCPSeq uint32
	// Tag is the probe tag in the quoted payload, when Tagged.
	Tag    Tag
	Tagged bool
}

// Encap describes the tunnel header around an encapsulated packet.
type Encap struct {
	// Kind is the tunnel protocol, "vxlan".
	Kind string
	// VNI is the VXLAN network identifier.
	VNI uint32
}

// Packet is what Decode reads from an event's bytes: plain data, with the
// parts that the packet does not have left zero or nil.
type Packet struct {
	// SrcMAC, DstMAC and EtherType come from the Ethernet header; they are
	// unset for events whose data starts at the IP header.
	SrcMAC, DstMAC net.HardwareAddr
	EtherType      uint16
	// ARP is set for ARP messages and IPv6 neighbor discovery.
	ARP *ARP
	// Src and Dst are the IP addresses; TTL is the TTL or hop limit.
	Src, Dst netip.Addr
	TTL      uint8
	// Proto is ProtoICMP, ProtoICMPv6, ProtoTCP, ProtoUDP, ProtoARP, or for
	// other IP protocols "ip-proto-N".
	Proto            string
	SrcPort, DstPort uint16
	ICMP             *ICMP
	TCP              *TCP
	// Tag is the probe tag found at the start of the ICMP echo, UDP or TCP
	// payload, when Tagged.
	Tag    Tag
	Tagged bool
	// Quoted is the packet an ICMP error is about.
	Quoted *Quoted
	// Inner is the packet carried inside a tunnel (VXLAN), and Encap the
	// tunnel; the fields above describe the outer packet.
	Inner *Packet
	Encap *Encap
	// Incomplete reports that a header the packet announced could not be
	// read, usually because the event's data was cut short; the fields it
	// would have filled are unset.
	Incomplete bool
}

// SrcAddrPort returns the source address with the source port (0 for
// protocols without ports).
func (p Packet) SrcAddrPort() netip.AddrPort { return netip.AddrPortFrom(p.Src, p.SrcPort) }

// DstAddrPort returns the destination address with the destination port.
func (p Packet) DstAddrPort() netip.AddrPort { return netip.AddrPortFrom(p.Dst, p.DstPort) }

// Innermost returns the packet inside all tunnel headers: p itself when p is
// not encapsulated.
func (p *Packet) Innermost() *Packet {
	for p.Inner != nil {
		p = p.Inner
	}
	return p
}

// EchoRequest reports whether p is an ICMP or ICMPv6 echo request.
func (p Packet) EchoRequest() bool {
	return p.ICMP != nil && isEchoRequest(p.Proto, p.ICMP.Type)
}

// EchoReply reports whether p is an ICMP or ICMPv6 echo reply.
func (p Packet) EchoReply() bool {
	return p.ICMP != nil && isEchoReply(p.Proto, p.ICMP.Type)
}

// String summarises p on one line, tcpdump style:
// "10.0.0.2 > 10.0.0.3 icmp echo request id 7 seq 1 tag 00000000000000a1".
func (p Packet) String() string {
	var b strings.Builder
	if p.Encap != nil {
		fmt.Fprintf(&b, "%s vni %d %s > %s: ", p.Encap.Kind, p.Encap.VNI, p.Src, p.Dst)
		if p.Inner != nil {
			b.WriteString(p.Inner.String())
		}
		return b.String()
	}
	if p.ARP != nil {
		a := p.ARP
		if p.Proto != ProtoARP {
			b.WriteString(p.Proto + " neighbor ")
		} else {
			b.WriteString("arp ")
		}
		if a.Op == ARPReply {
			fmt.Fprintf(&b, "reply %s is-at %s", a.SenderIP, a.SenderMAC)
		} else {
			fmt.Fprintf(&b, "who-has %s tell %s", a.TargetIP, a.SenderIP)
		}
		return b.String()
	}
	if !p.Src.IsValid() {
		fmt.Fprintf(&b, "ethertype 0x%04x", p.EtherType)
		return b.String()
	}
	if p.SrcPort != 0 || p.DstPort != 0 {
		fmt.Fprintf(&b, "%s > %s %s", p.SrcAddrPort(), p.DstAddrPort(), p.Proto)
	} else {
		fmt.Fprintf(&b, "%s > %s %s", p.Src, p.Dst, p.Proto)
	}
	if p.TCP != nil {
		fmt.Fprintf(&b, " [%s] seq %d ack %d", p.TCP.Flags, p.TCP.Seq, p.TCP.Ack)
	}
	if p.ICMP != nil {
		b.WriteString(" " + icmpText(p.Proto, p.ICMP.Type, p.ICMP.Code))
		if p.EchoRequest() || p.EchoReply() {
			fmt.Fprintf(&b, " id %d seq %d", p.ICMP.ID, p.ICMP.Seq)
		}
	}
	if p.Tagged {
		b.WriteString(" tag " + p.Tag.String())
	}
	if q := p.Quoted; q != nil {
		fmt.Fprintf(&b, " (about %s > %s %s", q.Src, q.Dst, q.Proto)
		if q.Tagged {
			b.WriteString(" tag " + q.Tag.String())
		}
		b.WriteString(")")
	}
	if p.Incomplete {
		b.WriteString(" (incomplete)")
	}
	return b.String()
}

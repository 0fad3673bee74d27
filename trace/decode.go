package trace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Protocol names, as used in Packet.Proto, Probe.Proto and Hop.Proto.
const (
	ProtoARP    = "arp"
	ProtoICMP   = "icmp"
	ProtoICMPv6 = "icmpv6"
	ProtoTCP    = "tcp"
	ProtoUDP    = "udp"
)

// ErrMalformed is returned (wrapped) by Decode when not even the first header
// of an event's data can be read, so nothing about the packet is known.
var ErrMalformed = errors.New("malformed packet")

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

// Decode reads the packet in e.Data, starting at the header e.Layer names.
// Data usually holds only the first bytes of the packet, so headers that are
// cut short leave their fields unset and mark the packet Incomplete instead
// of failing; only data whose first header is unreadable is an error
// (wrapping ErrMalformed). The returned Packet does not share memory with
// e.Data.
func Decode(e Event) (Packet, error) {
	var first gopacket.LayerType
	switch e.Layer {
	case LayerEthernet:
		first = layers.LayerTypeEthernet
	case LayerIPv4:
		first = layers.LayerTypeIPv4
	case LayerIPv6:
		first = layers.LayerTypeIPv6
	default:
		return Packet{}, fmt.Errorf("trace: decode: unknown layer %d: %w", e.Layer, ErrMalformed)
	}
	p, err := decode(e.Data, first, 0)
	if err != nil {
		return Packet{}, fmt.Errorf("trace: decode %d bytes from %s: %w", len(e.Data), first, err)
	}
	return p, nil
}

// maxEncap bounds how many tunnel headers Decode looks through.
const maxEncap = 2

// newPacket decodes lazily (only the layers asked for) and without copying:
// events carry at most the first bytes of a packet, and a probe's UDP
// payload must not be handed to a decoder guessed from its port (a tagged
// datagram to port 53 is not DNS).
func newPacket(data []byte, first gopacket.LayerType) gopacket.Packet {
	return gopacket.NewPacket(data, first, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
}

func decode(data []byte, first gopacket.LayerType, depth int) (Packet, error) {
	var p Packet
	gp := newPacket(data, first)
	if first == layers.LayerTypeEthernet {
		eth, ok := gp.LinkLayer().(*layers.Ethernet)
		if !ok {
			return p, malformed(gp)
		}
		p.SrcMAC = cloneMAC(eth.SrcMAC)
		p.DstMAC = cloneMAC(eth.DstMAC)
		p.EtherType = uint16(eth.EthernetType)
	}

	var proto layers.IPProtocol
	// gopacket keeps an IP or transport layer whose header failed to
	// decode, so every header is checked to have been read in full.
	switch ip := gp.NetworkLayer().(type) {
	case *layers.IPv4:
		if len(ip.Contents) < 20 {
			return p, p.unreadable(gp, first)
		}
		p.Src, p.Dst = addrFrom(ip.SrcIP), addrFrom(ip.DstIP)
		p.TTL = ip.TTL
		proto = ip.Protocol
		if ip.FragOffset != 0 {
			// A later fragment: no transport header in it.
			p.Proto = protoName(proto)
			return p, nil
		}
	case *layers.IPv6:
		if len(ip.Contents) < 40 {
			return p, p.unreadable(gp, first)
		}
		p.Src, p.Dst = addrFrom(ip.SrcIP), addrFrom(ip.DstIP)
		p.TTL = ip.HopLimit
		proto = ip.NextHeader
		if ip.HopByHop != nil {
			proto = ip.HopByHop.NextHeader
		}
	default:
		// Not IP: ARP, or something hopcheck does not follow. The whole
		// (short) packet has been decoded by now, so these lookups are cheap.
		if arp, ok := gp.Layer(layers.LayerTypeARP).(*layers.ARP); ok {
			p.Proto = ProtoARP
			p.ARP = arpFrom(arp)
			return p, nil
		}
		return p, p.unreadable(gp, first)
	}
	p.Proto = protoName(proto)

	switch proto {
	case layers.IPProtocolTCP:
		tcp, ok := gp.TransportLayer().(*layers.TCP)
		if !ok || len(tcp.Contents) < 20 {
			p.Incomplete = true
			return p, nil
		}
		p.SrcPort, p.DstPort = uint16(tcp.SrcPort), uint16(tcp.DstPort)
		p.TCP = &TCP{Flags: tcpFlags(tcp), Seq: tcp.Seq, Ack: tcp.Ack}
		p.Tag, p.Tagged = FindTag(tcp.Payload)
	case layers.IPProtocolUDP:
		udp, ok := gp.TransportLayer().(*layers.UDP)
		if !ok || len(udp.Contents) < 8 {
			p.Incomplete = true
			return p, nil
		}
		p.SrcPort, p.DstPort = uint16(udp.SrcPort), uint16(udp.DstPort)
		p.Tag, p.Tagged = FindTag(udp.Payload)
		if depth < maxEncap && isVXLANPort(p.DstPort) {
			p.decodeVXLAN(udp.Payload, depth)
		}
	case layers.IPProtocolICMPv4:
		icmp, ok := gp.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if !ok {
			p.Incomplete = true
			return p, nil
		}
		typ, code := icmp.TypeCode.Type(), icmp.TypeCode.Code()
		p.ICMP = &ICMP{Type: typ, Code: code}
		switch {
		case isEchoRequest(p.Proto, typ) || isEchoReply(p.Proto, typ):
			p.ICMP.ID, p.ICMP.Seq = icmp.Id, icmp.Seq
			p.Tag, p.Tagged = FindTag(icmp.Payload)
		case isICMPError(p.Proto, typ):
			p.Quoted = decodeQuoted(icmp.Payload, layers.LayerTypeIPv4)
		}
	case layers.IPProtocolICMPv6:
		p.decodeICMPv6(gp)
	}
	return p, nil
}

// decodeICMPv6 fills p from the ICMPv6 message in gp: echo, neighbor
// discovery, or an error quoting the packet it is about.
func (p *Packet) decodeICMPv6(gp gopacket.Packet) {
	icmp, ok := gp.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if !ok {
		p.Incomplete = true
		return
	}
	typ, code := icmp.TypeCode.Type(), icmp.TypeCode.Code()
	p.ICMP = &ICMP{Type: typ, Code: code}
	switch typ {
	case layers.ICMPv6TypeEchoRequest, layers.ICMPv6TypeEchoReply:
		echo, ok := gp.Layer(layers.LayerTypeICMPv6Echo).(*layers.ICMPv6Echo)
		if !ok {
			p.Incomplete = true
			return
		}
		p.ICMP.ID, p.ICMP.Seq = echo.Identifier, echo.SeqNumber
		p.Tag, p.Tagged = FindTag(echo.Payload)
	case layers.ICMPv6TypeNeighborSolicitation:
		ns, ok := gp.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation)
		if !ok {
			p.Incomplete = true
			return
		}
		p.ARP = &ARP{
			Op:        ARPRequest,
			SenderMAC: ndpMAC(ns.Options, layers.ICMPv6OptSourceAddress, p.SrcMAC),
			SenderIP:  p.Src,
			TargetIP:  addrFrom(ns.TargetAddress),
		}
	case layers.ICMPv6TypeNeighborAdvertisement:
		na, ok := gp.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
		if !ok {
			p.Incomplete = true
			return
		}
		p.ARP = &ARP{
			Op:        ARPReply,
			SenderMAC: ndpMAC(na.Options, layers.ICMPv6OptTargetAddress, p.SrcMAC),
			SenderIP:  addrFrom(na.TargetAddress),
			TargetMAC: cloneMAC(p.DstMAC),
			TargetIP:  p.Dst,
		}
	default:
		// Errors carry 4 bytes (unused, MTU or pointer) before the quote.
		if isICMPError(ProtoICMPv6, typ) && len(icmp.Payload) >= 4 {
			p.Quoted = decodeQuoted(icmp.Payload[4:], layers.LayerTypeIPv6)
		}
	}
}

// decodeVXLAN sets p.Inner and p.Encap when payload is a VXLAN header with a
// valid VNI followed by a readable Ethernet frame.
func (p *Packet) decodeVXLAN(payload []byte, depth int) {
	gp := newPacket(payload, layers.LayerTypeVXLAN)
	vx, ok := gp.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
	if !ok || !vx.ValidIDFlag {
		return
	}
	inner, err := decode(vx.Payload, layers.LayerTypeEthernet, depth+1)
	if err != nil {
		return
	}
	p.Inner = &inner
	p.Encap = &Encap{Kind: "vxlan", VNI: vx.VNI}
}

// decodeQuoted reads the IP header and first transport bytes quoted in an
// ICMP error. It returns nil when the quoted IP header is unreadable.
func decodeQuoted(data []byte, first gopacket.LayerType) *Quoted {
	gp := newPacket(data, first)
	var (
		q     Quoted
		proto layers.IPProtocol
		l4    []byte
	)
	switch ip := gp.NetworkLayer().(type) {
	case *layers.IPv4:
		if len(ip.Contents) < 20 {
			return nil
		}
		q.Src, q.Dst = addrFrom(ip.SrcIP), addrFrom(ip.DstIP)
		proto = ip.Protocol
		if ip.FragOffset == 0 {
			l4 = ip.Payload
		}
	case *layers.IPv6:
		if len(ip.Contents) < 40 {
			return nil
		}
		q.Src, q.Dst = addrFrom(ip.SrcIP), addrFrom(ip.DstIP)
		proto, l4 = ip.NextHeader, ip.Payload
		if ip.HopByHop != nil {
			proto = ip.HopByHop.NextHeader
		}
	default:
		return nil
	}
	q.Proto = protoName(proto)
	if len(l4) < 8 {
		return &q
	}
	switch proto {
	case layers.IPProtocolTCP:
		q.SrcPort, q.DstPort = binary.BigEndian.Uint16(l4[0:2]), binary.BigEndian.Uint16(l4[2:4])
		q.TCPSeq = binary.BigEndian.Uint32(l4[4:8])
	case layers.IPProtocolUDP:
		q.SrcPort, q.DstPort = binary.BigEndian.Uint16(l4[0:2]), binary.BigEndian.Uint16(l4[2:4])
		q.Tag, q.Tagged = FindTag(l4[8:])
	case layers.IPProtocolICMPv4, layers.IPProtocolICMPv6:
		typ := l4[0]
		if isEchoRequest(q.Proto, typ) || isEchoReply(q.Proto, typ) {
			q.ICMP = &ICMP{
				Type: typ,
				Code: l4[1],
				ID:   binary.BigEndian.Uint16(l4[4:6]),
				Seq:  binary.BigEndian.Uint16(l4[6:8]),
			}
			q.Tag, q.Tagged = FindTag(l4[8:])
		}
	}
	return &q
}

// unreadable handles a packet with no readable IP or ARP header. When that
// header is the first, nothing is known and it returns an error wrapping
// ErrMalformed. After an Ethernet header, the packet is Incomplete if its
// EtherType announced IP or ARP, and simply not followed otherwise.
func (p *Packet) unreadable(gp gopacket.Packet, first gopacket.LayerType) error {
	if first != layers.LayerTypeEthernet {
		return malformed(gp)
	}
	typ := layers.EthernetType(p.EtherType)
	for _, l := range gp.Layers() {
		if vlan, ok := l.(*layers.Dot1Q); ok {
			typ = vlan.Type
		}
	}
	switch typ {
	case layers.EthernetTypeIPv4, layers.EthernetTypeIPv6, layers.EthernetTypeARP:
		p.Incomplete = true
	}
	return nil
}

// malformed returns ErrMalformed with gopacket's reason, if it gave one.
func malformed(gp gopacket.Packet) error {
	if el := gp.ErrorLayer(); el != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, el.Error())
	}
	return ErrMalformed
}

func arpFrom(a *layers.ARP) *ARP {
	return &ARP{
		Op:        ARPOp(a.Operation),
		SenderMAC: cloneMAC(a.SourceHwAddress),
		SenderIP:  addrFrom(a.SourceProtAddress),
		TargetMAC: cloneMAC(a.DstHwAddress),
		TargetIP:  addrFrom(a.DstProtAddress),
	}
}

// ndpMAC returns the link-layer address option of type opt, or fallback
// (the Ethernet source) when the message has none.
func ndpMAC(opts layers.ICMPv6Options, opt layers.ICMPv6Opt, fallback net.HardwareAddr) net.HardwareAddr {
	for _, o := range opts {
		if o.Type == opt && len(o.Data) == 6 {
			return cloneMAC(o.Data)
		}
	}
	return cloneMAC(fallback)
}

func tcpFlags(t *layers.TCP) TCPFlags {
	var f TCPFlags
	for _, b := range [...]struct {
		set  bool
		flag TCPFlags
	}{
		{t.FIN, TCPFin}, {t.SYN, TCPSyn}, {t.RST, TCPRst}, {t.PSH, TCPPsh},
		{t.ACK, TCPAck}, {t.URG, TCPUrg}, {t.ECE, TCPEce}, {t.CWR, TCPCwr},
	} {
		if b.set {
			f |= b.flag
		}
	}
	return f
}

// addrFrom converts a 4- or 16-byte slice; anything else is the zero Addr.
func addrFrom(b []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(b)
	return a
}

// cloneMAC copies b, which may point into event data (NoCopy decoding).
func cloneMAC(b []byte) net.HardwareAddr {
	if len(b) == 0 {
		return nil
	}
	return append(net.HardwareAddr(nil), b...)
}

func protoName(p layers.IPProtocol) string {
	switch p {
	case layers.IPProtocolICMPv4:
		return ProtoICMP
	case layers.IPProtocolICMPv6:
		return ProtoICMPv6
	case layers.IPProtocolTCP:
		return ProtoTCP
	case layers.IPProtocolUDP:
		return ProtoUDP
	}
	return fmt.Sprintf("ip-proto-%d", uint8(p))
}

// isVXLANPort reports whether Decode reads a UDP payload sent to port as
// VXLAN: the IANA port, or Linux's default when a vxlan link is made
// without dstport.
func isVXLANPort(port uint16) bool { return port == 4789 || port == 8472 }

func isEchoRequest(proto string, typ uint8) bool {
	return (proto == ProtoICMP && typ == layers.ICMPv4TypeEchoRequest) ||
		(proto == ProtoICMPv6 && typ == layers.ICMPv6TypeEchoRequest)
}

func isEchoReply(proto string, typ uint8) bool {
	return (proto == ProtoICMP && typ == layers.ICMPv4TypeEchoReply) ||
		(proto == ProtoICMPv6 && typ == layers.ICMPv6TypeEchoReply)
}

// isICMPError reports whether messages of this type quote the packet that
// caused them.
func isICMPError(proto string, typ uint8) bool {
	switch proto {
	case ProtoICMP:
		switch typ {
		case layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4TypeSourceQuench,
			layers.ICMPv4TypeRedirect, layers.ICMPv4TypeTimeExceeded,
			layers.ICMPv4TypeParameterProblem:
			return true
		}
	case ProtoICMPv6:
		switch typ {
		case layers.ICMPv6TypeDestinationUnreachable, layers.ICMPv6TypePacketTooBig,
			layers.ICMPv6TypeTimeExceeded, layers.ICMPv6TypeParameterProblem:
			return true
		}
	}
	return false
}

// icmpText names an ICMP message the way ping and tcpdump do: "echo
// request", "host unreachable", "port unreachable".
func icmpText(proto string, typ, code uint8) string {
	switch proto {
	case ProtoICMP:
		switch typ {
		case layers.ICMPv4TypeEchoRequest:
			return "echo request"
		case layers.ICMPv4TypeEchoReply:
			return "echo reply"
		case layers.ICMPv4TypeDestinationUnreachable:
			return unreachable4(code)
		case layers.ICMPv4TypeSourceQuench:
			return "source quench"
		case layers.ICMPv4TypeRedirect:
			return "redirect"
		case layers.ICMPv4TypeTimeExceeded:
			if code == 1 {
				return "fragment reassembly time exceeded"
			}
			return "time to live exceeded"
		case layers.ICMPv4TypeParameterProblem:
			return "parameter problem"
		}
	case ProtoICMPv6:
		switch typ {
		case layers.ICMPv6TypeEchoRequest:
			return "echo request"
		case layers.ICMPv6TypeEchoReply:
			return "echo reply"
		case layers.ICMPv6TypeDestinationUnreachable:
			return unreachable6(code)
		case layers.ICMPv6TypePacketTooBig:
			return "packet too big"
		case layers.ICMPv6TypeTimeExceeded:
			if code == 1 {
				return "fragment reassembly time exceeded"
			}
			return "hop limit exceeded"
		case layers.ICMPv6TypeParameterProblem:
			return "parameter problem"
		case layers.ICMPv6TypeNeighborSolicitation:
			return "neighbor solicitation"
		case layers.ICMPv6TypeNeighborAdvertisement:
			return "neighbor advertisement"
		}
	}
	return fmt.Sprintf("type %d code %d", typ, code)
}

// unreachable4 names an ICMP destination unreachable code (RFC 792, RFC 1812).
func unreachable4(code uint8) string {
	switch code {
	case 0:
		return "net unreachable"
	case 1:
		return "host unreachable"
	case 2:
		return "protocol unreachable"
	case 3:
		return "port unreachable"
	case 4:
		return "fragmentation needed"
	case 5:
		return "source route failed"
	case 6:
		return "net unknown"
	case 7:
		return "host unknown"
	case 9:
		return "net administratively prohibited"
	case 10:
		return "host administratively prohibited"
	case 13:
		return "communication administratively prohibited"
	}
	return fmt.Sprintf("destination unreachable (code %d)", code)
}

// unreachable6 names an ICMPv6 destination unreachable code (RFC 4443).
func unreachable6(code uint8) string {
	switch code {
	case 0:
		return "no route to destination"
	case 1:
		return "communication administratively prohibited"
	case 2:
		return "beyond scope of source address"
	case 3:
		return "address unreachable"
	case 4:
		return "port unreachable"
	case 5:
		return "source address failed policy"
	case 6:
		return "reject route to destination"
	}
	return fmt.Sprintf("destination unreachable (code %d)", code)
}

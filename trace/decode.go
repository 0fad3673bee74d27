package trace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// ErrMalformed is returned (wrapped) by Decode when not even the first header
// of an event's data can be read, so nothing about the packet is known.
var ErrMalformed = errors.New("malformed packet")

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

package trace

import (
	"errors"
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// The builders below make real packets with gopacket's serializers, so the
// decoder and the correlation are tested against the bytes a kernel would
// hand over, cut to eventSnapLen like the tc program's copy.

// eventSnapLen is how many bytes of a packet the tc program copies.
const eventSnapLen = 128

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xaa}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xbb}
)

func serializeLayers(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ipHeader returns an IPv4 or IPv6 header (by the family of src) for proto.
func ipHeader(src, dst netip.Addr, proto layers.IPProtocol) gopacket.NetworkLayer {
	if src.Is4() {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 0x1234, Protocol: proto,
			SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	}
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto,
		SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
}

// pingData is a ping's 56 bytes of data starting with the tag.
func pingData(tag Tag) gopacket.Payload {
	return gopacket.Payload(append(tag.Append(nil), make([]byte, 56-TagLen)...))
}

// echoPacket returns an IP packet: an echo request (reply false) or reply from
// src to dst with the tag in its payload.
func echoPacket(t testing.TB, src, dst string, reply bool, id, seq uint16, tag Tag) []byte {
	t.Helper()
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	if s.Is4() {
		typ := uint8(layers.ICMPv4TypeEchoRequest)
		if reply {
			typ = layers.ICMPv4TypeEchoReply
		}
		return serializeLayers(t, ipHeader(s, d, layers.IPProtocolICMPv4).(gopacket.SerializableLayer),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: id, Seq: seq}, pingData(tag))
	}
	typ := uint8(layers.ICMPv6TypeEchoRequest)
	if reply {
		typ = layers.ICMPv6TypeEchoReply
	}
	ip := ipHeader(s, d, layers.IPProtocolICMPv6)
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serializeLayers(t, ip.(gopacket.SerializableLayer), icmp,
		&layers.ICMPv6Echo{Identifier: id, SeqNumber: seq}, pingData(tag))
}

// udpPacket returns an IP packet carrying a UDP datagram with payload.
func udpPacket(t testing.TB, src, dst string, payload []byte) []byte {
	t.Helper()
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	ip := ipHeader(s.Addr(), d.Addr(), layers.IPProtocolUDP)
	u := &layers.UDP{SrcPort: layers.UDPPort(s.Port()), DstPort: layers.UDPPort(d.Port())}
	if err := u.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serializeLayers(t, ip.(gopacket.SerializableLayer), u, gopacket.Payload(payload))
}

// taggedPayload is a UDP probe's payload: the tag and some padding.
func taggedPayload(tag Tag) []byte { return append(tag.Append(nil), "hopcheck"...) }

// tcpPacket returns an IP packet carrying a TCP segment with n bytes of data.
func tcpPacket(t testing.TB, src, dst string, flags TCPFlags, seq, ack uint32, n int) []byte {
	t.Helper()
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	ip := ipHeader(s.Addr(), d.Addr(), layers.IPProtocolTCP)
	seg := &layers.TCP{
		SrcPort: layers.TCPPort(s.Port()), DstPort: layers.TCPPort(d.Port()),
		Seq: seq, Ack: ack, Window: 64240,
		FIN: flags.Has(TCPFin), SYN: flags.Has(TCPSyn), RST: flags.Has(TCPRst), PSH: flags.Has(TCPPsh),
		ACK: flags.Has(TCPAck), URG: flags.Has(TCPUrg), ECE: flags.Has(TCPEce), CWR: flags.Has(TCPCwr),
	}
	if flags.Has(TCPSyn) {
		// A SYN as Linux sends it: MSS, SACK permitted, timestamps, window
		// scale; 40 header bytes, so truncation matters.
		seg.Options = []layers.TCPOption{
			{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
			{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
		}
	}
	if err := seg.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serializeLayers(t, ip.(gopacket.SerializableLayer), seg, gopacket.Payload(make([]byte, n)))
}

// icmpErrPacket returns an IP packet: an ICMP error from src to dst quoting the
// whole IP packet quoted, as Linux does for packets that fit in 576 bytes.
func icmpErrPacket(t testing.TB, src, dst string, typ, code uint8, quoted []byte) []byte {
	t.Helper()
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	if s.Is4() {
		return serializeLayers(t, ipHeader(s, d, layers.IPProtocolICMPv4).(gopacket.SerializableLayer),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code)}, gopacket.Payload(quoted))
	}
	ip := ipHeader(s, d, layers.IPProtocolICMPv6)
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	// 4 unused bytes, then the quote.
	return serializeLayers(t, ip.(gopacket.SerializableLayer), icmp, gopacket.Payload(append(make([]byte, 4), quoted...)))
}

// neighborFrame returns an Ethernet frame: an ARP request or reply, or for
// IPv6 senders the neighbor solicitation or advertisement.
func neighborFrame(t testing.TB, op ARPOp, senderMAC net.HardwareAddr, sender, target string) []byte {
	t.Helper()
	s, d := netip.MustParseAddr(sender), netip.MustParseAddr(target)
	broadcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if s.Is4() {
		dst, tmac := broadcast, make(net.HardwareAddr, 6)
		if op == ARPReply {
			dst, tmac = macA, macA
		}
		return serializeLayers(t,
			&layers.Ethernet{SrcMAC: senderMAC, DstMAC: dst, EthernetType: layers.EthernetTypeARP},
			&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
				HwAddressSize: 6, ProtAddressSize: 4, Operation: uint16(op),
				SourceHwAddress: senderMAC, SourceProtAddress: s.AsSlice(),
				DstHwAddress: tmac, DstProtAddress: d.AsSlice()})
	}
	if op == ARPRequest {
		// Sent from sender to target's solicited-node multicast group.
		t16 := d.As16()
		group := netip.AddrFrom16([16]byte{0xff, 0x02, 11: 1, 12: 0xff, 13: t16[13], 14: t16[14], 15: t16[15]})
		ip := ipHeader(s, group, layers.IPProtocolICMPv6).(*layers.IPv6)
		ip.HopLimit = 255
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
		_ = icmp.SetNetworkLayerForChecksum(ip)
		return serializeLayers(t,
			&layers.Ethernet{SrcMAC: senderMAC, DstMAC: net.HardwareAddr{0x33, 0x33, 0xff, t16[13], t16[14], t16[15]}, EthernetType: layers.EthernetTypeIPv6},
			ip, icmp, &layers.ICMPv6NeighborSolicitation{TargetAddress: d.AsSlice(),
				Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: senderMAC}}})
	}
	// An advertisement of sender, sent to target (who solicited it).
	ip := ipHeader(s, d, layers.IPProtocolICMPv6).(*layers.IPv6)
	ip.HopLimit = 255
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)}
	_ = icmp.SetNetworkLayerForChecksum(ip)
	return serializeLayers(t,
		&layers.Ethernet{SrcMAC: senderMAC, DstMAC: macA, EthernetType: layers.EthernetTypeIPv6},
		ip, icmp, &layers.ICMPv6NeighborAdvertisement{Flags: 0x60, TargetAddress: s.AsSlice(),
			Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: senderMAC}}})
}

// ethFrame prepends an Ethernet header (macA > macB) to an IP packet.
func ethFrame(ip []byte) []byte {
	typ := []byte{0x08, 0x00}
	if ip[0]>>4 == 6 {
		typ = []byte{0x86, 0xdd}
	}
	f := append(append(append([]byte(nil), macB...), macA...), typ...)
	return append(f, ip...)
}

// vxlanPacket wraps an Ethernet frame in VXLAN/UDP/IP from src to dst (ports).
func vxlanPacket(t testing.TB, src, dst string, vni uint32, frame []byte) []byte {
	t.Helper()
	hdr := []byte{0x08, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
	return udpPacket(t, src, dst, append(hdr, frame...))
}

// snapData cuts data to what the tc program copies.
func snapData(data []byte) []byte { return data[:min(len(data), eventSnapLen)] }

func TestDecode(t *testing.T) {
	tag := Tag(0x0102030405060708)
	v4 := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	tests := []struct {
		name  string
		layer Layer
		data  []byte
		want  Packet
	}{
		{
			name:  "tagged echo request",
			layer: LayerEthernet,
			data:  ethFrame(echoPacket(t, "10.0.0.2", "10.0.0.3", false, 7, 1, tag)),
			want: Packet{SrcMAC: macA, DstMAC: macB, EtherType: 0x0800, Src: v4("10.0.0.2"), Dst: v4("10.0.0.3"),
				TTL: 64, Proto: ProtoICMP, ICMP: &ICMP{Type: 8, ID: 7, Seq: 1}, Tag: tag, Tagged: true},
		},
		{
			name:  "ICMPv6 echo reply",
			layer: LayerEthernet,
			data:  ethFrame(echoPacket(t, "2001:db8::3", "2001:db8::2", true, 9, 2, tag)),
			want: Packet{SrcMAC: macA, DstMAC: macB, EtherType: 0x86dd, Src: v4("2001:db8::3"), Dst: v4("2001:db8::2"),
				TTL: 64, Proto: ProtoICMPv6, ICMP: &ICMP{Type: 129, ID: 9, Seq: 2}, Tag: tag, Tagged: true},
		},
		{
			name:  "TCP SYN with options",
			layer: LayerEthernet,
			data:  ethFrame(tcpPacket(t, "10.0.0.2:40000", "10.0.0.3:80", TCPSyn, 0xfffffff0, 0, 0)),
			want: Packet{SrcMAC: macA, DstMAC: macB, EtherType: 0x0800, Src: v4("10.0.0.2"), Dst: v4("10.0.0.3"),
				TTL: 64, Proto: ProtoTCP, SrcPort: 40000, DstPort: 80, TCP: &TCP{Flags: TCPSyn, Seq: 0xfffffff0}},
		},
		{
			// Port 53 must not make the decoder read the probe as DNS.
			name:  "tagged UDP to port 53, from the IP header (drop event)",
			layer: LayerIPv4,
			data:  udpPacket(t, "10.0.0.2:41000", "203.0.113.8:53", taggedPayload(tag)),
			want: Packet{Src: v4("10.0.0.2"), Dst: v4("203.0.113.8"), TTL: 64, Proto: ProtoUDP,
				SrcPort: 41000, DstPort: 53, Tag: tag, Tagged: true},
		},
		{
			name:  "ARP request",
			layer: LayerEthernet,
			data:  neighborFrame(t, ARPRequest, macA, "10.0.0.2", "10.0.0.1"),
			want: Packet{SrcMAC: macA, DstMAC: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, EtherType: 0x0806,
				Proto: ProtoARP, ARP: &ARP{Op: ARPRequest, SenderMAC: macA, SenderIP: v4("10.0.0.2"),
					TargetMAC: make(net.HardwareAddr, 6), TargetIP: v4("10.0.0.1")}},
		},
		{
			name:  "IPv6 neighbor advertisement as an ARP reply",
			layer: LayerEthernet,
			data:  neighborFrame(t, ARPReply, macB, "2001:db8::1", "2001:db8::2"),
			want: Packet{SrcMAC: macB, DstMAC: macA, EtherType: 0x86dd, Src: v4("2001:db8::1"), Dst: v4("2001:db8::2"),
				TTL: 255, Proto: ProtoICMPv6, ICMP: &ICMP{Type: 136},
				ARP: &ARP{Op: ARPReply, SenderMAC: macB, SenderIP: v4("2001:db8::1"), TargetMAC: macA, TargetIP: v4("2001:db8::2")}},
		},
		{
			name:  "host unreachable quoting a tagged echo",
			layer: LayerEthernet,
			data:  ethFrame(icmpErrPacket(t, "10.0.0.1", "10.0.0.2", 3, 1, echoPacket(t, "10.0.0.2", "192.0.2.9", false, 7, 1, tag))),
			want: Packet{SrcMAC: macA, DstMAC: macB, EtherType: 0x0800, Src: v4("10.0.0.1"), Dst: v4("10.0.0.2"),
				TTL: 64, Proto: ProtoICMP, ICMP: &ICMP{Type: 3, Code: 1},
				Quoted: &Quoted{Src: v4("10.0.0.2"), Dst: v4("192.0.2.9"), Proto: ProtoICMP,
					ICMP: &ICMP{Type: 8, ID: 7, Seq: 1}, Tag: tag, Tagged: true}},
		},
		{
			name:  "port unreachable quoting a tagged datagram, ICMPv6",
			layer: LayerEthernet,
			data:  ethFrame(icmpErrPacket(t, "2001:db8::3", "2001:db8::2", 1, 4, udpPacket(t, "[2001:db8::2]:41000", "[2001:db8::3]:7", taggedPayload(tag)))),
			want: Packet{SrcMAC: macA, DstMAC: macB, EtherType: 0x86dd, Src: v4("2001:db8::3"), Dst: v4("2001:db8::2"),
				TTL: 64, Proto: ProtoICMPv6, ICMP: &ICMP{Type: 1, Code: 4},
				Quoted: &Quoted{Src: v4("2001:db8::2"), Dst: v4("2001:db8::3"), Proto: ProtoUDP,
					SrcPort: 41000, DstPort: 7, Tag: tag, Tagged: true}},
		},
		{
			name:  "error quoting a TCP SYN",
			layer: LayerEthernet,
			data:  ethFrame(icmpErrPacket(t, "10.0.0.1", "10.0.0.2", 3, 13, tcpPacket(t, "10.0.0.2:40000", "192.0.2.9:80", TCPSyn, 77, 0, 0))),
			want: Packet{SrcMAC: macA, DstMAC: macB, EtherType: 0x0800, Src: v4("10.0.0.1"), Dst: v4("10.0.0.2"),
				TTL: 64, Proto: ProtoICMP, ICMP: &ICMP{Type: 3, Code: 13},
				Quoted: &Quoted{Src: v4("10.0.0.2"), Dst: v4("192.0.2.9"), Proto: ProtoTCP,
					SrcPort: 40000, DstPort: 80, TCPSeq: 77}},
		},
		{
			name:  "error whose quote is cut short",
			layer: LayerEthernet,
			data:  ethFrame(icmpErrPacket(t, "10.0.0.1", "10.0.0.2", 3, 1, echoPacket(t, "10.0.0.2", "192.0.2.9", false, 7, 1, tag)[:10])),
			want: Packet{SrcMAC: macA, DstMAC: macB, EtherType: 0x0800, Src: v4("10.0.0.1"), Dst: v4("10.0.0.2"),
				TTL: 64, Proto: ProtoICMP, ICMP: &ICMP{Type: 3, Code: 1}},
		},
		{
			name:  "VXLAN on Linux's default port carrying a tagged echo",
			layer: LayerEthernet,
			data:  ethFrame(vxlanPacket(t, "172.16.1.2:51000", "172.16.2.2:8472", 42, ethFrame(echoPacket(t, "10.0.0.2", "10.0.0.3", false, 7, 1, tag)))),
			want: Packet{SrcMAC: macA, DstMAC: macB, EtherType: 0x0800, Src: v4("172.16.1.2"), Dst: v4("172.16.2.2"),
				TTL: 64, Proto: ProtoUDP, SrcPort: 51000, DstPort: 8472, Encap: &Encap{Kind: "vxlan", VNI: 42},
				Inner: &Packet{SrcMAC: macA, DstMAC: macB, EtherType: 0x0800, Src: v4("10.0.0.2"), Dst: v4("10.0.0.3"),
					TTL: 64, Proto: ProtoICMP, ICMP: &ICMP{Type: 8, ID: 7, Seq: 1}, Tag: tag, Tagged: true}},
		},
		{
			name:  "TCP header cut short",
			layer: LayerEthernet,
			data:  ethFrame(tcpPacket(t, "10.0.0.2:40000", "10.0.0.3:80", TCPSyn, 1, 0, 0))[:14+20+10],
			want: Packet{SrcMAC: macA, DstMAC: macB, EtherType: 0x0800, Src: v4("10.0.0.2"), Dst: v4("10.0.0.3"),
				TTL: 64, Proto: ProtoTCP, Incomplete: true},
		},
		{
			name:  "not IP",
			layer: LayerEthernet,
			data:  append(append(append([]byte(nil), macB...), macA...), 0x88, 0xcc, 1, 2, 3),
			want:  Packet{SrcMAC: macA, DstMAC: macB, EtherType: 0x88cc},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := snapData(tt.data)
			got, err := Decode(Event{Kind: KindPacket, Layer: tt.layer, Len: uint32(len(tt.data)), Data: data})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode:\n got %#v\nwant %#v", got, tt.want)
			}
			// The packet must not alias the event's buffer.
			for i := range data {
				data[i] = 0xff
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode result changed with the event's data")
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	tests := []struct {
		name  string
		layer Layer
		data  []byte
	}{
		{"empty", LayerEthernet, nil},
		{"short Ethernet", LayerEthernet, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"short IPv4", LayerIPv4, []byte{0x45, 0, 0, 20, 0, 0}},
		{"short IPv6", LayerIPv6, make([]byte, 30)},
		{"unknown layer", Layer(9), make([]byte, 60)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(Event{Kind: KindPacket, Layer: tt.layer, Data: tt.data})
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestPacketString(t *testing.T) {
	tag := Tag(0xa1)
	tests := []struct {
		data []byte
		want string
	}{
		{ethFrame(echoPacket(t, "10.0.0.2", "10.0.0.3", false, 7, 1, tag)), "10.0.0.2 > 10.0.0.3 icmp echo request id 7 seq 1 tag 00000000000000a1"},
		{ethFrame(tcpPacket(t, "10.0.0.2:40000", "10.0.0.3:80", TCPSyn|TCPAck, 5, 6, 0)), "10.0.0.2:40000 > 10.0.0.3:80 tcp [SYN|ACK] seq 5 ack 6"},
		{neighborFrame(t, ARPRequest, macA, "10.0.0.2", "10.0.0.1"), "arp who-has 10.0.0.1 tell 10.0.0.2"},
		{neighborFrame(t, ARPReply, macB, "10.0.0.1", "10.0.0.2"), "arp reply 10.0.0.1 is-at 02:00:00:00:00:bb"},
		{neighborFrame(t, ARPRequest, macA, "2001:db8::2", "2001:db8::1"), "icmpv6 neighbor who-has 2001:db8::1 tell 2001:db8::2"},
		{ethFrame(icmpErrPacket(t, "10.0.0.1", "10.0.0.2", 3, 3, udpPacket(t, "10.0.0.2:41000", "10.0.0.3:7", taggedPayload(tag)))),
			"10.0.0.1 > 10.0.0.2 icmp port unreachable (about 10.0.0.2 > 10.0.0.3 udp tag 00000000000000a1)"},
		{ethFrame(vxlanPacket(t, "172.16.1.2:51000", "172.16.2.2:4789", 42, ethFrame(udpPacket(t, "10.0.0.2:41000", "10.0.0.3:7", taggedPayload(tag))))),
			"vxlan vni 42 172.16.1.2 > 172.16.2.2: 10.0.0.2:41000 > 10.0.0.3:7 udp tag 00000000000000a1"},
	}
	for _, tt := range tests {
		p, err := Decode(Event{Layer: LayerEthernet, Data: snapData(tt.data)})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestTCPFlagsString(t *testing.T) {
	tests := []struct {
		f    TCPFlags
		want string
	}{
		{0, "none"},
		{TCPSyn, "SYN"},
		{TCPSyn | TCPAck, "SYN|ACK"},
		{TCPFin | TCPPsh | TCPAck | TCPCwr, "FIN|PSH|ACK|CWR"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("%08b.String() = %q, want %q", uint8(tt.f), got, tt.want)
		}
	}
}

func TestICMPText(t *testing.T) {
	tests := []struct {
		proto     string
		typ, code uint8
		want      string
	}{
		{ProtoICMP, 3, 1, "host unreachable"},
		{ProtoICMP, 3, 3, "port unreachable"},
		{ProtoICMP, 3, 13, "communication administratively prohibited"},
		{ProtoICMP, 3, 8, "destination unreachable (code 8)"},
		{ProtoICMP, 11, 0, "time to live exceeded"},
		{ProtoICMPv6, 1, 3, "address unreachable"},
		{ProtoICMPv6, 3, 0, "hop limit exceeded"},
		{ProtoICMPv6, 200, 1, "type 200 code 1"},
	}
	for _, tt := range tests {
		if got := icmpText(tt.proto, tt.typ, tt.code); got != tt.want {
			t.Errorf("icmpText(%s, %d, %d) = %q, want %q", tt.proto, tt.typ, tt.code, got, tt.want)
		}
	}
}

// BenchmarkDecode measures decoding one tc event; correlation decodes every
// event in a probe's window.
func BenchmarkDecode(b *testing.B) {
	tag := Tag(1)
	events := map[string][]byte{
		"echo": ethFrame(echoPacket(b, "10.0.0.2", "10.0.0.3", false, 7, 1, tag)),
		"syn":  ethFrame(tcpPacket(b, "10.0.0.2:40000", "10.0.0.3:80", TCPSyn, 1, 0, 0)),
		"arp":  neighborFrame(b, ARPRequest, macA, "10.0.0.2", "10.0.0.1"),
	}
	for name, data := range events {
		e := Event{Kind: KindPacket, Layer: LayerEthernet, Time: time.Second, Data: snapData(data)}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Decode(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

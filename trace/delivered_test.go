package trace

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// icmpDrop is a drop event of an IPv4 ICMP message of type typ.
func icmpDrop(t *testing.T, typ uint8, reason uint32, reasonName, location string) Event {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4,
		SrcIP: net.ParseIP("10.0.0.3"), DstIP: net.ParseIP("10.0.0.2")}
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: 7, Seq: 1}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, icmp, gopacket.Payload("abcdefghijkl")); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	return Event{Kind: KindDrop, Layer: LayerIPv4, Data: data, Len: uint32(len(data)),
		Reason: reason, ReasonName: reasonName, Location: location}
}

// tcpDrop is a drop event of an IPv4 TCP segment with the given flags.
func tcpDrop(t *testing.T, syn, ack, fin bool, reason uint32, reasonName, location string) Event {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP,
		SrcIP: net.ParseIP("10.0.0.1"), DstIP: net.ParseIP("10.0.0.2")}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1, Ack: 2, SYN: syn, ACK: ack, FIN: fin, Window: 1000}
	tcp.SetNetworkLayerForChecksum(ip)
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, tcp); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	return Event{Kind: KindDrop, Layer: LayerIPv4, Data: data, Len: uint32(len(data)),
		Reason: reason, ReasonName: reasonName, Location: location}
}

func TestFreedAfterDelivery(t *testing.T) {
	const echoReply, echoRequest = 0, 8
	for _, tc := range []struct {
		name string
		ev   func(t *testing.T) Event
		want bool
	}{
		{"echo reply at a host whose pinger reads a raw socket (iputils as root)", func(t *testing.T) Event {
			return icmpDrop(t, echoReply, 3, "NO_SOCKET", "ping_rcv+0xb3")
		}, true},
		{"echo reply freed without reason on an old kernel", func(t *testing.T) Event {
			return icmpDrop(t, echoReply, 0, "", "icmp_rcv+0x1a5")
		}, true},
		{"echo reply dropped by netfilter", func(t *testing.T) Event {
			return icmpDrop(t, echoReply, 5, "NETFILTER_DROP", "nf_hook_slow+0x9c")
		}, false},
		{"echo request with no socket is not a reply", func(t *testing.T) Event {
			return icmpDrop(t, echoRequest, 3, "NO_SOCKET", "icmp_rcv+0x1a5")
		}, false},
		{"echo request freed without reason elsewhere", func(t *testing.T) Event {
			return icmpDrop(t, echoRequest, 0, "", "ip_forward+0x20")
		}, false},
		{"a FIN after the close meets a TIME_WAIT socket (seen in CI)", func(t *testing.T) Event {
			return tcpDrop(t, false, true, true, 2, "NOT_SPECIFIED", "tcp_v4_rcv+0x99")
		}, true},
		{"an ACK with no socket left", func(t *testing.T) Event {
			return tcpDrop(t, false, true, false, 3, "NO_SOCKET", "tcp_v4_rcv+0x99")
		}, true},
		{"a SYN with no listener is a drop", func(t *testing.T) Event {
			return tcpDrop(t, true, false, false, 3, "NO_SOCKET", "tcp_v4_rcv+0x99")
		}, false},
		{"a SYN-ACK freed without reason is a drop", func(t *testing.T) Event {
			return tcpDrop(t, true, true, false, 2, "NOT_SPECIFIED", "tcp_v4_rcv+0x99")
		}, false},
		{"an ACK dropped by netfilter is a drop", func(t *testing.T) Event {
			return tcpDrop(t, false, true, false, 5, "NETFILTER_DROP", "nf_hook_slow+0x9c")
		}, false},
		{"a packet event is never a drop", func(t *testing.T) Event {
			ev := icmpDrop(t, echoReply, 3, "NO_SOCKET", "ping_rcv+0xb3")
			ev.Kind = KindPacket
			return ev
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := tc.ev(t)
			pkt, err := Decode(ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := FreedAfterDelivery(&ev, &pkt); got != tc.want {
				t.Errorf("FreedAfterDelivery = %v, want %v", got, tc.want)
			}
		})
	}
}

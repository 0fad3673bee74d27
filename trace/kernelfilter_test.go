package trace

import (
	"context"
	"net"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// frameOf serialises ls behind an Ethernet header, with lengths and
// checksums filled in.
func frameOf(t *testing.T, ethType layers.EthernetType, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	eth := &layers.Ethernet{
		SrcMAC:       net.HardwareAddr{2, 0, 0, 0, 0, 1},
		DstMAC:       net.HardwareAddr{2, 0, 0, 0, 0, 2},
		EthernetType: ethType,
	}
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		append([]gopacket.SerializableLayer{eth}, ls...)...)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ip4(src, dst string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
}

func ip6(src, dst string, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
}

// filterCase is a frame run through the tc programs of namespace A, whose
// addresses are testAddrA (10.99.0.1), lo's and its link-local ones.
type filterCase struct {
	name  string
	frame func(t *testing.T, tag []byte) []byte
	// ingress and egress say whether the frame must be reported when it
	// arrives in A and when it leaves A.
	ingress, egress bool
}

func udpFrame(t *testing.T, src, dst string, payload []byte) []byte {
	ip := ip4(src, dst, layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: 40000, DstPort: testPort}
	udp.SetNetworkLayerForChecksum(ip)
	return frameOf(t, layers.EthernetTypeIPv4, ip, udp, gopacket.Payload(payload))
}

func arpFrame(t *testing.T, op uint16, sender, target string) []byte {
	return frameOf(t, layers.EthernetTypeARP, &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: op,
		SourceHwAddress: []byte{2, 0, 0, 0, 0, 1}, SourceProtAddress: net.ParseIP(sender).To4(),
		DstHwAddress: []byte{0, 0, 0, 0, 0, 0}, DstProtAddress: net.ParseIP(target).To4(),
	})
}

func icmp6Frame(t *testing.T, src, dst string, typ uint8, body []byte) []byte {
	ip := ip6(src, dst, layers.IPProtocolICMPv6)
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, 0)}
	icmp.SetNetworkLayerForChecksum(ip)
	return frameOf(t, layers.EthernetTypeIPv6, ip, icmp, gopacket.Payload(body))
}

func tcpFrame(t *testing.T, syn, ack bool, payload []byte) []byte {
	ip := ip4(testAddrA, testAddrB, layers.IPProtocolTCP)
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1000, Ack: 2000, SYN: syn, ACK: ack, Window: 1000}
	tcp.SetNetworkLayerForChecksum(ip)
	return frameOf(t, layers.EthernetTypeIPv4, ip, tcp, gopacket.Payload(payload))
}

// vxlanFrame wraps inner (an Ethernet frame) in VXLAN over UDP between
// two addresses of the documentation ranges.
func vxlanFrame(t *testing.T, inner []byte) []byte {
	ip := ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: 50000, DstPort: 4789}
	udp.SetNetworkLayerForChecksum(ip)
	vx := []byte{0x08, 0, 0, 0, 0, 0, 42, 0}
	return frameOf(t, layers.EthernetTypeIPv4, ip, udp, gopacket.Payload(append(vx, inner...)))
}

var filterCases = []filterCase{
	{"tagged UDP probe", func(t *testing.T, tag []byte) []byte {
		return udpFrame(t, testAddrA, testAddrB, tag)
	}, true, true},
	{"untagged UDP", func(t *testing.T, _ []byte) []byte {
		return udpFrame(t, testAddrA, testAddrB, []byte("just some traffic"))
	}, false, false},
	{"tagged echo request", func(t *testing.T, tag []byte) []byte {
		return frameOf(t, layers.EthernetTypeIPv4, ip4(testAddrA, testAddrB, layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 1}, gopacket.Payload(tag))
	}, true, true},
	{"untagged echo request (someone else's ping)", func(t *testing.T, _ []byte) []byte {
		return frameOf(t, layers.EthernetTypeIPv4, ip4(testAddrA, testAddrB, layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 1}, gopacket.Payload("abcdefghijkl"))
	}, false, false},
	{"ICMP port unreachable", func(t *testing.T, _ []byte) []byte {
		return frameOf(t, layers.EthernetTypeIPv4, ip4(testAddrB, testAddrA, layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}, gopacket.Payload(make([]byte, 28)))
	}, true, true},
	{"TCP SYN", func(t *testing.T, _ []byte) []byte { return tcpFrame(t, true, false, nil) }, true, true},
	{"TCP data with a probe tag", func(t *testing.T, tag []byte) []byte { return tcpFrame(t, false, true, tag) }, true, true},
	{"TCP bulk data", func(t *testing.T, _ []byte) []byte {
		return tcpFrame(t, false, true, []byte("some bulk data of a stream"))
	}, false, false},
	{"ARP request sent by A", func(t *testing.T, _ []byte) []byte {
		return arpFrame(t, layers.ARPRequest, testAddrA, testAddrB)
	}, false, true},
	{"ARP request for A's address", func(t *testing.T, _ []byte) []byte {
		return arpFrame(t, layers.ARPRequest, testAddrB, testAddrA)
	}, true, false},
	{"ARP request between two others, flooded through A", func(t *testing.T, _ []byte) []byte {
		return arpFrame(t, layers.ARPRequest, "10.99.0.7", "10.99.0.8")
	}, false, false},
	{"ARP reply to A (from a proxy)", func(t *testing.T, _ []byte) []byte {
		return arpFrame(t, layers.ARPReply, "10.99.0.8", testAddrA)
	}, true, false},
	{"IPv6 router solicitation", func(t *testing.T, _ []byte) []byte {
		return icmp6Frame(t, "fe80::1", "ff02::2", 133, make([]byte, 4))
	}, false, false},
	{"MLDv2 report", func(t *testing.T, _ []byte) []byte {
		return icmp6Frame(t, "fe80::1", "ff02::16", 143, make([]byte, 4))
	}, false, false},
	{"IPv6 duplicate address detection", func(t *testing.T, _ []byte) []byte {
		body := append(make([]byte, 4), net.ParseIP("2001:db8::7")...)
		return icmp6Frame(t, "::", "ff02::1:ff00:7", 135, body)
	}, false, false},
	{"tagged ICMPv6 echo request", func(t *testing.T, tag []byte) []byte {
		return icmp6Frame(t, "2001:db8::1", "2001:db8::2", 128, append([]byte{0, 1, 0, 1}, tag...))
	}, true, true},
	{"tagged probe inside VXLAN", func(t *testing.T, tag []byte) []byte {
		return vxlanFrame(t, udpFrame(t, "10.200.0.1", "10.200.0.2", tag))
	}, true, true},
	{"untagged traffic inside VXLAN", func(t *testing.T, _ []byte) []byte {
		return vxlanFrame(t, udpFrame(t, "10.200.0.1", "10.200.0.2", []byte("nothing to see here")))
	}, false, false},
}

// TestTCProgramsReportOnlyWhatProbesNeed runs crafted frames through both
// tc programs in a traced namespace: only what correlating and diagnosing
// a probe needs is reported, unless AllPackets asks for everything.
func TestTCProgramsReportOnlyWhatProbesNeed(t *testing.T) {
	topo := newVethTopology(t)
	for _, all := range []bool{false, true} {
		name := "probes only"
		if all {
			name = "all packets"
		}
		t.Run(name, func(t *testing.T) {
			tr, err := New(Options{AllPackets: all, Ephemeral: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tr.Close() })
			if err := tr.AddNamespace("A", topo.a); err != nil {
				t.Fatal(err)
			}
			if err := tr.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			tags := testTags(len(filterCases))
			for i, tc := range filterCases {
				frame := tc.frame(t, tags[i].Append(nil))
				before := len(tr.Events())
				for _, p := range []struct {
					prog *ebpf.Program
					dir  Direction
					want bool
				}{{tr.programs.tc.ingress, Ingress, tc.ingress}, {tr.programs.tc.egress, Egress, tc.egress}} {
					runTC(t, topo.a, p.prog, frame)
					flushTracer(t, tr)
					got := false
					for _, ev := range tr.Events()[before:] {
						got = got || ev.Kind == KindPacket && ev.Dir == p.dir
					}
					if want := p.want || all; got != want {
						t.Errorf("%s, %s: reported %v, want %v", tc.name, p.dir, got, want)
					}
					before = len(tr.Events())
				}
			}
		})
	}
}

// TestFlushServedWhileTrafficFlows: Flush is served by an event stamped
// after the request, without waiting for the ring to run empty, which
// never happens while traffic outruns the reader.
func TestFlushServedWhileTrafficFlows(t *testing.T) {
	tr := &Tracer{flushCh: make(chan struct{})}
	tr.flushReq = 2
	tr.flushWaits = []flushWait{{req: 1, at: 100}, {req: 2, at: 100 + flushGuard + 5}}
	ch := tr.flushCh

	tr.passed(100 + flushGuard) // not past the first request's guard
	if tr.flushServed != 0 {
		t.Fatalf("served %d after an event within the guard, want 0", tr.flushServed)
	}
	tr.passed(100 + flushGuard + 1)
	if tr.flushServed != 1 || len(tr.flushWaits) != 1 {
		t.Fatalf("served %d with %d waiting, want 1 and 1", tr.flushServed, len(tr.flushWaits))
	}
	select {
	case <-ch:
	default:
		t.Fatal("serving did not wake Flush")
	}
	tr.serveFlush(2) // the drain serves what it noted
	if tr.flushServed != 2 || len(tr.flushWaits) != 0 {
		t.Fatalf("served %d with %d waiting, want 2 and 0", tr.flushServed, len(tr.flushWaits))
	}
}

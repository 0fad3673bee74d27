package trace

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// ktime returns a kernel time n microseconds after an arbitrary boot offset, so
// tests do not depend on times starting at zero.
func ktime(n int) time.Duration { return time.Hour + time.Duration(n)*time.Microsecond }

// packetEvent is a tc event: frame (Ethernet) crossing point "ns/if" at
// time ktime(at).
func packetEvent(at int, point string, dir Direction, frame []byte) Event {
	ns, ifname, _ := strings.Cut(point, "/")
	return Event{Kind: KindPacket, Time: ktime(at), NS: ns, If: ifname, Dir: dir,
		Len: uint32(len(frame)), Layer: LayerEthernet, Data: snapData(frame)}
}

// crossing is the same frame crossing several points, 10µs apart from at.
func crossing(at int, frame []byte, hops ...string) []Event {
	var evs []Event
	for i, h := range hops {
		point, dir, _ := strings.Cut(h, " ")
		d := Egress
		if dir == "in" {
			d = Ingress
		}
		evs = append(evs, packetEvent(at+10*i, point, d, frame))
	}
	return evs
}

// dropEvent is a kfree_skb event for an IP packet (no MAC header) in point.
func dropEvent(at int, point, reason, location string, ip []byte) Event {
	ns, ifname, _ := strings.Cut(point, "/")
	layer := LayerIPv4
	if ip[0]>>4 == 6 {
		layer = LayerIPv6
	}
	return Event{Kind: KindDrop, Time: ktime(at), NS: ns, If: ifname, Len: uint32(len(ip)),
		Layer: layer, Data: snapData(ip), ReasonName: reason, Location: location}
}

func concatEvents(parts ...[]Event) []Event {
	var all []Event
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// renderTrace writes a trace as the lines a report would show, one per item.
func renderTrace(tr Trace) string {
	var b strings.Builder
	for _, h := range tr.Request {
		fmt.Fprintf(&b, "request %s\n", h)
	}
	for _, h := range tr.Reply {
		fmt.Fprintf(&b, "reply %s\n", h)
	}
	for _, x := range tr.Translations {
		fmt.Fprintf(&b, "nat %s %s\n", offset(x.T), x)
	}
	for _, a := range tr.ARP {
		fmt.Fprintf(&b, "arp %s\n", a)
	}
	for _, e := range tr.ICMPErrors {
		fmt.Fprintf(&b, "icmp %s %s\n", offset(e.T), e)
	}
	if d := tr.Drop; d != nil {
		fmt.Fprintf(&b, "drop %s %s (%s)\n", offset(d.T), d, d.Packet)
	}
	return b.String()
}

const (
	tagA = Tag(0xa1)
	tagB = Tag(0xb2) // another probe, running at the same time
)

func TestCorrelate(t *testing.T) {
	var (
		ap   = netip.MustParseAddrPort
		ns1  = "10.0.0.2"
		ns2  = "10.0.0.3"
		inet = "203.0.113.8"
	)
	bridgeOut := []string{"ns1/veth_1 out", "host/veth1 in", "host/veth2 out", "ns2/veth_2 in"}
	bridgeBack := []string{"ns2/veth_2 out", "host/veth2 in", "host/veth1 out", "ns1/veth_1 in"}
	natOut := []string{"ns1/veth_1 out", "host/veth1 in", "host/eth0 out", "internet/wan0 in"}
	natBack := []string{"internet/wan0 out", "host/eth0 in", "host/veth1 out", "ns1/veth_1 in"}
	// The probe connection's numbers wrap past 2^32 mid-connection.
	var isn, srv uint32 = 0xfffffff0, 5000

	tests := []struct {
		name   string
		probe  Probe
		events []Event
		want   string
	}{
		{
			name:  "ping across a bridge, two echoes, ARP first",
			probe: Probe{Tag: tagA, Proto: ProtoICMP, Dst: ap(ns2 + ":0"), SrcNS: "ns1", Start: ktime(0), End: ktime(3000)},
			events: concatEvents(
				crossing(1000, neighborFrame(t, ARPRequest, macA, ns1, ns2), bridgeOut...),
				crossing(1040, neighborFrame(t, ARPReply, macB, ns2, ns1), bridgeBack...),
				crossing(1100, ethFrame(echoPacket(t, ns1, ns2, false, 7, 1, tagA)), bridgeOut...),
				// Another ping, the other way, interleaved.
				crossing(1105, ethFrame(echoPacket(t, ns2, ns1, false, 9, 1, tagB)), bridgeBack...),
				crossing(1140, ethFrame(echoPacket(t, ns2, ns1, true, 7, 1, tagA)), bridgeBack...),
				// The reply reached hopcheck's raw socket; the kernel frees
				// the original for want of a ping socket. Not a drop.
				[]Event{dropEvent(1175, "ns1/veth_1", "NO_SOCKET", "ping_rcv+0xb3", echoPacket(t, ns2, ns1, true, 7, 1, tagA))},
				// The same on a kernel without drop reasons (5.15).
				[]Event{dropEvent(2175, "ns1/veth_1", "", "icmp_rcv+0x1a", echoPacket(t, ns2, ns1, true, 7, 2, tagA))},
				crossing(2100, ethFrame(echoPacket(t, ns1, ns2, false, 7, 2, tagA)), bridgeOut...),
				crossing(2140, ethFrame(echoPacket(t, ns2, ns1, true, 7, 2, tagA)), bridgeBack...),
				// A late duplicate outside the window.
				crossing(5000, ethFrame(echoPacket(t, ns1, ns2, false, 7, 3, tagA)), bridgeOut...),
			),
			want: `request +0s ns1/veth_1 egress 10.0.0.2 > 10.0.0.3 icmp len 98 x2
request +10µs host/veth1 ingress 10.0.0.2 > 10.0.0.3 icmp len 98 x2
request +20µs host/veth2 egress 10.0.0.2 > 10.0.0.3 icmp len 98 x2
request +30µs ns2/veth_2 ingress 10.0.0.2 > 10.0.0.3 icmp len 98 x2
reply +40µs ns2/veth_2 egress 10.0.0.3 > 10.0.0.2 icmp len 98 x2
reply +50µs host/veth2 ingress 10.0.0.3 > 10.0.0.2 icmp len 98 x2
reply +60µs host/veth1 egress 10.0.0.3 > 10.0.0.2 icmp len 98 x2
reply +70µs ns1/veth_1 ingress 10.0.0.3 > 10.0.0.2 icmp len 98 x2
arp -100µs who-has 10.0.0.3 tell 10.0.0.2 at ns1/veth_1: is-at 02:00:00:00:00:bb
`,
		},
		{
			name:  "MASQUERADE'd ping: source changes at host/eth0",
			probe: Probe{Tag: tagA, Proto: ProtoICMP, Dst: ap(inet + ":0"), SrcNS: "ns1", Start: ktime(0)},
			events: concatEvents(
				crossing(100, ethFrame(echoPacket(t, ns1, inet, false, 7, 1, tagA)), natOut[:2]...),
				// NAT may rewrite the echo ID too; the tag and sequence stay.
				crossing(120, ethFrame(echoPacket(t, "198.51.100.2", inet, false, 1234, 1, tagA)), natOut[2:]...),
				crossing(140, ethFrame(echoPacket(t, inet, "198.51.100.2", true, 1234, 1, tagA)), natBack[:2]...),
				crossing(160, ethFrame(echoPacket(t, inet, ns1, true, 7, 1, tagA)), natBack[2:]...),
			),
			want: `request +0s ns1/veth_1 egress 10.0.0.2 > 203.0.113.8 icmp len 98
request +10µs host/veth1 ingress 10.0.0.2 > 203.0.113.8 icmp len 98
request +20µs host/eth0 egress 198.51.100.2 > 203.0.113.8 icmp len 98
request +30µs internet/wan0 ingress 198.51.100.2 > 203.0.113.8 icmp len 98
reply +40µs internet/wan0 egress 203.0.113.8 > 198.51.100.2 icmp len 98
reply +50µs host/eth0 ingress 203.0.113.8 > 198.51.100.2 icmp len 98
reply +60µs host/veth1 egress 203.0.113.8 > 10.0.0.2 icmp len 98
reply +70µs ns1/veth_1 ingress 203.0.113.8 > 10.0.0.2 icmp len 98
nat +20µs SNAT 10.0.0.2 -> 198.51.100.2 at host/eth0
`,
		},
		{
			name: "DNAT'd TCP connection: 8080 -> 80",
			probe: Probe{Proto: ProtoTCP, Src: ap("198.51.100.1:40000"), Dst: ap("198.51.100.2:8080"),
				SrcNS: "internet", Start: ktime(0)},
			events: concatEvents(
				// SYN, SYN-ACK, ACK, 20 bytes of data (seq wraps), its ACK.
				crossing(100, ethFrame(tcpPacket(t, "198.51.100.1:40000", "198.51.100.2:8080", TCPSyn, isn, 0, 0)), natBack[:2]...),
				crossing(120, ethFrame(tcpPacket(t, "198.51.100.1:40000", "10.0.0.2:80", TCPSyn, isn, 0, 0)), natBack[2:]...),
				crossing(140, ethFrame(tcpPacket(t, "10.0.0.2:80", "198.51.100.1:40000", TCPSyn|TCPAck, srv, isn+1, 0)), natOut[:2]...),
				crossing(160, ethFrame(tcpPacket(t, "198.51.100.2:8080", "198.51.100.1:40000", TCPSyn|TCPAck, srv, isn+1, 0)), natOut[2:]...),
				crossing(200, ethFrame(tcpPacket(t, "198.51.100.1:40000", "198.51.100.2:8080", TCPAck, isn+1, srv+1, 0)), natBack[:2]...),
				crossing(220, ethFrame(tcpPacket(t, "198.51.100.1:40000", "10.0.0.2:80", TCPAck, isn+1, srv+1, 0)), natBack[2:]...),
				crossing(300, ethFrame(tcpPacket(t, "198.51.100.1:40000", "198.51.100.2:8080", TCPPsh|TCPAck, isn+1, srv+1, 20)), natBack[:2]...),
				crossing(320, ethFrame(tcpPacket(t, "198.51.100.1:40000", "10.0.0.2:80", TCPPsh|TCPAck, isn+1, srv+1, 20)), natBack[2:]...),
				crossing(340, ethFrame(tcpPacket(t, "10.0.0.2:80", "198.51.100.1:40000", TCPAck, srv+1, isn+21, 0)), natOut[:2]...),
				crossing(360, ethFrame(tcpPacket(t, "198.51.100.2:8080", "198.51.100.1:40000", TCPAck, srv+1, isn+21, 0)), natOut[2:]...),
			),
			want: `request +0s internet/wan0 egress 198.51.100.1:40000 > 198.51.100.2:8080 tcp len 74 x3
request +10µs host/eth0 ingress 198.51.100.1:40000 > 198.51.100.2:8080 tcp len 74 x3
request +20µs host/veth1 egress 198.51.100.1:40000 > 10.0.0.2:80 tcp len 74 x3
request +30µs ns1/veth_1 ingress 198.51.100.1:40000 > 10.0.0.2:80 tcp len 74 x3
reply +40µs ns1/veth_1 egress 10.0.0.2:80 > 198.51.100.1:40000 tcp len 74 x2
reply +50µs host/veth1 ingress 10.0.0.2:80 > 198.51.100.1:40000 tcp len 74 x2
reply +60µs host/eth0 egress 198.51.100.2:8080 > 198.51.100.1:40000 tcp len 74 x2
reply +70µs internet/wan0 ingress 198.51.100.2:8080 > 198.51.100.1:40000 tcp len 74 x2
nat +20µs DNAT 198.51.100.2:8080 -> 10.0.0.2:80 at host/veth1
`,
		},
		{
			name: "UDP probe dropped by netfilter, retried once",
			probe: Probe{Tag: tagA, Proto: ProtoUDP, Src: ap("10.0.0.2:41000"), Dst: ap(inet + ":53"),
				SrcNS: "ns1", Start: ktime(0), End: ktime(2000)},
			events: concatEvents(
				// Another probe's drop, earlier, in the same place.
				[]Event{dropEvent(90, "host/veth1", "NETFILTER_DROP", "nf_hook_slow+0x9c", udpPacket(t, "10.0.0.3:41000", inet+":53", taggedPayload(tagB)))},
				crossing(100, ethFrame(udpPacket(t, "10.0.0.2:41000", inet+":53", taggedPayload(tagA))), natOut[:2]...),
				[]Event{dropEvent(115, "host/veth1", "NETFILTER_DROP", "nf_hook_slow+0x9c", udpPacket(t, "10.0.0.2:41000", inet+":53", taggedPayload(tagA)))},
				crossing(1100, ethFrame(udpPacket(t, "10.0.0.2:41000", inet+":53", taggedPayload(tagA))), natOut[:2]...),
				[]Event{dropEvent(1115, "host/veth1", "NETFILTER_DROP", "nf_hook_slow+0x9c", udpPacket(t, "10.0.0.2:41000", inet+":53", taggedPayload(tagA)))},
			),
			want: `request +0s ns1/veth_1 egress 10.0.0.2:41000 > 203.0.113.8:53 udp len 62 x2
request +10µs host/veth1 ingress 10.0.0.2:41000 > 203.0.113.8:53 udp len 62 x2
drop +15µs dropped in host/veth1 at nf_hook_slow: NETFILTER_DROP (10.0.0.2:41000 > 203.0.113.8:53 udp tag 00000000000000a1)
`,
		},
		{
			name:  "ARP request without reply",
			probe: Probe{Tag: tagA, Proto: ProtoICMP, Dst: ap("10.0.0.9:0"), SrcNS: "ns1", Start: ktime(90), End: ktime(4000)},
			events: concatEvents(
				// Before the probe: not its exchange.
				crossing(50, neighborFrame(t, ARPRequest, macA, ns1, "10.0.0.9"), bridgeOut...),
				// Three tries, each flooded through the bridge.
				crossing(100, neighborFrame(t, ARPRequest, macA, ns1, "10.0.0.9"), bridgeOut...),
				crossing(1100, neighborFrame(t, ARPRequest, macA, ns1, "10.0.0.9"), bridgeOut...),
				// ns2 resolves its gateway meanwhile: not on the probe's path.
				crossing(1500, neighborFrame(t, ARPRequest, macB, ns2, "10.0.0.1"), "ns2/veth_2 out", "host/veth2 in"),
				crossing(1520, neighborFrame(t, ARPReply, macA, "10.0.0.1", ns2), "host/veth2 out", "ns2/veth_2 in"),
				crossing(2100, neighborFrame(t, ARPRequest, macA, ns1, "10.0.0.9"), bridgeOut...),
				[]Event{dropEvent(3100, "ns1/veth_1", "NEIGH_FAILED", "neigh_invalidate+0x8b", echoPacket(t, ns1, "10.0.0.9", false, 7, 1, tagA))},
			),
			want: `arp +0s who-has 10.0.0.9 tell 10.0.0.2 at ns1/veth_1: no reply (3 requests)
drop +3ms dropped in ns1/veth_1 at neigh_invalidate: NEIGH_FAILED (10.0.0.2 > 10.0.0.9 icmp echo request id 7 seq 1 tag 00000000000000a1)
`,
		},
		{
			name:  "ICMP host unreachable from the gateway, tied to the probe",
			probe: Probe{Tag: tagA, Proto: ProtoICMP, Dst: ap("192.0.2.9:0"), SrcNS: "ns1", Start: ktime(0)},
			events: concatEvents(
				crossing(100, ethFrame(echoPacket(t, ns1, "192.0.2.9", false, 7, 1, tagA)), "ns1/veth_1 out", "host/veth1 in"),
				crossing(120, neighborFrame(t, ARPRequest, macB, "192.0.2.1", "192.0.2.9"), "host/eth0 out"),
				crossing(1120, neighborFrame(t, ARPRequest, macB, "192.0.2.1", "192.0.2.9"), "host/eth0 out"),
				crossing(2120, neighborFrame(t, ARPRequest, macB, "192.0.2.1", "192.0.2.9"), "host/eth0 out"),
				// An error about another probe first, then ours.
				crossing(3100, ethFrame(icmpErrPacket(t, "10.0.0.1", ns2, 3, 1, echoPacket(t, ns2, "192.0.2.9", false, 9, 1, tagB))), "host/veth2 out", "ns2/veth_2 in"),
				crossing(3130, ethFrame(icmpErrPacket(t, "10.0.0.1", ns1, 3, 1, echoPacket(t, ns1, "192.0.2.9", false, 7, 1, tagA))), "host/veth1 out", "ns1/veth_1 in"),
			),
			want: `request +0s ns1/veth_1 egress 10.0.0.2 > 192.0.2.9 icmp len 98
request +10µs host/veth1 ingress 10.0.0.2 > 192.0.2.9 icmp len 98
arp +20µs who-has 192.0.2.9 tell 192.0.2.1 at host/eth0: no reply (3 requests)
icmp +3.03ms host unreachable from 10.0.0.1 at host/veth1
`,
		},
		{
			name: "TCP source port reused by other connections",
			probe: Probe{Proto: ProtoTCP, Src: ap("10.0.0.2:40000"), Dst: ap(ns2 + ":80"),
				SrcNS: "ns1", Start: ktime(100), End: ktime(2000)},
			events: concatEvents(
				// An earlier connection from the same port: its SYN is
				// before the window, a late FIN retransmission inside it.
				crossing(10, ethFrame(tcpPacket(t, "10.0.0.2:40000", ns2+":80", TCPSyn, 1000, 0, 0)), bridgeOut...),
				crossing(150, ethFrame(tcpPacket(t, "10.0.0.2:40000", ns2+":80", TCPFin|TCPAck, 1001, 9001, 0)), bridgeOut...),
				crossing(160, ethFrame(tcpPacket(t, ns2+":80", "10.0.0.2:40000", TCPAck, 9001, 1002, 0)), bridgeBack...),
				// Same port to another destination: not the probe.
				crossing(180, ethFrame(tcpPacket(t, "10.0.0.2:40000", "10.0.0.4:80", TCPSyn, 3000, 0, 0)), bridgeOut[:2]...),
				// The probe: SYN, RST (nothing listens).
				crossing(200, ethFrame(tcpPacket(t, "10.0.0.2:40000", ns2+":80", TCPSyn, 0x80000000, 0, 0)), bridgeOut...),
				crossing(240, ethFrame(tcpPacket(t, ns2+":80", "10.0.0.2:40000", TCPRst|TCPAck, 0, 0x80000001, 0)), bridgeBack...),
				// The next connection from the same port, still in the window.
				crossing(900, ethFrame(tcpPacket(t, "10.0.0.2:40000", ns2+":80", TCPSyn, 777777, 0, 0)), bridgeOut...),
				crossing(940, ethFrame(tcpPacket(t, ns2+":80", "10.0.0.2:40000", TCPSyn|TCPAck, 4444, 777778, 0)), bridgeBack...),
			),
			want: `request +0s ns1/veth_1 egress 10.0.0.2:40000 > 10.0.0.3:80 tcp len 74
request +10µs host/veth1 ingress 10.0.0.2:40000 > 10.0.0.3:80 tcp len 74
request +20µs host/veth2 egress 10.0.0.2:40000 > 10.0.0.3:80 tcp len 74
request +30µs ns2/veth_2 ingress 10.0.0.2:40000 > 10.0.0.3:80 tcp len 74
reply +40µs ns2/veth_2 egress 10.0.0.3:80 > 10.0.0.2:40000 tcp len 54
reply +50µs host/veth2 ingress 10.0.0.3:80 > 10.0.0.2:40000 tcp len 54
reply +60µs host/veth1 egress 10.0.0.3:80 > 10.0.0.2:40000 tcp len 54
reply +70µs ns1/veth_1 ingress 10.0.0.3:80 > 10.0.0.2:40000 tcp len 54
`,
		},
		{
			name: "UDP echo through MASQUERADE: reply recognised by its reversed flow",
			probe: Probe{Tag: tagA, Proto: ProtoUDP, Src: ap("0.0.0.0:41000"), Dst: ap(inet + ":7"),
				SrcNS: "ns1", Start: ktime(0)},
			events: concatEvents(
				crossing(100, ethFrame(udpPacket(t, "10.0.0.2:41000", inet+":7", taggedPayload(tagA))), natOut[:2]...),
				crossing(120, ethFrame(udpPacket(t, "198.51.100.2:41000", inet+":7", taggedPayload(tagA))), natOut[2:]...),
				crossing(140, ethFrame(udpPacket(t, inet+":7", "198.51.100.2:41000", taggedPayload(tagA))), natBack[:2]...),
				crossing(160, ethFrame(udpPacket(t, inet+":7", "10.0.0.2:41000", taggedPayload(tagA))), natBack[2:]...),
			),
			want: `request +0s ns1/veth_1 egress 10.0.0.2:41000 > 203.0.113.8:7 udp len 62
request +10µs host/veth1 ingress 10.0.0.2:41000 > 203.0.113.8:7 udp len 62
request +20µs host/eth0 egress 198.51.100.2:41000 > 203.0.113.8:7 udp len 62
request +30µs internet/wan0 ingress 198.51.100.2:41000 > 203.0.113.8:7 udp len 62
reply +40µs internet/wan0 egress 203.0.113.8:7 > 198.51.100.2:41000 udp len 62
reply +50µs host/eth0 ingress 203.0.113.8:7 > 198.51.100.2:41000 udp len 62
reply +60µs host/veth1 egress 203.0.113.8:7 > 10.0.0.2:41000 udp len 62
reply +70µs ns1/veth_1 ingress 203.0.113.8:7 > 10.0.0.2:41000 udp len 62
nat +20µs SNAT 10.0.0.2:41000 -> 198.51.100.2:41000 at host/eth0
`,
		},
		{
			name:  "IPv6 ping with neighbor discovery",
			probe: Probe{Tag: tagA, Proto: ProtoICMP, Dst: ap("[2001:db8::3]:0"), SrcNS: "ns1", Start: ktime(0)},
			events: concatEvents(
				crossing(100, neighborFrame(t, ARPRequest, macA, "2001:db8::2", "2001:db8::3"), "ns1/veth_1 out", "ns2/veth_2 in"),
				crossing(120, neighborFrame(t, ARPReply, macB, "2001:db8::3", "2001:db8::2"), "ns2/veth_2 out", "ns1/veth_1 in"),
				// Duplicate address detection of another address: not
				// something the probe waited for.
				crossing(150, neighborFrame(t, ARPRequest, macA, "::", "2001:db8::9"), "ns1/veth_1 out", "ns2/veth_2 in"),
				crossing(200, ethFrame(echoPacket(t, "2001:db8::2", "2001:db8::3", false, 7, 1, tagA)), "ns1/veth_1 out", "ns2/veth_2 in"),
				crossing(220, ethFrame(echoPacket(t, "2001:db8::3", "2001:db8::2", true, 7, 1, tagA)), "ns2/veth_2 out", "ns1/veth_1 in"),
			),
			want: `request +0s ns1/veth_1 egress 2001:db8::2 > 2001:db8::3 icmpv6 len 118
request +10µs ns2/veth_2 ingress 2001:db8::2 > 2001:db8::3 icmpv6 len 118
reply +20µs ns2/veth_2 egress 2001:db8::3 > 2001:db8::2 icmpv6 len 118
reply +30µs ns1/veth_1 ingress 2001:db8::3 > 2001:db8::2 icmpv6 len 118
arp -100µs who-has 2001:db8::3 tell 2001:db8::2 at ns1/veth_1: is-at 02:00:00:00:00:bb
`,
		},
		{
			name:  "ping through a VXLAN overlay: no translation from the tunnel",
			probe: Probe{Tag: tagA, Proto: ProtoICMP, Dst: ap(ns2 + ":0"), SrcNS: "ns1", Start: ktime(0)},
			events: concatEvents(
				crossing(100, ethFrame(echoPacket(t, ns1, ns2, false, 7, 1, tagA)), "ns1/veth_1 out", "node1/vxlan0 out"),
				crossing(120, ethFrame(vxlanPacket(t, "172.16.1.2:51000", "172.16.2.2:4789", 42, ethFrame(echoPacket(t, ns1, ns2, false, 7, 1, tagA)))),
					"node1/eth0 out", "router/eth1 in", "router/eth2 out", "node2/eth0 in"),
				crossing(160, ethFrame(echoPacket(t, ns1, ns2, false, 7, 1, tagA)), "node2/vxlan0 in", "ns2/veth_2 in"),
			),
			want: `request +0s ns1/veth_1 egress 10.0.0.2 > 10.0.0.3 icmp len 98
request +10µs node1/vxlan0 egress 10.0.0.2 > 10.0.0.3 icmp len 98
request +20µs node1/eth0 egress 10.0.0.2 > 10.0.0.3 icmp len 148 (in vxlan vni 42)
request +30µs router/eth1 ingress 10.0.0.2 > 10.0.0.3 icmp len 148 (in vxlan vni 42)
request +40µs router/eth2 egress 10.0.0.2 > 10.0.0.3 icmp len 148 (in vxlan vni 42)
request +50µs node2/eth0 ingress 10.0.0.2 > 10.0.0.3 icmp len 148 (in vxlan vni 42)
request +60µs node2/vxlan0 ingress 10.0.0.2 > 10.0.0.3 icmp len 98
request +70µs ns2/veth_2 ingress 10.0.0.2 > 10.0.0.3 icmp len 98
`,
		},
		{
			name:  "nothing of the probe in the window",
			probe: Probe{Tag: tagA, Proto: ProtoICMP, Dst: ap(ns2 + ":0"), SrcNS: "ns1", Start: ktime(0)},
			events: concatEvents(
				crossing(100, ethFrame(echoPacket(t, ns1, ns2, false, 7, 1, tagB)), bridgeOut...),
				[]Event{{Kind: KindPacket, Time: ktime(150), NS: "ns1", If: "veth_1", Dir: Egress, Layer: LayerEthernet, Data: []byte{1, 2}}},
			),
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := renderTrace(Correlate(tt.probe, tt.events)); got != tt.want {
				t.Errorf("Correlate:\n%s\nwant:\n%s", got, tt.want)
			}
			// The result must not depend on the order events arrive in
			// when their times differ.
			rev := append([]Event(nil), tt.events...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			if got := renderTrace(Correlate(tt.probe, rev)); got != tt.want {
				t.Errorf("Correlate with events reversed:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestCorrelateFields(t *testing.T) {
	// The structured fields behind the rendered lines, for one NAT'd ping
	// whose reply is dropped on the way back.
	const inet = "203.0.113.8"
	events := concatEvents(
		crossing(100, ethFrame(echoPacket(t, "10.0.0.2", inet, false, 7, 1, tagA)), "ns1/veth_1 out", "host/veth1 in"),
		crossing(120, ethFrame(echoPacket(t, "198.51.100.2", inet, false, 7, 1, tagA)), "host/eth0 out", "internet/wan0 in"),
		crossing(140, ethFrame(echoPacket(t, inet, "198.51.100.2", true, 7, 1, tagA)), "internet/wan0 out", "host/eth0 in"),
		[]Event{dropEvent(155, "host/eth0", "IP_RPFILTER", "ip_rcv_finish_core+0x1b2", echoPacket(t, inet, "198.51.100.2", true, 7, 1, tagA))},
	)
	tr := Correlate(Probe{Tag: tagA, Proto: ProtoICMP, SrcNS: "ns1", Start: ktime(0)}, events)

	if len(tr.Request) != 4 || len(tr.Reply) != 2 {
		t.Fatalf("got %d request and %d reply hops, want 4 and 2:\n%s", len(tr.Request), len(tr.Reply), renderTrace(tr))
	}
	if d := tr.Drop; d == nil || !d.Reply || d.NS != "host" || d.If != "eth0" || d.Reason != "IP_RPFILTER" ||
		d.Function() != "ip_rcv_finish_core" || d.T != 55*time.Microsecond {
		t.Errorf("Drop = %+v, want the reply dropped in host/eth0 at ip_rcv_finish_core, +55µs", d)
	} else if got, want := d.String(), "reply dropped in host/eth0 at ip_rcv_finish_core: IP_RPFILTER"; got != want {
		t.Errorf("Drop.String() = %q, want %q", got, want)
	}
	h := tr.Request[2]
	want := Hop{NS: "host", If: "eth0", Dir: Egress, T: 20 * time.Microsecond,
		Src: netip.MustParseAddrPort("198.51.100.2:0"), Dst: netip.MustParseAddrPort(inet + ":0"),
		Proto: ProtoICMP, Len: 98, Count: 1}
	if h != want {
		t.Errorf("Request[2] = %+v, want %+v", h, want)
	}
	if _, ok := tr.Translated(SNAT, netip.MustParseAddrPort("198.51.100.2:0")); !ok {
		t.Errorf("Translated(SNAT, 198.51.100.2) not found in %v", tr.Translations)
	}
}

// BenchmarkCorrelate measures one probe's correlation against a window of
// a few hundred events of several probes.
func BenchmarkCorrelate(b *testing.B) {
	hops := []string{"ns1/veth_1 out", "host/veth1 in", "host/veth2 out", "ns2/veth_2 in"}
	var events []Event
	for i := range 50 {
		tag := Tag(i)
		events = append(events, crossing(100*i, ethFrame(echoPacket(b, "10.0.0.2", "10.0.0.3", false, 7, uint16(i), tag)), hops...)...)
		events = append(events, crossing(100*i+50, ethFrame(echoPacket(b, "10.0.0.3", "10.0.0.2", true, 7, uint16(i), tag)), hops...)...)
	}
	p := Probe{Tag: 25, Proto: ProtoICMP, SrcNS: "ns1"}
	for b.Loop() {
		if tr := Correlate(p, events); len(tr.Request) != 4 {
			b.Fatalf("got %d request hops", len(tr.Request))
		}
	}
}

// TestCorrelateSourceNAT: NAT in the prober's own output path (nat/OUTPUT
// DNAT, POSTROUTING SNAT of its own packets) is done before the first hop,
// which already shows the new addresses; the translation is named there,
// against the addresses the prober used. Addresses the prober did not fix
// (a ping's source) and a zone on the destination are no translation.
func TestCorrelateSourceNAT(t *testing.T) {
	const public, pod = "198.51.100.2", "10.0.0.7"
	events := concatEvents(
		crossing(100, ethFrame(echoPacket(t, "10.0.0.2", pod, false, 7, 1, tagA)), "ns1/veth_1 out", "pod/eth0 in"),
		crossing(140, ethFrame(echoPacket(t, pod, "10.0.0.2", true, 7, 1, tagA)), "pod/eth0 out", "ns1/veth_1 in"),
	)
	for _, tc := range []struct {
		name string
		dst  string
		want []string
	}{
		{"DNAT in nat/OUTPUT", public, []string{"DNAT " + public + " -> " + pod + " at ns1/veth_1"}},
		{"no NAT", pod, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Probe{Tag: tagA, Proto: ProtoICMP, SrcNS: "ns1", Start: ktime(0),
				Dst: netip.AddrPortFrom(netip.MustParseAddr(tc.dst), 0)}
			tr := Correlate(p, events)
			var got []string
			for _, x := range tr.Translations {
				got = append(got, x.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("translations %q, want %q", got, tc.want)
			}
		})
	}
}

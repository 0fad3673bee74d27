package trace

import (
	"net/netip"
	"testing"
)

// TestMatcher: a Matcher sees packets one by one, in time order, and
// finds a probe's as Correlate does; a TCP probe's packets only once its
// SYN has left the source namespace.
func TestMatcher(t *testing.T) {
	ap := netip.MustParseAddrPort
	var isn, srv uint32 = 1000, 5000
	type seen struct {
		ns   string
		dir  Direction
		data []byte
		want Leg
	}
	tests := []struct {
		name  string
		probe Probe
		seen  []seen
	}{
		{
			name:  "ping by its tag",
			probe: Probe{Tag: tagA, Proto: ProtoICMP, SrcNS: "ns1"},
			seen: []seen{
				{"ns1", Egress, echoPacket(t, "10.0.0.2", "10.0.0.3", false, 7, 1, tagA), LegRequest},
				{"ns1", Egress, echoPacket(t, "10.0.0.2", "10.0.0.3", false, 7, 1, tagB), LegNone},
				{"ns2", Ingress, echoPacket(t, "10.0.0.2", "10.0.0.3", false, 7, 1, tagA), LegRequest},
				{"ns1", Ingress, echoPacket(t, "10.0.0.3", "10.0.0.2", true, 7, 1, tagA), LegReply},
			},
		},
		{
			name:  "UDP: the reversed flow is the reply",
			probe: Probe{Tag: tagA, Proto: ProtoUDP, SrcNS: "ns1", Src: ap("10.0.0.2:40000"), Dst: ap("10.0.0.3:9999")},
			seen: []seen{
				{"ns1", Egress, udpPacket(t, "10.0.0.2:40000", "10.0.0.3:9999", taggedPayload(tagA)), LegRequest},
				{"ns1", Egress, udpPacket(t, "10.0.0.2:40001", "10.0.0.3:9999", taggedPayload(tagB)), LegNone},
				{"ns1", Ingress, udpPacket(t, "10.0.0.3:9999", "10.0.0.2:40000", taggedPayload(tagA)), LegReply},
			},
		},
		{
			name:  "TCP: nothing before the SYN leaves SrcNS",
			probe: Probe{Proto: ProtoTCP, SrcNS: "ns1", Src: ap("10.0.0.2:40000"), Dst: ap("10.0.0.3:80")},
			seen: []seen{
				{"ns1", Ingress, tcpPacket(t, "10.0.0.3:80", "10.0.0.2:40000", TCPSyn|TCPAck, srv, isn+1, 0), LegNone},
				{"ns2", Ingress, tcpPacket(t, "10.0.0.2:40000", "10.0.0.3:80", TCPSyn, isn, 0, 0), LegNone},
				{"ns1", Egress, tcpPacket(t, "10.0.0.2:40001", "10.0.0.3:80", TCPSyn, isn+7, 0, 0), LegNone},
				{"ns1", Egress, tcpPacket(t, "10.0.0.2:40000", "10.0.0.3:80", TCPSyn, isn, 0, 0), LegRequest},
				{"ns2", Ingress, tcpPacket(t, "10.0.0.2:40000", "10.0.0.3:80", TCPSyn, isn, 0, 0), LegRequest},
				{"ns2", Egress, tcpPacket(t, "10.0.0.3:80", "10.0.0.2:40000", TCPSyn|TCPAck, srv, isn+1, 0), LegReply},
				{"ns1", Egress, tcpPacket(t, "10.0.0.2:40000", "10.0.0.3:80", TCPAck, isn+1, srv+1, 5), LegRequest},
				{"ns1", Egress, tcpPacket(t, "10.0.0.2:40000", "10.0.0.3:80", TCPAck, isn+1<<30, srv+1, 5), LegNone},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMatcher(tt.probe)
			for i, s := range tt.seen {
				pkt, err := Decode(Event{Layer: LayerIPv4, Data: s.data})
				if err != nil {
					t.Fatal(err)
				}
				if got := m.Match(s.ns, s.dir, &pkt); got != s.want {
					t.Errorf("packet %d (%s %s %s): leg %d, want %d", i, s.ns, s.dir, pkt, got, s.want)
				}
			}
		})
	}
}

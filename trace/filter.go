package trace

import (
	"fmt"
	"net/netip"
)

// Filter selects the packets that live tracing (`hopcheck trace`) prints.
// The zero Filter matches everything.
type Filter struct {
	// Host, when valid, must be the source or destination (of the packet,
	// of its ARP sender/target, of the packet inside a tunnel, or of the
	// packet an ICMP error quotes).
	Host netip.Addr
	// Proto, when set, is "icmp", "tcp" or "udp"; ICMPv6 echo and errors
	// count as icmp, and ICMP errors quoting a packet of Proto match too.
	Proto string
}

// ParseProto checks a --proto value.
func ParseProto(s string) (string, error) {
	switch s {
	case "", ProtoICMP, ProtoTCP, ProtoUDP:
		return s, nil
	}
	return "", fmt.Errorf("protocol %q: want icmp, tcp or udp", s)
}

// Match reports whether p passes the filter.
func (f Filter) Match(p Packet) bool {
	q := p.Innermost()
	return f.matchHost(&p, q) && f.matchProto(q)
}

func (f Filter) matchHost(p, q *Packet) bool {
	if !f.Host.IsValid() {
		return true
	}
	for _, a := range []netip.Addr{p.Src, p.Dst, q.Src, q.Dst} {
		if a == f.Host {
			return true
		}
	}
	if a := q.ARP; a != nil && (a.SenderIP == f.Host || a.TargetIP == f.Host) {
		return true
	}
	if qt := q.Quoted; qt != nil && (qt.Src == f.Host || qt.Dst == f.Host) {
		return true
	}
	return false
}

func (f Filter) matchProto(q *Packet) bool {
	switch f.Proto {
	case "":
		return true
	case ProtoICMP:
		if q.Proto == ProtoICMPv6 {
			// Echo and errors only: neighbor discovery, router
			// solicitations and MLD reports (types 130-143) are the
			// kernel's own chatter, not what a user pinging wants.
			return q.ICMP != nil && q.ICMP.Type <= 129
		}
		return q.Proto == ProtoICMP
	}
	if q.Proto == f.Proto {
		return true
	}
	return q.Quoted != nil && q.Quoted.Proto == f.Proto
}

package trace

import "net/netip"

// tcpWindow bounds how far past its initial sequence number a probe
// connection's sequence numbers are accepted. Probes exchange a few bytes;
// a megabyte leaves room for anything a check sends while keeping the
// chance that an unrelated connection's numbers fall inside negligible.
const tcpWindow = 1 << 20

// Leg is the way a probe's packet goes: part of the request stream or of
// the reply stream.
type Leg uint8

// The legs a packet can be on.
const (
	LegNone Leg = iota // not the probe's
	LegRequest
	LegReply
)

// A Matcher finds the packets of one probe among packets seen one by one,
// in time order, as a capture sees them: Correlate, which sees a window of
// events at once, tells them apart the same way. A TCP probe's packets are
// those of the connection its SYN (leaving the probe's SrcNS) opens, once
// that SYN has been seen.
type Matcher struct {
	probe Probe
	m     matcher
	// pendingSYN: a TCP probe whose SYN has not been seen yet.
	pendingSYN bool
}

// NewMatcher returns a Matcher for probe p.
func NewMatcher(p Probe) *Matcher {
	pm := &Matcher{probe: p}
	switch p.Proto {
	case ProtoTCP:
		pm.m = &tcpMatcher{}
		pm.pendingSYN = true
	case ProtoUDP:
		pm.m = newUDPMatcher(p)
	default:
		pm.m = &icmpMatcher{tag: p.Tag}
	}
	return pm
}

// Match returns the leg of pkt, seen in namespace ns going dir, or
// LegNone when it is not the probe's. A packet in a tunnel is matched by
// the packet inside it.
func (pm *Matcher) Match(ns string, dir Direction, pkt *Packet) Leg {
	v := pkt.Innermost()
	if pm.pendingSYN {
		if !isProbeSYN(pm.probe, ns, KindPacket, dir, v) {
			return LegNone
		}
		m := pm.m.(*tcpMatcher)
		m.found, m.isn = true, v.TCP.Seq
		pm.pendingSYN = false
	}
	l, _ := pm.m.match(v)
	return l
}

// matcher decides which packets belong to a probe. match is called on the
// packets of a window in time order, so a matcher may learn from earlier
// packets (a TCP server's sequence number, a UDP flow translated by NAT).
type matcher interface {
	// match returns the leg pkt belongs to, and whether it is part of the
	// probe's first request/reply exchange, the one hops are built from.
	match(pkt *Packet) (l Leg, first bool)
	// quotes reports whether an ICMP error quoting q is about the probe.
	quotes(q *Quoted) bool
}

// Correlate finds the packets of probe p among the events of a run and
// icmpMatcher follows a ping: echo requests and replies carrying the tag.
// The first exchange is the echo sequence number seen first.
type icmpMatcher struct {
	tag       Tag
	seq       uint16
	haveFirst bool
}

func (m *icmpMatcher) quotes(q *Quoted) bool { return q.Tagged && q.Tag == m.tag }

func (m *icmpMatcher) match(p *Packet) (Leg, bool) {
	if !p.Tagged || p.Tag != m.tag || p.ICMP == nil {
		return LegNone, false
	}
	var l Leg
	switch {
	case p.EchoRequest():
		l = LegRequest
	case p.EchoReply():
		l = LegReply
	default:
		return LegNone, false
	}
	if !m.haveFirst {
		m.seq, m.haveFirst = p.ICMP.Seq, true
	}
	return l, p.ICMP.Seq == m.seq
}

// flow is a UDP packet's addresses as seen at one place.
type flow struct{ src, dst netip.AddrPort }

// udpMatcher follows a UDP probe: datagrams carrying the tag, the request
// and the echoed reply alike. A datagram is a reply when its flow is the
// reverse of a request flow seen before (NAT translates the reply back
// exactly, so this holds at every place); any other tagged datagram is the
// request, possibly translated. Every datagram counts as the first
// exchange: retries are identical.
type udpMatcher struct {
	tag Tag
	req map[flow]bool
	// untaggedReply: a real service answers, so a reply is any datagram
	// of a reversed request flow, tagged or not.
	untaggedReply bool
}

func newUDPMatcher(p Probe) *udpMatcher {
	m := &udpMatcher{tag: p.Tag, req: map[flow]bool{}}
	if known(p.Src) && known(p.Dst) {
		m.req[flow{unmap(p.Src), unmap(p.Dst)}] = true
	}
	return m
}

func (m *udpMatcher) quotes(q *Quoted) bool { return q.Tagged && q.Tag == m.tag }

func (m *udpMatcher) match(p *Packet) (Leg, bool) {
	if p.Proto != ProtoUDP {
		return LegNone, false
	}
	f := flow{p.SrcAddrPort(), p.DstAddrPort()}
	if !p.Tagged || p.Tag != m.tag {
		if m.untaggedReply && m.req[flow{f.dst, f.src}] {
			return LegReply, true
		}
		return LegNone, false
	}
	switch {
	case m.req[f]:
		return LegRequest, true
	case m.req[flow{f.dst, f.src}]:
		return LegReply, true
	}
	m.req[f] = true
	return LegRequest, true
}

// tcpMatcher follows one TCP connection by sequence numbers. The client's
// initial sequence number (isn) comes from the probe's SYN; the server's
// from the SYN-ACK that acknowledges it. Afterwards a request segment has
// its sequence number in the client's range and its acknowledgment in the
// server's, a reply segment the other way round.
type tcpMatcher struct {
	found   bool
	isn     uint32
	haveSrv bool
	srv     uint32
}

// newTCPMatcher finds the probe's SYN: the first SYN in the window that
// leaves SrcNS (or is dropped there) from Src's port (any port if 0) to
// Dst, and from Src's address when that is specified.
func newTCPMatcher(p Probe, recs []*record) *tcpMatcher {
	m := &tcpMatcher{}
	for _, r := range recs {
		if v := r.view; isProbeSYN(p, r.ev.NS, r.ev.Kind, r.ev.Dir, v) {
			m.found, m.isn = true, v.TCP.Seq
			return m
		}
	}
	// None to Dst: nat/OUTPUT may have translated the destination before
	// the first hop. Then the first SYN leaving from the address and port
	// the prober bound is its own.
	if p.Src.Port() != 0 {
		q := p
		for _, r := range recs {
			v := r.view
			if v.TCP == nil {
				continue
			}
			q.Dst = v.DstAddrPort()
			if isProbeSYN(q, r.ev.NS, r.ev.Kind, r.ev.Dir, v) {
				m.found, m.isn = true, v.TCP.Seq
				return m
			}
		}
	}
	return m
}

// isProbeSYN reports whether v, seen in namespace ns (an event of kind
// and dir), is the SYN of TCP probe p.
func isProbeSYN(p Probe, ns string, kind EventKind, dir Direction, v *Packet) bool {
	switch {
	case v.TCP == nil || !v.TCP.Flags.Has(TCPSyn) || v.TCP.Flags.Has(TCPAck):
	case ns != p.SrcNS || (kind == KindPacket && dir != Egress):
	case p.Src.Port() != 0 && v.SrcPort != p.Src.Port():
	case specified(p.Src.Addr()) && v.Src != p.Src.Addr().Unmap():
	case v.DstAddrPort() != unmap(p.Dst):
	default:
		return true
	}
	return false
}

func (m *tcpMatcher) quotes(q *Quoted) bool {
	return m.found && q.Proto == ProtoTCP && inWindow(q.TCPSeq, m.isn)
}

func (m *tcpMatcher) match(p *Packet) (Leg, bool) {
	t := p.TCP
	if !m.found || t == nil {
		return LegNone, false
	}
	syn, ack, rst := t.Flags.Has(TCPSyn), t.Flags.Has(TCPAck), t.Flags.Has(TCPRst)
	switch {
	case syn && !ack:
		if t.Seq == m.isn {
			return LegRequest, true
		}
	case syn && ack:
		if t.Ack == m.isn+1 {
			if !m.haveSrv {
				m.srv, m.haveSrv = t.Seq, true
			}
			if t.Seq == m.srv {
				return LegReply, true
			}
		}
	case rst && ack && !m.haveSrv:
		// The answer to a SYN when nothing listens: RST, acknowledging it.
		if t.Ack == m.isn+1 {
			return LegReply, true
		}
	case ack && m.haveSrv:
		switch {
		case inWindow(t.Seq, m.isn+1) && inWindow(t.Ack, m.srv+1):
			return LegRequest, false
		case inWindow(t.Seq, m.srv+1) && inWindow(t.Ack, m.isn+1):
			return LegReply, false
		}
	}
	return LegNone, false
}

// inWindow reports whether seq is in [start, start+tcpWindow], in sequence
// number arithmetic (modulo 2^32).
func inWindow(seq, start uint32) bool { return seq-start <= tcpWindow }

// known reports whether a is a specific address and port.
func known(a netip.AddrPort) bool { return specified(a.Addr()) && a.Port() != 0 }

// specified reports whether a is an address rather than none or "any".
func specified(a netip.Addr) bool { return a.IsValid() && !a.IsUnspecified() }

// unmap turns an IPv4-mapped IPv6 address into IPv4, as packets carry it.
func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

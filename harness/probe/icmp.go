package probe

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/hopcheck/hopcheck/trace"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// IANA protocol numbers that icmp.ParseMessage and the embedded headers use.
const (
	protoICMP   = 1
	protoICMPv6 = 58
)

// ICMPError is an ICMP error message (destination unreachable, time
// exceeded, ...) that a router or the destination sent about one of a ping's
// echo requests. It is an error: errors.Is(e, ErrUnreachable) and
// errors.Is(e, syscall.EHOSTUNREACH) hold for a host unreachable, just as
// they would for a socket that received it.
type ICMPError struct {
	// From is the address that sent the ICMP error: the router or host
	// that gave up on the request.
	From netip.Addr
	// Seq is the sequence number of the echo request it is about.
	Seq int
	// Type and Code are as on the wire: ICMPv4 numbers when From is an IPv4
	// address, ICMPv6 numbers when it is IPv6.
	Type, Code int
}

// Error describes the message the way ping(8) would, with its sender.
func (e ICMPError) Error() string {
	return fmt.Sprintf("%s from %s (icmp_seq %d)", e.Description(), e.From, e.Seq)
}

// Unwrap returns the errno that the kernel would report to a socket for this
// message, classified (see the package's sentinel errors).
func (e ICMPError) Unwrap() error { return classify(e.Errno()) }

// v6 reports whether Type and Code are ICMPv6 numbers.
func (e ICMPError) v6() bool { return e.From.Is6() && !e.From.Is4In6() }

// Description names the message type and code ("destination host
// unreachable", "time to live exceeded", ...).
func (e ICMPError) Description() string {
	if e.v6() {
		return describeICMPv6(e.Type, e.Code)
	}
	return describeICMPv4(e.Type, e.Code)
}

// Errno returns the errno that Linux reports to a socket that receives this
// message (icmp_err_convert and icmpv6_err_convert in the kernel), so that a
// ping's ICMP errors classify the same way as a TCP or UDP probe's.
func (e ICMPError) Errno() syscall.Errno {
	if e.v6() {
		return icmpv6Errno(e.Type, e.Code)
	}
	return icmpv4Errno(e.Type, e.Code)
}

var icmpv4Unreach = [...]string{
	0:  "destination network unreachable",
	1:  "destination host unreachable",
	2:  "destination protocol unreachable",
	3:  "destination port unreachable",
	4:  "fragmentation needed",
	5:  "source route failed",
	6:  "destination network unknown",
	7:  "destination host unknown",
	8:  "source host isolated",
	9:  "network administratively prohibited",
	10: "host administratively prohibited",
	11: "network unreachable for TOS",
	12: "host unreachable for TOS",
	13: "communication administratively prohibited",
	14: "host precedence violation",
	15: "precedence cutoff in effect",
}

func describeICMPv4(typ, code int) string {
	switch typ {
	case int(ipv4.ICMPTypeDestinationUnreachable):
		if code >= 0 && code < len(icmpv4Unreach) {
			return icmpv4Unreach[code]
		}
		return fmt.Sprintf("destination unreachable (code %d)", code)
	case int(ipv4.ICMPTypeTimeExceeded):
		if code == 1 {
			return "fragment reassembly time exceeded"
		}
		return "time to live exceeded"
	case int(ipv4.ICMPTypeParameterProblem):
		return "parameter problem"
	}
	return fmt.Sprintf("ICMP type %d code %d", typ, code)
}

// icmpv4Errno follows the kernel's icmp_err_convert table and icmp_err.
func icmpv4Errno(typ, code int) syscall.Errno {
	switch typ {
	case int(ipv4.ICMPTypeDestinationUnreachable):
		switch code {
		case 0, 6, 9, 11:
			return unix.ENETUNREACH
		case 2:
			return unix.ENOPROTOOPT
		case 3:
			return unix.ECONNREFUSED
		case 4:
			return unix.EMSGSIZE
		case 5:
			return unix.EOPNOTSUPP
		case 7:
			return unix.EHOSTDOWN
		case 8:
			return unix.ENONET
		}
		return unix.EHOSTUNREACH
	case int(ipv4.ICMPTypeTimeExceeded):
		return unix.EHOSTUNREACH
	}
	return unix.EPROTO
}

var icmpv6Unreach = [...]string{
	0: "destination unreachable: no route",
	1: "destination unreachable: administratively prohibited",
	2: "destination unreachable: beyond scope of source address",
	3: "destination unreachable: address unreachable",
	4: "destination unreachable: port unreachable",
	5: "destination unreachable: source address failed policy",
	6: "destination unreachable: reject route",
}

func describeICMPv6(typ, code int) string {
	switch typ {
	case int(ipv6.ICMPTypeDestinationUnreachable):
		if code >= 0 && code < len(icmpv6Unreach) {
			return icmpv6Unreach[code]
		}
		return fmt.Sprintf("destination unreachable (code %d)", code)
	case int(ipv6.ICMPTypePacketTooBig):
		return "packet too big"
	case int(ipv6.ICMPTypeTimeExceeded):
		if code == 1 {
			return "fragment reassembly time exceeded"
		}
		return "hop limit exceeded"
	case int(ipv6.ICMPTypeParameterProblem):
		return "parameter problem"
	}
	return fmt.Sprintf("ICMPv6 type %d code %d", typ, code)
}

// icmpv6Errno follows the kernel's icmpv6_err_convert.
func icmpv6Errno(typ, code int) syscall.Errno {
	switch typ {
	case int(ipv6.ICMPTypeDestinationUnreachable):
		switch code {
		case 0:
			return unix.ENETUNREACH
		case 1, 5, 6:
			return unix.EACCES
		case 4:
			return unix.ECONNREFUSED
		}
		return unix.EHOSTUNREACH
	case int(ipv6.ICMPTypePacketTooBig):
		return unix.EMSGSIZE
	case int(ipv6.ICMPTypeTimeExceeded):
		return unix.EHOSTUNREACH
	}
	return unix.EPROTO
}

// echoRequest encodes an ICMP (v6 false) or ICMPv6 echo request whose data
// is size bytes: the tag first, then a counting pattern like ping(8)'s. The
// ICMPv6 checksum is left zero: the kernel fills it in on raw ICMPv6
// sockets, because it depends on the source address it picks.
func echoRequest(v6 bool, id, seq int, tag trace.Tag, size int) ([]byte, error) {
	data := tag.Append(make([]byte, 0, max(size, trace.TagLen)))
	for i := len(data); i < size; i++ {
		data = append(data, byte(i))
	}
	m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}
	if v6 {
		m.Type = ipv6.ICMPTypeEchoRequest
	}
	b, err := m.Marshal(nil)
	if err != nil {
		return nil, fmt.Errorf("encode echo request: %w", err)
	}
	return b, nil
}

// echoEvent is what one ICMP message received on a raw socket says about an
// echo request: it answers one (reply true), or it is an ICMP error that
// quotes one.
type echoEvent struct {
	reply     bool
	typ, code int
	id, seq   int
	payload   []byte // the reply's data, or as much of the request's as the error quotes
}

// parseEcho interprets an ICMP message (without IP header, as a raw ICMP
// socket returns it). ok is false for messages that are neither an echo
// reply nor an error about an echo request.
func parseEcho(b []byte, v6 bool) (ev echoEvent, ok bool) {
	proto := protoICMP
	if v6 {
		proto = protoICMPv6
	}
	m, err := icmp.ParseMessage(proto, b)
	if err != nil {
		return echoEvent{}, false
	}
	var quoted []byte
	switch body := m.Body.(type) {
	case *icmp.Echo:
		if m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply {
			return echoEvent{}, false
		}
		return echoEvent{reply: true, typ: icmpType(m.Type), code: m.Code, id: body.ID, seq: body.Seq, payload: body.Data}, true
	case *icmp.DstUnreach:
		quoted = body.Data
	case *icmp.TimeExceeded:
		quoted = body.Data
	case *icmp.ParamProb:
		quoted = body.Data
	case *icmp.PacketTooBig:
		quoted = body.Data
	default:
		return echoEvent{}, false
	}
	id, seq, payload, ok := quotedEchoRequest(quoted, v6)
	if !ok {
		return echoEvent{}, false
	}
	return echoEvent{typ: icmpType(m.Type), code: m.Code, id: id, seq: seq, payload: payload}, true
}

func icmpType(t icmp.Type) int {
	switch t := t.(type) {
	case ipv4.ICMPType:
		return int(t)
	case ipv6.ICMPType:
		return int(t)
	}
	return -1
}

// quotedEchoRequest finds the echo request that an ICMP error quotes: the
// original IP header, then at least the first 8 bytes of the ICMP message
// (type, code, checksum, identifier, sequence number), then as much of its
// data as the sender chose to include.
func quotedEchoRequest(b []byte, v6 bool) (id, seq int, payload []byte, ok bool) {
	var icmpHdr []byte
	if v6 {
		// Fixed header only: hopcheck's own echo requests carry no
		// extension headers.
		const hdrLen = 40
		if len(b) < hdrLen+8 || b[0]>>4 != 6 || b[6] != protoICMPv6 {
			return 0, 0, nil, false
		}
		icmpHdr = b[hdrLen:]
		if icmpHdr[0] != byte(ipv6.ICMPTypeEchoRequest) {
			return 0, 0, nil, false
		}
	} else {
		if len(b) < 20 || b[0]>>4 != 4 {
			return 0, 0, nil, false
		}
		hdrLen := int(b[0]&0x0f) * 4
		fragOff := binary.BigEndian.Uint16(b[6:8]) & 0x1fff
		if hdrLen < 20 || len(b) < hdrLen+8 || b[9] != protoICMP || fragOff != 0 {
			return 0, 0, nil, false
		}
		icmpHdr = b[hdrLen:]
		if icmpHdr[0] != byte(ipv4.ICMPTypeEcho) {
			return 0, 0, nil, false
		}
	}
	id = int(binary.BigEndian.Uint16(icmpHdr[4:6]))
	seq = int(binary.BigEndian.Uint16(icmpHdr[6:8]))
	return id, seq, icmpHdr[8:], true
}

// belongsTo reports whether ev is about an echo request with identifier id
// and tag. Other pings in the same namespace (hopcheck's or anyone's) see
// the same messages on their raw sockets; the identifier tells them apart
// and the tag settles a collision of identifiers. An echo reply must carry
// the tag. An ICMP error may quote too little of the request to hold it
// (RFC 792 requires only 8 bytes after the IP header); then the identifier
// alone decides.
func (ev echoEvent) belongsTo(id int, tag trace.Tag) bool {
	if ev.id != id {
		return false
	}
	got, found := trace.FindTag(ev.payload)
	if ev.reply || len(ev.payload) >= trace.TagLen {
		return found && got == tag
	}
	return true
}

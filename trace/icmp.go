package trace

import (
	"fmt"

	"github.com/gopacket/gopacket/layers"
)

// Which ICMP and ICMPv6 messages are echoes, which quote the packet that
// caused them, and what ping and tcpdump call them.

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

package trace

import "strings"

// FreedAfterDelivery reports whether a drop event is the kernel freeing a
// packet that had already reached its destination, which is not a drop:
//
//   - An echo reply that reached the host that pinged: its ICMP stack finds
//     no ping socket for it (NO_SOCKET at ping_rcv) when the pinger reads
//     replies through a raw socket, which already got its own copy
//     (iputils ping as root, hopcheck's own probes), or when nobody waits
//     any more. The reply arrived.
//   - On kernels before 5.17, which give no reason, the ICMP receive
//     functions free what they handled with plain kfree_skb: echo replies,
//     and for ICMPv6 the echo request at its destination once answered.
//
// Packets delivered to a socket and freed unread when it closes are left
// out in the kernel already (their destructor is sock_rfree), as are
// packets freed as consumed.
func FreedAfterDelivery(ev *Event, pkt *Packet) bool {
	if ev.Kind != KindDrop {
		return false
	}
	p := pkt.Innermost()
	if p.ICMP == nil {
		return false
	}
	if ev.ReasonName != "" {
		return ev.ReasonName == "NO_SOCKET" && p.EchoReply()
	}
	if ev.Reason != 0 {
		return false
	}
	fn, _, _ := strings.Cut(ev.Location, "+")
	switch fn {
	case "icmp_rcv", "ping_rcv":
		return p.EchoReply()
	case "icmpv6_rcv":
		return p.EchoReply() || p.EchoRequest()
	}
	return false
}

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
//
//   - On kernels before 5.17, which give no reason, the ICMP receive
//     functions free what they handled with plain kfree_skb: echo replies,
//     and for ICMPv6 the echo request at its destination once answered.
//
//   - A TCP segment other than a SYN freed by tcp_v4_rcv or tcp_v6_rcv
//     without a socket to take it (NO_SOCKET), or with no reason given
//     (NOT_SPECIFIED: the segment met a TIME_WAIT socket, or came after
//     the close): the teardown of a connection whose handshake was done.
//     A probe's verdict rests on its handshake, whose SYN and SYN-ACK are
//     never left out.
//
// Packets delivered to a socket and freed unread when it closes are left
// out in the kernel already (their destructor is sock_rfree), as are
// packets freed as consumed.
func FreedAfterDelivery(ev *Event, pkt *Packet) bool {
	if ev.Kind != KindDrop {
		return false
	}
	p := pkt.Innermost()
	if p.TCP != nil {
		return tcpTeardown(ev, p)
	}
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

// tcpTeardown reports whether a TCP drop is a connection's teardown after
// its handshake: a segment without SYN that the TCP receive function
// frees finding no socket, or no reason to give.
func tcpTeardown(ev *Event, p *Packet) bool {
	if p.TCP.Flags.Has(TCPSyn) {
		return false
	}
	fn, _, _ := strings.Cut(ev.Location, "+")
	if fn != "tcp_v4_rcv" && fn != "tcp_v6_rcv" {
		return false
	}
	switch ev.ReasonName {
	case "", "NOT_SPECIFIED", "NO_SOCKET":
		return true
	}
	return false
}

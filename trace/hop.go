package trace

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Probe describes one probe the harness sent, for Correlate to find its
// packets among all events of a run.
type Probe struct {
	// Tag is in the payload of ICMP and UDP probes (replies echo it).
	Tag Tag
	// Proto is ProtoICMP, ProtoTCP or ProtoUDP. ICMP probes may be ICMPv6.
	Proto string
	// Src and Dst are the addresses as the prober sees them. Src's port is
	// known for tcp and udp (the prober binds before connecting); its
	// address may be unspecified. Dst may be translated on the way.
	Src, Dst netip.AddrPort
	// SrcNS is the scenario namespace the probe starts in.
	SrcNS string
	// Start and End bound the probe in kernel time (CLOCK_MONOTONIC, the
	// clock of Event.Time). Events outside are ignored; End 0 means no end.
	Start, End time.Duration
	// UntaggedReply says the answer comes from a real service, not from
	// hopcheck's listener, so a udp reply carries no tag: its datagrams
	// are matched by flow, and the tracer, which reports untagged UDP
	// only when it reports everything, may not have seen them.
	UntaggedReply bool
}

// Trace is the hop-by-hop account of one probe: where its request and reply
// were seen, what changed on the way, and why it vanished if it did.
type Trace struct {
	// Request lists the interfaces the first request packet crossed (the
	// first echo request of a ping, the SYN of a TCP connection, the first
	// datagram of a UDP probe), in time order. Reply does the same for the
	// reply to it (echo reply, SYN-ACK or RST, echoed datagram).
	Request []Hop
	Reply   []Hop
	// Drop is the kernel's drop of a probe packet, the first if several.
	Drop *Drop
	// Translations are the address changes along Request.
	Translations []Translation
	// ARP lists the neighbor resolutions the probe waited for.
	ARP []ARPExchange
	// ICMPErrors are the ICMP errors sent about the probe's packets.
	ICMPErrors []ICMPError
	// ReplyArrived is true when a reply packet, of any exchange, was seen
	// arriving in the probe's source namespace: the answer's last hop. A
	// probe that got its answer has it in a complete trace.
	ReplyArrived bool
}

// Hop is one crossing of an interface by a probe packet.
type Hop struct {
	NS, If string
	Dir    Direction
	// T is the time since the trace's first request hop (or, when the
	// request was never seen, since the first event of the probe). Events
	// before it, such as the ARP request that held the first packet back,
	// have negative times.
	T time.Duration
	// Src, Dst and Proto are the probe packet's addresses here; for an
	// encapsulated packet, those of the packet inside the tunnel.
	Src, Dst netip.AddrPort
	Proto    string
	// Len is the length of the frame on this interface.
	Len uint32
	// Encap is the tunnel the packet was inside here, if any.
	Encap *Encap
	// Count is how many packets of the probe, in this direction, crossed
	// here this way: all echo requests of a ping, all segments of a TCP
	// connection. The hop itself is the first of them.
	Count int
}

// Point returns where the hop was, "ns/if".
func (h Hop) Point() string { return h.NS + "/" + h.If }

// String formats h as one report line:
// "+12µs ns1/veth_1 egress 10.0.0.2 > 10.0.0.3 icmp len 98".
func (h Hop) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %s > %s %s len %d", offset(h.T), h.Point(), h.Dir,
		addrPort(h.Src), addrPort(h.Dst), h.Proto, h.Len)
	if h.Encap != nil {
		fmt.Fprintf(&b, " (in %s vni %d)", h.Encap.Kind, h.Encap.VNI)
	}
	if h.Count > 1 {
		fmt.Fprintf(&b, " x%d", h.Count)
	}
	return b.String()
}

// Drop is the kernel freeing a probe packet as dropped.
type Drop struct {
	// NS is the namespace the packet was dropped in; If is the device it
	// was on, empty when the kernel had none for it.
	NS, If string
	// Reason is the kernel's drop reason name ("NETFILTER_DROP"); Location
	// is where it was freed ("nf_hook_slow+0x9c").
	Reason, Location string
	T                time.Duration
	// Reply reports that the dropped packet was a reply, not a request.
	Reply bool
	// Packet is the dropped packet as decoded from the drop event.
	Packet Packet
}

// Function returns the kernel function of Location, without the offset:
// "nf_hook_slow".
func (d Drop) Function() string {
	f, _, _ := strings.Cut(d.Location, "+")
	return f
}

// String formats d as the report's last line:
// "dropped in host at nf_hook_slow: NETFILTER_DROP".
func (d Drop) String() string {
	where := d.NS
	if d.If != "" {
		where += "/" + d.If
	}
	what := "dropped"
	if d.Reply {
		what = "reply dropped"
	}
	reason := d.Reason
	if reason == "" {
		reason = NoReason
	}
	if f := d.Function(); f != "" {
		return fmt.Sprintf("%s in %s at %s: %s", what, where, f, reason)
	}
	return fmt.Sprintf("%s in %s: %s", what, where, reason)
}

// NoReason stands for a drop's reason on kernels whose skb:kfree_skb has
// no reason argument (before 5.17).
const NoReason = "no reason given (this kernel reports none before 5.17)"

// NATKind says which address a translation changed.
type NATKind string

const (
	// SNAT: the source address or port changed.
	SNAT NATKind = "SNAT"
	// DNAT: the destination address or port changed.
	DNAT NATKind = "DNAT"
)

// Translation is an address change between two consecutive request hops,
// named at the hop where the new address first appears.
type Translation struct {
	Kind     NATKind
	From, To netip.AddrPort
	NS, If   string
	Dir      Direction
	T        time.Duration
}

// String formats t as "SNAT 10.0.0.2 -> 198.51.100.2 at host/eth0"; ports
// are shown when the protocol has them.
func (t Translation) String() string {
	from, to := addrPort(t.From), addrPort(t.To)
	if t.From.Port() != 0 || t.To.Port() != 0 {
		from, to = t.From.String(), t.To.String()
	}
	return fmt.Sprintf("%s %s -> %s at %s/%s", t.Kind, from, to, t.NS, t.If)
}

// ARPExchange is one neighbor resolution (ARP, or IPv6 neighbor discovery)
// that a probe packet waited for: who-has Target tell Sender, sent from
// NS/If, answered or not.
type ARPExchange struct {
	NS, If string
	// T is when the first request was sent.
	T              time.Duration
	Sender, Target netip.Addr
	SenderMAC      net.HardwareAddr
	// Requests counts the requests sent from NS/If (retries included).
	Requests int
	// Answered reports that a reply reached NS/If; AnswerMAC is the
	// address in the first reply seen anywhere, even one that did not
	// arrive, and AnswerT when it was first seen.
	Answered  bool
	AnswerMAC net.HardwareAddr
	AnswerT   time.Duration
}

// String formats a as "who-has 10.0.0.1 tell 10.0.0.2 at ns1/veth_1:
// is-at 02:00:00:00:00:01" or "...: no reply (3 requests)".
func (a ARPExchange) String() string {
	s := fmt.Sprintf("%s who-has %s tell %s at %s/%s: ", offset(a.T), a.Target, a.Sender, a.NS, a.If)
	switch {
	case a.Answered:
		return s + "is-at " + a.AnswerMAC.String()
	case a.AnswerMAC != nil:
		return s + fmt.Sprintf("reply from %s did not arrive (%d requests)", a.AnswerMAC, a.Requests)
	}
	return s + fmt.Sprintf("no reply (%d requests)", a.Requests)
}

// ICMPError is an ICMP error message about one of the probe's packets,
// where it was first seen: usually where it was generated.
type ICMPError struct {
	NS, If string
	Dir    Direction
	T      time.Duration
	// From is the address that sent the error, To where it was sent.
	From, To   netip.Addr
	Proto      string
	Type, Code uint8
}

// Text names the error: "host unreachable", "port unreachable".
func (e ICMPError) Text() string { return icmpText(e.Proto, e.Type, e.Code) }

// String formats e as "host unreachable from 10.0.0.1 at host/veth1".
func (e ICMPError) String() string {
	return fmt.Sprintf("%s from %s at %s/%s", e.Text(), e.From, e.NS, e.If)
}

// PathContains reports whether the request crossed every "ns/if" in path,
// in that order, with any other hops between. When it did not, missing is
// the first element of path not found in order.
func (t Trace) PathContains(path []string) (ok bool, missing string) {
	i := 0
	for _, want := range path {
		for i < len(t.Request) && t.Request[i].Point() != want {
			i++
		}
		if i == len(t.Request) {
			return false, want
		}
		i++
	}
	return true, ""
}

// Translated returns the first translation of the given kind whose new
// address is to. A zero port in to matches any port, so a scenario's
// `snat: 198.51.100.2` matches whatever source port NAT chose.
func (t Trace) Translated(kind NATKind, to netip.AddrPort) (Translation, bool) {
	for _, tr := range t.Translations {
		if tr.Kind != kind || tr.To.Addr() != to.Addr() {
			continue
		}
		if to.Port() == 0 || to.Port() == tr.To.Port() {
			return tr, true
		}
	}
	return Translation{}, false
}

// addrPort formats a as just the address when it has no port.
func addrPort(a netip.AddrPort) string {
	if a.Port() == 0 {
		return a.Addr().String()
	}
	return a.String()
}

// offset formats a trace time as "+12µs" or "-3µs".
func offset(d time.Duration) string {
	if d < 0 {
		return "-" + (-d).Round(time.Microsecond).String()
	}
	return "+" + d.Round(time.Microsecond).String()
}

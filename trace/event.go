package trace

import "time"

// EventKind says what produced an Event.
type EventKind uint8

const (
	// KindPacket is a packet seen by the tc program on an interface.
	KindPacket EventKind = iota + 1
	// KindDrop is a packet freed by the kernel as dropped (skb:kfree_skb).
	KindDrop
)

// Direction is the way a packet crossed an interface.
type Direction uint8

const (
	// Ingress: the packet arrived on the interface.
	Ingress Direction = iota + 1
	// Egress: the packet left through the interface.
	Egress
)

// String returns "ingress" or "egress".
func (d Direction) String() string {
	switch d {
	case Ingress:
		return "ingress"
	case Egress:
		return "egress"
	}
	return "unknown"
}

// Layer says where Event.Data starts.
type Layer uint8

const (
	// LayerEthernet: Data starts at the Ethernet header (tc events).
	LayerEthernet Layer = iota + 1
	// LayerIPv4: Data starts at an IPv4 header (drops with no MAC header).
	LayerIPv4
	// LayerIPv6: Data starts at an IPv6 header.
	LayerIPv6
)

// Event is one decoded record from the kernel: a packet at an interface or a
// dropped packet. It is plain data, so correlation and reporting are tested
// without a kernel.
type Event struct {
	Kind EventKind
	// Time is the kernel's monotonic clock (bpf_ktime_get_ns) when the
	// event happened. Only differences between events are meaningful.
	Time time.Duration
	// NS is the scenario's name for the namespace ("host", "ns1"); Netns is
	// the kernel's netns cookie it was resolved from.
	NS    string
	Netns uint64
	// If is the interface name inside NS, resolved from Ifindex. Drop
	// events may have Ifindex 0 (no device) and an empty If.
	If      string
	Ifindex uint32
	Dir     Direction
	// Len is the packet's full length; Data holds its first bytes.
	Len   uint32
	Layer Layer
	Data  []byte
	// Drop events only: the kernel's reason (enum skb_drop_reason), its name
	// from the running kernel's BTF without the SKB_DROP_REASON_ prefix
	// ("NETFILTER_DROP"), and where it was freed ("nf_hook_slow+0x9c").
	Reason     uint32
	ReasonName string
	Location   string
}

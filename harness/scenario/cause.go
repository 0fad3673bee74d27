package scenario

// Cause codes name why a probe failed. A check with `expect: fail` and
// `cause: CODE` passes only when hopcheck's diagnosis names that code. The
// codes are part of the scenario format: keep them stable, add new ones.
const (
	// CauseNoRoute: a namespace on the way has no route for the destination.
	CauseNoRoute = "no-route"
	// CauseNoReturnRoute: the request arrived but the reply cannot be routed
	// back (typically a missing MASQUERADE/SNAT, or a missing route on the
	// far side).
	CauseNoReturnRoute = "no-return-route"
	// CauseForwardingDisabled: a namespace that must forward has
	// net.ipv4.ip_forward=0.
	CauseForwardingDisabled = "forwarding-disabled"
	// CauseNetfilterDrop: an iptables rule or chain policy dropped the packet.
	CauseNetfilterDrop = "netfilter-drop"
	// CauseLinkDown: an interface on the path is administratively down or
	// has no carrier.
	CauseLinkDown = "link-down"
	// CauseNotBridged: a veth end that should be a bridge port is not
	// enslaved to the bridge.
	CauseNotBridged = "not-bridged"
	// CauseARPFailed: neighbor resolution for a gateway (a next hop that is
	// not the destination) failed.
	CauseARPFailed = "arp-failed"
	// CauseRPFilter: reverse-path filtering dropped the packet.
	CauseRPFilter = "rp-filter"
	// CauseNoListener: tcp or udp reached the destination but nothing listens
	// on that port.
	CauseNoListener = "no-listener"
	// CauseAddressMissing: the destination is on-link for the last hop but
	// no namespace on that segment holds the address.
	CauseAddressMissing = "address-missing"
	// CauseLoopbackDown: the namespace's lo is down, so it cannot reach its
	// own addresses.
	CauseLoopbackDown = "loopback-down"
	// CauseWrongMAC: a neighbor entry (ARP or NDP, static or learned) for a
	// next hop holds a MAC other than that of the interface that answers
	// for the address, so the frames go to the wrong MAC.
	CauseWrongMAC = "wrong-mac"
	// CauseVXLANMismatch: the two ends of a VXLAN tunnel do not agree (VNI,
	// UDP port, remote address), or the sending device has neither a
	// remote nor a forwarding (FDB) entry for the far end.
	CauseVXLANMismatch = "vxlan-mismatch"
	// CauseMTU: a packet that may not be fragmented is larger than the MTU
	// of a link on the way: the sender's own interface refuses it
	// (EMSGSIZE), a router drops it and answers "fragmentation needed"
	// (ICMPv6 "packet too big"), or the receiving end of a link with a
	// smaller MTU than its sender's drops the frame.
	CauseMTU = "mtu"
	// CauseNeighborTableFull: the kernel could not create a neighbor
	// (ARP or NDP) entry because its neighbor table, one for every
	// namespace of the machine together, is full (gc_thresh3): a limit of
	// the machine, not of the scenario's configuration.
	CauseNeighborTableFull = "neighbor-table-full"
	// CauseUnknown: none of the above; the evidence is still shown.
	CauseUnknown = "unknown"
)

// CauseCodes returns every cause code, in the order the format page lists
// them. The slice is the caller's to keep.
func CauseCodes() []string {
	return []string{
		CauseNoRoute, CauseNoReturnRoute, CauseForwardingDisabled,
		CauseNetfilterDrop, CauseLinkDown, CauseNotBridged, CauseARPFailed,
		CauseRPFilter, CauseNoListener, CauseAddressMissing,
		CauseLoopbackDown, CauseWrongMAC, CauseVXLANMismatch, CauseMTU,
		CauseNeighborTableFull, CauseUnknown,
	}
}

// IsCauseCode reports whether code is one of CauseCodes.
func IsCauseCode(code string) bool { return contains(CauseCodes(), code) }

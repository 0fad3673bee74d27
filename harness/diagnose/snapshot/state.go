package snapshot

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/iptrules"
	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
	"github.com/hopcheck/hopcheck/harness/diagnose/nftrules"
)

// Routing table numbers, as in iproute2's rt_tables.
const (
	TableDefault = 253
	TableMain    = 254
	TableLocal   = 255
)

// Route types, as `ip route` names them.
const (
	RouteUnicast     = "unicast"
	RouteLocal       = "local"
	RouteBroadcast   = "broadcast"
	RouteBlackhole   = "blackhole"
	RouteUnreachable = "unreachable"
	RouteProhibit    = "prohibit"
	RouteThrow       = "throw"
)

// Neighbor states that mean resolution did not succeed.
const (
	NeighFailed     = "FAILED"
	NeighIncomplete = "INCOMPLETE"
)

// State is a snapshot of the namespaces of one topology: plain data, so it
// can be built by hand in tests and shown as evidence in JSON.
type State struct {
	Namespaces []*NSState `json:"namespaces"`
}

// NS returns the snapshot of the namespace called name, or nil.
func (s *State) NS(name string) *NSState {
	if s == nil {
		return nil
	}
	for _, n := range s.Namespaces {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// NSState is the state of one namespace. A snapshot taken by TakeCounters
// holds only IPTables.
type NSState struct {
	// Name is the scenario's name for the namespace.
	Name   string  `json:"name"`
	Links  []Link  `json:"links,omitempty"`
	Routes []Route `json:"routes,omitempty"`
	// Rules are the policy routing rules of both families, in the order
	// the kernel lists them; none means the kernel's defaults.
	Rules     []IPRule   `json:"rules,omitempty"`
	Neighbors []Neighbor `json:"neighbors,omitempty"`
	// Sysctls maps dotted keys ("net.ipv4.ip_forward",
	// "net.ipv4.conf.eth0.rp_filter") to their values.
	Sysctls  map[string]string `json:"sysctls,omitempty"`
	IPTables []iptrules.Table  `json:"iptables,omitempty"`
	// IP6Tables are the ip6tables tables, as ip6tables-save prints them.
	IP6Tables []iptrules.Table `json:"ip6tables,omitempty"`
	// NFT are the namespace's nftables tables, read through netlink.
	NFT       []nftrules.Table `json:"nft,omitempty"`
	Listeners []Listener       `json:"listeners,omitempty"`
	// Recorded are the addresses a container runtime recorded for the
	// namespace's interfaces (a container given by name): what they
	// should have, whatever they have now.
	Recorded []RecordedAddr `json:"recorded,omitempty"`
	// Errors name the parts of the snapshot that could not be read; the
	// other parts are still valid.
	Errors []string `json:"errors,omitempty"`
}

// RecordedAddr is an address a container runtime recorded for one of a
// container's interfaces when it connected it.
type RecordedAddr struct {
	// By names who recorded it, as a user would ask again: "podman
	// inspect web".
	By string `json:"by"`
	// MAC is the interface's MAC as recorded; "" when not known.
	MAC string `json:"mac,omitempty"`
	// Addr is the address and its prefix; Gateway the network's
	// gateway, invalid when it has none.
	Addr    netip.Prefix `json:"addr"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
}

// Link is one network interface.
type Link struct {
	Name  string `json:"name"`
	Index int    `json:"index"`
	// Kind is the link type: "veth", "bridge", "dummy", "vxlan",
	// "macvlan", "loopback" (lo) ...
	Kind string `json:"kind"`
	// Up is the administrative state (IFF_UP); Carrier is IFF_LOWER_UP,
	// false for a veth whose peer is down.
	Up        bool   `json:"up"`
	Carrier   bool   `json:"carrier"`
	OperState string `json:"operstate,omitempty"`
	// Master is the bridge this link is a port of, or "".
	Master string         `json:"master,omitempty"`
	MTU    int            `json:"mtu,omitempty"`
	MAC    string         `json:"mac,omitempty"`
	Addrs  []netip.Prefix `json:"addrs,omitempty"`
	// Peer is the other end of a veth pair as "ns/if", when the snapshot
	// could tell; PeerIndex is its ifindex.
	Peer      string `json:"peer,omitempty"`
	PeerIndex int    `json:"peer_index,omitempty"`
	// PeerOutside names, for a veth whose peer is in a namespace outside
	// the snapshot, how a user names that namespace to hopcheck: a name
	// from `ip netns list`, or /proc/PID/ns/net of a process in it; ""
	// when it could not be found (or the peer is in the snapshot).
	PeerOutside string `json:"peer_outside,omitempty"`
	// PeerOutsideWho says what lives there when known: "process 4242
	// (httpd)".
	PeerOutsideWho string `json:"peer_outside_who,omitempty"`
	// PeerOutsideInode is that namespace's inode: a path through a PID
	// may name another namespace by the time it is opened again.
	PeerOutsideInode uint64 `json:"peer_outside_inode,omitempty"`
	// LearnedMACs are the MACs the bridge learned behind this port, read
	// for ports whose far side is outside the snapshot (to tell which of
	// them a neighbor lives behind).
	LearnedMACs []string `json:"learned_macs,omitempty"`
	// VXLAN holds a vxlan device's settings; nil for other kinds.
	VXLAN *VXLAN `json:"vxlan,omitempty"`
}

// VXLAN is a vxlan device's tunnel settings and forwarding database.
type VXLAN struct {
	VNI int `json:"vni"`
	// Port is the UDP destination port (IFLA_VXLAN_PORT).
	Port int `json:"port"`
	// Remote is the peer's underlay address or a multicast group; invalid
	// when the device has none (FDB entries decide then).
	Remote netip.Addr `json:"remote,omitzero"`
	// Local is the underlay source address; invalid when unset.
	Local netip.Addr `json:"local,omitzero"`
	// Dev is the underlay device, when one is set.
	Dev      string `json:"dev,omitempty"`
	Learning bool   `json:"learning"`
	// FDB are the device's forwarding entries (bridge fdb show dev X)
	// that name a remote VTEP; an all-zero MAC is the default entry
	// that broadcast, multicast and unknown unicast frames use.
	FDB []FDBEntry `json:"fdb,omitempty"`
}

// FDBEntry is one vxlan forwarding entry: frames to MAC go to Dst.
type FDBEntry struct {
	MAC string     `json:"mac"`
	Dst netip.Addr `json:"dst"`
}

// IsLoopback reports whether l is the namespace's lo.
func (l *Link) IsLoopback() bool { return l.Kind == "loopback" || l.Name == "lo" }

// Configured returns l's addresses but the IPv6 link-local ones, which
// the kernel gives every interface that comes up: the addresses someone
// configured.
func (l *Link) Configured() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range l.Addrs {
		if !(p.Addr().Is6() && p.Addr().IsLinkLocalUnicast()) {
			out = append(out, p)
		}
	}
	return out
}

// HasAddr reports whether a is one of l's addresses.
func (l *Link) HasAddr(a netip.Addr) bool {
	for _, p := range l.Addrs {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// Route is one route of any table.
type Route struct {
	// Table is the table number: TableMain, TableLocal, or another.
	Table int `json:"table"`
	// Type is RouteUnicast, RouteLocal, ...
	Type string       `json:"type"`
	Dst  netip.Prefix `json:"dst"`
	// Via is the gateway; invalid for an on-link route.
	Via    netip.Addr `json:"via,omitzero"`
	Dev    string     `json:"dev,omitempty"`
	Src    netip.Addr `json:"src,omitzero"`
	Metric int        `json:"metric,omitempty"`
	// LinkDown is set when the kernel marks the route's device as having
	// no carrier (still used, as the kernel does by default).
	LinkDown bool `json:"linkdown,omitempty"`
}

// String formats r as `ip route` prints it: "default via 10.0.0.1 dev
// veth_1", "local 10.0.0.2 dev veth_1 table local".
func (r Route) String() string {
	var b strings.Builder
	if r.Type != "" && r.Type != RouteUnicast {
		b.WriteString(r.Type + " ")
	}
	switch {
	case r.Dst.Bits() == 0:
		b.WriteString("default")
	case r.Dst.IsSingleIP():
		b.WriteString(r.Dst.Addr().String())
	default:
		b.WriteString(r.Dst.String())
	}
	if r.Via.IsValid() {
		b.WriteString(" via " + r.Via.String())
	}
	if r.Dev != "" {
		b.WriteString(" dev " + r.Dev)
	}
	switch r.Table {
	case 0, TableMain:
	case TableLocal:
		b.WriteString(" table local")
	default:
		b.WriteString(" table " + strconv.Itoa(r.Table))
	}
	if r.Src.IsValid() {
		b.WriteString(" src " + r.Src.String())
	}
	if r.Metric != 0 {
		b.WriteString(" metric " + strconv.Itoa(r.Metric))
	}
	if r.LinkDown {
		b.WriteString(" linkdown")
	}
	return b.String()
}

// Neighbor is one neighbor (ARP) entry.
type Neighbor struct {
	IP  netip.Addr `json:"ip"`
	MAC string     `json:"mac,omitempty"`
	Dev string     `json:"dev"`
	// State is the NUD state as `ip neigh` prints it: REACHABLE, STALE,
	// DELAY, PROBE, FAILED, INCOMPLETE, PERMANENT, NOARP.
	State string `json:"state"`
}

// Listener is a socket waiting for tcp connections or bound for udp.
type Listener struct {
	// Proto is "tcp" or "udp".
	Proto string `json:"proto"`
	// Addr is the bound address; unspecified for any.
	Addr netip.AddrPort `json:"addr"`
}

// Link returns the link called name, or nil.
func (n *NSState) Link(name string) *Link {
	if n == nil {
		return nil
	}
	for i := range n.Links {
		if n.Links[i].Name == name {
			return &n.Links[i]
		}
	}
	return nil
}

// LinkWithAddr returns the link holding address a, or nil.
func (n *NSState) LinkWithAddr(a netip.Addr) *Link {
	for i := range n.Links {
		if n.Links[i].HasAddr(a) {
			return &n.Links[i]
		}
	}
	return nil
}

// Sysctl returns the value of key and whether the snapshot has it.
func (n *NSState) Sysctl(key string) (string, bool) {
	v, ok := n.Sysctls[key]
	return v, ok
}

// SysctlInt returns key as a number, or def when it is missing or not a
// number.
func (n *NSState) SysctlInt(key string, def int) int {
	v, ok := n.Sysctl(key)
	if !ok {
		return def
	}
	i, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return def
	}
	return i
}

// Table returns the iptables table called name, or nil.
func (n *NSState) Table(name string) *iptrules.Table {
	if n == nil {
		return nil
	}
	return iptrules.Find(n.IPTables, name)
}

// TableFor returns the table called name of the family of a packet: the
// ip6tables table when v6, else the iptables one; nil when there is none.
func (n *NSState) TableFor(name string, v6 bool) *iptrules.Table {
	if n == nil {
		return nil
	}
	if v6 {
		return iptrules.Find(n.IP6Tables, name)
	}
	return iptrules.Find(n.IPTables, name)
}

// Neighbor returns the neighbor entry for ip on dev, or nil.
func (n *NSState) Neighbor(ip netip.Addr, dev string) *Neighbor {
	for i := range n.Neighbors {
		if nb := &n.Neighbors[i]; nb.IP == ip && (dev == "" || nb.Dev == dev) {
			return nb
		}
	}
	return nil
}

// Delta returns the iptables and nftables counters that moved from before
// to after, in the order of after. iptables rules are matched by position
// and spec, nft rules by handle and text, so a rule set changed between
// the snapshots yields nothing for the changed rules. Either snapshot may
// come from TakeCounters.
func Delta(before, after *State) []netfilter.Moved {
	if before == nil || after == nil {
		return nil
	}
	var out []netfilter.Moved
	for _, an := range after.Namespaces {
		bn := before.NS(an.Name)
		if bn == nil {
			continue
		}
		for _, v6 := range []bool{false, true} {
			bt, at := bn.IPTables, an.IPTables
			if v6 {
				bt, at = bn.IP6Tables, an.IP6Tables
			}
			out = append(out, iptrules.Delta(an.Name, v6, bt, at)...)
		}
		out = append(out, nftrules.Delta(an.Name, bn.NFT, an.NFT)...)
	}
	return out
}

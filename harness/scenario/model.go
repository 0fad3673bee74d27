package scenario

import (
	"net"
	"net/netip"
	"time"
)

// Pos is a position in a scenario file.
type Pos struct {
	File string
	Line int
	Col  int
}

// String formats p as "file:line:col", the form editors and CI annotate.
// Col is left out when it is 0 (unknown: YAML syntax errors carry only a
// line), and Line too when it is 0 (a problem with the whole file).
func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return p.File + ":" + itoa(p.Line)
	}
	return p.File + ":" + itoa(p.Line) + ":" + itoa(p.Col)
}

// HostNS is the name of the namespace that stands for the node's own stack.
// It is a sandbox namespace like the others unless the user opts into the
// real root namespace on a disposable VM.
const HostNS = "host"

// Scenario is one parsed and validated scenario file.
type Scenario struct {
	Name        string
	Description string
	// File is the path the scenario was read from, as given by the user.
	File string
	// Namespaces in file order.
	Namespaces []*Namespace
	// Links are the veth pairs, in file order.
	Links []Link
	// Checks run in this order, after the whole topology is built.
	Checks []Check

	// namePos is where the name is written, for Load's duplicate-name error.
	namePos Pos
}

// Namespace returns the namespace called name, or nil.
func (s *Scenario) Namespace(name string) *Namespace {
	for _, n := range s.Namespaces {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// NamespaceNames returns the names of the namespaces, in file order.
func (s *Scenario) NamespaceNames() []string {
	out := make([]string, len(s.Namespaces))
	for i, n := range s.Namespaces {
		out[i] = n.Name
	}
	return out
}

// Interface returns the interface at ep, or nil.
func (s *Scenario) Interface(ep Endpoint) *Interface {
	if n := s.Namespace(ep.NS); n != nil {
		return n.Interface(ep.If)
	}
	return nil
}

// Namespace is one network namespace ("container") of a scenario.
type Namespace struct {
	Name string
	Pos  Pos
	// Interfaces in file order, with veth ends named only in links added
	// after the declared ones (in link order), and lo always present: first
	// when the file does not declare it.
	Interfaces []*Interface
	Routes     []Route
	// Rules are the policy routing rules, in file order, added after
	// the routes.
	Rules     []Rule
	Sysctls   []Sysctl
	IPTables  []IPTablesCommand
	Neighbors []Neighbor
	// NFT is an nftables ruleset in `nft -f` syntax, loaded after the
	// iptables commands; "" for none. NFTPos is where it is written.
	NFT    string `json:",omitempty"`
	NFTPos Pos    `json:",omitzero"`
}

// Interface returns the interface called name, or nil.
func (n *Namespace) Interface(name string) *Interface {
	for _, i := range n.Interfaces {
		if i.Name == name {
			return i
		}
	}
	return nil
}

// LinkType is the kind of a network interface.
type LinkType string

// The interface kinds of the scenario format.
const (
	TypeVeth     LinkType = "veth"
	TypeBridge   LinkType = "bridge"
	TypeDummy    LinkType = "dummy"
	TypeVXLAN    LinkType = "vxlan"
	TypeMacvlan  LinkType = "macvlan"
	TypeLoopback LinkType = "loopback"
)

// Interface is one network interface inside a namespace.
type Interface struct {
	Name string
	// NS is the name of the namespace holding the interface.
	NS   string
	Pos  Pos
	Type LinkType
	// Declared is false for veth ends that appear only in links and for
	// the implicit lo.
	Declared  bool
	Addresses []netip.Prefix
	Up        bool
	// Master is the bridge (in the same namespace) this interface is a
	// port of, or "".
	Master string
	// MTU is 0 for the kernel's default.
	MTU int
	// MAC is nil for a kernel-chosen address.
	MAC net.HardwareAddr
	// Peer is the other end of a veth pair.
	Peer    Endpoint
	VXLAN   *VXLAN
	Macvlan *Macvlan
}

// Endpoint names an interface as "ns/if".
type Endpoint struct {
	NS string
	If string
}

// String returns "ns/if".
func (e Endpoint) String() string { return e.NS + "/" + e.If }

// VXLAN holds the settings of a vxlan interface.
type VXLAN struct {
	VNI uint32
	// Remote is the unicast peer (or multicast group); Local the source
	// address; both may be invalid (unset).
	Remote netip.Addr
	Local  netip.Addr
	// DstPort is the UDP port; 0 means 4789 (IANA), not the kernel's
	// historical 8472, because that is what `ip link add ... dstport 4789`
	// users and the tutorials use.
	DstPort uint16
	// Dev is the underlay interface in the same namespace, or "".
	Dev string
}

// Macvlan holds the settings of a macvlan interface.
type Macvlan struct {
	// Mode is bridge, vepa, private, passthru or source; "" means bridge.
	Mode string
	// Parent is the lower interface in the same namespace.
	Parent string
}

// Link is a veth pair with one end in each (or the same) namespace.
type Link struct {
	A, B Endpoint
	Pos  Pos
}

// Route is one route in `ip route add` syntax.
type Route struct {
	// Raw is the route as written.
	Raw string
	Pos Pos
	// Dst is the destination prefix; "default" is 0.0.0.0/0 (or ::/0 when
	// the gateway is IPv6).
	Dst netip.Prefix
	// Via is the gateway, invalid when the route is on-link.
	Via netip.Addr
	// Dev is the output interface, or "".
	Dev string
	// Src is the preferred source address, invalid when unset.
	Src    netip.Addr
	Metric int
	// Table is 0 for the main table (also written 254); default is 253,
	// local 255.
	Table int
}

// Sysctl is one sysctl setting inside a namespace.
type Sysctl struct {
	// Key in dotted form: net.ipv4.ip_forward.
	Key   string
	Value string
	Pos   Pos
}

// IPTablesCommand is one iptables command, applied in order.
type IPTablesCommand struct {
	// Raw is the command as written.
	Raw string
	Pos Pos
	// Table is "filter" when not given.
	Table string
	// Op is "-A", "-I", "-N" or "-P".
	Op    string
	Chain string
	// Args are what follows the chain: the rule spec for -A/-I (with an
	// optional leading position for -I), the target for -P, empty for -N.
	Args []string
}

// Neighbor is a static neighbor entry (`ip neigh add IP lladdr MAC dev IF`).
type Neighbor struct {
	Raw string
	Pos Pos
	IP  netip.Addr
	MAC net.HardwareAddr
	Dev string
}

// Expect is what a check states: that something happens, or that it does not.
type Expect string

// The expectations of a check.
const (
	ExpectSuccess Expect = "success"
	ExpectFail    Expect = "fail"
)

// Check is one check of a scenario. Exactly one of the kind-specific
// fields (Ping, Conn, ARP, ...) is set, matching Kind.
type Check struct {
	// Kind is the YAML key: ping, tcp, udp, arp, route, link, iptables, sysctl.
	Kind   string
	Name   string
	Expect Expect
	// Cause is the diagnosis code an `expect: fail` probe check must be
	// diagnosed with, or "".
	Cause string
	Pos   Pos

	Ping     *PingCheck
	Conn     *ConnCheck // tcp and udp
	ARP      *ARPCheck
	Route    *RouteCheck
	Link     *LinkCheck
	IPTables *IPTablesCheck
	Sysctl   *SysctlCheck

	// Trace assertions (ping, tcp, udp only).
	Path []Endpoint
	SNAT netip.Addr
	DNAT netip.Addr
}

// Target is where a probe goes: an address, or an interface written as
// NS/IF, whose address the parser picks from the addresses the scenario
// gives it (the first IPv4, else the first IPv6 that is not link-local;
// never a loopback address).
type Target struct {
	// Addr is the address probed, also when the target was written as NS/IF.
	Addr netip.Addr
	// If is set when the target was written as NS/IF.
	If Endpoint
}

// String returns the target as written.
func (t Target) String() string {
	if t.If.NS != "" {
		return t.If.String()
	}
	return t.Addr.String()
}

// PingCheck sends ICMP echo requests from a namespace.
type PingCheck struct {
	From    string
	To      Target
	Count   int           // default 1
	Timeout time.Duration // per reply; default 1s
	// MaxLoss is the largest fraction of lost replies that still passes,
	// 0 to 1; default 0.
	MaxLoss float64
	// Size is the size of each echo request's IP packet in bytes, headers
	// included (`ping -s N` sends N+28 for IPv4, N+48 for IPv6); 0 means
	// the default, ping(8)'s 56 data bytes.
	Size int
	// Fragment is `df: false`: the requests may be fragmented. By default
	// they carry DF (IPv4) or may not be fragmented by the sender (IPv6),
	// like `ping -M do`, so that a link with a smaller MTU shows.
	Fragment bool
}

// ConnCheck is a tcp or udp round trip from a namespace to a listener that
// the harness serves in Listen.NS for the check.
type ConnCheck struct {
	Proto string // "tcp" or "udp"
	From  string
	To    netip.AddrPort
	// Listen is where the harness serves; zero when the check has no
	// listen field (then something else must answer).
	ListenNS   string
	ListenPort uint16
	Timeout    time.Duration // default 1s
	// Payload is what a udp check without listen sends (default: the
	// probe's tag); Reply, when set, is text the answer must contain. A
	// check without listen probes a real service: tcp passes on a
	// completed handshake, udp on any answer (containing Reply).
	Payload []byte
	Reply   string
	// Size and Fragment are as for PingCheck, for the request datagram of
	// a udp check (0 and false for tcp).
	Size     int
	Fragment bool
}

// ARPCheck asserts an entry in a namespace's neighbor table.
type ARPCheck struct {
	In string
	IP netip.Addr
	// MAC is the expected address, or nil; MACOf is set when the MAC was
	// written as NS/IF and is resolved after build.
	MAC   net.HardwareAddr
	MACOf Endpoint
	Dev   string
	// State is reachable, stale, permanent or any (default any).
	State string
}

// RouteCheck asserts the result of the kernel's route lookup.
type RouteCheck struct {
	In  string
	To  netip.Addr
	Via netip.Addr
	Dev string
	Src netip.Addr
}

// LinkCheck asserts an interface's existence and properties; nil/zero
// fields are not checked.
type LinkCheck struct {
	In        string
	Name      string
	Up        *bool
	Master    *string
	MTU       int
	Addresses []netip.Prefix
}

// IPTablesCheck asserts that a rule exists and its packet counter matches.
type IPTablesCheck struct {
	In    string
	Table string // default filter
	Chain string
	// Rule is the rule spec as iptables -S prints it after "-A CHAIN".
	Rule string
	// Packets is the counter condition; nil means not checked.
	Packets *Count
}

// Count is a condition on a counter: "0", ">0", ">=N", "N", "<N" ...
type Count struct {
	Op string // "==", ">", ">=", "<", "<="
	N  uint64
}

// Match reports whether v satisfies c.
func (c Count) Match(v uint64) bool {
	switch c.Op {
	case ">":
		return v > c.N
	case ">=":
		return v >= c.N
	case "<":
		return v < c.N
	case "<=":
		return v <= c.N
	default:
		return v == c.N
	}
}

// String returns the condition as written, normalised ("==" shown bare).
func (c Count) String() string {
	if c.Op == "==" || c.Op == "" {
		return utoa(c.N)
	}
	return c.Op + utoa(c.N)
}

// SysctlCheck asserts a sysctl's value inside a namespace.
type SysctlCheck struct {
	In    string
	Key   string
	Value string
}

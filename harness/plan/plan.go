package plan

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

// Kind is what a Step does.
type Kind string

// The kinds of step, in the order New emits them.
const (
	// CreateNamespace makes the namespace NS.
	CreateNamespace Kind = "create-namespace"
	// CreateLink makes the interface If of type Type in NS; for a veth
	// pair it makes both ends at once, Peer directly in its namespace.
	CreateLink Kind = "create-link"
	// SetMAC sets the hardware address of If to MAC.
	SetMAC Kind = "set-mac"
	// SetMTU sets the MTU of If to MTU.
	SetMTU Kind = "set-mtu"
	// SetSysctl writes Sysctl inside NS.
	SetSysctl Kind = "set-sysctl"
	// SetMaster makes If a port of the bridge Master.
	SetMaster Kind = "set-master"
	// AddAddress adds Addr to If.
	AddAddress Kind = "add-address"
	// SetUp brings If up.
	SetUp Kind = "set-up"
	// AddNeighbor adds the permanent neighbor entry Neighbor.
	AddNeighbor Kind = "add-neighbor"
	// AddRoute adds Route.
	AddRoute Kind = "add-route"
	// AddRule adds the policy routing rule Rule.
	AddRule Kind = "add-rule"
	// RunIPTables applies the iptables command IPTables inside NS.
	RunIPTables Kind = "iptables"
	// RunNFT loads the nftables ruleset NFT inside NS (nft -f).
	RunNFT Kind = "nft"
)

// Step is one action of a build. It is plain data: the builder executes
// it, Script renders it, and Pos and Field name the scenario text it came
// from so that a failure can point at the line to fix.
type Step struct {
	Kind Kind
	// NS is the scenario name of the namespace the step acts in.
	NS string
	// If is the interface the step acts on, or "" for namespace-wide steps.
	If string
	// Pos and Field locate the scenario text the step comes from:
	// "namespaces.ns1.interfaces.veth_1", "links[0]", "namespaces.host.routes[1]".
	Pos   scenario.Pos
	Field string

	// The arguments; which are set depends on Kind.

	// Type is the kind of interface CreateLink makes.
	Type scenario.LinkType
	// Peer is the other end of the veth pair CreateLink makes.
	Peer scenario.Endpoint
	// VXLAN and Macvlan hold the settings of those kinds for CreateLink.
	VXLAN   *scenario.VXLAN
	Macvlan *scenario.Macvlan
	// MAC is the address SetMAC sets.
	MAC net.HardwareAddr
	// MTU is the MTU SetMTU sets.
	MTU int
	// Master is the bridge SetMaster enslaves If to.
	Master string
	// Addr is the address AddAddress adds.
	Addr     netip.Prefix
	Sysctl   *scenario.Sysctl
	Neighbor *scenario.Neighbor
	Route    *scenario.Route
	Rule     *scenario.Rule
	IPTables *scenario.IPTablesCommand
	// NFT is the ruleset RunNFT loads.
	NFT string

	// BuildOnly marks a SetSysctl step that the scenario did not ask for
	// and that only speeds the build up (IPv6 duplicate address
	// detection, see dadTuning): the builder puts the previous value back
	// once the build has settled.
	BuildOnly bool
}

// String says what the step does, in the words an error message needs
// after the field it concerns: "add address 10.0.0.2/24".
func (s Step) String() string {
	switch s.Kind {
	case CreateNamespace:
		return "create namespace"
	case CreateLink:
		if s.Type == scenario.TypeVeth {
			return fmt.Sprintf("create veth pair %s/%s <-> %s", s.NS, s.If, s.Peer)
		}
		return fmt.Sprintf("create %s interface %s", s.Type, s.If)
	case SetMAC:
		return "set mac " + s.MAC.String()
	case SetMTU:
		return "set mtu " + strconv.Itoa(s.MTU)
	case SetSysctl:
		return "set sysctl " + s.Sysctl.Key + "=" + s.Sysctl.Value
	case SetMaster:
		return "set master " + s.Master
	case AddAddress:
		return "add address " + s.Addr.String()
	case SetUp:
		return "set " + s.If + " up"
	case AddNeighbor:
		return "add neighbor " + s.Neighbor.Raw
	case AddRoute:
		return "add route " + s.Route.Raw
	case AddRule:
		return "add rule " + s.Rule.Raw
	case RunIPTables:
		return "iptables " + s.IPTables.Raw
	case RunNFT:
		return "load nft ruleset"
	}
	return string(s.Kind)
}

// Plan is the ordered build of one scenario.
type Plan struct {
	Scenario *scenario.Scenario
	Steps    []Step
}

// New plans the build of sc. It expects a scenario that scenario.Parse has
// validated, and reports what it cannot order (an interface whose vxlan dev
// or macvlan parent does not exist, a dependency cycle, a sysctl outside
// the net.* tree) as a scenario.ErrorList, so such input is answered like
// any other bad input.
func New(sc *scenario.Scenario) (*Plan, error) {
	pl := &planner{sc: sc, created: map[string]map[string]bool{}}
	pl.locateLinkEnds()

	pl.namespaces()
	pl.loopbacksUp()
	pl.sysctls(false)
	order := pl.links()
	pl.macsAndMTUs(order)
	pl.dadTuning(order)
	pl.sysctls(true)
	pl.masters(order)
	pl.addresses()
	pl.ups(order)
	pl.neighbors()
	pl.routes()
	pl.rules()
	pl.iptables()
	pl.nft()

	if len(pl.errs) > 0 {
		return nil, pl.errs
	}
	return &Plan{Scenario: sc, Steps: pl.steps}, nil
}

// planner accumulates the steps of one plan and the problems found.
type planner struct {
	sc    *scenario.Scenario
	steps []Step
	errs  scenario.ErrorList
	// created holds, per namespace, the interfaces that exist at the
	// current point of the plan.
	created map[string]map[string]bool
	// linkOf maps each veth end to the index of its entry in sc.Links.
	linkOf map[scenario.Endpoint]int
}

func (p *planner) add(s Step) { p.steps = append(p.steps, s) }

func (p *planner) errorf(pos scenario.Pos, field, format string, args ...any) {
	p.errs = append(p.errs, &scenario.Error{Pos: pos, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (p *planner) locateLinkEnds() {
	p.linkOf = map[scenario.Endpoint]int{}
	for i, l := range p.sc.Links {
		p.linkOf[l.A] = i
		p.linkOf[l.B] = i
	}
}

// where returns the position and field that name ifc in messages: its own
// entry when the scenario declares it, else the link that makes it (a veth
// end named only in links), else its namespace (the implicit lo).
func (p *planner) where(ns *scenario.Namespace, ifc *scenario.Interface) (scenario.Pos, string) {
	if ifc.Declared {
		return ifc.Pos, ifField(ns.Name, ifc.Name)
	}
	if i, ok := p.linkOf[scenario.Endpoint{NS: ns.Name, If: ifc.Name}]; ok {
		return p.sc.Links[i].Pos, "links[" + strconv.Itoa(i) + "]"
	}
	return ns.Pos, nsField(ns.Name)
}

func nsField(ns string) string      { return "namespaces." + ns }
func ifField(ns, ifc string) string { return nsField(ns) + ".interfaces." + ifc }

// ifStep returns a step of kind k about ifc, located for messages.
func (p *planner) ifStep(k Kind, ns *scenario.Namespace, ifc *scenario.Interface) Step {
	pos, field := p.where(ns, ifc)
	return Step{Kind: k, NS: ns.Name, If: ifc.Name, Pos: pos, Field: field}
}

func (p *planner) namespaces() {
	for _, ns := range p.sc.Namespaces {
		p.add(Step{Kind: CreateNamespace, NS: ns.Name, Pos: ns.Pos, Field: nsField(ns.Name)})
		// lo exists in every new namespace.
		p.created[ns.Name] = map[string]bool{"lo": true}
	}
}

// loopback returns the lo of ns; a hand-built scenario may leave it out,
// and then it has the format's defaults (up, no addresses).
func loopback(ns *scenario.Namespace) *scenario.Interface {
	if lo := ns.Interface("lo"); lo != nil {
		return lo
	}
	return &scenario.Interface{Name: "lo", NS: ns.Name, Type: scenario.TypeLoopback, Up: true}
}

// loopbacksUp brings lo up first: every namespace gets it unless it says
// lo: {up: false}, and local addresses need it.
func (p *planner) loopbacksUp() {
	for _, ns := range p.sc.Namespaces {
		if lo := loopback(ns); lo.Up {
			p.add(p.ifStep(SetUp, ns, lo))
		}
	}
}

// sysctls emits the namespace-wide sysctls (scoped=false), which go before
// any link so that "all"/"default" settings apply to the interfaces made
// afterwards and before their addresses, or the interface-scoped ones
// (scoped=true), which need their interface to exist.
func (p *planner) sysctls(scoped bool) {
	for _, ns := range p.sc.Namespaces {
		for i := range ns.Sysctls {
			s := &ns.Sysctls[i]
			field := nsField(ns.Name) + ".sysctls." + s.Key
			ifname, isScoped := sysctlInterface(s.Key)
			if isScoped != scoped {
				continue
			}
			if _, err := SysctlPath(s.Key); err != nil {
				p.errorf(s.Pos, field, "%v", err)
				continue
			}
			if scoped && !p.created[ns.Name][ifname] {
				p.errorf(s.Pos, field, "sysctl %s names interface %q, which namespace %s does not have", s.Key, ifname, ns.Name)
				continue
			}
			p.add(Step{Kind: SetSysctl, NS: ns.Name, If: ifname, Pos: s.Pos, Field: field, Sysctl: s})
		}
	}
}

// made is one interface in the order links() creates them.
type made struct {
	ns  *scenario.Namespace
	ifc *scenario.Interface
}

// links emits the CreateLink steps in dependency order and returns every
// interface in the order it now exists, the lo of each namespace first.
// Bridges come first (they depend on nothing and ports are enslaved
// later), then the veth pairs (one step each, the peer made directly in
// its namespace), then the remaining kinds as soon as the interface they
// sit on (vxlan dev, macvlan parent) exists, in file order otherwise.
func (p *planner) links() []made {
	var order []made
	for _, ns := range p.sc.Namespaces {
		order = append(order, made{ns, loopback(ns)})
	}
	var rest []made
	for _, ns := range p.sc.Namespaces {
		for _, ifc := range ns.Interfaces {
			switch ifc.Type {
			case scenario.TypeBridge:
				p.createLink(ns, ifc)
				order = append(order, made{ns, ifc})
			case scenario.TypeLoopback:
				if ifc.Name != "lo" {
					pos, field := p.where(ns, ifc)
					p.errorf(pos, field, "type loopback is only for lo")
				}
			case scenario.TypeVeth:
				if _, ok := p.linkOf[scenario.Endpoint{NS: ns.Name, If: ifc.Name}]; !ok {
					pos, field := p.where(ns, ifc)
					p.errorf(pos, field, "veth %s is not an end of any link", ifc.Name)
				}
			case scenario.TypeVXLAN, scenario.TypeMacvlan, scenario.TypeDummy:
				rest = append(rest, made{ns, ifc})
			default:
				pos, field := p.where(ns, ifc)
				p.errorf(pos, field, "interface %s has unknown type %q", ifc.Name, ifc.Type)
			}
		}
	}
	for i, l := range p.sc.Links {
		order = append(order, p.createPair(i, l)...)
	}
	for len(rest) > 0 {
		var waiting []made
		for _, m := range rest {
			if dep := lowerOf(m.ifc); dep != "" && !p.created[m.ns.Name][dep] {
				waiting = append(waiting, m)
				continue
			}
			p.createLink(m.ns, m.ifc)
			order = append(order, m)
		}
		if len(waiting) == len(rest) {
			// Nothing could be made: the rest depend on interfaces
			// that do not exist, or on each other.
			for _, m := range waiting {
				pos, field := p.where(m.ns, m.ifc)
				dep := lowerOf(m.ifc)
				if m.ns.Interface(dep) == nil {
					p.errorf(pos, field, "%s %s sits on %q, which namespace %s does not have", m.ifc.Type, m.ifc.Name, dep, m.ns.Name)
				} else {
					p.errorf(pos, field, "%s %s sits on %s, which cannot be created first (a dependency cycle)", m.ifc.Type, m.ifc.Name, dep)
				}
			}
			break
		}
		rest = waiting
	}
	return order
}

// lowerOf returns the interface ifc is created on top of, or "".
func lowerOf(ifc *scenario.Interface) string {
	switch {
	case ifc.Type == scenario.TypeVXLAN && ifc.VXLAN != nil:
		return ifc.VXLAN.Dev
	case ifc.Type == scenario.TypeMacvlan && ifc.Macvlan != nil:
		return ifc.Macvlan.Parent
	}
	return ""
}

func (p *planner) createLink(ns *scenario.Namespace, ifc *scenario.Interface) {
	s := p.ifStep(CreateLink, ns, ifc)
	s.Type = ifc.Type
	switch ifc.Type {
	case scenario.TypeVXLAN:
		if ifc.VXLAN == nil {
			p.errorf(s.Pos, s.Field, "vxlan %s has no vxlan settings", ifc.Name)
			return
		}
		s.VXLAN = ifc.VXLAN
	case scenario.TypeMacvlan:
		if ifc.Macvlan == nil || ifc.Macvlan.Parent == "" {
			p.errorf(s.Pos, s.Field, "macvlan %s has no parent", ifc.Name)
			return
		}
		s.Macvlan = ifc.Macvlan
	}
	p.add(s)
	p.created[ns.Name][ifc.Name] = true
}

// createPair emits the one step that makes the veth pair l and returns
// both ends.
func (p *planner) createPair(i int, l scenario.Link) []made {
	field := "links[" + strconv.Itoa(i) + "]"
	var ends []made
	for _, ep := range []scenario.Endpoint{l.A, l.B} {
		ns := p.sc.Namespace(ep.NS)
		if ns == nil {
			p.errorf(l.Pos, field, "namespace %q does not exist", ep.NS)
			return nil
		}
		ifc := ns.Interface(ep.If)
		if ifc == nil || ifc.Type != scenario.TypeVeth {
			p.errorf(l.Pos, field, "%s is not a veth interface of namespace %s", ep, ep.NS)
			return nil
		}
		if p.created[ep.NS][ep.If] {
			p.errorf(l.Pos, field, "%s already exists", ep)
			return nil
		}
		ends = append(ends, made{ns, ifc})
	}
	p.add(Step{Kind: CreateLink, NS: l.A.NS, If: l.A.If, Pos: l.Pos, Field: field, Type: scenario.TypeVeth, Peer: l.B})
	p.created[l.A.NS][l.A.If] = true
	p.created[l.B.NS][l.B.If] = true
	return ends
}

// macsAndMTUs sets the explicit MACs and MTUs right after creation, before
// ports join bridges (a bridge takes its ports' properties into account
// when they join).
func (p *planner) macsAndMTUs(order []made) {
	for _, m := range order {
		if m.ifc.MAC != nil {
			s := p.ifStep(SetMAC, m.ns, m.ifc)
			s.MAC = m.ifc.MAC
			p.add(s)
		}
		if m.ifc.MTU > 0 {
			s := p.ifStep(SetMTU, m.ns, m.ifc)
			s.MTU = m.ifc.MTU
			p.add(s)
		}
	}
}

func (p *planner) masters(order []made) {
	for _, m := range order {
		if m.ifc.Master == "" {
			continue
		}
		s := p.ifStep(SetMaster, m.ns, m.ifc)
		br := m.ns.Interface(m.ifc.Master)
		if br == nil || br.Type != scenario.TypeBridge {
			p.errorf(s.Pos, s.Field, "master %q is not a bridge in namespace %s", m.ifc.Master, m.ns.Name)
			continue
		}
		s.Master = m.ifc.Master
		p.add(s)
	}
}

// addresses go on before the links come up. IPv6 addresses stay
// tentative until duplicate address detection, which starts when their
// link has a carrier, has found no other interface with the address; the
// builder waits for it at the end (see dadTuning).
func (p *planner) addresses() {
	for _, ns := range p.sc.Namespaces {
		for _, ifc := range ns.Interfaces {
			for _, a := range ifc.Addresses {
				s := p.ifStep(AddAddress, ns, ifc)
				s.Addr = a
				p.add(s)
			}
		}
	}
}

// ups brings every interface up in creation order, so a lower interface
// (macvlan parent, vxlan dev) is up before the one on top of it. lo was
// brought up first.
func (p *planner) ups(order []made) {
	for _, m := range order {
		if m.ifc.Up && m.ifc.Name != "lo" {
			p.add(p.ifStep(SetUp, m.ns, m.ifc))
		}
	}
}

func (p *planner) neighbors() {
	for _, ns := range p.sc.Namespaces {
		for i := range ns.Neighbors {
			n := &ns.Neighbors[i]
			field := nsField(ns.Name) + ".neighbors[" + strconv.Itoa(i) + "]"
			if ns.Interface(n.Dev) == nil {
				p.errorf(n.Pos, field, "dev %q does not exist in namespace %s", n.Dev, ns.Name)
				continue
			}
			p.add(Step{Kind: AddNeighbor, NS: ns.Name, If: n.Dev, Pos: n.Pos, Field: field, Neighbor: n})
		}
	}
}

// routes adds each namespace's on-link routes (no gateway) before the
// routes via a gateway, keeping the written order within each group. The
// kernel accepts a gateway only if a route without gateway (an address's
// connected route or an on-link route) already covers it, and a gateway
// route never makes another gateway reachable, so this order is enough.
func (p *planner) routes() {
	for _, ns := range p.sc.Namespaces {
		for _, viaGateway := range []bool{false, true} {
			for i := range ns.Routes {
				r := &ns.Routes[i]
				if r.Via.IsValid() != viaGateway {
					continue
				}
				field := nsField(ns.Name) + ".routes[" + strconv.Itoa(i) + "]"
				if r.Dev != "" && ns.Interface(r.Dev) == nil {
					p.errorf(r.Pos, field, "dev %q does not exist in namespace %s", r.Dev, ns.Name)
					continue
				}
				p.add(Step{Kind: AddRoute, NS: ns.Name, If: r.Dev, Pos: r.Pos, Field: field, Route: r})
			}
		}
	}
}

// rules adds each namespace's policy routing rules in the written order,
// after the routes: the kernel takes a rule for a table that has no routes
// yet, but a rule that sends traffic to a table still being filled would
// make the build's own traffic (IPv6 duplicate address detection, the
// neighbor solicitations of the settle phase) take it meanwhile. Order
// matters where a rule has no priority: the kernel numbers each one below
// the last, so a later one is consulted first, as with ip rule add.
func (p *planner) rules() {
	for _, ns := range p.sc.Namespaces {
		for i := range ns.Rules {
			r := &ns.Rules[i]
			field := nsField(ns.Name) + ".rules[" + strconv.Itoa(i) + "]"
			p.add(Step{Kind: AddRule, NS: ns.Name, Pos: r.Pos, Field: field, Rule: r})
		}
	}
}

// iptables keeps the written order: a chain made by -N exists before the
// rules that jump to it only if the author wrote it first, as with the
// iptables command itself.
func (p *planner) iptables() {
	for _, ns := range p.sc.Namespaces {
		for i := range ns.IPTables {
			c := &ns.IPTables[i]
			field := nsField(ns.Name) + ".iptables[" + strconv.Itoa(i) + "]"
			switch c.Op {
			case "-A", "-I", "-N", "-P":
			default:
				p.errorf(c.Pos, field, "iptables command %q is not one of -A, -I, -N, -P", c.Op)
				continue
			}
			p.add(Step{Kind: RunIPTables, NS: ns.Name, Pos: c.Pos, Field: field, IPTables: c})
		}
	}
}

// nft loads each namespace's nftables ruleset, after its iptables
// commands: a ruleset may refer to nothing iptables makes, and iptables-nft
// tables are separate tables.
func (p *planner) nft() {
	for _, ns := range p.sc.Namespaces {
		if ns.NFT != "" {
			p.add(Step{Kind: RunNFT, NS: ns.Name, Pos: ns.NFTPos, Field: nsField(ns.Name) + ".nft", NFT: ns.NFT})
		}
	}
}

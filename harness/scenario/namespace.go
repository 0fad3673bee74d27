package scenario

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"gopkg.in/yaml.v3"
)

var namespaceKeys = []string{"interfaces", "routes", "rules", "sysctls", "iptables", "nft", "neighbors", "lo"}

var interfaceKeys = []string{
	"type", "addresses", "up", "master", "mtu", "mac",
	"vni", "remote", "local", "dstport", "dev",
	"mode", "parent",
}

// The keys that belong to one interface type only.
var (
	vxlanKeys   = []string{"vni", "remote", "local", "dstport", "dev"}
	macvlanKeys = []string{"mode", "parent"}
)

// linkTypes are the values of an interface's type key.
var linkTypes = []string{
	string(TypeVeth), string(TypeBridge), string(TypeDummy),
	string(TypeVXLAN), string(TypeMacvlan), string(TypeLoopback),
}

// macvlanModes are the modes `ip link add ... type macvlan mode M` takes.
var macvlanModes = []string{"bridge", "vepa", "private", "passthru", "source"}

// MTU bounds: the kernel refuses less than 68 (the IPv4 minimum) on the
// interface types hopcheck creates, and more than 65535 on veth and bridges.
const (
	minMTU = 68
	maxMTU = 65535
)

// topo is the scenario under construction together with the YAML nodes that
// later checks point their errors at.
type topo struct {
	s          *Scenario
	namespaces []*nsSource
	// declared are the interfaces written under a namespace's interfaces.
	declared map[Endpoint]*ifaceSource
	// linkEnds are the veth ends named in links, with where.
	linkEnds map[Endpoint]Pos
}

// nsSource is a namespace and where its parts were written.
type nsSource struct {
	ns    *Namespace
	field string
	// ifaces are the declared interfaces in file order.
	ifaces []*ifaceSource
	// sysctlNodes are the key nodes of ns.Sysctls, in the same order.
	sysctlNodes []*yaml.Node
	// routeFields and neighborFields are the field paths of ns.Routes and
	// ns.Neighbors, which skip entries that did not parse.
	routeFields, neighborFields []string
	// ruleFields are the field paths of ns.Rules.
	ruleFields []string
}

// ifaceSource is a declared interface and the nodes of its fields.
type ifaceSource struct {
	iface *Interface
	field string
	key   *yaml.Node
	// vals are the value nodes by key, for errors found after links.
	vals map[string]*yaml.Node
	keys map[string]*yaml.Node
	// typeSet is whether type was written (and valid).
	typeSet bool
}

// namespaces reads the namespaces mapping.
func (p *parser) namespaces(t *topo, kv pair) {
	entries, ok := p.pairs(kv.v, "namespaces", nil)
	if !ok {
		return
	}
	if len(entries) == 0 {
		p.errorf(kv.v, "namespaces", "a scenario needs at least one namespace")
		return
	}
	for _, e := range entries {
		field := "namespaces." + e.key
		if msg := checkNamespaceName(e.key); msg != "" {
			p.errorf(e.k, "namespaces", "%s", msg)
			continue
		}
		ns := &Namespace{Name: e.key, Pos: p.pos(e.k)}
		src := &nsSource{ns: ns, field: field}
		t.namespaces = append(t.namespaces, src)
		t.s.Namespaces = append(t.s.Namespaces, ns)
		p.namespace(t, src, e.v)
	}
}

// parseLines reads a list of one-line values (routes, neighbors, addresses) with
// parse, reporting each bad line at its position, and hands each good one to
// add with its position and field path.
func parseLines[T any](p *parser, n *yaml.Node, field string, parse func(string) (T, error), add func(T, Pos, string)) {
	items, _ := p.items(n, field)
	for i, it := range items {
		f := fmt.Sprintf("%s[%d]", field, i)
		raw, ok := p.str(it, f)
		if !ok {
			continue
		}
		v, err := parse(raw)
		if err != nil {
			p.errorf(it, f, "%v", err)
			continue
		}
		add(v, p.pos(it), f)
	}
}

// namespace reads one namespace's mapping.
func (p *parser) namespace(t *topo, src *nsSource, n *yaml.Node) {
	entries, ok := p.pairs(n, src.field, namespaceKeys)
	if !ok {
		return
	}
	var loNode *yaml.Node
	for _, e := range entries {
		field := src.field + "." + e.key
		switch e.key {
		case "interfaces":
			ifs, _ := p.pairs(e.v, field, nil)
			for _, i := range ifs {
				if i.key == "lo" && loNode != nil {
					p.errorf(i.k, field, "lo is also set at %s.lo (line %d); set it in one place", src.field, loNode.Line)
					continue
				}
				p.iface(t, src, i, field+"."+i.key)
			}
		case "lo":
			// The format page says "every namespace gets lo up unless it
			// says lo: {up: false}"; accept that spelling at the namespace
			// level as well as under interfaces.
			loNode = e.k
			if src.ns.Interface("lo") != nil {
				p.errorf(e.k, field, "lo is also set under %s.interfaces; set it in one place", src.field)
				continue
			}
			p.iface(t, src, e, field)
		case "routes":
			parseLines(p, e.v, field, ParseRoute, func(r Route, pos Pos, f string) {
				r.Pos = pos
				src.ns.Routes = append(src.ns.Routes, r)
				src.routeFields = append(src.routeFields, f)
			})
		case "rules":
			parseLines(p, e.v, field, ParseRule, func(r Rule, pos Pos, f string) {
				r.Pos = pos
				src.ns.Rules = append(src.ns.Rules, r)
				src.ruleFields = append(src.ruleFields, f)
			})
		case "neighbors":
			parseLines(p, e.v, field, ParseNeighbor, func(nb Neighbor, pos Pos, f string) {
				nb.Pos = pos
				src.ns.Neighbors = append(src.ns.Neighbors, nb)
				src.neighborFields = append(src.neighborFields, f)
			})
		case "iptables":
			p.iptables(src, e.v, field)
		case "nft":
			if s, ok := p.str(e.v, field); ok {
				if strings.TrimSpace(s) == "" {
					p.errorf(e.v, field, "the nft ruleset is empty (leave the key out for none)")
				}
				src.ns.NFT, src.ns.NFTPos = s, p.pos(e.v)
			}
		case "sysctls":
			kvs, _ := p.pairs(e.v, field, nil)
			for _, s := range kvs {
				f := field + "." + s.key
				if msg := checkSysctlKey(s.key); msg != "" {
					p.errorf(s.k, field, "%s", msg)
					continue
				}
				v, ok := p.scalarValue(s.v, f)
				if !ok {
					continue
				}
				if msg := checkSysctlValue(s.key, v); msg != "" {
					p.errorf(s.v, f, "%s", msg)
					continue
				}
				src.ns.Sysctls = append(src.ns.Sysctls, Sysctl{Key: s.key, Value: v, Pos: p.pos(s.k)})
				src.sysctlNodes = append(src.sysctlNodes, s.k)
			}
		}
	}
}

// iface reads one declared interface.
func (p *parser) iface(t *topo, src *nsSource, e pair, field string) {
	parent := strings.TrimSuffix(field, "."+e.key)
	if msg := checkIfName(e.key); msg != "" {
		p.errorf(e.k, parent, "%s", msg)
		return
	}
	ifc := &Interface{Name: e.key, NS: src.ns.Name, Pos: p.pos(e.k), Declared: true, Up: true}
	is := &ifaceSource{iface: ifc, field: field, key: e.k, vals: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}}
	src.ns.Interfaces = append(src.ns.Interfaces, ifc)
	src.ifaces = append(src.ifaces, is)
	t.declared[Endpoint{NS: src.ns.Name, If: e.key}] = is

	entries, _ := p.pairs(e.v, field, interfaceKeys)
	for _, kv := range entries {
		f := field + "." + kv.key
		is.keys[kv.key] = kv.k
		is.vals[kv.key] = kv.v
		switch kv.key {
		case "type":
			s, ok := p.str(kv.v, f)
			if !ok {
				continue
			}
			if !contains(linkTypes, s) {
				p.errorf(kv.v, f, "unknown interface type %q%s; one of %s", s, didYouMean(s, linkTypes), strings.Join(linkTypes, ", "))
				continue
			}
			ifc.Type, is.typeSet = LinkType(s), true
		case "addresses":
			parseLines(p, kv.v, f, parseCIDR, func(pfx netip.Prefix, pos Pos, af string) {
				if containsPrefix(ifc.Addresses, pfx) {
					p.errorAt(pos, af, "address %s is listed twice", pfx)
					return
				}
				ifc.Addresses = append(ifc.Addresses, pfx)
			})
		case "up":
			if b, ok := p.boolean(kv.v, f); ok {
				ifc.Up = b
			}
		case "master", "dev", "parent":
			s, ok := p.str(kv.v, f)
			if !ok {
				continue
			}
			if strings.Contains(s, "/") {
				p.errorf(kv.v, f, "%s must name an interface in the same namespace (%s), not %q", kv.key, src.ns.Name, s)
				continue
			}
			if msg := checkIfName(s); msg != "" {
				p.errorf(kv.v, f, "%s", msg)
				continue
			}
			switch kv.key {
			case "master":
				ifc.Master = s
			case "dev":
				vxlanOf(ifc).Dev = s
			case "parent":
				macvlanOf(ifc).Parent = s
			}
		case "mtu":
			if v, ok := p.integer(kv.v, f, minMTU, maxMTU); ok {
				ifc.MTU = int(v)
			}
		case "mac":
			s, ok := p.str(kv.v, f)
			if !ok {
				continue
			}
			mac, err := parseMAC(s)
			if err != nil {
				p.errorf(kv.v, f, "%v", err)
				continue
			}
			ifc.MAC = mac
		case "vni":
			if v, ok := p.integer(kv.v, f, 0, 1<<24-1); ok {
				vxlanOf(ifc).VNI = uint32(v)
			}
		case "remote", "local":
			s, ok := p.str(kv.v, f)
			if !ok {
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				p.errorf(kv.v, f, "%s %q is not an IP address", kv.key, s)
				continue
			}
			if kv.key == "remote" {
				vxlanOf(ifc).Remote = a
			} else {
				vxlanOf(ifc).Local = a
			}
		case "dstport":
			if v, ok := p.integer(kv.v, f, 1, 65535); ok {
				vxlanOf(ifc).DstPort = uint16(v)
			}
		case "mode":
			s, ok := p.str(kv.v, f)
			if !ok {
				continue
			}
			if !contains(macvlanModes, s) {
				p.errorf(kv.v, f, "unknown macvlan mode %q%s; one of %s", s, didYouMean(s, macvlanModes), strings.Join(macvlanModes, ", "))
				continue
			}
			macvlanOf(ifc).Mode = s
		}
	}
}

func vxlanOf(i *Interface) *VXLAN {
	if i.VXLAN == nil {
		i.VXLAN = &VXLAN{}
	}
	return i.VXLAN
}

func macvlanOf(i *Interface) *Macvlan {
	if i.Macvlan == nil {
		i.Macvlan = &Macvlan{}
	}
	return i.Macvlan
}

// parseCIDR parses an interface address: an address with its prefix length.
func parseCIDR(s string) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(s)
	if err == nil {
		return pfx, nil
	}
	if a, aerr := netip.ParseAddr(s); aerr == nil && a.Zone() == "" {
		return netip.Prefix{}, fmt.Errorf("address %q is not a CIDR: it has no prefix length (write %s/%d for a single address)", s, s, a.BitLen())
	}
	return netip.Prefix{}, fmt.Errorf("address %q is not a CIDR", s)
}

// parseMAC parses an Ethernet address the kernel will accept on an
// interface: six bytes, unicast, not all zero.
func parseMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, fmt.Errorf("MAC %q is not an Ethernet address like 02:00:00:00:00:01", s)
	}
	if mac[0]&1 != 0 {
		return nil, fmt.Errorf("MAC %q is a multicast address; an interface needs a unicast one (first byte even, e.g. 02:...)", s)
	}
	if allZero(mac) {
		return nil, fmt.Errorf("MAC %q is all zeros", s)
	}
	return mac, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func containsPrefix(list []netip.Prefix, p netip.Prefix) bool {
	for _, q := range list {
		if q == p {
			return true
		}
	}
	return false
}

// resolveInterfaces settles what needs every interface known: default
// types, the implicit lo, and the references master, dev and parent.
func (p *parser) resolveInterfaces(t *topo) {
	// Types first: references below ask whether their target is a bridge.
	for _, ns := range t.namespaces {
		for _, is := range ns.ifaces {
			p.resolveType(t, is)
		}
		if ns.ns.Interface("lo") == nil {
			// lo exists in every namespace and comes up unless told not
			// to; it is listed first, as the kernel numbers it first.
			lo := &Interface{Name: "lo", NS: ns.ns.Name, Pos: ns.ns.Pos, Type: TypeLoopback, Up: true}
			ns.ns.Interfaces = append([]*Interface{lo}, ns.ns.Interfaces...)
		}
	}
	for _, ns := range t.namespaces {
		for _, is := range ns.ifaces {
			p.resolveRefs(ns, is)
		}
	}
}

// resolveType gives an interface its default type and checks that the type
// fits its name, its presence in links and its type-specific keys.
func (p *parser) resolveType(t *topo, is *ifaceSource) {
	ifc := is.iface
	ep := Endpoint{NS: ifc.NS, If: ifc.Name}
	linkPos, inLinks := t.linkEnds[ep]
	typeNode := is.vals["type"]
	switch {
	case ifc.Name == "lo":
		if is.typeSet && ifc.Type != TypeLoopback {
			p.errorf(typeNode, is.field+".type", "lo is the loopback interface; its type can only be loopback")
		}
		ifc.Type = TypeLoopback
		for _, k := range []string{"master", "mac"} {
			if n := is.keys[k]; n != nil {
				p.errorf(n, is.field, "lo cannot have %s", k)
			}
		}
	case ifc.Type == TypeLoopback:
		p.errorf(typeNode, is.field+".type", "type loopback is only for lo")
		return
	case !is.typeSet && is.keys["type"] != nil:
		return // an invalid type, reported already
	case !is.typeSet && inLinks:
		ifc.Type = TypeVeth
	case !is.typeSet:
		p.errorf(is.key, is.field, "missing key \"type\": %s is not in links, so it is not a veth end; say what it is (bridge, vxlan, macvlan or dummy)", ep)
		return
	case ifc.Type == TypeVeth && !inLinks:
		p.errorf(typeNode, is.field+".type", "veth %s has no peer: name it in links, e.g. [%s, other/ifname]", ep, ep)
	case ifc.Type != TypeVeth && inLinks:
		p.errorf(typeNode, is.field+".type", "%s is a veth end in links (line %d) but its type is %s", ep, linkPos.Line, ifc.Type)
	}
	p.typeKeys(is, vxlanKeys, TypeVXLAN)
	p.typeKeys(is, macvlanKeys, TypeMacvlan)
	switch ifc.Type {
	case TypeVXLAN:
		if is.keys["vni"] == nil {
			p.errorf(is.key, is.field, "missing key \"vni\": a vxlan interface needs its VXLAN network identifier")
		}
		if v := ifc.VXLAN; v != nil && v.Remote.IsValid() && v.Local.IsValid() && v.Remote.Is4() != v.Local.Is4() {
			p.errorf(is.vals["local"], is.field+".local", "local %s and remote %s are of different IP families", v.Local, v.Remote)
		}
	case TypeMacvlan:
		if is.keys["parent"] == nil {
			p.errorf(is.key, is.field, "missing key \"parent\": a macvlan interface needs the interface it sits on")
		}
	}
}

// typeKeys reports keys of an interface that belong to another type.
func (p *parser) typeKeys(is *ifaceSource, keys []string, typ LinkType) {
	if is.iface.Type == typ {
		return
	}
	for _, k := range keys {
		if n := is.keys[k]; n != nil {
			p.errorf(n, is.field, "%s applies to %s interfaces only; %s is %s", k, typ, is.iface.Name, typeName(is.iface.Type))
		}
	}
}

// resolveRefs checks master, dev and parent of one interface.
func (p *parser) resolveRefs(ns *nsSource, is *ifaceSource) {
	ifc := is.iface
	ref := func(key, name string) *Interface {
		n := is.vals[key]
		if name == ifc.Name {
			p.errorf(n, is.field+"."+key, "%s cannot be %s's own %s", name, name, key)
			return nil
		}
		target := ns.ns.Interface(name)
		if target == nil {
			p.errorf(n, is.field+"."+key, "no interface %q in namespace %s%s", name, ns.ns.Name, didYouMean(name, ifNames(ns.ns)))
		}
		return target
	}
	if ifc.Master != "" && ifc.Name != "lo" {
		if m := ref("master", ifc.Master); m != nil {
			switch {
			case m.Type != TypeBridge:
				p.errorf(is.vals["master"], is.field+".master", "master %s is not a bridge (it is %s)", m.Name, typeName(m.Type))
			case ifc.Type == TypeBridge:
				p.errorf(is.vals["master"], is.field+".master", "bridge %s cannot be a port of another bridge", ifc.Name)
			}
		}
	}
	if v := ifc.VXLAN; v != nil && v.Dev != "" && ifc.Type == TypeVXLAN {
		ref("dev", v.Dev)
	}
	if m := ifc.Macvlan; m != nil && m.Parent != "" && ifc.Type == TypeMacvlan {
		if parent := ref("parent", m.Parent); parent != nil && parent.Type == TypeLoopback {
			p.errorf(is.vals["parent"], is.field+".parent", "a macvlan cannot sit on the loopback interface")
		}
	}
}

func typeName(t LinkType) string {
	if t == "" {
		return "of unknown type"
	}
	return "a " + string(t)
}

func ifNames(ns *Namespace) []string {
	out := make([]string, len(ns.Interfaces))
	for i, ifc := range ns.Interfaces {
		out[i] = ifc.Name
	}
	return out
}

func nsNames(s *Scenario) []string {
	out := make([]string, len(s.Namespaces))
	for i, ns := range s.Namespaces {
		out[i] = ns.Name
	}
	return out
}

// checkNamespaceRefs checks what in a namespace refers to its interfaces.
func (p *parser) checkNamespaceRefs(ns *nsSource) {
	p.checkRoutes(ns)
	p.checkRules(ns)
	p.checkNeighbors(ns)
	p.checkSysctls(ns)
}

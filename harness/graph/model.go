package graph

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

// Options choose what is highlighted.
type Options struct {
	// Path lists the places a probe crossed, "ns/if", in order: they and
	// the links between consecutive ones are highlighted, and consecutive
	// places in one namespace (forwarded inside it) are joined.
	Path []string
	// Drop is where the probe stopped (was dropped, or where a diagnosis
	// found the cause): "ns/if", or "ns" when there is no device.
	Drop string
}

// Edge kinds.
const (
	edgeVeth    = "veth"
	edgePort    = "port"
	edgeVXLAN   = "vxlan"
	edgeMacvlan = "macvlan"
	edgeForward = "forward" // inside a namespace, on a highlighted path only
)

type node struct {
	id     string // "ns/if"
	ns, If string
	lines  []string // label: name and kind, then addresses
	kind   scenario.LinkType
	hl     bool
	drop   bool
}

type edge struct {
	a, b  string
	kind  string
	label string
	hl    bool
}

type cluster struct {
	name  string
	nodes []*node
	drop  bool
}

// topology is what both writers draw.
type topology struct {
	name     string
	clusters []*cluster
	edges    []*edge
}

// shown reports whether an interface is drawn: every one but a lo
// without addresses, unless a path crosses it.
func shown(ifc *scenario.Interface, on map[string]bool) bool {
	if ifc.Type == scenario.TypeLoopback && len(ifc.Addresses) == 0 {
		return on[ifc.NS+"/"+ifc.Name]
	}
	return true
}

func build(sc *scenario.Scenario, opts Options) *topology {
	on := map[string]bool{}
	for _, p := range opts.Path {
		on[p] = true
	}
	t := &topology{name: sc.Name}
	nodes := map[string]*node{}
	for _, ns := range sc.Namespaces {
		c := &cluster{name: ns.Name, drop: opts.Drop == ns.Name}
		for _, ifc := range ns.Interfaces {
			if !shown(ifc, on) {
				continue
			}
			n := &node{id: ns.Name + "/" + ifc.Name, ns: ns.Name, If: ifc.Name, kind: ifc.Type}
			head := ifc.Name
			switch ifc.Type {
			case scenario.TypeVeth, "":
			case scenario.TypeVXLAN:
				head += " (vxlan " + strconv.FormatUint(uint64(ifc.VXLAN.VNI), 10) + ")"
			default:
				head += " (" + string(ifc.Type) + ")"
			}
			if !ifc.Up {
				head += " DOWN"
			}
			n.lines = append(n.lines, head)
			for _, a := range ifc.Addresses {
				n.lines = append(n.lines, a.String())
			}
			n.hl = on[n.id]
			n.drop = opts.Drop == n.id
			nodes[n.id] = n
			c.nodes = append(c.nodes, n)
		}
		t.clusters = append(t.clusters, c)
	}
	has := func(id string) bool { return nodes[id] != nil }
	add := func(e *edge) {
		if has(e.a) && has(e.b) {
			t.edges = append(t.edges, e)
		}
	}
	for _, l := range sc.Links {
		add(&edge{a: l.A.NS + "/" + l.A.If, b: l.B.NS + "/" + l.B.If, kind: edgeVeth})
	}
	for _, ns := range sc.Namespaces {
		for _, ifc := range ns.Interfaces {
			id := ns.Name + "/" + ifc.Name
			if ifc.Master != "" {
				add(&edge{a: id, b: ns.Name + "/" + ifc.Master, kind: edgePort, label: "port"})
			}
			if ifc.Macvlan != nil && ifc.Macvlan.Parent != "" {
				add(&edge{a: id, b: ns.Name + "/" + ifc.Macvlan.Parent, kind: edgeMacvlan, label: "macvlan"})
			}
		}
	}
	for _, e := range vxlanEdges(sc) {
		add(e)
	}
	// The path: its links, and hops inside one namespace.
	find := func(a, b string) *edge {
		for _, e := range t.edges {
			if e.a == a && e.b == b || e.a == b && e.b == a {
				return e
			}
		}
		return nil
	}
	for i := 1; i < len(opts.Path); i++ {
		a, b := opts.Path[i-1], opts.Path[i]
		if a == b || !has(a) || !has(b) {
			continue
		}
		if e := find(a, b); e != nil {
			e.hl = true
			continue
		}
		if nodes[a].ns == nodes[b].ns {
			t.edges = append(t.edges, &edge{a: a, b: b, kind: edgeForward, label: "forwarded", hl: true})
			continue
		}
		// A stated path may skip places ("other hops may come between"):
		// the shortest way along the drawing's links joins them.
		for _, e := range t.between(a, b) {
			e.hl = true
			nodes[e.a].hl, nodes[e.b].hl = true, true
		}
	}
	return t
}

// between returns the edges of a shortest way from a to b along links,
// ports and tunnels, or nil when there is none.
func (t *topology) between(a, b string) []*edge {
	via := map[string]*edge{a: nil}
	queue := []string{a}
	for len(queue) > 0 && via[b] == nil {
		cur := queue[0]
		queue = queue[1:]
		for _, e := range t.edges {
			next := ""
			switch cur {
			case e.a:
				next = e.b
			case e.b:
				next = e.a
			}
			if _, seen := via[next]; next == "" || seen {
				continue
			}
			via[next] = e
			queue = append(queue, next)
		}
	}
	var out []*edge
	for cur := b; via[cur] != nil; {
		e := via[cur]
		out = append(out, e)
		if cur == e.a {
			cur = e.b
		} else {
			cur = e.a
		}
	}
	return out
}

// vxlanEdges joins VXLAN interfaces of one VNI whose remote is the other's
// namespace (an address there, or its local address), or that share a
// multicast group. A remote that no VXLAN interface answers for is joined
// to the interface holding the address.
func vxlanEdges(sc *scenario.Scenario) []*edge {
	type vx struct {
		id  string
		ns  *scenario.Namespace
		ifc *scenario.Interface
	}
	var all []vx
	owner := map[netip.Addr]string{}
	for _, ns := range sc.Namespaces {
		for _, ifc := range ns.Interfaces {
			for _, a := range ifc.Addresses {
				owner[a.Addr()] = ns.Name + "/" + ifc.Name
			}
			if ifc.VXLAN != nil {
				all = append(all, vx{ns.Name + "/" + ifc.Name, ns, ifc})
			}
		}
	}
	var out []*edge
	seen := map[[2]string]bool{}
	join := func(a, b string, vni uint32) {
		k := [2]string{min(a, b), max(a, b)}
		if a == b || seen[k] {
			return
		}
		seen[k] = true
		out = append(out, &edge{a: a, b: b, kind: edgeVXLAN, label: "vxlan " + strconv.FormatUint(uint64(vni), 10)})
	}
	for _, x := range all {
		v := x.ifc.VXLAN
		matched := false
		for _, y := range all {
			w := y.ifc.VXLAN
			if y.id == x.id || w.VNI != v.VNI {
				continue
			}
			switch {
			case v.Remote.IsValid() && v.Remote.IsMulticast():
				if w.Remote == v.Remote {
					join(x.id, y.id, v.VNI)
					matched = true
				}
			case v.Remote.IsValid():
				if o, ok := owner[v.Remote]; ok && strings.HasPrefix(o, y.ns.Name+"/") || w.Local == v.Remote {
					join(x.id, y.id, v.VNI)
					matched = true
				}
			}
		}
		if !matched && v.Remote.IsValid() {
			if o, ok := owner[v.Remote]; ok {
				join(x.id, o, v.VNI)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b *edge) int { return strings.Compare(a.a+" "+a.b, b.a+" "+b.b) })
	return out
}

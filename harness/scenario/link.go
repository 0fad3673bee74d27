package scenario

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// links reads the list of veth pairs. Each end must be in a declared
// namespace and used once; ends not declared under their namespace's
// interfaces are added to it as undeclared veth interfaces, after the
// declared ones, in link order.
func (p *parser) links(t *topo, n *yaml.Node) {
	items, _ := p.items(n, "links")
	for i, it := range items {
		field := fmt.Sprintf("links[%d]", i)
		ends, ok := p.items(it, field)
		if !ok {
			continue
		}
		if len(ends) != 2 {
			p.errorf(it, field, "a link is a pair [ns/if, ns/if]; this one has %d ends", len(ends))
			continue
		}
		var eps [2]Endpoint
		good := true
		for j, end := range ends {
			f := fmt.Sprintf("%s[%d]", field, j)
			ep, ok := p.linkEnd(t, end, f)
			if !ok {
				good = false
				continue
			}
			eps[j] = ep
			t.linkEnds[ep] = p.pos(end)
		}
		if !good {
			continue
		}
		l := Link{A: eps[0], B: eps[1], Pos: p.pos(it)}
		t.s.Links = append(t.s.Links, l)
		p.linkEndInterface(t, l.A, l.B, ends[0])
		p.linkEndInterface(t, l.B, l.A, ends[1])
	}
}

// linkEnd parses one end of a link and checks that it can be a veth end.
func (p *parser) linkEnd(t *topo, n *yaml.Node, field string) (Endpoint, bool) {
	s, ok := p.str(n, field)
	if !ok {
		return Endpoint{}, false
	}
	ep, err := parseEndpoint(s)
	if err != nil {
		p.errorf(n, field, "%v", err)
		return Endpoint{}, false
	}
	if t.s.Namespace(ep.NS) == nil {
		p.errorf(n, field, "no namespace %q%s", ep.NS, didYouMean(ep.NS, nsNames(t.s)))
		return Endpoint{}, false
	}
	if ep.If == "lo" {
		p.errorf(n, field, "%s is the loopback interface and cannot be a veth end", ep)
		return Endpoint{}, false
	}
	if first, used := t.linkEnds[ep]; used {
		p.errorf(n, field, "veth end %s is already used by the link at line %d:%d", ep, first.Line, first.Col)
		return Endpoint{}, false
	}
	return ep, true
}

// linkEndInterface sets the peer of the interface at ep, adding the
// interface to its namespace when it was named only in links.
func (p *parser) linkEndInterface(t *topo, ep, peer Endpoint, n *yaml.Node) {
	ns := t.s.Namespace(ep.NS)
	ifc := ns.Interface(ep.If)
	if ifc == nil {
		ifc = &Interface{Name: ep.If, NS: ep.NS, Pos: p.pos(n), Type: TypeVeth, Up: true}
		ns.Interfaces = append(ns.Interfaces, ifc)
	}
	ifc.Peer = peer
}

package scenario

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseNeighbor parses a static neighbor entry in `ip neigh add` syntax:
//
//	IP lladdr MAC dev IF
//
// lladdr and dev may come in either order. The result's Pos is left for
// the caller to set.
func ParseNeighbor(raw string) (Neighbor, error) {
	fail := func(format string, args ...any) (Neighbor, error) {
		return Neighbor{}, fmt.Errorf("neighbor %q: %s", raw, fmt.Sprintf(format, args...))
	}
	words := strings.Fields(raw)
	if len(words) == 0 {
		return fail("empty entry; write IP lladdr MAC dev IF")
	}
	nb := Neighbor{Raw: raw}
	ip, err := netip.ParseAddr(words[0])
	if err != nil || ip.Zone() != "" {
		return fail("%q is not an IP address", words[0])
	}
	nb.IP = ip
	seen := map[string]bool{}
	for i := 1; i < len(words); i += 2 {
		opt := words[i]
		if opt != "lladdr" && opt != "dev" {
			return fail("unknown word %q; write IP lladdr MAC dev IF", opt)
		}
		if seen[opt] {
			return fail("%s is given twice", opt)
		}
		seen[opt] = true
		if i+1 >= len(words) {
			return fail("%s needs a value", opt)
		}
		val := words[i+1]
		if opt == "dev" {
			if msg := checkIfName(val); msg != "" {
				return fail("%s", msg)
			}
			nb.Dev = val
			continue
		}
		mac, err := parseMAC(val)
		if err != nil {
			return fail("%v", err)
		}
		nb.MAC = mac
	}
	if nb.MAC == nil {
		return fail("missing lladdr MAC")
	}
	if nb.Dev == "" {
		return fail("missing dev IF")
	}
	return nb, nil
}

// checkNeighbors checks that each entry's interface exists and that no
// entry is added twice (the kernel answers EEXIST).
func (p *parser) checkNeighbors(ns *nsSource) {
	type key struct {
		ip  netip.Addr
		dev string
	}
	added := map[key]Pos{}
	for i, nb := range ns.ns.Neighbors {
		field := ns.neighborFields[i]
		ifc := ns.ns.Interface(nb.Dev)
		switch {
		case ifc == nil:
			p.errorAt(nb.Pos, field, "neighbor %q: no interface %q in namespace %s%s", nb.Raw, nb.Dev, ns.ns.Name, didYouMean(nb.Dev, ifNames(ns.ns)))
			continue
		case ifc.Type == TypeLoopback:
			p.errorAt(nb.Pos, field, "neighbor %q: lo has no neighbors", nb.Raw)
			continue
		}
		k := key{nb.IP, nb.Dev}
		if first, dup := added[k]; dup {
			p.errorAt(nb.Pos, field, "neighbor %q: an entry for %s on %s is already added at line %d", nb.Raw, nb.IP, nb.Dev, first.Line)
			continue
		}
		added[k] = nb.Pos
	}
}

package scenario

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Routing table numbers with names in iproute2's rt_tables.
const (
	tableMain = 254
	tableMax  = 1<<32 - 1
)

// ParseRoute parses a route in `ip route add` syntax:
//
//	PREFIX|default [via GW] [dev IF] [src IP] [metric N] [table N]
//
// The options may come in any order, each once. A bare address as PREFIX
// means a host route (/32 or /128), as with ip route. "default" is
// 0.0.0.0/0, or ::/0 when the gateway or source is IPv6. Table "main" or
// 254 is stored as 0; "default" and "local" are 253 and 255. The result's Pos is left for the caller to set.
func ParseRoute(raw string) (Route, error) {
	r := Route{Raw: raw}
	fail := func(format string, args ...any) (Route, error) {
		return Route{}, fmt.Errorf("route %q: %s", raw, fmt.Sprintf(format, args...))
	}
	words := strings.Fields(raw)
	if len(words) == 0 {
		return fail("empty route")
	}
	isDefault := false
	switch dst := words[0]; {
	case dst == "default":
		isDefault = true
	case strings.Contains(dst, "/"):
		pfx, err := netip.ParsePrefix(dst)
		if err != nil {
			return fail("destination %q is not a prefix like 10.0.0.0/24", dst)
		}
		if pfx != pfx.Masked() {
			return fail("destination %s has host bits set (did you mean %s?)", pfx, pfx.Masked())
		}
		r.Dst = pfx
	default:
		a, err := netip.ParseAddr(dst)
		if err != nil || a.Zone() != "" {
			return fail("destination %q is neither \"default\", a prefix nor an address", dst)
		}
		r.Dst = netip.PrefixFrom(a, a.BitLen())
	}
	seen := map[string]bool{}
	for i := 1; i < len(words); i += 2 {
		opt := words[i]
		if !contains([]string{"via", "dev", "src", "metric", "table"}, opt) {
			return fail("unknown word %q; after the destination come via GW, dev IF, src IP, metric N, table N", opt)
		}
		if seen[opt] {
			return fail("%s is given twice", opt)
		}
		seen[opt] = true
		if i+1 >= len(words) {
			return fail("%s needs a value", opt)
		}
		val := words[i+1]
		switch opt {
		case "via", "src":
			a, err := netip.ParseAddr(val)
			if err != nil || a.Zone() != "" {
				return fail("%s %q is not an IP address", opt, val)
			}
			if opt == "via" {
				r.Via = a
			} else {
				r.Src = a
			}
		case "dev":
			if msg := checkIfName(val); msg != "" {
				return fail("%s", msg)
			}
			r.Dev = val
		case "metric":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return fail("metric %q is not a number from 0 to %d", val, uint32(tableMax))
			}
			r.Metric = int(n)
		case "table":
			t, err := parseTable(val)
			if err != nil {
				return fail("%v", err)
			}
			r.Table = t
		}
	}
	if isDefault {
		r.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if r.Via.Is6() || r.Src.Is6() {
			r.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
	}
	is4 := r.Dst.Addr().Is4()
	if r.Via.IsValid() && r.Via.Is4() != is4 {
		return fail("gateway %s is not of the destination's IP family", r.Via)
	}
	if r.Src.IsValid() && r.Src.Is4() != is4 {
		return fail("source %s is not of the destination's IP family", r.Src)
	}
	if !r.Via.IsValid() && r.Dev == "" {
		return fail("a route needs a gateway (via GW) or an interface (dev IF)")
	}
	return r, nil
}

// checkRoutes checks a namespace's routes against its interfaces: a dev
// must exist, a gateway must be reachable on a link when the route is
// added, a source must be one of the namespace's addresses, and no route may
// be added twice (the kernel answers EEXIST).
func (p *parser) checkRoutes(ns *nsSource) {
	type key struct {
		dst    netip.Prefix
		table  int
		metric int
	}
	added := map[key]Pos{}
	for i, r := range ns.ns.Routes {
		field := ns.routeFields[i]
		if r.Dev != "" {
			ifc := ns.ns.Interface(r.Dev)
			if ifc == nil {
				p.errorAt(r.Pos, field, "route %q: no interface %q in namespace %s%s", r.Raw, r.Dev, ns.ns.Name, didYouMean(r.Dev, ifNames(ns.ns)))
				continue
			}
			if !ifc.Up {
				p.errorAt(r.Pos, field, "route %q: %s is down (up: false), and the kernel adds no route through a down interface", r.Raw, r.Dev)
				continue
			}
		}
		if r.Via.IsValid() && !(r.Via.Is6() && r.Via.IsLinkLocalUnicast()) && !onLink(ns.ns, r.Via, r.Dev) {
			where := "any interface that is up"
			if r.Dev != "" {
				where = r.Dev
			}
			p.errorAt(r.Pos, field, "route %q: gateway %s is not on a subnet of %s in namespace %s (the kernel would answer \"Nexthop has invalid gateway\"); give an interface an address on its subnet, or add an on-link route to it", r.Raw, r.Via, where, ns.ns.Name)
		}
		if r.Via.Is6() && r.Via.IsLinkLocalUnicast() && r.Dev == "" {
			p.errorAt(r.Pos, field, "route %q: link-local gateway %s needs dev IF", r.Raw, r.Via)
		}
		if r.Src.IsValid() && !hasAddress(ns.ns, r.Src) {
			p.errorAt(r.Pos, field, "route %q: source %s is not an address of namespace %s", r.Raw, r.Src, ns.ns.Name)
		}
		if !r.Dst.Addr().Is4() {
			continue
		}
		// IPv4 refuses a second route with the same destination, table
		// and metric, including the one the kernel adds for an address.
		k := key{r.Dst, r.Table, r.Metric}
		if first, dup := added[k]; dup {
			p.errorAt(r.Pos, field, "route %q: a route to %s with the same table and metric is already added at line %d", r.Raw, r.Dst, first.Line)
			continue
		}
		added[k] = r.Pos
		if r.Table == 0 && r.Metric == 0 {
			if ifc, pfx := connectedRoute(ns.ns, r.Dst); ifc != nil {
				p.errorAt(r.Pos, field, "route %q: the kernel already adds this route for address %s on %s; remove it (or give it a metric)", r.Raw, pfx, ifc.Name)
			}
		}
	}
}

// onLink reports whether gw is reachable on a link: inside the subnet of an
// address of dev (of any interface that is up when dev is ""), or covered
// by a route of ns without a gateway. This is the lookup the kernel makes
// when a route via gw is added; the builder adds routes without a gateway
// first, so their order in the file does not matter, and an interface that
// is down has no subnet route to find.
func onLink(ns *Namespace, gw netip.Addr, dev string) bool {
	for _, ifc := range ns.Interfaces {
		if (dev != "" && ifc.Name != dev) || !ifc.Up {
			continue
		}
		for _, a := range ifc.Addresses {
			if a.Masked().Contains(gw) {
				return true
			}
		}
	}
	for _, r := range ns.Routes {
		if !r.Via.IsValid() && (dev == "" || r.Dev == dev) && r.Dst.Contains(gw) {
			return true
		}
	}
	return false
}

// connectedRoute returns the interface and address for which the kernel
// adds a main-table route to dst on its own (IPv4, an interface that is up,
// an address that is not a host address, not on lo).
func connectedRoute(ns *Namespace, dst netip.Prefix) (*Interface, netip.Prefix) {
	for _, ifc := range ns.Interfaces {
		if !ifc.Up || ifc.Type == TypeLoopback {
			continue
		}
		for _, a := range ifc.Addresses {
			if a.Addr().Is4() && a.Bits() < 32 && a.Masked() == dst {
				return ifc, a
			}
		}
	}
	return nil, netip.Prefix{}
}

// hasAddress reports whether a is an address of an interface of ns.
func hasAddress(ns *Namespace, a netip.Addr) bool {
	for _, ifc := range ns.Interfaces {
		for _, p := range ifc.Addresses {
			if p.Addr() == a {
				return true
			}
		}
	}
	return false
}

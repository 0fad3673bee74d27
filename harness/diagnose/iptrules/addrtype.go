package iptrules

import (
	"net/netip"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
)

// -m addrtype: the type of an address, as the namespace's routing gives
// it (netfilter.Namespace), read as xt_addrtype reads it per family.

// addrTypeMatch matches an addrtype list ("LOCAL", "UNICAST,LOCAL")
// against a in ns as xt_addrtype does. Without ns, or for a type not
// modelled, it may match.
func addrTypeMatch(ns netfilter.Namespace, a netip.Addr, val string) netfilter.Match {
	if ns == nil || !a.IsValid() {
		return netfilter.MayMatch
	}
	types := strings.Split(strings.ToUpper(val), ",")
	if a.Is6() && !a.Is4In6() {
		return addrTypeMatch6(ns, a, types)
	}
	typ := strings.ToUpper(ns.AddrType(a.Unmap(), ""))
	for _, t := range types {
		switch t {
		case typ:
			return netfilter.Matches
		case "LOCAL", "UNICAST", "BROADCAST", "MULTICAST", "UNREACHABLE", "PROHIBIT", "BLACKHOLE":
		default:
			return netfilter.MayMatch // ANYCAST, NAT, XRESOLVE, THROW, UNSPEC: not modelled
		}
	}
	return netfilter.NoMatch
}

// addrTypeMatch6 matches an IPv6 address as xt_addrtype's match_type6
// does, where the types are not exclusive: each of MULTICAST, UNICAST
// (not multicast, not ::) and UNSPEC (::) that is listed must hold, and
// when LOCAL or UNREACHABLE is listed, one of them must: LOCAL for a
// local route, UNREACHABLE for no route or a blackhole, prohibit or
// unreachable one (RTF_REJECT), by the full route lookup. The kernel
// refuses BROADCAST, BLACKHOLE, PROHIBIT and the rest for IPv6.
func addrTypeMatch6(ns netfilter.Namespace, a netip.Addr, types []string) netfilter.Match {
	want := map[string]bool{}
	for _, t := range types {
		switch t {
		case "MULTICAST", "UNICAST", "UNSPEC", "LOCAL", "UNREACHABLE", "ANYCAST":
			want[t] = true
		default:
			return netfilter.MayMatch
		}
	}
	switch {
	case want["MULTICAST"] && !a.IsMulticast(),
		want["UNICAST"] && (a.IsMulticast() || a.IsUnspecified()),
		want["UNSPEC"] && !a.IsUnspecified():
		return netfilter.NoMatch
	}
	if !want["LOCAL"] && !want["UNREACHABLE"] && !want["ANYCAST"] {
		return netfilter.Matches
	}
	typ, ok := ns.RouteType(a)
	switch {
	case want["UNREACHABLE"] && (!ok || typ == "blackhole" || typ == "prohibit" || typ == "unreachable"),
		want["LOCAL"] && ok && typ == "local":
		return netfilter.Matches
	case want["ANYCAST"]:
		return netfilter.MayMatch // anycast addresses are not in the snapshot
	}
	return netfilter.NoMatch
}

package snapshot

import (
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/internal/nl"
)

// The routing part of a snapshot: routes of every table and the policy
// rules, both families.

// readRoutes dumps the IPv4 and IPv6 routes of every table.
func readRoutes(h *netlink.Handle, byIndex map[int]string) ([]Route, error) {
	var rs []netlink.Route
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		got, err := nl.Dump(func() ([]netlink.Route, error) {
			return h.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
		})
		if err != nil {
			return nil, err
		}
		rs = append(rs, got...)
	}
	out := make([]Route, 0, len(rs))
	for _, r := range rs {
		rt := Route{
			Table:    r.Table,
			Type:     routeType(r.Type),
			Dev:      byIndex[r.LinkIndex],
			Metric:   r.Priority,
			LinkDown: r.Flags&unix.RTNH_F_LINKDOWN != 0,
		}
		rt.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if r.Family == netlink.FAMILY_V6 {
			rt.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		if p, ok := nl.Prefix(r.Dst); ok {
			rt.Dst = p.Masked()
		}
		rt.Via = addrOf(r.Gw)
		rt.Src = addrOf(r.Src)
		out = append(out, rt)
	}
	return out, nil
}

// readRules dumps the IPv4 and IPv6 policy routing rules.
func readRules(h *netlink.Handle) ([]IPRule, error) {
	var out []IPRule
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		got, err := nl.Dump(func() ([]netlink.Rule, error) { return h.RuleList(fam) })
		if err != nil {
			return out, err
		}
		for _, r := range got {
			out = append(out, ipRuleOf(r, fam == netlink.FAMILY_V6))
		}
	}
	return out, nil
}

// ipRuleOf converts a netlink rule. The library does not report a rule's
// type, so a rule that neither looks up a table nor jumps is recorded
// with the action "other" (blackhole, unreachable, prohibit or nop),
// which the lookup passes over.
func ipRuleOf(r netlink.Rule, v6 bool) IPRule {
	out := IPRule{Priority: r.Priority, V6: v6, Not: r.Invert, IIf: r.IifName, OIf: r.OifName, Mark: r.Mark, Table: r.Table, Action: ActionLookup}
	if p, ok := nl.Prefix(r.Src); ok && p.Bits() > 0 {
		out.From = p.Masked()
	}
	if p, ok := nl.Prefix(r.Dst); ok && p.Bits() > 0 {
		out.To = p.Masked()
	}
	switch {
	case r.Mask != nil:
		out.Mask = *r.Mask
	case r.Mark != 0:
		out.Mask = 0xffffffff
	}
	switch {
	case r.Goto >= 0:
		out.Action, out.Goto, out.Table = ActionGoto, r.Goto, 0
	case r.Table == 0:
		out.Action = "other"
	}
	return out
}

// routeType names a route type as ip route does.
func routeType(t int) string {
	switch t {
	case unix.RTN_LOCAL:
		return RouteLocal
	case unix.RTN_BROADCAST:
		return RouteBroadcast
	case unix.RTN_BLACKHOLE:
		return RouteBlackhole
	case unix.RTN_UNREACHABLE:
		return RouteUnreachable
	case unix.RTN_PROHIBIT:
		return RouteProhibit
	case unix.RTN_THROW:
		return RouteThrow
	case unix.RTN_MULTICAST:
		return "multicast"
	case unix.RTN_ANYCAST:
		return "anycast"
	}
	return RouteUnicast
}

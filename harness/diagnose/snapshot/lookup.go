package snapshot

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Policy routing: the rules a route lookup follows, in priority order,
// like the kernel's fib_rules_lookup: the first rule that matches the
// packet and whose action yields a route decides; a lookup in a table
// without a route for the destination (or whose route is a throw route)
// goes on to the next rule.

// Rule actions, as `ip rule` names them.
const (
	ActionLookup      = "lookup"
	ActionGoto        = "goto"
	ActionNop         = "nop"
	ActionBlackhole   = RouteBlackhole
	ActionUnreachable = RouteUnreachable
	ActionProhibit    = RouteProhibit
)

// IPRule is one policy routing rule (`ip rule`).
type IPRule struct {
	Priority int  `json:"priority"`
	V6       bool `json:"v6,omitempty"`
	// Not inverts the selector.
	Not bool `json:"not,omitempty"`
	// From and To are invalid for all.
	From netip.Prefix `json:"from,omitzero"`
	To   netip.Prefix `json:"to,omitzero"`
	IIf  string       `json:"iif,omitempty"`
	OIf  string       `json:"oif,omitempty"`
	// Mark and Mask: the rule matches packets whose mark ANDed with Mask
	// is Mark; Mask 0 matches every packet.
	Mark uint32 `json:"fwmark,omitempty"`
	Mask uint32 `json:"fwmask,omitempty"`
	// Action is ActionLookup (of Table), ActionGoto (to the rule with
	// priority Goto), ActionNop, or a route type that ends the lookup.
	Action string `json:"action"`
	Table  int    `json:"table,omitempty"`
	Goto   int    `json:"goto,omitempty"`
}

// String formats r as `ip rule` lists it: "100: from 10.1.0.0/24 lookup
// 100".
func (r IPRule) String() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(r.Priority) + ":")
	if r.Not {
		b.WriteString(" not")
	}
	b.WriteString(" from ")
	if r.From.IsValid() {
		b.WriteString(r.From.String())
	} else {
		b.WriteString("all")
	}
	if r.To.IsValid() {
		b.WriteString(" to " + r.To.String())
	}
	if r.Mask != 0 {
		fmt.Fprintf(&b, " fwmark 0x%x/0x%x", r.Mark, r.Mask)
	}
	if r.IIf != "" {
		b.WriteString(" iif " + r.IIf)
	}
	if r.OIf != "" {
		b.WriteString(" oif " + r.OIf)
	}
	switch r.Action {
	case ActionLookup, "":
		b.WriteString(" lookup " + TableName(r.Table))
	case ActionGoto:
		b.WriteString(" goto " + strconv.Itoa(r.Goto))
	default:
		b.WriteString(" " + r.Action)
	}
	return b.String()
}

// TableName names a table as ip does.
func TableName(t int) string {
	switch t {
	case TableMain, 0:
		return "main"
	case TableDefault:
		return "default"
	case TableLocal:
		return "local"
	}
	return strconv.Itoa(t)
}

// DefaultRules are the rules every namespace starts with: 0 lookup
// local, 32766 lookup main, and for IPv4 32767 lookup default.
func DefaultRules(v6 bool) []IPRule {
	rs := []IPRule{
		{Priority: 0, V6: v6, Action: ActionLookup, Table: TableLocal},
		{Priority: 32766, V6: v6, Action: ActionLookup, Table: TableMain},
	}
	if !v6 {
		rs = append(rs, IPRule{Priority: 32767, Action: ActionLookup, Table: TableDefault})
	}
	return rs
}

// IsDefault reports whether r is one of the rules a namespace starts with.
func (r IPRule) IsDefault() bool {
	return slices.Contains(DefaultRules(r.V6), r)
}

// Flow is what a route lookup knows of a packet.
type Flow struct {
	// Src is the source address; invalid when not chosen yet (a socket
	// that is not bound: the kernel's first lookup has source 0).
	Src netip.Addr
	Dst netip.Addr
	// IIf is the interface the packet came in on: "lo" for a packet the
	// namespace generates, as the kernel's output lookup says.
	IIf string
	// OIf is the interface the sender bound, or "".
	OIf  string
	Mark uint32
}

// matches reports whether rule r selects a packet of flow f.
func (r IPRule) matches(f Flow) bool {
	if r.V6 != (f.Dst.Is6() && !f.Dst.Is4In6()) {
		return false
	}
	m := (r.IIf == "" || r.IIf == f.IIf) &&
		(r.OIf == "" || r.OIf == f.OIf) &&
		(r.Mark^f.Mark)&r.Mask == 0 &&
		prefixHolds(r.From, f.Src) && prefixHolds(r.To, f.Dst)
	return m != r.Not
}

// prefixHolds reports whether a rule's from or to p (invalid for all)
// holds a; an unknown address is 0, which only all holds.
func prefixHolds(p netip.Prefix, a netip.Addr) bool {
	if !p.IsValid() || p.Bits() == 0 {
		return true
	}
	return a.IsValid() && p.Contains(a.Unmap())
}

// rulesFor returns the namespace's rules of a family in priority order;
// the kernel's defaults when the snapshot has none of it.
func (n *NSState) rulesFor(v6 bool) []IPRule {
	var out []IPRule
	for _, r := range n.Rules {
		if r.V6 == v6 {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return DefaultRules(v6)
	}
	slices.SortStableFunc(out, func(a, b IPRule) int { return a.Priority - b.Priority })
	return out
}

// HasPolicy reports whether the namespace has a rule of the family other
// than the defaults.
func (n *NSState) HasPolicy(v6 bool) bool {
	for _, r := range n.Rules {
		if r.V6 == v6 && !r.IsDefault() {
			return true
		}
	}
	return false
}

// Lookup is how a route lookup went: the route, and the rules it
// consulted, one line each.
type Lookup struct {
	Route Route
	OK    bool
	// Rule is the rule that gave the route.
	Rule IPRule
	// Trail says what each consulted rule did: "100: from 10.1.0.0/24
	// lookup 100: default via 198.51.100.1 dev wan1 table 100".
	Trail []string
}

// Lookup looks a flow up as the kernel does: the namespace's rules in
// priority order, each matching rule's table (longest prefix, then the
// lowest metric), the first route found wins; a throw route, or a table
// without a route, passes on to the next rule.
func (n *NSState) Lookup(f Flow) Lookup {
	var l Lookup
	if n == nil || !f.Dst.IsValid() {
		return l
	}
	v6 := f.Dst.Is6() && !f.Dst.Is4In6()
	rules := n.rulesFor(v6)
	gotoPrio := -1
	for _, r := range rules {
		if r.Priority < gotoPrio || !r.matches(f) {
			continue
		}
		switch r.Action {
		case ActionNop:
			continue
		case ActionGoto:
			gotoPrio = r.Goto
			l.Trail = append(l.Trail, r.String())
			continue
		case ActionLookup, "":
			rt, ok := n.TableLookup(r.Table, f.Dst)
			if !ok {
				l.Trail = append(l.Trail, fmt.Sprintf("%s: table %s has no route to %s", r, TableName(r.Table), f.Dst))
				continue
			}
			l.Trail = append(l.Trail, fmt.Sprintf("%s: %s", r, rt))
			l.Route, l.OK, l.Rule = rt, true, r
			return l
		case ActionBlackhole, ActionUnreachable, ActionProhibit:
			// The rule itself ends the lookup with a route of its type.
			l.Trail = append(l.Trail, r.String())
			l.Route = Route{Type: r.Action, Table: r.Table, Dst: netip.PrefixFrom(f.Dst, 0).Masked()}
			l.OK, l.Rule = true, r
			return l
		default:
			l.Trail = append(l.Trail, fmt.Sprintf("%s: action %q not followed", r, r.Action))
		}
	}
	return l
}

// TableLookup finds the route for dst in one table: the longest
// matching prefix, then the lowest metric; a throw route counts as none.
func (n *NSState) TableLookup(table int, dst netip.Addr) (Route, bool) {
	if table == 0 {
		table = TableMain
	}
	best := -1
	for i, rt := range n.Routes {
		if rt.Table != table || !rt.Dst.IsValid() || rt.Dst.Addr().Is4() != dst.Is4() || !rt.Dst.Contains(dst) {
			continue
		}
		if rt.Dev != "" {
			// The kernel removes a down link's routes; a snapshot taken
			// while a link goes down may still hold some.
			if l := n.Link(rt.Dev); l != nil && !l.Up && rt.Type != RouteLocal {
				continue
			}
		}
		if best < 0 || better(rt, n.Routes[best]) {
			best = i
		}
	}
	if best < 0 || n.Routes[best].Type == RouteThrow {
		return Route{}, false
	}
	return n.Routes[best], true
}

// RouteGet returns the route the namespace uses for a packet to dst that
// it generates itself, before a source is chosen: the pure equivalent of
// `ip route get DST`, following the namespace's rules (Lookup). ok is
// false when no rule's table has a route; an unreachable, blackhole or
// prohibit route is returned as found, with its type.
func (n *NSState) RouteGet(dst netip.Addr) (r Route, ok bool) {
	l := n.Lookup(Flow{Dst: dst, IIf: "lo"})
	return l.Route, l.OK
}

// better reports whether a wins over b for the same destination: a longer
// prefix, then a lower metric.
func better(a, b Route) bool {
	if a.Dst.Bits() != b.Dst.Bits() {
		return a.Dst.Bits() > b.Dst.Bits()
	}
	return a.Metric < b.Metric
}

// SourceFor returns the source address the namespace picks for a packet
// to dst sent along route r: the route's src, else an address of r's
// device whose subnet holds the next hop, else the device's first address,
// else the first address of any other link that is up (lo last), as the
// kernel's inet_select_addr does for scope global. For IPv6 the scope of
// dst decides (RFC 6724, as ipv6_dev_get_saddr): a link-local
// destination gets the device's link-local address, any other a global
// one, preferably of the device, whatever the next hop's scope.
func (n *NSState) SourceFor(r Route, dst netip.Addr) netip.Addr {
	if r.Src.IsValid() {
		return r.Src
	}
	if dst.Is6() && !dst.Is4In6() {
		return n.sourceFor6(r, dst)
	}
	nh := dst
	if r.Via.IsValid() {
		nh = r.Via
	}
	if l := n.Link(r.Dev); l != nil {
		for _, p := range l.Addrs {
			if p.Addr().Is4() == nh.Is4() && p.Masked().Contains(nh) {
				return p.Addr()
			}
		}
		for _, p := range l.Addrs {
			if p.Addr().Is4() == nh.Is4() && !p.Addr().IsLinkLocalUnicast() {
				return p.Addr()
			}
		}
	}
	var fallback netip.Addr
	for _, l := range n.Links {
		if !l.Up {
			continue
		}
		for _, p := range l.Addrs {
			if p.Addr().Is4() != nh.Is4() || p.Addr().IsLinkLocalUnicast() {
				continue
			}
			if l.IsLoopback() || p.Addr().IsLoopback() {
				if !fallback.IsValid() {
					fallback = p.Addr()
				}
				continue
			}
			return p.Addr()
		}
	}
	return fallback
}

// sourceFor6 is SourceFor for IPv6.
func (n *NSState) sourceFor6(r Route, dst netip.Addr) netip.Addr {
	ll := dst.IsLinkLocalUnicast()
	fits := func(a netip.Addr) bool {
		return a.Is6() && !a.Is4In6() && a.IsLinkLocalUnicast() == ll && !a.IsLoopback()
	}
	if l := n.Link(r.Dev); l != nil {
		for _, p := range l.Addrs {
			if fits(p.Addr()) && p.Masked().Contains(dst) {
				return p.Addr()
			}
		}
		for _, p := range l.Addrs {
			if fits(p.Addr()) {
				return p.Addr()
			}
		}
	}
	if ll {
		return netip.Addr{}
	}
	var fallback netip.Addr
	for _, l := range n.Links {
		if !l.Up {
			continue
		}
		for _, p := range l.Addrs {
			if !p.Addr().Is6() || p.Addr().IsLinkLocalUnicast() {
				continue
			}
			if l.IsLoopback() || p.Addr().IsLoopback() {
				if !fallback.IsValid() && !p.Addr().IsLoopback() {
					fallback = p.Addr()
				}
				continue
			}
			return p.Addr()
		}
	}
	return fallback
}

// IsLocal reports whether a is an address of the namespace: the local
// table delivers it.
func (n *NSState) IsLocal(a netip.Addr) bool {
	r, ok := n.RouteGet(a)
	return ok && r.Type == RouteLocal
}

package diagnose

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
		b.WriteString(" lookup " + tableName(r.Table))
	case ActionGoto:
		b.WriteString(" goto " + strconv.Itoa(r.Goto))
	default:
		b.WriteString(" " + r.Action)
	}
	return b.String()
}

// tableName names a table as ip does.
func tableName(t int) string {
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

// defaultRules are the rules every namespace starts with: 0 lookup
// local, 32766 lookup main, and for IPv4 32767 lookup default.
func defaultRules(v6 bool) []IPRule {
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
	return slices.Contains(defaultRules(r.V6), r)
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
		return defaultRules(v6)
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
				l.Trail = append(l.Trail, fmt.Sprintf("%s: table %s has no route to %s", r, tableName(r.Table), f.Dst))
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

// routeFor is the walk's route lookup for p in ns, which arrived on in
// ("" for a packet ns generates). The rules consulted are noted when the
// namespace has rules of its own.
func (w *walker) routeFor(ns *NSState, in string, p packet) (Route, bool) {
	l := ns.Lookup(flowOf(in, p))
	w.lookup = l
	if ns.HasPolicy(p.IPv6()) {
		for _, t := range l.Trail {
			w.note("%s: ip rule %s", ns.Name, t)
		}
	}
	return l.Route, l.OK
}

// flowOf is the flow of p arriving on in, or generated ("" in): the
// kernel's output lookup says it came in on lo.
func flowOf(in string, p packet) Flow {
	if in == "" {
		in = "lo"
	}
	f := Flow{Dst: p.Dst, IIf: in}
	if p.Src.IsValid() && !p.Src.IsUnspecified() {
		f.Src = p.Src
	}
	return f
}

// ruleMissedRoute looks for the policy routing mistake behind a forwarder
// ns with no route for p: a namespace p crossed before (the request, or
// the reply with the cause no-return-route) chose
// its route in a table that a rule of its own selected, and that table
// lacks a route its main table has, more specific than the one the table
// gave. The rule sent the packet the wrong way (to a default route, to
// another uplink); adding the main table's route to that table makes the
// probe pass where a route in ns would only move the packet on.
func (w *walker) ruleMissedRoute(ns *NSState, lookup string, p packet) *finding {
	path := w.request
	if p.Reply {
		path = w.reply
	}
	for k := len(path) - 1; k >= 0; k-- {
		up := path[k]
		l := up.lookup
		if up.out == "" || up.ns == ns.Name || !l.OK || l.Rule.IsDefault() {
			continue
		}
		table := l.Route.Table
		if table == TableMain || table == TableLocal || table == 0 {
			continue
		}
		un := w.st.NS(up.ns)
		main, ok := un.TableLookup(TableMain, p.Dst)
		if !ok || !forwardable(main.Type) || main.Dst.Bits() <= l.Route.Dst.Bits() {
			continue
		}
		add := routeDst(main.Dst)
		if main.Via.IsValid() {
			add += " via " + main.Via.String()
		}
		if main.Dev != "" {
			add += " dev " + main.Dev
		}
		ev := []string{fmt.Sprintf("%s: ip route get %s from %s iif %s", up.ns, p.Dst, orUnknown(addrText(p.Src)), orLo(up.in))}
		ev = append(ev, prefixAll(up.ns+": ip rule ", l.Trail)...)
		ev = append(ev, lookup, fmt.Sprintf("%s: table main: %s", up.ns, main))
		cause := NoRoute
		if p.Reply {
			cause = NoReturnRoute
		}
		return &finding{
			Cause: cause, NS: up.ns, If: up.in,
			Summary: fmt.Sprintf("%s's rule `%s` sends the packet to %s to table %s, whose route %s takes it out of %s to %s, which has no route for it; table main of %s has %s, but table %s lacks it",
				up.ns, l.Rule, p.Dst, tableName(table), l.Route, up.out, ns.Name, up.ns, main, tableName(table)),
			Evidence: ev,
			Fix:      fixIn(up.ns, fmt.Sprintf("%s add %s table %s", ipRoute(p.IPv6()), add, tableName(table))),
		}
	}
	return nil
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func orLo(in string) string {
	if in == "" {
		return "lo"
	}
	return in
}

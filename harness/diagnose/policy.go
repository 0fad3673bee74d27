package diagnose

import (
	"fmt"
	"net/netip"

	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

// routeFor is the walk's route lookup for p in ns, which arrived on in
// ("" for a packet ns generates). The rules consulted are noted when the
// namespace has rules of its own.
func (w *walker) routeFor(ns *snapshot.NSState, in string, p packet) (snapshot.Route, bool) {
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
func flowOf(in string, p packet) snapshot.Flow {
	if in == "" {
		in = "lo"
	}
	f := snapshot.Flow{Dst: p.Dst, IIf: in}
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
func (w *walker) ruleMissedRoute(ns *snapshot.NSState, lookup string, p packet) *finding {
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
		if table == snapshot.TableMain || table == snapshot.TableLocal || table == 0 {
			continue
		}
		un := w.st.NS(up.ns)
		main, ok := un.TableLookup(snapshot.TableMain, p.Dst)
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
				up.ns, l.Rule, p.Dst, snapshot.TableName(table), l.Route, up.out, ns.Name, up.ns, main, snapshot.TableName(table)),
			Evidence: ev,
			Fix:      fixIn(up.ns, fmt.Sprintf("%s add %s table %s", ipRoute(p.IPv6()), add, snapshot.TableName(table))),
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

package check

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

// routeKind asks the kernel's route lookup in a namespace (`ip route get`)
// and compares the gateway, output interface and source it picks.
//
// Reached is "a route exists". With `expect: fail` the check states that
// there is no route, so a route through the wrong gateway fails it just as
// a matching one does: the destination is still routable.
type routeKind struct{}

// routeView is what a route lookup answered, in scenario terms.
type routeView struct {
	Type string // "unicast", "local", ...
	Via  netip.Addr
	Dev  string
	Src  netip.Addr
}

func (routeKind) Run(ctx context.Context, env Env, c *scenario.Check) Result {
	rc := c.Route
	if rc == nil {
		return failed(errors.New("route check without route settings"))
	}
	if err := ctx.Err(); err != nil {
		return failed(err)
	}
	var (
		got     routeView
		noRoute error
	)
	err := withHandle(env, rc.In, func(h *netlink.Handle) error {
		routes, err := h.RouteGet(rc.To.AsSlice())
		if why, ok := noRouteReason(err); ok {
			noRoute = why
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: route get %s: %w", rc.In, rc.To, err)
		}
		if len(routes) == 0 {
			return fmt.Errorf("%s: route get %s: the kernel answered with no route", rc.In, rc.To)
		}
		r := routes[0]
		got = routeView{
			Type: routeType(r.Type),
			Via:  addrOf(r.Gw),
			Dev:  linkName(h, r.LinkIndex),
			Src:  addrOf(r.Src),
		}
		if !got.Via.IsValid() && r.Via != nil {
			// An IPv4 route with an IPv6 next hop (RTA_VIA).
			if v, ok := r.Via.(*netlink.Via); ok {
				got.Via = addrOf(v.Addr)
			}
		}
		return nil
	})
	if err != nil {
		return failed(err)
	}
	if noRoute != nil {
		return Result{
			Summary: fmt.Sprintf("no route to %s in %s (%v)", rc.To, rc.In, noRoute),
			Error:   fmt.Sprintf("%s has no route to %s: %v", rc.In, rc.To, noRoute),
			Details: []Detail{{"route", "none"}, {"reason", noRoute.Error()}},
		}
	}
	r := Result{
		Reached: true,
		Summary: got.describe(rc.To),
		Details: got.details(),
	}
	if diff := compareRoute(rc, got); diff != "" {
		r.Error = fmt.Sprintf("%s: route to %s: %s", rc.In, rc.To, diff)
		return r
	}
	r.Passed = true
	return r
}

// noRouteReason reports whether err is the kernel saying that the
// destination has no usable route, and why in words. Besides no route at
// all (ENETUNREACH), the route types unreachable, prohibit and blackhole
// make the lookup fail too; for a scenario they all mean "not routable".
func noRouteReason(err error) (error, bool) {
	switch {
	case errors.Is(err, unix.ENETUNREACH):
		return errors.New("network is unreachable"), true
	case errors.Is(err, unix.EHOSTUNREACH):
		return errors.New("an unreachable route matches"), true
	case errors.Is(err, unix.EACCES):
		return errors.New("a prohibit route matches"), true
	case errors.Is(err, unix.EINVAL):
		return errors.New("a blackhole route matches"), true
	}
	return nil, false
}

// compareRoute returns "" when got has the gateway, device and source that
// rc asks for (unset fields are not compared), else a sentence naming what
// differs: "expected via 10.0.0.1, got via 10.0.0.254 dev eth1".
func compareRoute(rc *scenario.RouteCheck, got routeView) string {
	var want []string
	if rc.Via.IsValid() && rc.Via != got.Via {
		want = append(want, "via "+rc.Via.String())
	}
	if rc.Dev != "" && rc.Dev != got.Dev {
		want = append(want, "dev "+rc.Dev)
	}
	if rc.Src.IsValid() && rc.Src != got.Src {
		want = append(want, "src "+rc.Src.String())
	}
	if len(want) == 0 {
		return ""
	}
	s := "expected " + strings.Join(want, " ") + ", got " + got.hops()
	if rc.Via.IsValid() && !got.Via.IsValid() {
		s += " (directly connected, no gateway)"
	}
	return s
}

// hops formats the route's next hop as `ip route get` does: "via GW dev
// IF src IP", without "via" for a directly connected destination.
func (v routeView) hops() string {
	var parts []string
	if v.Via.IsValid() {
		parts = append(parts, "via "+v.Via.String())
	}
	if v.Dev != "" {
		parts = append(parts, "dev "+v.Dev)
	}
	if v.Src.IsValid() {
		parts = append(parts, "src "+v.Src.String())
	}
	return strings.Join(parts, " ")
}

// describe is the one-line summary: "203.0.113.8 via 10.0.0.1 dev veth_1
// src 10.0.0.2", prefixed with the route type when it is not unicast.
func (v routeView) describe(to netip.Addr) string {
	s := to.String() + " " + v.hops()
	if v.Type != "unicast" && v.Type != "" {
		s = v.Type + " " + s
	}
	return s
}

// details are the figures of a found route in report order.
func (v routeView) details() []Detail {
	d := []Detail{{"route", v.Type}}
	if v.Via.IsValid() {
		d = append(d, Detail{"via", v.Via.String()})
	}
	if v.Dev != "" {
		d = append(d, Detail{"dev", v.Dev})
	}
	if v.Src.IsValid() {
		d = append(d, Detail{"src", v.Src.String()})
	}
	return d
}

// routeType names an RTN_* route type as iproute2 does.
func routeType(t int) string {
	switch t {
	case unix.RTN_UNICAST:
		return "unicast"
	case unix.RTN_LOCAL:
		return "local"
	case unix.RTN_BROADCAST:
		return "broadcast"
	case unix.RTN_ANYCAST:
		return "anycast"
	case unix.RTN_MULTICAST:
		return "multicast"
	case unix.RTN_BLACKHOLE:
		return "blackhole"
	case unix.RTN_UNREACHABLE:
		return "unreachable"
	case unix.RTN_PROHIBIT:
		return "prohibit"
	}
	return fmt.Sprintf("type%d", t)
}

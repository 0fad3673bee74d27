package plan

import (
	"strings"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

// UsesIPv6 reports whether sc uses IPv6 at all: an IPv6 address, route,
// neighbor, VXLAN endpoint or check. Only such scenarios get the duplicate
// address detection settings below and make the builder wait for it, so
// IPv4-only scenarios pay nothing for IPv6.
func UsesIPv6(sc *scenario.Scenario) bool {
	for _, ns := range sc.Namespaces {
		for _, ifc := range ns.Interfaces {
			for _, a := range ifc.Addresses {
				if a.Addr().Is6() {
					return true
				}
			}
			if v := ifc.VXLAN; v != nil && (v.Local.Is6() || v.Remote.Is6()) {
				return true
			}
		}
		for _, r := range ns.Routes {
			if r.Dst.Addr().Is6() || r.Via.Is6() {
				return true
			}
		}
		for _, n := range ns.Neighbors {
			if n.IP.Is6() {
				return true
			}
		}
	}
	for _, c := range sc.Checks {
		switch {
		case c.Ping != nil && c.Ping.To.Addr.Is6(),
			c.Conn != nil && c.Conn.To.Addr().Is6(),
			c.ARP != nil && c.ARP.IP.Is6(),
			c.Route != nil && c.Route.To.Is6():
			return true
		case c.Link != nil:
			for _, a := range c.Link.Addresses {
				if a.Addr().Is6() {
					return true
				}
			}
		}
	}
	return false
}

// The settings that make duplicate address detection (DAD) take about
// 100 ms instead of one to two seconds, while still sending its neighbor
// solicitation. The kernel starts DAD on an address when its interface
// gains a carrier, after a random delay below the interface's
// router_solicitation_delay (1 s by default; 0 means none), then sends
// dad_transmits solicitations (1 by default, left alone), each followed by
// a wait of the interface's neighbor retrans_time_ms (1000 by default),
// and only then is the address usable. A namespace other than the first
// has no net.ipv6.neigh.default, so both are set per interface, after the
// interface exists and before it comes up.
const (
	dadDelayKnob  = "router_solicitation_delay"
	dadDelay      = "0"
	dadRetransKey = "retrans_time_ms"
	dadRetrans    = "100"
)

// dadTuning emits, for a scenario that uses IPv6, the BuildOnly sysctl
// steps that make DAD fast on every interface the scenario brings up
// (lo does no DAD). A setting the scenario makes itself, for the
// interface or through "default" or "all", is left to the scenario.
func (p *planner) dadTuning(order []made) {
	if !UsesIPv6(p.sc) {
		return
	}
	for _, m := range order {
		if !m.ifc.Up || m.ifc.Name == "lo" {
			continue
		}
		knob := strings.ReplaceAll(m.ifc.Name, ".", "/")
		for _, t := range []struct {
			key, value string
			mine       func(key string) bool
		}{
			{"net.ipv6.conf." + knob + "." + dadDelayKnob, dadDelay, func(key string) bool {
				return confKnob(key, m.ifc.Name) == dadDelayKnob
			}},
			{"net.ipv6.neigh." + knob + "." + dadRetransKey, dadRetrans, func(key string) bool {
				k := neighKnob(key, m.ifc.Name)
				return k == dadRetransKey || k == "retrans_time"
			}},
		} {
			if p.scenarioSets(m.ns, t.mine) {
				continue
			}
			s := p.ifStep(SetSysctl, m.ns, m.ifc)
			s.Sysctl = &scenario.Sysctl{Key: t.key, Value: t.value, Pos: s.Pos}
			s.BuildOnly = true
			p.add(s)
		}
	}
}

// scenarioSets reports whether ns sets a sysctl for which mine is true.
func (p *planner) scenarioSets(ns *scenario.Namespace, mine func(key string) bool) bool {
	for _, s := range ns.Sysctls {
		if mine(s.Key) {
			return true
		}
	}
	return false
}

// confKnob returns the setting X of key net.ipv6.conf.I.X when I is
// ifname, "default" or "all", else "".
func confKnob(key, ifname string) string { return ipv6Knob(key, "conf", ifname) }

// neighKnob returns the setting X of key net.ipv6.neigh.I.X when I is
// ifname or "default", else "".
func neighKnob(key, ifname string) string {
	if strings.HasPrefix(key, "net.ipv6.neigh.all.") {
		return ""
	}
	return ipv6Knob(key, "neigh", ifname)
}

func ipv6Knob(key, tree, ifname string) string {
	parts := strings.Split(key, ".")
	if len(parts) != 5 || parts[0] != "net" || parts[1] != "ipv6" || parts[2] != tree {
		return ""
	}
	switch strings.ReplaceAll(parts[3], "/", ".") {
	case ifname, "default", "all":
		return parts[4]
	}
	return ""
}

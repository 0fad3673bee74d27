package diagnose

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

// Overlays: a frame sent out of a VXLAN device is encapsulated and sent
// over the underlay to the tunnel's far ends, the VTEPs its remote and
// FDB entries name, where a VXLAN device with the same VNI and UDP port
// takes it. The walk crosses the tunnel as it crosses a veth pair; what
// cuts it (a VNI, port or remote that does not match, no FDB entry, no
// underlay route) is named at the device that has the mistake.

// vtepTargets returns the underlay addresses a vxlan device sends to: its
// remote and the destinations of its FDB entries.
func vtepTargets(v *snapshot.VXLAN) []netip.Addr {
	var out []netip.Addr
	add := func(a netip.Addr) {
		if a.IsValid() && !a.IsUnspecified() && !slices.Contains(addrStrings(out), a.String()) {
			out = append(out, a)
		}
	}
	add(v.Remote)
	for _, e := range v.FDB {
		add(e.Dst)
	}
	return out
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// vtepAddr returns the underlay address a vxlan device x is reached at:
// its local address, else the first address of its underlay device, else
// the namespace's first address of another link that is up.
func (w *walker) vtepAddr(x endpoint) netip.Addr {
	ns := w.st.NS(x.ns)
	l := ns.Link(x.ifname)
	if l == nil || l.VXLAN == nil {
		return netip.Addr{}
	}
	if l.VXLAN.Local.IsValid() {
		return l.VXLAN.Local
	}
	if d := ns.Link(l.VXLAN.Dev); d != nil {
		for _, a := range d.Addrs {
			if !a.Addr().IsLinkLocalUnicast() {
				return a.Addr()
			}
		}
	}
	for _, o := range ns.Links {
		if o.IsLoopback() || o.Kind == "vxlan" || o.Kind == "bridge" || !o.Up {
			continue
		}
		for _, a := range o.Addrs {
			if !a.Addr().IsLinkLocalUnicast() {
				return a.Addr()
			}
		}
	}
	return netip.Addr{}
}

// vxlanDevices lists the vxlan devices of the snapshot, but those of ns.
func (w *walker) vxlanDevices(except string) []endpoint {
	var out []endpoint
	for _, n := range w.st.Namespaces {
		if n.Name == except {
			continue
		}
		for _, l := range n.Links {
			if l.VXLAN != nil {
				out = append(out, endpoint{n.Name, l.Name})
			}
		}
	}
	return out
}

// tunnelPeers returns the vxlan devices a frame sent out of vxlan device
// e arrives at. In the snapshot's terms: a device in the namespace that
// holds one of e's VTEP targets, with the same VNI and port, reached by
// an underlay route. Learned entries are in the snapshot's FDB like static
// ones. In ideal mode, the devices
// the tunnel is meant to reach: those with e's VNI, and those at e's
// targets.
func (w *walker) tunnelPeers(e endpoint, ideal bool) []endpoint {
	l := w.st.NS(e.ns).Link(e.ifname)
	if l == nil || l.VXLAN == nil {
		return nil
	}
	targets := vtepTargets(l.VXLAN)
	var out []endpoint
	for _, x := range w.vxlanDevices(e.ns) {
		xl := w.st.NS(x.ns).Link(x.ifname)
		at := w.vtepAddr(x)
		targeted := containsAddr(targets, at)
		if ideal {
			if xl.VXLAN.VNI == l.VXLAN.VNI || containsAddr(targets, at) {
				out = append(out, x)
			}
			continue
		}
		if targeted && xl.Up && xl.VXLAN.VNI == l.VXLAN.VNI && xl.VXLAN.Port == l.VXLAN.Port && w.underlay(e.ns, at) {
			out = append(out, x)
		}
	}
	return out
}

// underlay reports whether namespace ns has a route to underlay address
// a: a local address, or a usable route.
func (w *walker) underlay(ns string, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	r, ok := w.st.NS(ns).RouteGet(a)
	return ok && (forwardable(r.Type) || delivers(r.Type))
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, b := range as {
		if b == a {
			return true
		}
	}
	return false
}

// tunnelMismatch explains why a frame sent out of vxlan device v does not
// arrive at vxlan device x, which the tunnel is meant to reach, or nil
// when it does (or when v and x are no tunnel's ends). A VNI or port that
// differs is named at the device whose value the other VTEPs of that VNI
// do not share (the far end when it is one against one); a missing or
// wrong target at v.
func (w *walker) tunnelMismatch(v, x endpoint) *blockage {
	vl := w.st.NS(v.ns).Link(v.ifname)
	xl := w.st.NS(x.ns).Link(x.ifname)
	if vl == nil || xl == nil || vl.VXLAN == nil || xl.VXLAN == nil {
		return nil
	}
	vv, xv := vl.VXLAN, xl.VXLAN
	at := w.vtepAddr(x)
	if vv.VNI != xv.VNI {
		odd := w.oddOne(v, x, func(a *snapshot.VXLAN) int { return a.VNI })
		ol := w.st.NS(odd.ns).Link(odd.ifname).VXLAN
		want := vv.VNI
		if odd == v {
			want = xv.VNI
		}
		return &blockage{cause: VXLANMismatch, at: odd,
			why: fmt.Sprintf("%s has VNI %d but %s has VNI %d: %s is the odd one (the other VTEPs use %d)", v, vv.VNI, x, xv.VNI, odd, want),
			fix: w.recreateVXLAN(odd, want, ol.Port)}
	}
	if vv.Port != xv.Port {
		odd := w.oddOne(v, x, func(a *snapshot.VXLAN) int { return a.Port })
		ol := w.st.NS(odd.ns).Link(odd.ifname).VXLAN
		want := vv.Port
		if odd == v {
			want = xv.Port
		}
		return &blockage{cause: VXLANMismatch, at: odd,
			why: fmt.Sprintf("%s sends to UDP port %d but %s listens on UDP port %d: %s is the odd one", v, vv.Port, x, xv.Port, odd),
			fix: w.recreateVXLAN(odd, ol.VNI, want)}
	}
	targets := vtepTargets(vv)
	if !containsAddr(targets, at) {
		fix := fixIn(v.ns, fmt.Sprintf("bridge fdb append 00:00:00:00:00:00 dev %s dst %s", v.ifname, at))
		if len(targets) == 0 {
			return &blockage{cause: VXLANMismatch, at: v, fix: fix,
				why: fmt.Sprintf("%s has no remote and no FDB entry, so it sends nothing to the VTEP of %s at %s", v, x, at)}
		}
		what := "FDB entries point"
		if vv.Remote.IsValid() && len(targets) == 1 {
			what = "remote points"
			fix = fixIn(v.ns, fmt.Sprintf("ip link set %s type vxlan remote %s", v.ifname, at))
		}
		return &blockage{cause: VXLANMismatch, at: v, fix: fix,
			why: fmt.Sprintf("%s's %s to %s, but the VTEP of %s (VNI %d) is at %s", v, what, joinAddrs(targets), x, xv.VNI, at)}
	}
	if !w.underlay(v.ns, at) {
		return &blockage{cause: NoRoute, at: v,
			why: fmt.Sprintf("%s has no underlay route to %s, the VTEP of %s", v.ns, at, x)}
	}
	return nil
}

// oddOne returns whichever of a and b has the value of field that fewer
// of the snapshot's other vxlan devices share; b on a tie.
func (w *walker) oddOne(a, b endpoint, field func(*snapshot.VXLAN) int) endpoint {
	av := field(w.st.NS(a.ns).Link(a.ifname).VXLAN)
	bv := field(w.st.NS(b.ns).Link(b.ifname).VXLAN)
	var na, nb int
	for _, x := range w.vxlanDevices("") {
		if x == a || x == b {
			continue
		}
		switch field(w.st.NS(x.ns).Link(x.ifname).VXLAN) {
		case av:
			na++
		case bv:
			nb++
		}
	}
	if na > nb {
		return b
	}
	if nb > na {
		return a
	}
	return b
}

// recreateVXLAN is the fix for a VNI or port, which the kernel cannot
// change on an existing device: delete it and add it again with the same
// settings but vni and port, then restore its master, addresses and
// state.
func (w *walker) recreateVXLAN(e endpoint, vni, port int) string {
	l := w.st.NS(e.ns).Link(e.ifname)
	v := l.VXLAN
	add := []string{"ip link add", e.ifname}
	if l.MAC != "" {
		add = append(add, "address", l.MAC)
	}
	if l.MTU != 0 {
		add = append(add, "mtu", fmt.Sprint(l.MTU))
	}
	add = append(add, "type vxlan id", fmt.Sprint(vni), "dstport", fmt.Sprint(port))
	if v.Remote.IsValid() {
		if v.Remote.IsMulticast() {
			add = append(add, "group", v.Remote.String())
		} else {
			add = append(add, "remote", v.Remote.String())
		}
	}
	if v.Local.IsValid() {
		add = append(add, "local", v.Local.String())
	}
	if v.Dev != "" {
		add = append(add, "dev", v.Dev)
	}
	if !v.Learning {
		add = append(add, "nolearning")
	}
	cmds := []string{"ip link del " + e.ifname, strings.Join(add, " ")}
	for _, f := range v.FDB {
		if f.Dst.IsValid() && (f.Dst != v.Remote || f.MAC != "00:00:00:00:00:00") {
			cmds = append(cmds, fmt.Sprintf("bridge fdb append %s dev %s dst %s", f.MAC, e.ifname, f.Dst))
		}
	}
	if l.Master != "" {
		cmds = append(cmds, fmt.Sprintf("ip link set %s master %s", e.ifname, l.Master))
	}
	for _, a := range l.Addrs {
		if !a.Addr().IsLinkLocalUnicast() {
			cmds = append(cmds, fmt.Sprintf("ip addr add %s dev %s", a, e.ifname))
		}
	}
	if l.Up {
		cmds = append(cmds, fmt.Sprintf("ip link set %s up", e.ifname))
	}
	return fixIn(e.ns, strings.Join(cmds, " && "))
}

func joinAddrs(as []netip.Addr) string { return strings.Join(addrStrings(as), ", ") }

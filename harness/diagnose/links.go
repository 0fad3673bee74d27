package diagnose

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

// Links and bridges: where a frame sent out of an interface arrives,
// through veth pairs and bridge ports, and what cuts that path (a link
// down, no carrier, a port missing from its bridge).

// endpoint is an interface of a namespace: "ns/if".
type endpoint struct{ ns, ifname string }

func (e endpoint) String() string { return e.ns + "/" + e.ifname }

// segmentStep is one interface a frame crosses on its way from a sender to
// a receiver, and how.
type segmentStep struct {
	at endpoint
	// out is true when the frame leaves through the interface (a bridge
	// sending to a port, a veth transmitting), false when it arrives.
	out bool
}

// segment describes the layer-2 reach of frames sent out of one interface.
type segment struct {
	// receivers are the interfaces that take the frame to their own
	// stack (a veth end with no master, a bridge), with the steps that
	// led there.
	receivers map[endpoint][]segmentStep
	order     []endpoint
	// exits are the interfaces through which frames leave the namespaces
	// of the snapshot (outside.go); only the real state has them.
	exits []exit
}

// flood follows a frame sent out of ns/dev to every interface that would
// receive it: through veth pairs and bridges. In ideal mode the namespaces
// are taken as the scenario means them (every link up, every port
// enslaved to its scenario master), so the paths to the intended receivers
// are known even when the real state cuts them; otherwise the snapshot's
// state decides.
func (w *walker) flood(start endpoint, ideal bool) segment {
	seg := segment{receivers: map[endpoint][]segmentStep{}}
	seen := map[segmentStep]bool{}
	var send, arrive func(e endpoint, path []segmentStep)
	send = func(e endpoint, path []segmentStep) {
		st := segmentStep{at: e, out: true}
		if seen[st] {
			return
		}
		seen[st] = true
		path = append(clonePath(path), st)
		l := w.st.NS(e.ns).Link(e.ifname)
		if l == nil || (!ideal && !l.Up) {
			return
		}
		switch l.Kind {
		case "bridge":
			for _, p := range w.ports(e.ns, e.ifname, ideal) {
				send(endpoint{e.ns, p}, path)
			}
		case "vxlan":
			// The frame is encapsulated and crosses the underlay to the
			// tunnel's far ends (overlay.go).
			for _, x := range w.tunnelPeers(e, ideal) {
				arrive(x, path)
			}
		default:
			if peer, ok := w.peer(e); ok {
				arrive(peer, path)
			} else if x, ok := w.exitAt(e, l); ok && !ideal {
				seg.exits = append(seg.exits, x)
			}
		}
	}
	arrive = func(e endpoint, path []segmentStep) {
		st := segmentStep{at: e}
		if seen[st] {
			return
		}
		seen[st] = true
		path = append(clonePath(path), st)
		l := w.st.NS(e.ns).Link(e.ifname)
		if l == nil || (!ideal && !l.Up) {
			return
		}
		master := w.master(e, ideal)
		if master == "" {
			seg.add(e, path)
			return
		}
		br := endpoint{e.ns, master}
		if bl := w.st.NS(e.ns).Link(master); bl == nil || (!ideal && !bl.Up) {
			return
		}
		brStep := segmentStep{at: br}
		seen[brStep] = true
		seg.add(br, append(clonePath(path), brStep))
		for _, p := range w.ports(e.ns, master, ideal) {
			if p != e.ifname {
				send(endpoint{e.ns, p}, append(clonePath(path), brStep))
			}
		}
	}
	send(start, nil)
	return seg
}

func (s *segment) add(e endpoint, path []segmentStep) {
	if _, ok := s.receivers[e]; ok {
		return
	}
	s.receivers[e] = path
	s.order = append(s.order, e)
}

func clonePath(p []segmentStep) []segmentStep { return append([]segmentStep(nil), p...) }

// master returns the bridge e is a port of: the scenario's intent in ideal
// mode (falling back to the snapshot), the snapshot's otherwise.
func (w *walker) master(e endpoint, ideal bool) string {
	if ideal {
		if m, _, ok := w.intendedMaster(e); ok {
			return m
		}
	}
	if l := w.st.NS(e.ns).Link(e.ifname); l != nil {
		return l.Master
	}
	return ""
}

// intendedMaster returns the bridge e should be a port of. That is the
// master the scenario gives it; or, when neither the scenario nor the
// snapshot gives it one, the bridge of its namespace whose subnet holds an
// address of its veth peer, if e itself has no address: a veth end with
// nothing configured on it, whose other end lives on a bridge's subnet, is
// a port someone forgot to enslave. inferred says which. ok is false when
// e should be no port.
func (w *walker) intendedMaster(e endpoint) (br string, inferred, ok bool) {
	if w.sc != nil {
		if ns := w.sc.Namespace(e.ns); ns != nil {
			if i := ns.Interface(e.ifname); i != nil && i.Master != "" {
				return i.Master, false, true
			}
		}
	}
	ns := w.st.NS(e.ns)
	l := ns.Link(e.ifname)
	if l == nil || l.Master != "" || l.Kind != "veth" || len(l.Configured()) > 0 {
		return "", false, false
	}
	peer, found := w.peer(e)
	if !found {
		return "", false, false
	}
	pl := w.st.NS(peer.ns).Link(peer.ifname)
	if pl == nil {
		return "", false, false
	}
	for _, b := range ns.Links {
		if b.Kind != "bridge" {
			continue
		}
		for _, bp := range b.Configured() {
			for _, pa := range pl.Configured() {
				if bp.Masked().Contains(pa.Addr()) {
					return b.Name, true, true
				}
			}
		}
	}
	return "", false, false
}

// ports returns the ports of bridge br in ns, sorted as the snapshot lists
// its links.
func (w *walker) ports(ns, br string, ideal bool) []string {
	var out []string
	for _, l := range w.st.NS(ns).Links {
		if w.master(endpoint{ns, l.Name}, ideal) == br && l.Name != br {
			out = append(out, l.Name)
		}
	}
	return out
}

// peer returns the other end of the veth pair e: from the snapshot when it
// could tell, else from the scenario's links.
func (w *walker) peer(e endpoint) (endpoint, bool) {
	if l := w.st.NS(e.ns).Link(e.ifname); l != nil && l.Peer != "" {
		// Interface names hold no "/"; namespace names may (a path).
		if i := strings.LastIndex(l.Peer, "/"); i > 0 {
			return endpoint{l.Peer[:i], l.Peer[i+1:]}, true
		}
	}
	if w.sc == nil {
		return endpoint{}, false
	}
	for _, lk := range w.sc.Links {
		switch {
		case lk.A.NS == e.ns && lk.A.If == e.ifname:
			return endpoint{lk.B.NS, lk.B.If}, true
		case lk.B.NS == e.ns && lk.B.If == e.ifname:
			return endpoint{lk.A.NS, lk.A.If}, true
		}
	}
	return endpoint{}, false
}

// blockage is what cuts a layer-2 path in the real state.
type blockage struct {
	cause string
	at    endpoint
	// bridge is the master a not-bridged port should have.
	bridge string
	// why says what is wrong, for the summary.
	why string
	// fix, when set, is the command that repairs it, as fixIn writes it.
	fix string
}

// blocked walks an ideal path step by step against the snapshot and
// returns the first interface that cuts it: a link administratively down
// (a veth whose peer is down has no carrier: the down peer is named), a
// port missing from its bridge, a bridge that is down.
func (w *walker) blocked(path []segmentStep) *blockage {
	for _, st := range path {
		ns := w.st.NS(st.at.ns)
		l := ns.Link(st.at.ifname)
		if l == nil {
			return &blockage{cause: LinkDown, at: st.at, why: fmt.Sprintf("%s does not exist", st.at)}
		}
		if !l.Up {
			return &blockage{cause: LinkDown, at: st.at, why: fmt.Sprintf("%s is administratively down", st.at)}
		}
		if want, inferred, ok := w.intendedMaster(st.at); ok && l.Master != want {
			why := fmt.Sprintf("%s is not a port of bridge %s (it has %s)", st.at, want, masterText(l.Master))
			if inferred {
				why = fmt.Sprintf("%s has no address and no master, and its peer is on the subnet of bridge %s, so it should be a port of %s", st.at, want, want)
			}
			return &blockage{cause: NotBridged, at: st.at, bridge: want, why: why}
		}
	}
	for i := 0; i+1 < len(path); i++ {
		if path[i].out && !path[i+1].out {
			if b := w.tunnelMismatch(path[i].at, path[i+1].at); b != nil {
				return b
			}
		}
	}
	for _, st := range path {
		if l := w.st.NS(st.at.ns).Link(st.at.ifname); l != nil && !l.Carrier && !l.IsLoopback() && l.Kind != "bridge" && l.Kind != "vxlan" {
			return &blockage{cause: LinkDown, at: st.at, why: fmt.Sprintf("%s has no carrier", st.at)}
		}
	}
	return nil
}

func masterText(m string) string {
	if m == "" {
		return "no master"
	}
	return "master " + m
}

func (w *walker) blockageFinding(ns *snapshot.NSState, r snapshot.Route, nh netip.Addr, holder endpoint, b *blockage) *finding {
	f := &finding{Cause: b.cause, NS: b.at.ns, If: b.at.ifname}
	f.Evidence = append(f.Evidence, fmt.Sprintf("%s: ip route get %s -> %s", ns.Name, nh, r))
	f.Evidence = append(f.Evidence, fmt.Sprintf("%s holds %s; the way there from %s/%s is cut: %s", holder, nh, ns.Name, r.Dev, b.why))
	if nb := ns.Neighbor(nh, r.Dev); nb != nil {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s: neighbor %s dev %s %s", ns.Name, nh, r.Dev, nb.State))
	}
	switch b.cause {
	case NotBridged:
		f.Summary = fmt.Sprintf("%s should be a port of bridge %s but is not enslaved, so frames from %s/%s never reach %s", b.at, b.bridge, ns.Name, r.Dev, holder)
		f.Fix = fixIn(b.at.ns, fmt.Sprintf("ip link set %s master %s", b.at.ifname, b.bridge))
	case VXLANMismatch, NoRoute:
		f.Summary = fmt.Sprintf("%s, so %s/%s cannot reach %s (%s) through the tunnel", b.why, ns.Name, r.Dev, nh, holder)
		f.Fix = b.fix
	default:
		f.Summary = fmt.Sprintf("%s, so %s/%s cannot reach %s (%s)", b.why, ns.Name, r.Dev, nh, holder)
		f.Fix = fixIn(b.at.ns, fmt.Sprintf("ip link set %s up", b.at.ifname))
	}
	return f
}

// downLinkFor returns a link of ns that is down and would carry a packet
// to dst: an address of it covers dst, or a route of the scenario through
// it does.
func (w *walker) downLinkFor(ns *snapshot.NSState, dst netip.Addr) string {
	for _, l := range ns.Links {
		if l.Up || l.IsLoopback() {
			continue
		}
		for _, a := range l.Addrs {
			if a.Masked().Contains(dst) {
				return l.Name
			}
		}
	}
	if w.sc == nil {
		return ""
	}
	sn := w.sc.Namespace(ns.Name)
	if sn == nil {
		return ""
	}
	for _, r := range sn.Routes {
		if !r.Dst.Contains(dst) || r.Table != 0 {
			continue
		}
		dev := r.Dev
		if dev == "" {
			for _, l := range ns.Links {
				for _, a := range l.Addrs {
					if a.Masked().Contains(r.Via) {
						dev = l.Name
					}
				}
			}
		}
		if l := ns.Link(dev); l != nil && !l.Up {
			return dev
		}
	}
	return ""
}

// segmentText lists the receivers of seg with their addresses of one
// family.
func (w *walker) segmentText(seg segment, v6 bool) string {
	if len(seg.order) == 0 {
		return "none"
	}
	var s []string
	for _, e := range seg.order {
		l := w.st.NS(e.ns).Link(e.ifname)
		var addrs []string
		if l != nil {
			for _, a := range l.Addrs {
				if a.Addr().Is6() == v6 {
					addrs = append(addrs, a.String())
				}
			}
		}
		if len(addrs) == 0 {
			addrs = []string{"no address"}
		}
		s = append(s, fmt.Sprintf("%s %s", e, strings.Join(addrs, ",")))
	}
	return strings.Join(s, "; ")
}

// bridgedFilter runs p through the iptables FORWARD hook of every bridge
// that forwards it from port to port on path, where br_netfilter hands
// bridged IPv4 (IPv6) frames to iptables (ip6tables):
// net.bridge.bridge-nf-call-iptables, 1 by default in every namespace once
// the module is loaded. The rules see the bridge as both -i and -o
// (Docker's inter-container rule `-i docker0 -o docker0` is one).
func (w *walker) bridgedFilter(path []segmentStep, p packet) *finding {
	key := "net.bridge.bridge-nf-call-iptables"
	if p.IPv6() {
		key = "net.bridge.bridge-nf-call-ip6tables"
	}
	for i, st := range path {
		if st.out || i+1 >= len(path) {
			continue // only a bridge that sends the frame on forwards it
		}
		ns := w.st.NS(st.at.ns)
		l := ns.Link(st.at.ifname)
		if l == nil || l.Kind != "bridge" {
			continue
		}
		if v, _ := ns.Sysctl(key); v != "1" {
			continue
		}
		q := p.Packet
		q.In, q.Out, q.Mark = st.at.ifname, st.at.ifname, nil
		if f := w.filter(ns, "FORWARD", q, st.at.ifname); f != nil {
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s: %s = 1: bridged frames on %s go through iptables FORWARD (br_netfilter)", ns.Name, key, st.at.ifname))
			return f
		}
	}
	return nil
}

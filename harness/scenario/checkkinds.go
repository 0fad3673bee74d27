package scenario

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// checkKinds is the table of check kinds, in the order the format page
// lists them. It is never written to.
var checkKinds = []checkKind{
	{name: "ping", probe: true, fields: []string{"from", "to", "count", "timeout", "max_loss", "size", "df"}, read: readPing,
		title: func(ch *Check) string {
			return fmt.Sprintf("ping %s -> %s", ch.Ping.From, ch.Ping.To) + sizeTitle(ch.Ping.Size, ch.Ping.Fragment)
		}},
	{name: "tcp", probe: true, fields: connFields, read: readConn, title: connTitle},
	{name: "udp", probe: true, fields: udpFields, read: readConn, title: connTitle},
	{name: "arp", fields: []string{"in", "ip", "mac", "dev", "state"}, read: readARP,
		title: func(ch *Check) string { return fmt.Sprintf("arp %s %s", ch.ARP.In, ch.ARP.IP) }},
	{name: "route", fields: []string{"in", "to", "via", "dev", "src"}, read: readRoute,
		title: func(ch *Check) string { return fmt.Sprintf("route %s %s", ch.Route.In, ch.Route.To) }},
	{name: "link", fields: []string{"in", "name", "up", "master", "mtu", "addresses"}, read: readLink,
		title: func(ch *Check) string { return fmt.Sprintf("link %s %s", ch.Link.In, ch.Link.Name) }},
	{name: "iptables", fields: []string{"in", "table", "chain", "rule", "packets"}, read: readIPTables,
		title: func(ch *Check) string {
			return fmt.Sprintf("iptables %s %s/%s", ch.IPTables.In, ch.IPTables.Table, ch.IPTables.Chain)
		}},
	{name: "sysctl", fields: []string{"in", "key", "value"}, read: readSysctl,
		title: func(ch *Check) string { return fmt.Sprintf("sysctl %s %s", ch.Sysctl.In, ch.Sysctl.Key) }},
}

var (
	connFields = []string{"from", "to", "listen", "timeout", "payload", "reply"}
	udpFields  = append(append([]string(nil), connFields...), "size", "df")
)

// Probe size bounds (bytes of the whole IP packet): the smallest still
// carries the IP and ICMP or UDP headers and the probe's tag; the largest
// is the most an IPv4 total length can say.
const (
	MinProbeSize = 64
	MaxProbeSize = 65535
)

// arpStates are the neighbor states an arp check may ask for.
var arpStates = []string{"reachable", "stale", "permanent", "any"}

func readPing(r *checkReader, ch *Check) {
	c := &PingCheck{Count: 1}
	ch.Ping = c
	c.From, _ = r.namespace("from")
	if n := r.get("to", true); n != nil {
		c.To, _ = r.target(n)
	}
	if n := r.get("count", false); n != nil {
		if v, ok := r.p.integer(n, r.field+".count", 1, MaxPingCount); ok {
			c.Count = int(v)
		}
	}
	c.Timeout = r.timeout()
	if n := r.get("max_loss", false); n != nil {
		field := r.field + ".max_loss"
		if s, ok := r.p.str(n, field); ok {
			loss, err := parseLoss(s)
			if err != nil {
				r.p.errorf(n, field, "%v", err)
			}
			c.MaxLoss = loss
		}
	}
	c.Size, c.Fragment = r.sizeAndDF()
}

// sizeAndDF reads size and df of a ping or udp check: the size of the
// request's IP packet, 0 when not given, and whether df: false lets it be
// fragmented.
func (r *checkReader) sizeAndDF() (size int, fragment bool) {
	if n := r.get("size", false); n != nil {
		if v, ok := r.p.integer(n, r.field+".size", MinProbeSize, MaxProbeSize); ok {
			size = int(v)
		}
	}
	if n := r.get("df", false); n != nil {
		if b, ok := r.p.boolean(n, r.field+".df"); ok {
			fragment = !b
		}
	}
	return size, fragment
}

// target reads where a ping goes: an address, or NS/IF for the first
// address of that interface, which must have one.
func (r *checkReader) target(n *yaml.Node) (Target, bool) {
	field := r.field + ".to"
	s, ok := r.p.str(n, field)
	if !ok {
		return Target{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return Target{Addr: a}, true
	}
	if pfx, err := netip.ParsePrefix(s); err == nil {
		r.p.errorf(n, field, "to %q is a prefix; write one address (%s) or NS/IF", s, pfx.Addr())
		return Target{}, false
	}
	if !strings.Contains(s, "/") {
		r.p.errorf(n, field, "to %q is neither an IP address nor NS/IF", s)
		return Target{}, false
	}
	ep, ok := r.endpoint(n, field)
	if !ok {
		return Target{}, false
	}
	a, ok := targetAddr(r.t.s.Interface(ep).Addresses)
	if !ok {
		r.p.errorf(n, field, "%s has no address in the scenario to send to (an IPv4 address, or an IPv6 one that is not link-local, outside loopback 127.0.0.0/8 and ::1); give it one, or write the address", ep)
		return Target{}, false
	}
	return Target{Addr: a, If: ep}, true
}

// targetAddr picks the address a probe to an interface written as NS/IF
// goes to, from the addresses the scenario gives it, never from the
// kernel's list: the first IPv4 address, else the first IPv6 address that
// is not link-local. Loopback addresses are never picked: sent from any
// namespace they reach the sender's own lo, so a probe to one would pass
// without crossing any link.
func targetAddr(addrs []netip.Prefix) (netip.Addr, bool) {
	for _, p := range addrs {
		if a := p.Addr(); a.Is4() && !a.IsLoopback() {
			return a, true
		}
	}
	for _, p := range addrs {
		if a := p.Addr(); a.Is6() && !a.IsLinkLocalUnicast() && !a.IsLoopback() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// parseLoss parses a loss limit, "0%" to "100%", into a fraction.
func parseLoss(s string) (float64, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if !ok || err != nil || math.IsNaN(v) || v < 0 || v > 100 {
		return 0, fmt.Errorf("max_loss %q is not a percentage from 0%% to 100%%", s)
	}
	return v / 100, nil
}

func readConn(r *checkReader, ch *Check) {
	c := &ConnCheck{Proto: ch.Kind}
	ch.Conn = c
	c.From, _ = r.namespace("from")
	if n := r.get("to", true); n != nil {
		field := r.field + ".to"
		if s, ok := r.p.str(n, field); ok {
			ap, err := netip.ParseAddrPort(s)
			switch {
			case err != nil || ap.Addr().Zone() != "":
				r.p.errorf(n, field, "to %q is not IP:PORT (198.51.100.2:8080, [2001:db8::1]:80)", s)
			case ap.Port() == 0:
				r.p.errorf(n, field, "to %q: port 0 cannot be connected to", s)
			default:
				c.To = ap
			}
		}
	}
	if n := r.get("listen", false); n != nil {
		field := r.field + ".listen"
		if s, ok := r.p.str(n, field); ok {
			ns, port, err := parseListen(s)
			switch {
			case err != nil:
				r.p.errorf(n, field, "%v", err)
			case r.t.s.Namespace(ns) == nil:
				r.p.errorf(n, field, "no namespace %q%s", ns, didYouMean(ns, nsNames(r.t.s)))
			default:
				c.ListenNS, c.ListenPort = ns, port
			}
		}
	}
	c.Timeout = r.timeout()
	for _, key := range []string{"payload", "reply"} {
		n := r.get(key, false)
		if n == nil {
			continue
		}
		field := r.field + "." + key
		s, ok := r.p.str(n, field)
		switch {
		case !ok:
		case c.Proto != "udp":
			r.p.errorf(n, field, "%s is for udp checks; a tcp check without listen passes on a completed handshake", key)
		case c.ListenNS != "":
			r.p.errorf(n, field, "%s is for a real service's answer; with listen, hopcheck's listener answers", key)
		case s == "":
			r.p.errorf(n, field, "%s is empty", key)
		case len(s) > maxServicePayload:
			r.p.errorf(n, field, "%s is %d bytes; at most %d", key, len(s), maxServicePayload)
		case key == "payload":
			c.Payload = []byte(s)
		default:
			c.Reply = s
		}
	}
	if c.Proto == "udp" {
		c.Size, c.Fragment = r.sizeAndDF()
	}
}

// maxServicePayload bounds a udp check's payload and expected reply.
const maxServicePayload = 1024

// parseListen parses "NS:PORT".
func parseListen(s string) (string, uint16, error) {
	ns, port, ok := strings.Cut(s, ":")
	if !ok {
		return "", 0, fmt.Errorf("listen %q is not NS:PORT (ns1:80)", s)
	}
	if msg := checkNamespaceName(ns); msg != "" {
		return "", 0, fmt.Errorf("listen %q: %s", s, msg)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("listen %q: port %q is not a number from 1 to 65535", s, port)
	}
	return ns, uint16(p), nil
}

func connTitle(ch *Check) string {
	c := ch.Conn
	s := fmt.Sprintf("%s %s -> %s", c.Proto, c.From, c.To)
	if c.ListenNS != "" {
		s += fmt.Sprintf(" (listen %s:%d)", c.ListenNS, c.ListenPort)
	}
	return s + sizeTitle(c.Size, c.Fragment)
}

// sizeTitle is what a derived check name says about size and df:
// " size 1500", " size 1500 df off"; nothing for the defaults.
func sizeTitle(size int, fragment bool) string {
	s := ""
	if size > 0 {
		s += fmt.Sprintf(" size %d", size)
	}
	if fragment {
		s += " df off"
	}
	return s
}

func readARP(r *checkReader, ch *Check) {
	c := &ARPCheck{State: "any"}
	ch.ARP = c
	c.In, _ = r.namespace("in")
	c.IP, _ = r.addr("ip", true)
	if n := r.get("mac", false); n != nil {
		field := r.field + ".mac"
		if s, ok := r.p.str(n, field); ok {
			if strings.Contains(s, "/") {
				c.MACOf, _ = r.endpoint(n, field)
			} else if mac, err := parseMAC(s); err != nil {
				r.p.errorf(n, field, "%v (or NS/IF for that interface's MAC)", err)
			} else {
				c.MAC = mac
			}
		}
	}
	if c.In != "" {
		c.Dev, _ = r.iface("dev", c.In, false)
	}
	if s, ok := r.str("state", false); ok {
		if !contains(arpStates, s) {
			r.p.errorf(r.vals["state"].v, r.field+".state", "unknown state %q%s; one of %s", s, didYouMean(s, arpStates), strings.Join(arpStates, ", "))
		} else {
			c.State = s
		}
	}
}

func readRoute(r *checkReader, ch *Check) {
	c := &RouteCheck{}
	ch.Route = c
	c.In, _ = r.namespace("in")
	c.To, _ = r.addr("to", true)
	c.Via, _ = r.addr("via", false)
	if c.In != "" {
		c.Dev, _ = r.iface("dev", c.In, false)
	}
	c.Src, _ = r.addr("src", false)
	for _, a := range []netip.Addr{c.Via, c.Src} {
		if a.IsValid() && c.To.IsValid() && a.Is4() != c.To.Is4() {
			r.p.errorf(r.node, r.field, "via and src must be of the IP family of to (%s)", c.To)
			break
		}
	}
}

func readLink(r *checkReader, ch *Check) {
	c := &LinkCheck{}
	ch.Link = c
	c.In, _ = r.namespace("in")
	if c.In != "" {
		c.Name, _ = r.iface("name", c.In, true)
	}
	if n := r.get("up", false); n != nil {
		if b, ok := r.p.boolean(n, r.field+".up"); ok {
			c.Up = &b
		}
	}
	if n := r.get("master", false); n != nil {
		field := r.field + ".master"
		if s, ok := r.p.str(n, field); ok {
			// An empty master asserts that the interface is no bridge port.
			if ns := r.t.s.Namespace(c.In); s != "" && ns != nil && ns.Interface(s) == nil {
				r.p.errorf(n, field, "no interface %q in namespace %s%s", s, c.In, didYouMean(s, ifNames(ns)))
			}
			c.Master = &s
		}
	}
	if n := r.get("mtu", false); n != nil {
		if v, ok := r.p.integer(n, r.field+".mtu", minMTU, maxMTU); ok {
			c.MTU = int(v)
		}
	}
	if n := r.get("addresses", false); n != nil {
		items, _ := r.p.items(n, r.field+".addresses")
		for i, it := range items {
			f := fmt.Sprintf("%s.addresses[%d]", r.field, i)
			if s, ok := r.p.str(it, f); ok {
				pfx, err := parseCIDR(s)
				if err != nil {
					r.p.errorf(it, f, "%v", err)
					continue
				}
				c.Addresses = append(c.Addresses, pfx)
			}
		}
	}
}

func readIPTables(r *checkReader, ch *Check) {
	c := &IPTablesCheck{Table: "filter"}
	ch.IPTables = c
	c.In, _ = r.namespace("in")
	if s, ok := r.str("table", false); ok {
		if !contains(tables, s) {
			r.p.errorf(r.vals["table"].v, r.field+".table", "unknown table %q%s; one of %s", s, didYouMean(s, tables), strings.Join(tables, ", "))
		} else {
			c.Table = s
		}
	}
	if s, ok := r.str("chain", true); ok {
		c.Chain = s
		if ns := r.t.s.Namespace(c.In); ns != nil && !hasChain(ns, c.Table, s) {
			r.p.errorf(r.vals["chain"].v, r.field+".chain", "table %s of namespace %s has no chain %s (neither built in nor made with -N)", c.Table, c.In, s)
		}
	}
	if s, ok := r.str("rule", true); ok {
		if _, err := SplitArgs(s); err != nil {
			r.p.errorf(r.vals["rule"].v, r.field+".rule", "rule %q: %v", s, err)
		}
		c.Rule = strings.TrimSpace(s)
	}
	if n := r.get("packets", false); n != nil {
		field := r.field + ".packets"
		if s, ok := r.p.str(n, field); ok {
			cnt, err := ParseCount(s)
			if err != nil {
				r.p.errorf(n, field, "%v", err)
			} else {
				c.Packets = &cnt
			}
		}
	}
}

// hasChain reports whether table of ns has chain: built in, or made by -N.
func hasChain(ns *Namespace, table, chain string) bool {
	if contains(builtinChains[table], chain) {
		return true
	}
	for _, c := range ns.IPTables {
		if c.Op == "-N" && c.Table == table && c.Chain == chain {
			return true
		}
	}
	return false
}

// ParseCount parses a counter condition: "0", ">0", ">=N", "N", "<N",
// "<=N" (and "==N").
func ParseCount(s string) (Count, error) {
	t := strings.TrimSpace(s)
	op := "=="
	for _, o := range []string{">=", "<=", "==", ">", "<"} {
		if rest, ok := strings.CutPrefix(t, o); ok {
			op, t = o, strings.TrimSpace(rest)
			break
		}
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		return Count{}, fmt.Errorf("packets %q is not a condition like \"0\", \">0\" or \">=3\"", s)
	}
	if op == "<" && n == 0 {
		return Count{}, fmt.Errorf("packets %q can never hold: a counter is never below 0", s)
	}
	return Count{Op: op, N: n}, nil
}

func readSysctl(r *checkReader, ch *Check) {
	c := &SysctlCheck{}
	ch.Sysctl = c
	c.In, _ = r.namespace("in")
	if s, ok := r.str("key", true); ok {
		if msg := checkSysctlKey(s); msg != "" {
			r.p.errorf(r.vals["key"].v, r.field+".key", "%s", msg)
		} else if name := sysctlInterface(s); name != "" {
			if ns := r.t.s.Namespace(c.In); ns != nil && ns.Interface(name) == nil {
				r.p.errorf(r.vals["key"].v, r.field+".key", "sysctl %s: no interface %q in namespace %s", s, name, c.In)
			}
		}
		c.Key = s
	}
	if n := r.get("value", true); n != nil {
		c.Value, _ = r.p.scalarValue(n, r.field+".value")
	}
}

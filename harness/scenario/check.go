package scenario

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Limits of probe checks: enough for any real assertion, bounded so that a
// scenario can never send traffic for long.
const (
	// DefaultTimeout is a probe's timeout when the check gives none.
	DefaultTimeout = time.Second
	// MaxTimeout is the longest timeout a check may ask for.
	MaxTimeout = 30 * time.Second
	// MaxPingCount is the most echo requests one ping check may send.
	MaxPingCount = 100
)

// checkKind is one kind of check: the keys of its mapping, whether it sends
// a probe (and so may carry a cause and trace assertions), how to read it,
// and the name it gets when the author gives none. Adding a kind is adding
// an entry to checkKinds.
type checkKind struct {
	name   string
	fields []string
	probe  bool
	read   func(c *checkReader, ch *Check)
	title  func(ch *Check) string
}

// commonCheckKeys may sit inside a check's kind mapping or beside the kind
// key; probeCheckKeys likewise, for probe kinds only.
var (
	commonCheckKeys = []string{"name", "expect", "cause"}
	probeCheckKeys  = []string{"path", "snat", "dnat"}
)

// lookupKind returns the kind called name, or nil.
func lookupKind(name string) *checkKind {
	for i := range checkKinds {
		if checkKinds[i].name == name {
			return &checkKinds[i]
		}
	}
	return nil
}

func kindNames() []string {
	out := make([]string, len(checkKinds))
	for i, k := range checkKinds {
		out[i] = k.name
	}
	return out
}

// checks reads the checks list.
func (p *parser) checks(t *topo, n *yaml.Node) {
	items, _ := p.items(n, "checks")
	for i, it := range items {
		if ch, ok := p.check(t, it, fmt.Sprintf("checks[%d]", i)); ok {
			t.s.Checks = append(t.s.Checks, ch)
		}
	}
}

// located is a common check key with the field path of where it was written.
type located struct {
	pair
	field string
}

// check reads one check: a mapping with exactly one kind key, plus common
// keys beside it or inside the kind's mapping (not both).
func (p *parser) check(t *topo, n *yaml.Node, field string) (Check, bool) {
	outer := append(append(kindNames(), commonCheckKeys...), probeCheckKeys...)
	before := len(p.errs)
	entries, ok := p.pairs(n, field, outer)
	if !ok {
		return Check{}, false
	}
	// An unknown key is most likely the misspelt kind; saying that the kind
	// is missing as well would only repeat it.
	keysOK := len(p.errs) == before
	var kind *checkKind
	var kindPair pair
	common := map[string]located{}
	for _, e := range entries {
		k := lookupKind(e.key)
		switch {
		case k == nil:
			common[e.key] = located{e, field + "." + e.key}
		case kind != nil:
			p.errorf(e.k, field, "a check has one kind; this one has both %s (line %d) and %s", kind.name, kindPair.k.Line, e.key)
		default:
			kind, kindPair = k, e
		}
	}
	if kind == nil {
		if keysOK {
			p.errorf(n, field, "a check needs one kind key: %s", strings.Join(kindNames(), ", "))
		}
		return Check{}, false
	}
	kf := field + "." + kind.name
	// Inside the kind's mapping a kind field wins over a common key of the
	// same name: in `link: {in: ns1, name: eth0}` name is the interface, so
	// a link check's own name goes beside the kind key.
	innerKeys := append([]string{}, kind.fields...)
	for _, k := range append(append([]string{}, commonCheckKeys...), probeCheckKeys...) {
		if !contains(kind.fields, k) {
			innerKeys = append(innerKeys, k)
		}
	}
	v := p.visit(kindPair.v)
	if v == nil {
		return Check{}, false
	}
	inner, ok := p.pairs(v, kf, innerKeys)
	if !ok {
		return Check{}, false
	}
	r := &checkReader{p: p, t: t, field: kf, node: v, vals: map[string]pair{}}
	if isNull(v) {
		r.node = kindPair.k
	}
	for _, e := range inner {
		if contains(kind.fields, e.key) || (!contains(commonCheckKeys, e.key) && !contains(probeCheckKeys, e.key)) {
			r.vals[e.key] = e
			continue
		}
		if prev, dup := common[e.key]; dup {
			p.errorf(e.k, kf, "%s is set both beside %s (line %d) and inside it; keep one", e.key, kind.name, prev.k.Line)
			continue
		}
		common[e.key] = located{e, kf + "." + e.key}
	}

	ch := Check{Kind: kind.name, Expect: ExpectSuccess, Pos: p.pos(n)}
	before = len(p.errs)
	kind.read(r, &ch)
	p.commonKeys(r, kind, &ch, common)
	if len(p.errs) > before {
		return Check{}, false
	}
	if ch.Name == "" {
		ch.Name = kind.title(&ch)
	}
	return ch, true
}

// commonKeys reads name, expect, cause and the trace assertions.
func (p *parser) commonKeys(r *checkReader, kind *checkKind, ch *Check, common map[string]located) {
	if e, ok := common["name"]; ok {
		if s, ok := p.str(e.v, e.field); ok {
			if s = strings.TrimSpace(s); s == "" {
				p.errorf(e.v, e.field, "the name is empty; leave it out to get a derived one")
			}
			ch.Name = s
		}
	}
	if e, ok := common["expect"]; ok {
		if s, ok := p.str(e.v, e.field); ok {
			switch Expect(s) {
			case ExpectSuccess, ExpectFail:
				ch.Expect = Expect(s)
			default:
				opts := []string{string(ExpectSuccess), string(ExpectFail)}
				p.errorf(e.v, e.field, "expect must be success or fail, not %q%s", s, didYouMean(s, opts))
			}
		}
	}
	if e, ok := common["cause"]; ok {
		if s, ok := p.str(e.v, e.field); ok {
			switch {
			case !kind.probe:
				p.errorf(e.k, e.field, "cause applies to ping, tcp and udp checks only")
			case !IsCauseCode(s):
				p.errorf(e.v, e.field, "unknown cause %q%s; one of %s", s, didYouMean(s, CauseCodes()), strings.Join(CauseCodes(), ", "))
			case ch.Expect != ExpectFail:
				p.errorf(e.k, e.field, "cause needs expect: fail (it names why the probe must fail)")
			case s == CauseNoListener && kind.name == "ping":
				p.errorf(e.v, e.field, "cause no-listener applies to tcp and udp checks; a ping has no listener")
			default:
				ch.Cause = s
			}
		}
	}
	for _, k := range probeCheckKeys {
		e, ok := common[k]
		if !ok {
			continue
		}
		if !kind.probe {
			p.errorf(e.k, e.field, "%s is a trace assertion; it applies to ping, tcp and udp checks only", k)
			continue
		}
		switch k {
		case "path":
			items, _ := p.items(e.v, e.field)
			for i, it := range items {
				f := fmt.Sprintf("%s[%d]", e.field, i)
				if ep, ok := r.endpoint(it, f); ok {
					ch.Path = append(ch.Path, ep)
				}
			}
		case "snat", "dnat":
			if a, ok := r.addrNode(e.v, e.field, k); ok {
				if dst := probeDst(ch); dst.IsValid() && a.Is4() != dst.Is4() {
					p.errorf(e.v, e.field, "%s %s is %s but the probe goes to %s, an %s address; NAT never changes the family, so this can never pass",
						k, a, family(a), dst, family(dst))
					continue
				}
				if k == "snat" {
					ch.SNAT = a
				} else {
					ch.DNAT = a
				}
			}
		}
	}
}

// probeDst returns the address a probe check sends to, or the zero Addr.
func probeDst(ch *Check) netip.Addr {
	switch {
	case ch.Ping != nil:
		return ch.Ping.To.Addr
	case ch.Conn != nil:
		return ch.Conn.To.Addr()
	}
	return netip.Addr{}
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// checkReader reads the fields of one check's kind mapping.
type checkReader struct {
	p     *parser
	t     *topo
	field string
	// node is the kind's mapping, where "missing key" errors point.
	node *yaml.Node
	vals map[string]pair
}

// get returns the value node of key, or nil. When required, a missing key
// is reported.
func (r *checkReader) get(key string, required bool) *yaml.Node {
	if e, ok := r.vals[key]; ok {
		return e.v
	}
	if required {
		r.p.errorf(r.node, r.field, "missing key %q", key)
	}
	return nil
}

func (r *checkReader) str(key string, required bool) (string, bool) {
	n := r.get(key, required)
	if n == nil {
		return "", false
	}
	return r.p.str(n, r.field+"."+key)
}

// namespace reads a key naming a namespace of the scenario.
func (r *checkReader) namespace(key string) (string, bool) {
	s, ok := r.str(key, true)
	if !ok {
		return "", false
	}
	if r.t.s.Namespace(s) == nil {
		r.p.errorf(r.vals[key].v, r.field+"."+key, "no namespace %q%s", s, didYouMean(s, nsNames(r.t.s)))
		return "", false
	}
	return s, true
}

// iface reads a key naming an interface of namespace ns.
func (r *checkReader) iface(key, ns string, required bool) (string, bool) {
	s, ok := r.str(key, required)
	if !ok {
		return "", false
	}
	n := r.t.s.Namespace(ns)
	if n != nil && n.Interface(s) == nil {
		r.p.errorf(r.vals[key].v, r.field+"."+key, "no interface %q in namespace %s%s", s, ns, didYouMean(s, ifNames(n)))
		return "", false
	}
	return s, true
}

// endpoint reads an NS/IF naming an interface of the scenario.
func (r *checkReader) endpoint(n *yaml.Node, field string) (Endpoint, bool) {
	s, ok := r.p.str(n, field)
	if !ok {
		return Endpoint{}, false
	}
	ep, err := parseEndpoint(s)
	if err != nil {
		r.p.errorf(n, field, "%v", err)
		return Endpoint{}, false
	}
	ns := r.t.s.Namespace(ep.NS)
	if ns == nil {
		r.p.errorf(n, field, "no namespace %q%s", ep.NS, didYouMean(ep.NS, nsNames(r.t.s)))
		return Endpoint{}, false
	}
	if ns.Interface(ep.If) == nil {
		r.p.errorf(n, field, "no interface %q in namespace %s%s", ep.If, ep.NS, didYouMean(ep.If, ifNames(ns)))
		return Endpoint{}, false
	}
	return ep, true
}

// addr reads an IP address.
func (r *checkReader) addr(key string, required bool) (netip.Addr, bool) {
	n := r.get(key, required)
	if n == nil {
		return netip.Addr{}, false
	}
	return r.addrNode(n, r.field+"."+key, key)
}

func (r *checkReader) addrNode(n *yaml.Node, field, key string) (netip.Addr, bool) {
	s, ok := r.p.str(n, field)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		r.p.errorf(n, field, "%s %q is not an IP address", key, s)
		return netip.Addr{}, false
	}
	return a, true
}

// timeout reads a Go duration within (0, MaxTimeout], DefaultTimeout when
// absent.
func (r *checkReader) timeout() time.Duration {
	n := r.get("timeout", false)
	if n == nil {
		return DefaultTimeout
	}
	field := r.field + ".timeout"
	s, ok := r.p.str(n, field)
	if !ok {
		return DefaultTimeout
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		r.p.errorf(n, field, "timeout %q is not a duration like 1s or 500ms", s)
	case d <= 0:
		r.p.errorf(n, field, "timeout %s must be positive", d)
	case d > MaxTimeout:
		r.p.errorf(n, field, "timeout %s is longer than the limit of %s", d, MaxTimeout)
	default:
		return d
	}
	return DefaultTimeout
}

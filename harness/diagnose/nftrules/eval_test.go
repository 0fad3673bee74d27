package nftrules

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
)

// Expression builders for hand-made rulesets, as nft compiles them.
func nfIfname(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(name)}}
}

func nfDaddr(pfx string) []expr.Any {
	p := netip.MustParsePrefix(pfx)
	mask := make([]byte, 4)
	binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-p.Bits()))
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()},
	}
}

func nfDport(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, port)},
	}
}

func nfCtState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binary.NativeEndian.AppendUint32(nil, bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func nfRule(handle uint64, parts ...[]expr.Any) Rule {
	var ex []expr.Any
	for _, p := range parts {
		ex = append(ex, p...)
	}
	return NewRule(handle, ex)
}

func v(kind expr.VerdictKind, chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: kind, Chain: chain}}
}

// routerNS is a router: eth0 192.0.2.1/24 outside, br0 10.88.0.1/16
// inside.
var routerNS = testNS{
	{name: "lo", index: 1, addrs: []string{"127.0.0.1/8"}},
	{name: "eth0", index: 2, addrs: []string{"192.0.2.1/24"}},
	{name: "br0", index: 3, addrs: []string{"10.88.0.1/16"}},
}

// testNS is a namespace of interfaces with their addresses, for the
// evaluator (netfilter.Namespace): an address an interface holds is
// local, others unicast or multicast.
type testNS []struct {
	name  string
	index int
	addrs []string
}

func (ns testNS) AddrType(a netip.Addr, dev string) string {
	for _, l := range ns {
		for _, p := range l.addrs {
			if (dev == "" || l.name == dev) && netip.MustParsePrefix(p).Addr() == a {
				return "local"
			}
		}
	}
	if a.IsMulticast() {
		return "multicast"
	}
	return "unicast"
}

func (ns testNS) RouteType(a netip.Addr) (string, bool) { return ns.AddrType(a, ""), true }

func (ns testNS) Link(name string) (int, bool) {
	for _, l := range ns {
		if l.name == name {
			return l.index, name == "lo"
		}
	}
	return 0, false
}

// atHook runs p through t's base chains at hook (PREROUTING, FORWARD,
// ...), the nat ones or the others, in priority order, in a namespace
// that has t alone, as the diagnosis's walk does: the first verdict that
// drops (translates, for nat), and the notes of rules that may match on
// the way.
func atHook(ns netfilter.Namespace, t Table, hook string, nat bool, p netfilter.Packet) (*netfilter.Verdict, []string) {
	env := Env{NS: ns, MarksElsewhere: SetsMarks([]Table{t}), MayDNAT: TranslatesDestinations([]Table{t})}
	var chains []*Chain
	for i := range t.Chains {
		if c := &t.Chains[i]; c.Hook == strings.ToLower(hook) && (c.Type == "nat") == nat {
			chains = append(chains, c)
		}
	}
	slices.SortStableFunc(chains, func(a, b *Chain) int { return int(a.Priority) - int(b.Priority) })
	var maybe []string
	for _, c := range chains {
		v := t.Eval(c, p, env)
		maybe = append(maybe, v.Maybe...)
		if !nat && v.Drops() || nat && slices.Contains([]string{"DNAT", "SNAT", "MASQUERADE", "REDIRECT"}, v.Target) {
			return &v, maybe
		}
	}
	return nil, maybe
}

func TestEval(t *testing.T) {
	addr := netip.MustParseAddr
	req := netfilter.Packet{Src: addr("10.88.0.2"), Dst: addr("203.0.113.8"), SPort: 40000, DPort: 443, Proto: "tcp", In: "br0", Out: "eth0"}
	in := netfilter.Packet{Src: addr("192.0.2.9"), Dst: addr("10.88.0.2"), SPort: 40000, DPort: 22, Proto: "tcp", In: "eth0", Out: "br0"}
	reply := netfilter.Packet{Src: addr("203.0.113.8"), Dst: addr("10.88.0.2"), SPort: 443, DPort: 40000, Proto: "tcp", In: "eth0", Out: "br0", Reply: true}
	inbound := []Set{{Name: "__set0", Anonymous: true, Interval: true, Elems: []Elem{
		// {10.88.0.0/16} as the kernel lists it: the end first.
		{Key: addr("10.89.0.0").AsSlice(), IntervalEnd: true}, {Key: addr("10.88.0.0").AsSlice()}, {Key: make([]byte, 4), IntervalEnd: true},
	}}, {Name: "jumps", IsMap: true, Elems: []Elem{{Key: ifname("br0"), Verdict: &expr.Verdict{Kind: expr.VerdictJump, Chain: "from-br0"}}}}}
	lookupDaddr := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: "__set0"},
	}
	vmapIif := []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Lookup{SourceRegister: 1, SetName: "jumps", IsDestRegSet: true}}
	for _, tc := range []struct {
		name   string
		chains []Chain
		p      netfilter.Packet
		want   string // target, "" for no drop
		handle uint64
		maybe  string // part of a maybe note
	}{
		{name: "policy drop", chains: []Chain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "drop"}}, p: req, want: "DROP"},
		{name: "accept by iifname", chains: []Chain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "drop",
			Rules: []Rule{nfRule(4, nfIfname(expr.MetaKeyIIFNAME, "br0"), v(expr.VerdictAccept, ""))}}}, p: req},
		{name: "drop by prefix", chains: []Chain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "accept",
			Rules: []Rule{nfRule(7, nfDaddr("10.88.0.0/16"), v(expr.VerdictDrop, ""))}}}, p: in, want: "DROP", handle: 7},
		{name: "prefix misses", chains: []Chain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "accept",
			Rules: []Rule{nfRule(7, nfDaddr("10.88.0.0/16"), v(expr.VerdictDrop, ""))}}}, p: req},
		{name: "established accepted before drop", chains: []Chain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "drop",
			Rules: []Rule{nfRule(2, nfCtState(ctEstablished|ctRelated), v(expr.VerdictAccept, ""))}}}, p: reply},
		{name: "new not established", chains: []Chain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "drop",
			Rules: []Rule{nfRule(2, nfCtState(ctEstablished|ctRelated), v(expr.VerdictAccept, ""))}}}, p: in, want: "DROP"},
		{name: "ct state invalid at raw priority is every packet", chains: []Chain{{Name: "pre", Hook: "prerouting", Type: "filter", Priority: -300, Policy: "accept",
			Rules: []Rule{nfRule(3, nfCtState(ctInvalid), v(expr.VerdictDrop, ""))}}}, p: in, want: "DROP", handle: 3},
		{name: "ct state invalid after conntrack is not a new packet", chains: []Chain{{Name: "pre", Hook: "prerouting", Type: "filter", Priority: -150, Policy: "accept",
			Rules: []Rule{nfRule(3, nfCtState(ctInvalid), v(expr.VerdictDrop, ""))}}}, p: in},
		{name: "interval set lookup", chains: []Chain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "accept",
			Rules: []Rule{nfRule(9, lookupDaddr, nfDport(22), v(expr.VerdictDrop, ""))}}}, p: in, want: "DROP", handle: 9},
		{name: "vmap jump, return, policy", chains: []Chain{
			{Name: "forward", Hook: "forward", Type: "filter", Policy: "drop", Rules: []Rule{nfRule(3, vmapIif)}},
			{Name: "from-br0", Rules: []Rule{nfRule(5, v(expr.VerdictReturn, "")), nfRule(6, v(expr.VerdictAccept, ""))}},
		}, p: req, want: "DROP"},
		{name: "vmap jump, accept", chains: []Chain{
			{Name: "forward", Hook: "forward", Type: "filter", Policy: "drop", Rules: []Rule{nfRule(3, vmapIif)}},
			{Name: "from-br0", Rules: []Rule{nfRule(6, nfDport(443), v(expr.VerdictAccept, ""))}},
		}, p: req},
		{name: "no iifname at output breaks the rule", chains: []Chain{{Name: "output", Hook: "output", Type: "filter", Policy: "accept",
			Rules: []Rule{nfRule(2, []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname("lo")}}, v(expr.VerdictDrop, ""))}}},
			p: netfilter.Packet{Src: addr("192.0.2.1"), Dst: addr("192.0.2.9"), Proto: "icmp", Out: "eth0"}},
		{name: "unknown expression is maybe, never a drop", chains: []Chain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "accept",
			Rules: []Rule{nfRule(8, []expr.Any{&expr.Rt{Register: 1, Key: expr.RtTCPMSS}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 0, 5, 0}}}, v(expr.VerdictDrop, ""))}}},
			p: req, maybe: "handle 8"},
		{name: "undecoded load is maybe", chains: []Chain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "accept",
			Rules: []Rule{nfRule(8, []expr.Any{&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{1}}}, v(expr.VerdictDrop, ""))}}},
			p: req, maybe: "does not decode"},
		{name: "compat match is maybe", chains: []Chain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "accept",
			Rules: []Rule{nfRule(8, []expr.Any{&expr.Match{Name: "recent"}}, v(expr.VerdictDrop, ""))}}},
			p: req, maybe: "xtables match recent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, maybe := atHook(routerNS, Table{Family: "inet", Name: "filter", Chains: tc.chains, Sets: inbound}, tc.chains[0].Hook, false, tc.p)
			target := ""
			var handle uint64
			if got != nil {
				target, handle = got.Target, got.NFT.Handle
			}
			if target != tc.want || handle != tc.handle {
				t.Errorf("got %q handle %d, want %q handle %d (maybe %v)", target, handle, tc.want, tc.handle, maybe)
			}
			if tc.maybe != "" && !strings.Contains(strings.Join(maybe, "\n"), tc.maybe) {
				t.Errorf("maybe notes %q do not mention %q", maybe, tc.maybe)
			}
		})
	}
}

// dnat when fib daddr type is local; masquerade out of eth0.
func TestEvalNAT(t *testing.T) {
	addr := netip.MustParseAddr
	dnat := []expr.Any{
		&expr.Immediate{Register: 1, Data: addr("10.88.0.2").AsSlice()},
		&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, 80)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2},
	}
	local := []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, rtnLocal)},
	}
	nat := Table{Family: "ip", Name: "nat", Chains: []Chain{
		{Name: "prerouting", Hook: "prerouting", Type: "nat", Priority: -100, Policy: "accept", Rules: []Rule{nfRule(4, local, nfDport(8080), dnat)}},
		{Name: "postrouting", Hook: "postrouting", Type: "nat", Priority: 100, Policy: "accept",
			Rules: []Rule{nfRule(5, nfIfname(expr.MetaKeyOIFNAME, "eth0"), []expr.Any{&expr.Masq{}})}},
	}}
	p := netfilter.Packet{Src: addr("192.0.2.9"), Dst: addr("192.0.2.1"), SPort: 40000, DPort: 8080, Proto: "tcp", In: "eth0"}
	if got, _ := atHook(routerNS, nat, "PREROUTING", true, p); got == nil || got.Target != "DNAT" || got.Opts["--to-destination"] != "10.88.0.2:80" {
		t.Errorf("dnat to a local address: got %+v", got)
	}
	p.Dst = addr("203.0.113.8")
	if got, _ := atHook(routerNS, nat, "PREROUTING", true, p); got != nil {
		t.Errorf("fib daddr type local must miss a foreign address: got %+v", got)
	}
	out := netfilter.Packet{Src: addr("10.88.0.2"), Dst: addr("203.0.113.8"), Proto: "icmp", In: "br0", Out: "eth0"}
	if got, _ := atHook(routerNS, nat, "POSTROUTING", true, out); got == nil || got.Target != "MASQUERADE" {
		t.Errorf("masquerade: got %+v", got)
	}
}

// fib ... type loads the kernel's route type numbers for the namespace's
// address types.
func TestFibType(t *testing.T) {
	ns := typeNS{"10.0.0.2": "local", "10.0.0.255": "broadcast", "224.0.0.5": "multicast", "198.51.100.7": "unicast",
		"192.0.2.1": "blackhole", "203.0.113.8": "unreachable", "198.51.100.9": "prohibit", "2001:db8::2": "local", "2001:db8::9": "unicast"}
	for a, want := range map[string]uint32{
		"10.0.0.2": rtnLocal, "10.0.0.255": rtnBroadcast, "224.0.0.5": rtnMulticast, "198.51.100.7": rtnUnicast,
		"192.0.2.1": unix.RTN_BLACKHOLE, "203.0.113.8": unix.RTN_UNREACHABLE, "198.51.100.9": unix.RTN_PROHIBIT,
		"2001:db8::2": rtnLocal, "2001:db8::9": rtnUnicast,
	} {
		if got, ok := fibType(ns, netip.MustParseAddr(a), ""); !ok || got != want {
			t.Errorf("fib %s type: got %d %v, want %d", a, got, ok, want)
		}
	}
	for _, a := range []netip.Addr{{}, netip.IPv4Unspecified(), netip.MustParseAddr("192.0.2.77")} {
		if got, ok := fibType(ns, a, ""); ok {
			t.Errorf("fib %s type: got %d, want unknown", a, got)
		}
	}
}

// typeNS gives each address the type it maps to, "" for the others.
type typeNS map[string]string

func (ns typeNS) AddrType(a netip.Addr, _ string) string { return ns[a.String()] }
func (ns typeNS) RouteType(netip.Addr) (string, bool)    { return "", false }
func (ns typeNS) Link(string) (int, bool)                { return 0, false }

func TestRenderAndDelta(t *testing.T) {
	r := nfRule(7, nfIfname(expr.MetaKeyIIFNAME, "br0"), nfDaddr("10.88.0.0/16"), nfCtState(ctEstablished|ctRelated), []expr.Any{&expr.Counter{Packets: 3}}, v(expr.VerdictDrop, ""))
	if want := `iifname "br0" ip daddr 10.88.0.0/16 ct state established,related counter packets 3 bytes 0 drop`; r.Text != want {
		t.Errorf("render: %s\nwant    %s", r.Text, want)
	}
	before := []Table{{Family: "inet", Name: "filter", Chains: []Chain{{Name: "forward", Rules: []Rule{r}}}}}
	r2 := nfRule(7, nfIfname(expr.MetaKeyIIFNAME, "br0"), nfDaddr("10.88.0.0/16"), nfCtState(ctEstablished|ctRelated), []expr.Any{&expr.Counter{Packets: 3}}, v(expr.VerdictDrop, ""))
	r2.Packets = 5
	after := []Table{{Family: "inet", Name: "filter", Chains: []Chain{{Name: "forward", Rules: []Rule{r2}}}}}
	d := Delta("host", before, after)
	if len(d) != 1 || d[0].Handle != 7 || d[0].Packets != 2 || !d[0].Drops() {
		t.Fatalf("delta: %+v", d)
	}
	if s := d[0].String(); !strings.Contains(s, "nft inet filter/forward handle 7") {
		t.Errorf("moved: %s", s)
	}
}

func TestMadeByIPTables(t *testing.T) {
	for _, tc := range []struct {
		t    Table
		want bool
	}{
		{Table{Family: "ip", Name: "filter", Chains: []Chain{{Name: "FORWARD", Hook: "forward"}, {Name: "DOCKER"}}}, true},
		{Table{Family: "ip", Name: "filter", Chains: []Chain{{Name: "forward", Hook: "forward"}}}, false},
		{Table{Family: "ip", Name: "nat", Chains: []Chain{{Name: "post", Hook: "postrouting", Rules: []Rule{{Exprs: []expr.Any{&expr.Target{Name: "MASQUERADE"}}}}}}}, true},
		{Table{Family: "inet", Name: "filter", Chains: []Chain{{Name: "FORWARD", Hook: "forward"}}}, false},
	} {
		if got := madeByIPTables(&tc.t); got != tc.want {
			t.Errorf("%s %s %v: got %v", tc.t.Family, tc.t.Name, tc.t.Chains, got)
		}
	}
}

// TestNFTRealShapes covers what the real rulesets of netavark, Docker and
// firewalld (scenarios/broken/nft-*.yaml) need from the evaluator.
func TestEvalRealShapes(t *testing.T) {
	addr := netip.MustParseAddr
	req := netfilter.Packet{Src: addr("10.88.0.2"), Dst: addr("203.0.113.8"), Proto: "icmp", In: "br0", Out: "eth0"}
	reject := []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}}
	// firewalld's filter_FORWARD: ct status dnat accept.
	ctDNAT := []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATUS, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binary.NativeEndian.AppendUint32(nil, ipsDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
	dnat := []expr.Any{
		&expr.Immediate{Register: 1, Data: addr("10.88.0.2").AsSlice()},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
	}
	// firewalld's zone-pair dispatch: the ingress zone's chain, then the
	// pair's reject, then the ingress interface's catch-all and its
	// reject.
	firewalld := []Chain{
		{Name: "filter_FORWARD", Hook: "forward", Type: "filter", Priority: 10, Policy: "accept", Rules: []Rule{
			nfRule(2, ctDNAT, v(expr.VerdictAccept, "")),
			nfRule(3, v(expr.VerdictJump, "filter_FORWARD_POLICIES")),
			nfRule(4, reject),
		}},
		{Name: "filter_FORWARD_POLICIES", Rules: []Rule{
			nfRule(10, nfIfname(expr.MetaKeyIIFNAME, "br0"), nfIfname(expr.MetaKeyOIFNAME, "eth0"), v(expr.VerdictJump, "filter_FWD_internal")),
			nfRule(11, nfIfname(expr.MetaKeyIIFNAME, "br0"), nfIfname(expr.MetaKeyOIFNAME, "eth0"), reject),
			nfRule(12, nfIfname(expr.MetaKeyIIFNAME, "br0"), v(expr.VerdictJump, "filter_FWD_internal")),
			nfRule(13, nfIfname(expr.MetaKeyIIFNAME, "br0"), reject),
		}},
		{Name: "filter_FWD_internal", Rules: []Rule{nfRule(20, nfIfname(expr.MetaKeyOIFNAME, "br0"), v(expr.VerdictAccept, ""))}},
	}
	for _, tc := range []struct {
		name    string
		chains  []Chain
		p       netfilter.Packet
		want    string // the fix
		noMaybe string // a maybe note that must not be there
		maybe   string // a maybe note that must be there
	}{
		{name: "ct status dnat is known for a request no rule translates", chains: firewalld, p: req,
			want:    `nft insert rule inet filter filter_FORWARD_POLICIES position 11 iifname "br0" oifname "eth0" accept`,
			noMaybe: "ct status"},
		{name: "ct status is not known where a rule may translate", chains: append(slices.Clone(firewalld),
			Chain{Name: "prerouting", Hook: "prerouting", Type: "nat", Priority: -100, Policy: "accept", Rules: []Rule{nfRule(30, nfDport(8080), dnat)}}),
			p: req, maybe: "handle 2"},
		{name: "ct status is not known for the reply", chains: []Chain{{Name: "fwd", Hook: "forward", Type: "filter", Policy: "accept",
			Rules: []Rule{nfRule(2, ctDNAT, v(expr.VerdictDrop, ""))}}},
			p: netfilter.Packet{Src: req.Dst, Dst: req.Src, Proto: "icmp", In: "eth0", Out: "br0", Reply: true}, maybe: "handle 2"},
		{name: "a lone dropping rule is deleted", chains: []Chain{{Name: "fwd", Hook: "forward", Type: "filter", Policy: "accept",
			Rules: []Rule{nfRule(5, nfIfname(expr.MetaKeyOIFNAME, "eth0"), v(expr.VerdictDrop, ""))}}},
			p: req, want: "nft delete rule inet filter fwd handle 5"},
		{name: "a rule before a drop policy gets an accept before it", chains: []Chain{{Name: "fwd", Hook: "forward", Type: "filter", Policy: "drop",
			Rules: []Rule{nfRule(5, nfIfname(expr.MetaKeyOIFNAME, "eth0"), v(expr.VerdictDrop, ""))}}},
			p: req, want: `nft insert rule inet filter fwd position 5 iifname "br0" oifname "eth0" accept`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, maybe := atHook(routerNS, Table{Family: "inet", Name: "filter", Chains: tc.chains}, "FORWARD", false, tc.p)
			notes := strings.Join(maybe, "\n")
			if tc.want != "" {
				if got == nil || got.NFT == nil {
					t.Fatalf("no nft drop (maybe %v)", maybe)
				}
				if fix := Fix(got.NFT, "FORWARD", tc.p); fix != tc.want {
					t.Errorf("fix %s\nwant %s", fix, tc.want)
				}
			}
			if tc.noMaybe != "" && strings.Contains(notes, tc.noMaybe) {
				t.Errorf("maybe notes mention %q: %s", tc.noMaybe, notes)
			}
			if tc.maybe != "" && !strings.Contains(notes, tc.maybe) {
				t.Errorf("maybe notes %q do not mention %q", notes, tc.maybe)
			}
		})
	}
}

package diagnose

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
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

func nfRule(handle uint64, parts ...[]expr.Any) NFTRule {
	var ex []expr.Any
	for _, p := range parts {
		ex = append(ex, p...)
	}
	return nftRule(handle, ex)
}

func v(kind expr.VerdictKind, chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: kind, Chain: chain}}
}

// nftTestNS is a router: eth0 192.0.2.1/24 outside, br0 10.88.0.1/16
// inside.
func nftTestNS(tables ...NFTTable) *NSState {
	return &NSState{Name: "host", NFT: tables, Links: []Link{
		{Name: "lo", Index: 1, Kind: "loopback", Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
		{Name: "eth0", Index: 2, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}},
		{Name: "br0", Index: 3, Addrs: []netip.Prefix{netip.MustParsePrefix("10.88.0.1/16")}},
	}}
}

func TestNFTEval(t *testing.T) {
	addr := netip.MustParseAddr
	req := packet{Src: addr("10.88.0.2"), Dst: addr("203.0.113.8"), SPort: 40000, DPort: 443, Proto: "tcp", In: "br0", Out: "eth0"}
	in := packet{Src: addr("192.0.2.9"), Dst: addr("10.88.0.2"), SPort: 40000, DPort: 22, Proto: "tcp", In: "eth0", Out: "br0"}
	reply := packet{Src: addr("203.0.113.8"), Dst: addr("10.88.0.2"), SPort: 443, DPort: 40000, Proto: "tcp", In: "eth0", Out: "br0", Reply: true}
	inbound := []NFTSet{{Name: "__set0", Anonymous: true, Interval: true, Elems: []NFTElem{
		// {10.88.0.0/16} as the kernel lists it: the end first.
		{Key: addr("10.89.0.0").AsSlice(), IntervalEnd: true}, {Key: addr("10.88.0.0").AsSlice()}, {Key: make([]byte, 4), IntervalEnd: true},
	}}, {Name: "jumps", IsMap: true, Elems: []NFTElem{{Key: ifname("br0"), Verdict: &expr.Verdict{Kind: expr.VerdictJump, Chain: "from-br0"}}}}}
	lookupDaddr := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: "__set0"},
	}
	vmapIif := []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Lookup{SourceRegister: 1, SetName: "jumps", IsDestRegSet: true}}
	for _, tc := range []struct {
		name   string
		chains []NFTChain
		p      packet
		want   string // target, "" for no drop
		handle uint64
		maybe  string // part of a maybe note
	}{
		{name: "policy drop", chains: []NFTChain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "drop"}}, p: req, want: "DROP"},
		{name: "accept by iifname", chains: []NFTChain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "drop",
			Rules: []NFTRule{nfRule(4, nfIfname(expr.MetaKeyIIFNAME, "br0"), v(expr.VerdictAccept, ""))}}}, p: req},
		{name: "drop by prefix", chains: []NFTChain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "accept",
			Rules: []NFTRule{nfRule(7, nfDaddr("10.88.0.0/16"), v(expr.VerdictDrop, ""))}}}, p: in, want: "DROP", handle: 7},
		{name: "prefix misses", chains: []NFTChain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "accept",
			Rules: []NFTRule{nfRule(7, nfDaddr("10.88.0.0/16"), v(expr.VerdictDrop, ""))}}}, p: req},
		{name: "established accepted before drop", chains: []NFTChain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "drop",
			Rules: []NFTRule{nfRule(2, nfCtState(ctEstablished|ctRelated), v(expr.VerdictAccept, ""))}}}, p: reply},
		{name: "new not established", chains: []NFTChain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "drop",
			Rules: []NFTRule{nfRule(2, nfCtState(ctEstablished|ctRelated), v(expr.VerdictAccept, ""))}}}, p: in, want: "DROP"},
		{name: "ct state invalid at raw priority is every packet", chains: []NFTChain{{Name: "pre", Hook: "prerouting", Type: "filter", Priority: -300, Policy: "accept",
			Rules: []NFTRule{nfRule(3, nfCtState(ctInvalid), v(expr.VerdictDrop, ""))}}}, p: in, want: "DROP", handle: 3},
		{name: "ct state invalid after conntrack is not a new packet", chains: []NFTChain{{Name: "pre", Hook: "prerouting", Type: "filter", Priority: -150, Policy: "accept",
			Rules: []NFTRule{nfRule(3, nfCtState(ctInvalid), v(expr.VerdictDrop, ""))}}}, p: in},
		{name: "interval set lookup", chains: []NFTChain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "accept",
			Rules: []NFTRule{nfRule(9, lookupDaddr, nfDport(22), v(expr.VerdictDrop, ""))}}}, p: in, want: "DROP", handle: 9},
		{name: "vmap jump, return, policy", chains: []NFTChain{
			{Name: "forward", Hook: "forward", Type: "filter", Policy: "drop", Rules: []NFTRule{nfRule(3, vmapIif)}},
			{Name: "from-br0", Rules: []NFTRule{nfRule(5, v(expr.VerdictReturn, "")), nfRule(6, v(expr.VerdictAccept, ""))}},
		}, p: req, want: "DROP"},
		{name: "vmap jump, accept", chains: []NFTChain{
			{Name: "forward", Hook: "forward", Type: "filter", Policy: "drop", Rules: []NFTRule{nfRule(3, vmapIif)}},
			{Name: "from-br0", Rules: []NFTRule{nfRule(6, nfDport(443), v(expr.VerdictAccept, ""))}},
		}, p: req},
		{name: "no iifname at output breaks the rule", chains: []NFTChain{{Name: "output", Hook: "output", Type: "filter", Policy: "accept",
			Rules: []NFTRule{nfRule(2, []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname("lo")}}, v(expr.VerdictDrop, ""))}}},
			p: packet{Src: addr("192.0.2.1"), Dst: addr("192.0.2.9"), Proto: "icmp", Out: "eth0"}},
		{name: "unknown expression is maybe, never a drop", chains: []NFTChain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "accept",
			Rules: []NFTRule{nfRule(8, []expr.Any{&expr.Rt{Register: 1, Key: expr.RtTCPMSS}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 0, 5, 0}}}, v(expr.VerdictDrop, ""))}}},
			p: req, maybe: "handle 8"},
		{name: "undecoded load is maybe", chains: []NFTChain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "accept",
			Rules: []NFTRule{nfRule(8, []expr.Any{&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{1}}}, v(expr.VerdictDrop, ""))}}},
			p: req, maybe: "does not decode"},
		{name: "compat match is maybe", chains: []NFTChain{{Name: "forward", Hook: "forward", Type: "filter", Policy: "accept",
			Rules: []NFTRule{nfRule(8, []expr.Any{&expr.Match{Name: "recent"}}, v(expr.VerdictDrop, ""))}}},
			p: req, maybe: "xtables match recent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := nftTestNS(NFTTable{Family: "inet", Name: "filter", Chains: tc.chains, Sets: inbound})
			hook := strings.ToUpper(tc.chains[0].Hook)
			got, maybe := filterHook(ns, hook, tc.p, nil, false)
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

func TestNFTNATAndPriority(t *testing.T) {
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
	ns := nftTestNS(NFTTable{Family: "ip", Name: "nat", Chains: []NFTChain{
		{Name: "prerouting", Hook: "prerouting", Type: "nat", Priority: -100, Policy: "accept", Rules: []NFTRule{nfRule(4, local, nfDport(8080), dnat)}},
		{Name: "postrouting", Hook: "postrouting", Type: "nat", Priority: 100, Policy: "accept",
			Rules: []NFTRule{nfRule(5, nfIfname(expr.MetaKeyOIFNAME, "eth0"), []expr.Any{&expr.Masq{}})}},
	}})
	p := packet{Src: addr("192.0.2.9"), Dst: addr("192.0.2.1"), SPort: 40000, DPort: 8080, Proto: "tcp", In: "eth0"}
	if got := natHook(ns, "PREROUTING", p, nil, false); got == nil || got.Target != "DNAT" || got.Opts["--to-destination"] != "10.88.0.2:80" {
		t.Errorf("dnat to a local address: got %+v", got)
	}
	p.Dst = addr("203.0.113.8")
	if got := natHook(ns, "PREROUTING", p, nil, false); got != nil {
		t.Errorf("fib daddr type local must miss a foreign address: got %+v", got)
	}
	out := packet{Src: addr("10.88.0.2"), Dst: addr("203.0.113.8"), Proto: "icmp", In: "br0", Out: "eth0"}
	if got := natHook(ns, "POSTROUTING", out, nil, false); got == nil || got.Target != "MASQUERADE" {
		t.Errorf("masquerade: got %+v", got)
	}
	if fix := masqueradeFix(ns, false, "10.88.0.0/16", "eth0"); fix != `nft insert rule ip nat postrouting ip saddr 10.88.0.0/16 oifname "eth0" masquerade` {
		t.Errorf("masquerade fix: %s", fix)
	}

	// An iptables FORWARD accept (priority 0) does not save the packet
	// from an nft drop at priority 10; an nft accept does not save it
	// from the iptables DROP policy.
	both := nftTestNS(NFTTable{Family: "inet", Name: "fw", Chains: []NFTChain{{Name: "fwd", Hook: "forward", Type: "filter", Priority: 10, Policy: "drop"}}})
	both.IPTables = []Table{{Name: "filter", Chains: []Chain{{Name: "FORWARD", Policy: "ACCEPT"}}}}
	if got, _ := filterHook(both, "FORWARD", out, nil, false); got == nil || got.NFT == nil || got.Chain != "fwd" {
		t.Errorf("nft policy after iptables accept: got %+v", got)
	} else if fix := nftFix(got, "FORWARD", out); fix != `nft insert rule inet fw fwd iifname "br0" oifname "eth0" accept` {
		t.Errorf("policy fix: %s", fix)
	}
	both.NFT[0].Chains[0].Policy = "accept"
	both.IPTables[0].Chains[0].Policy = "DROP"
	if got, _ := filterHook(both, "FORWARD", out, nil, false); got == nil || got.NFT != nil {
		t.Errorf("iptables policy after nft accept: got %+v", got)
	}
}

func TestNFTRenderAndDelta(t *testing.T) {
	r := nfRule(7, nfIfname(expr.MetaKeyIIFNAME, "br0"), nfDaddr("10.88.0.0/16"), nfCtState(ctEstablished|ctRelated), []expr.Any{&expr.Counter{Packets: 3}}, v(expr.VerdictDrop, ""))
	if want := `iifname "br0" ip daddr 10.88.0.0/16 ct state established,related counter packets 3 bytes 0 drop`; r.Text != want {
		t.Errorf("render: %s\nwant    %s", r.Text, want)
	}
	before := &State{Namespaces: []*NSState{{Name: "host", NFT: []NFTTable{{Family: "inet", Name: "filter", Chains: []NFTChain{{Name: "forward", Rules: []NFTRule{r}}}}}}}}
	r2 := nfRule(7, nfIfname(expr.MetaKeyIIFNAME, "br0"), nfDaddr("10.88.0.0/16"), nfCtState(ctEstablished|ctRelated), []expr.Any{&expr.Counter{Packets: 3}}, v(expr.VerdictDrop, ""))
	r2.Packets = 5
	after := &State{Namespaces: []*NSState{{Name: "host", NFT: []NFTTable{{Family: "inet", Name: "filter", Chains: []NFTChain{{Name: "forward", Rules: []NFTRule{r2}}}}}}}}
	d := Delta(before, after)
	if len(d) != 1 || d[0].Handle != 7 || d[0].Packets != 2 || !d[0].Drops() {
		t.Fatalf("delta: %+v", d)
	}
	if s := d[0].String(); !strings.Contains(s, "nft inet filter/forward handle 7") {
		t.Errorf("moved: %s", s)
	}
}

func TestMadeByIPTables(t *testing.T) {
	for _, tc := range []struct {
		t    NFTTable
		want bool
	}{
		{NFTTable{Family: "ip", Name: "filter", Chains: []NFTChain{{Name: "FORWARD", Hook: "forward"}, {Name: "DOCKER"}}}, true},
		{NFTTable{Family: "ip", Name: "filter", Chains: []NFTChain{{Name: "forward", Hook: "forward"}}}, false},
		{NFTTable{Family: "ip", Name: "nat", Chains: []NFTChain{{Name: "post", Hook: "postrouting", Rules: []NFTRule{{Exprs: []expr.Any{&expr.Target{Name: "MASQUERADE"}}}}}}}, true},
		{NFTTable{Family: "inet", Name: "filter", Chains: []NFTChain{{Name: "FORWARD", Hook: "forward"}}}, false},
	} {
		if got := madeByIPTables(&tc.t); got != tc.want {
			t.Errorf("%s %s %v: got %v", tc.t.Family, tc.t.Name, tc.t.Chains, got)
		}
	}
}

// TestNFTRealShapes covers what the real rulesets of netavark, Docker and
// firewalld (scenarios/broken/nft-*.yaml) need from the evaluator.
func TestNFTRealShapes(t *testing.T) {
	addr := netip.MustParseAddr
	req := packet{Src: addr("10.88.0.2"), Dst: addr("203.0.113.8"), Proto: "icmp", In: "br0", Out: "eth0"}
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
	firewalld := []NFTChain{
		{Name: "filter_FORWARD", Hook: "forward", Type: "filter", Priority: 10, Policy: "accept", Rules: []NFTRule{
			nfRule(2, ctDNAT, v(expr.VerdictAccept, "")),
			nfRule(3, v(expr.VerdictJump, "filter_FORWARD_POLICIES")),
			nfRule(4, reject),
		}},
		{Name: "filter_FORWARD_POLICIES", Rules: []NFTRule{
			nfRule(10, nfIfname(expr.MetaKeyIIFNAME, "br0"), nfIfname(expr.MetaKeyOIFNAME, "eth0"), v(expr.VerdictJump, "filter_FWD_internal")),
			nfRule(11, nfIfname(expr.MetaKeyIIFNAME, "br0"), nfIfname(expr.MetaKeyOIFNAME, "eth0"), reject),
			nfRule(12, nfIfname(expr.MetaKeyIIFNAME, "br0"), v(expr.VerdictJump, "filter_FWD_internal")),
			nfRule(13, nfIfname(expr.MetaKeyIIFNAME, "br0"), reject),
		}},
		{Name: "filter_FWD_internal", Rules: []NFTRule{nfRule(20, nfIfname(expr.MetaKeyOIFNAME, "br0"), v(expr.VerdictAccept, ""))}},
	}
	for _, tc := range []struct {
		name    string
		chains  []NFTChain
		p       packet
		want    string // the fix
		noMaybe string // a maybe note that must not be there
		maybe   string // a maybe note that must be there
	}{
		{name: "ct status dnat is known for a request no rule translates", chains: firewalld, p: req,
			want:    `nft insert rule inet filter filter_FORWARD_POLICIES position 11 iifname "br0" oifname "eth0" accept`,
			noMaybe: "ct status"},
		{name: "ct status is not known where a rule may translate", chains: append(slices.Clone(firewalld),
			NFTChain{Name: "prerouting", Hook: "prerouting", Type: "nat", Priority: -100, Policy: "accept", Rules: []NFTRule{nfRule(30, nfDport(8080), dnat)}}),
			p: req, maybe: "handle 2"},
		{name: "ct status is not known for the reply", chains: []NFTChain{{Name: "fwd", Hook: "forward", Type: "filter", Policy: "accept",
			Rules: []NFTRule{nfRule(2, ctDNAT, v(expr.VerdictDrop, ""))}}},
			p: packet{Src: req.Dst, Dst: req.Src, Proto: "icmp", In: "eth0", Out: "br0", Reply: true}, maybe: "handle 2"},
		{name: "a lone dropping rule is deleted", chains: []NFTChain{{Name: "fwd", Hook: "forward", Type: "filter", Policy: "accept",
			Rules: []NFTRule{nfRule(5, nfIfname(expr.MetaKeyOIFNAME, "eth0"), v(expr.VerdictDrop, ""))}}},
			p: req, want: "nft delete rule inet filter fwd handle 5"},
		{name: "a rule before a drop policy gets an accept before it", chains: []NFTChain{{Name: "fwd", Hook: "forward", Type: "filter", Policy: "drop",
			Rules: []NFTRule{nfRule(5, nfIfname(expr.MetaKeyOIFNAME, "eth0"), v(expr.VerdictDrop, ""))}}},
			p: req, want: `nft insert rule inet filter fwd position 5 iifname "br0" oifname "eth0" accept`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := nftTestNS(NFTTable{Family: "inet", Name: "filter", Chains: tc.chains})
			got, maybe := filterHook(ns, "FORWARD", tc.p, nil, false)
			notes := strings.Join(maybe, "\n")
			if tc.want != "" {
				if got == nil || got.NFT == nil {
					t.Fatalf("no nft drop (maybe %v)", maybe)
				}
				if fix := nftFix(got, "FORWARD", tc.p); fix != tc.want {
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

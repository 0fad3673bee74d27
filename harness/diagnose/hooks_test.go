package diagnose

import (
	"net/netip"
	"testing"

	"github.com/hopcheck/hopcheck/harness/diagnose/iptrules"
	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
	"github.com/hopcheck/hopcheck/harness/diagnose/nftrules"
	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

// routerNS is a router with nft tables: eth0 192.0.2.1/24 outside, br0
// 10.88.0.1/16 inside.
func routerNS(tables ...nftrules.Table) *snapshot.NSState {
	return &snapshot.NSState{Name: "host", NFT: tables, Links: []snapshot.Link{
		{Name: "lo", Index: 1, Kind: "loopback", Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
		{Name: "eth0", Index: 2, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}},
		{Name: "br0", Index: 3, Addrs: []netip.Prefix{netip.MustParsePrefix("10.88.0.1/16")}},
	}}
}

// The chains at a hook run by priority, iptables' tables among nft's base
// chains; a missing masquerade goes into a native nft nat chain where
// there is one.
func TestHookPriority(t *testing.T) {
	out := netfilter.Packet{Src: netip.MustParseAddr("10.88.0.2"), Dst: netip.MustParseAddr("203.0.113.8"), Proto: "icmp", In: "br0", Out: "eth0"}
	nat := routerNS(nftrules.Table{Family: "ip", Name: "nat", Chains: []nftrules.Chain{
		{Name: "postrouting", Hook: "postrouting", Type: "nat", Priority: 100, Policy: "accept"},
	}})
	if fix := masqueradeFix(nat, false, "10.88.0.0/16", "eth0"); fix != `nft insert rule ip nat postrouting ip saddr 10.88.0.0/16 oifname "eth0" masquerade` {
		t.Errorf("masquerade fix: %s", fix)
	}
	if fix := masqueradeFix(routerNS(), false, "10.88.0.0/16", "eth0"); fix != "iptables -t nat -A POSTROUTING -s 10.88.0.0/16 -o eth0 -j MASQUERADE" {
		t.Errorf("masquerade fix without an nft nat chain: %s", fix)
	}

	// An iptables FORWARD accept (priority 0) does not save the packet
	// from an nft drop at priority 10; an nft accept does not save it
	// from the iptables DROP policy.
	both := routerNS(nftrules.Table{Family: "inet", Name: "fw", Chains: []nftrules.Chain{{Name: "fwd", Hook: "forward", Type: "filter", Priority: 10, Policy: "drop"}}})
	both.IPTables = []iptrules.Table{{Name: "filter", Chains: []iptrules.Chain{{Name: "FORWARD", Policy: "ACCEPT"}}}}
	if got, _ := filterHook(both, "FORWARD", out, nil, false); got == nil || got.NFT == nil || got.Chain != "fwd" {
		t.Errorf("nft policy after iptables accept: got %+v", got)
	} else if fix := nftrules.Fix(got.NFT, "FORWARD", out); fix != `nft insert rule inet fw fwd iifname "br0" oifname "eth0" accept` {
		t.Errorf("policy fix: %s", fix)
	}
	both.NFT[0].Chains[0].Policy = "accept"
	both.IPTables[0].Chains[0].Policy = "DROP"
	if got, _ := filterHook(both, "FORWARD", out, nil, false); got == nil || got.NFT != nil {
		t.Errorf("iptables policy after nft accept: got %+v", got)
	}
}

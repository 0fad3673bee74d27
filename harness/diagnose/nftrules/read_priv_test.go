package nftrules

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// Rulesets shaped like the ones real tools load, for the privileged
// tests: what the kernel gives back for them is what the evaluator must
// read.
const (
	// netavarkRuleset follows netavark's nftables driver
	// (src/firewall/nft.rs): one inet table, upper-case base chains, a
	// per-network chain reached by jump, and masquerade by mark.
	netavarkRuleset = `
table inet netavark {
	chain PREROUTING { type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local jump NETAVARK-HOSTPORT-DNAT; }
	chain OUTPUT { type nat hook output priority -100; policy accept;
		fib daddr type local jump NETAVARK-HOSTPORT-DNAT; }
	chain NETAVARK-HOSTPORT-DNAT {
		tcp dport 8080 jump nv_2f259bab_10_88_0_0_nm16_dnat; }
	chain nv_2f259bab_10_88_0_0_nm16_dnat {
		ip saddr 10.88.0.0/16 ip daddr 127.0.0.1 tcp dport 8080 meta mark set meta mark | 0x2000
		tcp dport 8080 dnat ip to 10.88.0.2:80; }
	chain FORWARD { type filter hook forward priority filter; policy accept;
		ct state invalid drop
		jump NETAVARK-ISOLATION-1
		ip daddr 10.88.0.0/16 ct state related,established accept
		ip saddr 10.88.0.0/16 accept; }
	chain NETAVARK-ISOLATION-1 {
		ip daddr 10.88.0.0/16 tcp dport 22 counter drop; }
	chain POSTROUTING { type nat hook postrouting priority srcnat; policy accept;
		meta mark & 0x2000 == 0x2000 masquerade
		ip saddr 10.88.0.0/16 jump nv_2f259bab_10_88_0_0_nm16; }
	chain nv_2f259bab_10_88_0_0_nm16 {
		ip daddr 10.88.0.0/16 accept
		ip daddr != 224.0.0.0/4 masquerade; }
}`
	// dockerRuleset follows Docker's nftables backend: an ip table,
	// verdict maps keyed by interface that jump to per-bridge chains.
	dockerRuleset = `
table ip docker-bridges {
	map filter-forward-in-jumps { type ifname : verdict; elements = { "docker0" : jump filter-forward-in__docker0 }; }
	map filter-forward-out-jumps { type ifname : verdict; elements = { "docker0" : jump filter-forward-out__docker0 }; }
	map nat-postrouting-out-jumps { type ifname : verdict; elements = { "docker0" : jump nat-postrouting-out__docker0 }; }
	set published { type ipv4_addr . inet_proto . inet_service; elements = { 172.17.0.2 . tcp . 80 }; }
	chain filter-FORWARD { type filter hook forward priority filter; policy accept;
		oifname vmap @filter-forward-in-jumps
		iifname vmap @filter-forward-out-jumps; }
	chain filter-forward-in__docker0 {
		ct state established,related counter accept
		iifname "docker0" counter accept
		ip daddr . meta l4proto . th dport @published counter accept
		counter drop; }
	chain filter-forward-out__docker0 {
		ct state established,related counter accept
		counter accept; }
	chain nat-POSTROUTING { type nat hook postrouting priority srcnat; policy accept;
		oifname vmap @nat-postrouting-out-jumps
		iifname "docker0" oifname != "docker0" ip saddr 172.17.0.0/16 counter masquerade; }
	chain nat-postrouting-out__docker0 {
		iifname "docker0" ip saddr 172.17.0.0/16 fib saddr type local counter masquerade; }
	chain nat-PREROUTING { type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local counter jump nat-prerouting-and-output; }
	chain nat-prerouting-and-output {
		iifname != "docker0" tcp dport 8080 counter dnat to 172.17.0.2:80; }
}`
	// firewalldRuleset follows firewalld's inet table: zone dispatch by
	// interface, a reject at the end of forward for what no zone allows.
	firewalldRuleset = `
table inet firewalld {
	chain filter_FORWARD { type filter hook forward priority filter + 10; policy accept;
		ct state { established, related } accept
		ct status dnat accept
		iifname "lo" accept
		ct state invalid drop
		ip6 daddr { ::/96, ::ffff:0.0.0.0/96 } reject
		jump filter_FORWARD_POLICIES
		reject with icmpx admin-prohibited; }
	chain filter_FORWARD_POLICIES {
		iifname "eth0" oifname "eth1" jump filter_FWD_public
		iifname "eth1" oifname "eth0" jump filter_FWD_internal; }
	chain filter_FWD_public { ip saddr { 192.0.2.0/24, 198.51.100.0/24 } tcp dport { 22, 80-90 } accept; }
	chain filter_FWD_internal { accept; }
}`
)

// nftNS makes a namespace with two veth pairs (eth0/peer0, eth1/peer1,
// addressed), loads ruleset into it, and reads it back.
func nftNS(t *testing.T, ruleset string) []Table {
	t.Helper()
	privtest.Require(t)
	if _, err := exec.LookPath("nft"); err != nil {
		privtest.Unavailable(t, "nft")
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "hcnft" + hex.EncodeToString(b) + "-a"
	h, err := netns.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		if err := netns.Delete(name); err != nil {
			t.Errorf("delete %s: %v", name, err)
		}
	})
	file := filepath.Join(t.TempDir(), "ruleset.nft")
	if err := os.WriteFile(file, []byte(ruleset), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{
		{"ip", "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0"},
		{"ip", "-n", name, "link", "add", "eth1", "type", "veth", "peer", "name", "peer1"},
		{"ip", "-n", name, "addr", "add", "192.0.2.1/24", "dev", "eth0"},
		{"ip", "-n", name, "addr", "add", "10.88.0.1/16", "dev", "eth1"},
		{"ip", "-n", name, "link", "set", "eth0", "up"},
		{"ip", "-n", name, "link", "set", "eth1", "up"},
		{"ip", "netns", "exec", name, "nft", "-f", file},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd, " "), err, out)
		}
	}
	tables, err := Read(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) == 0 {
		t.Fatal("no nft tables read")
	}
	return tables
}

// nftNSAddrs are the addresses nftNS gives its interfaces.
var nftNSAddrs = testNS{
	{name: "lo", addrs: []string{"127.0.0.1/8"}},
	{name: "eth0", addrs: []string{"192.0.2.1/24"}},
	{name: "eth1", addrs: []string{"10.88.0.1/16"}},
}

// TestReadAndEvaluate loads the rulesets into a namespace, reads them
// back through netlink, and checks the verdicts the walk would take.
func TestReadAndEvaluate(t *testing.T) {
	addr := netip.MustParseAddr
	tcp := func(src, dst string, dport uint16, in, out string) netfilter.Packet {
		return netfilter.Packet{Src: addr(src), Dst: addr(dst), SPort: 40000, DPort: dport, Proto: "tcp", In: in, Out: out}
	}
	type want struct {
		hook   string
		nat    bool
		p      netfilter.Packet
		target string // "" for no drop (filter) or no translation (nat)
		text   string // part of the deciding rule's text
		to     string
	}
	for _, tc := range []struct {
		name    string
		ruleset string
		want    []want
	}{
		{"netavark", netavarkRuleset, []want{
			{hook: "FORWARD", p: tcp("10.88.0.2", "203.0.113.8", 443, "eth1", "eth0")},
			{hook: "FORWARD", p: tcp("192.0.2.9", "10.88.0.2", 22, "eth0", "eth1"), target: "DROP", text: "ip daddr 10.88.0.0/16 meta l4proto tcp th dport 22 counter packets 0 bytes 0 drop"},
			{hook: "POSTROUTING", nat: true, p: tcp("10.88.0.2", "203.0.113.8", 443, "", "eth0"), target: "MASQUERADE", text: "ip daddr != 224.0.0.0/4 masquerade"},
			{hook: "POSTROUTING", nat: true, p: tcp("10.88.0.2", "10.88.0.3", 443, "", "eth1")},
			{hook: "PREROUTING", nat: true, p: tcp("192.0.2.9", "192.0.2.1", 8080, "eth0", ""), target: "DNAT", to: "10.88.0.2:80"},
			{hook: "PREROUTING", nat: true, p: tcp("192.0.2.9", "203.0.113.8", 8080, "eth0", "")},
		}},
		{"docker", dockerRuleset, []want{
			{hook: "FORWARD", p: tcp("192.0.2.9", "172.17.0.3", 443, "eth0", "docker0"), target: "DROP", text: "counter packets 0 bytes 0 drop"},
			{hook: "FORWARD", p: tcp("192.0.2.9", "172.17.0.2", 80, "eth0", "docker0")},
			{hook: "FORWARD", p: netfilter.Packet{Src: addr("172.17.0.3"), Dst: addr("192.0.2.9"), Proto: "icmp", In: "docker0", Out: "eth0", Reply: true}},
			{hook: "POSTROUTING", nat: true, p: tcp("172.17.0.2", "203.0.113.8", 443, "docker0", "eth0"), target: "MASQUERADE", text: `iifname "docker0" oifname != "docker0" ip saddr 172.17.0.0/16`},
			{hook: "PREROUTING", nat: true, p: tcp("192.0.2.9", "192.0.2.1", 8080, "eth0", ""), target: "DNAT", to: "172.17.0.2:80"},
		}},
		{"firewalld", firewalldRuleset, []want{
			{hook: "FORWARD", p: tcp("192.0.2.9", "10.88.0.2", 85, "eth0", "eth1")},
			{hook: "FORWARD", p: tcp("192.0.2.9", "10.88.0.2", 443, "eth0", "eth1"), target: "REJECT", text: "reject"},
			{hook: "FORWARD", p: tcp("10.88.0.2", "192.0.2.9", 443, "eth1", "eth0")},
			{hook: "FORWARD", p: tcp("192.0.2.9", "10.88.0.2", 443, "eth0", "eth0"), target: "REJECT"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tables := nftNS(t, tc.ruleset)
			if len(tables) != 1 || tables[0].IPTablesNFT {
				t.Fatalf("tables %+v: want the ruleset's one, not taken for iptables-nft's", tables)
			}
			for _, w := range tc.want {
				v, maybe := atHook(nftNSAddrs, tables[0], w.hook, w.nat, w.p)
				got, text, to := "", "", ""
				if v != nil {
					got, text, to = v.Target, v.Spec, v.Opts["--to-destination"]
				}
				if got != w.target || !strings.Contains(text, w.text) || to != w.to {
					t.Errorf("%s %s: got %q by %q to %q, want %q by %q to %q (maybe %v)", w.hook, w.p, got, text, to, w.target, w.text, w.to, maybe)
				}
			}
		})
	}
}

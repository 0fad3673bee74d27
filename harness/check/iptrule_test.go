package check

import (
	"slices"
	"testing"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

func TestParseListedRule(t *testing.T) {
	tests := []struct {
		name      string
		line      string
		chain     string
		ok        bool
		spec      []string
		counters  bool
		pkts, byt uint64
	}{
		{
			name:  "policy line",
			line:  "-P POSTROUTING ACCEPT -c 0 0",
			chain: "POSTROUTING",
		},
		{
			name:  "new chain line",
			line:  "-N MYCHAIN",
			chain: "MYCHAIN",
		},
		{
			name:  "other chain",
			line:  "-A INPUT -j ACCEPT -c 1 2",
			chain: "FORWARD",
		},
		{
			// iptables-nft -v -S prints the counters before the target.
			name:     "nft counters before target",
			line:     "-A POSTROUTING -s 10.0.0.0/24 ! -o br0 -c 12 1008 -j MASQUERADE",
			chain:    "POSTROUTING",
			ok:       true,
			spec:     []string{"-s", "10.0.0.0/24", "!", "-o", "br0", "-j", "MASQUERADE"},
			counters: true, pkts: 12, byt: 1008,
		},
		{
			// go-iptables moves iptables-save style "[p:b]" to the end.
			name:     "counters at the end",
			line:     `-A FORWARD -m comment --comment "web in" -j ACCEPT -c 3 180`,
			chain:    "FORWARD",
			ok:       true,
			spec:     []string{"-m", "comment", "--comment", "web in", "-j", "ACCEPT"},
			counters: true, pkts: 3, byt: 180,
		},
		{
			name:  "no counters",
			line:  "-A INPUT -s 10.1.2.3/32 -j DROP",
			chain: "INPUT",
			ok:    true,
			spec:  []string{"-s", "10.1.2.3/32", "-j", "DROP"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok, err := parseListedRule(tt.line, tt.chain)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if !slices.Equal(r.Spec, tt.spec) {
				t.Errorf("Spec = %q, want %q", r.Spec, tt.spec)
			}
			if r.HasCounters != tt.counters || r.Packets != tt.pkts || r.Bytes != tt.byt {
				t.Errorf("counters = %v %d %d, want %v %d %d", r.HasCounters, r.Packets, r.Bytes, tt.counters, tt.pkts, tt.byt)
			}
		})
	}
	for _, bad := range []string{"-A INPUT -j ACCEPT -c 1", "-A INPUT -c x y -j ACCEPT"} {
		if _, _, err := parseListedRule(bad, "INPUT"); err == nil {
			t.Errorf("parseListedRule(%q): no error for broken counters", bad)
		}
	}
}

// canonicalRule must make a rule as a scenario writes it equal to the same
// rule as `iptables -S` prints it back (pairs taken from iptables v1.8.9
// output), and keep different rules apart.
func TestCanonicalRule(t *testing.T) {
	same := []struct{ written, printed string }{
		{"-s 10.0.0.0/24 ! -o br0 -j MASQUERADE", "-s 10.0.0.0/24 ! -o br0 -j MASQUERADE"},
		{"-p TCP --destination-port 80 -j ACCEPT", "-p tcp -m tcp --dport 80 -j ACCEPT"},
		{"-p 6 --sport 22 -j ACCEPT", "-p tcp -m tcp --sport 22 -j ACCEPT"},
		{"-m state --state ESTABLISHED,RELATED -j ACCEPT", "-m state --state RELATED,ESTABLISHED -j ACCEPT"},
		{"-s 10.0.0.5/24 -d 10.0.0.0/255.255.0.0 -j ACCEPT", "-s 10.0.0.0/24 -d 10.0.0.0/16 -j ACCEPT"},
		{"! -s 10.0.0.9 -j ACCEPT", "! -s 10.0.0.9/32 -j ACCEPT"},
		{"-s ! 10.0.0.9 -j ACCEPT", "! -s 10.0.0.9/32 -j ACCEPT"},
		{"--source 10.0.0.9 --jump ACCEPT", "-s 10.0.0.9/32 -j ACCEPT"},
		{"-p icmp --icmp-type echo-request -j ACCEPT", "-p icmp -m icmp --icmp-type 8 -j ACCEPT"},
		{"-p icmp --icmp-type port-unreachable -j ACCEPT", "-p icmp -m icmp --icmp-type 3/3 -j ACCEPT"},
		{"-p all -j ACCEPT", "-j ACCEPT"},
		{"-p tcp --dport 8080 -j DNAT --to 10.0.0.2:80", "-p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.2:80"},
		{"-o eth0 -j SNAT --to 198.51.100.2", "-o eth0 -j SNAT --to-source 198.51.100.2"},
		{"-m multiport -p tcp --dports 80,443 -j ACCEPT", "-p tcp -m multiport --dports 80,443 -j ACCEPT"},
		{"-j REJECT", "-j REJECT --reject-with icmp-port-unreachable"},
		{"-p tcp --syn -j ACCEPT", "-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT"},
		{`-m comment --comment "web in" -j ACCEPT`, `-m comment --comment "web in" -j ACCEPT`},
		{"-i br0 -o eth0 -j ACCEPT", "-i br0 -o eth0 -c 5 300 -j ACCEPT"},
		{`-j LOG --log-prefix "-j "`, `-j LOG --log-prefix "-j "`},
	}
	for _, tt := range same {
		w, p := canon(t, tt.written), canon(t, tt.printed)
		if !slices.Equal(w, p) {
			t.Errorf("%q and %q differ:\n  %q\n  %q", tt.written, tt.printed, w, p)
		}
	}
	differ := []struct{ a, b string }{
		{"-s 10.0.0.0/24 -o br0 -j MASQUERADE", "-s 10.0.0.0/24 ! -o br0 -j MASQUERADE"},
		{"-i br0 -o eth0 -j ACCEPT", "-i eth0 -o br0 -j ACCEPT"},
		{"-p tcp --dport 80 -j ACCEPT", "-p udp --dport 80 -j ACCEPT"},
		{"-s 10.0.0.0/24 -j ACCEPT", "-s 10.0.0.0/16 -j ACCEPT"},
		{"-j ACCEPT", "-j DROP"},
		{"-p tcp -m multiport --dports 80,443 -j ACCEPT", "-p tcp -m multiport --dports 443,80 -j ACCEPT"},
		{`--comment "a b" -j ACCEPT`, `--comment a b -j ACCEPT`},
	}
	for _, tt := range differ {
		if slices.Equal(canon(t, tt.a), canon(t, tt.b)) {
			t.Errorf("%q and %q compare equal", tt.a, tt.b)
		}
	}
}

// The text of a comment or log prefix stays with its option even when it
// looks like an option itself.
func TestGroupArgsFreeText(t *testing.T) {
	got := groupArgs([]string{"-m", "comment", "--comment", "-s", "--log-prefix", "-j", "-j", "LOG"})
	var s []string
	for _, g := range got {
		s = append(s, g.String())
	}
	want := []string{"-m comment", "--comment -s", "--log-prefix -j", "-j LOG"}
	if !slices.Equal(s, want) {
		t.Errorf("groups = %q, want %q", s, want)
	}
}

func canon(t *testing.T, rule string) []string {
	t.Helper()
	args, err := scenario.SplitArgs(rule)
	if err != nil {
		t.Fatal(err)
	}
	return canonicalRule(args)
}

func TestRuleCounters(t *testing.T) {
	listing := []string{
		"-P FORWARD ACCEPT -c 0 0",
		"-A FORWARD -i br0 -o eth0 -c 7 588 -j ACCEPT",
		"-A FORWARD -i eth0 -o br0 -c 5 420 -j ACCEPT",
		"-A FORWARD -p tcp -m tcp --dport 80 -c 1 60 -j ACCEPT",
		"-A FORWARD -p tcp -m tcp --dport 80 -c 2 120 -j ACCEPT",
	}
	tests := []struct {
		rule      string
		found     bool
		pkts, byt uint64
	}{
		{"-i br0 -o eth0 -j ACCEPT", true, 7, 588},
		{"-i eth0 -o br0 -j ACCEPT", true, 5, 420},
		// Identical rules: both matched some packets; the sum is what the
		// rule as written counted.
		{"-p tcp --dport 80 -j ACCEPT", true, 3, 180},
		{"-i br0 -o eth1 -j ACCEPT", false, 0, 0},
	}
	for _, tt := range tests {
		args, _ := scenario.SplitArgs(tt.rule)
		p, b, found, err := ruleCounters(listing, "FORWARD", args)
		if err != nil {
			t.Fatalf("%q: %v", tt.rule, err)
		}
		if found != tt.found || p != tt.pkts || b != tt.byt {
			t.Errorf("%q: got %v %d %d, want %v %d %d", tt.rule, found, p, b, tt.found, tt.pkts, tt.byt)
		}
	}
	if _, _, _, err := ruleCounters([]string{"-A FORWARD -j ACCEPT"}, "FORWARD", []string{"-j", "ACCEPT"}); err == nil {
		t.Error("a listing without counters gave no error")
	}
}

func TestCanonicalCIDR(t *testing.T) {
	tests := map[string]string{
		"10.0.0.1":                  "10.0.0.1/32",
		"10.0.0.5/24":               "10.0.0.0/24",
		"10.0.0.0/255.255.255.0":    "10.0.0.0/24",
		"10.0.0.0/255.0.255.0":      "10.0.0.0/255.0.255.0", // not contiguous: left alone
		"2001:db8::1":               "2001:db8::1/128",
		"2001:db8::1/64":            "2001:db8::/64",
		"example.org":               "example.org",
		"10.0.0.0/33":               "10.0.0.0/33",
		"10.0.0.0/ffff:ffff:ffff::": "10.0.0.0/ffff:ffff:ffff::",
	}
	for in, want := range tests {
		if got := canonicalCIDR(in); got != want {
			t.Errorf("canonicalCIDR(%q) = %q, want %q", in, got, want)
		}
	}
}

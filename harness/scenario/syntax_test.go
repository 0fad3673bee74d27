package scenario

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func TestParseRoute(t *testing.T) {
	a := netip.MustParseAddr
	p := netip.MustParsePrefix
	tests := []struct {
		raw  string
		want Route
		err  string
	}{
		{raw: "default via 10.0.0.1", want: Route{Dst: p("0.0.0.0/0"), Via: a("10.0.0.1")}},
		{raw: "default via 2001:db8::1 dev eth0", want: Route{Dst: p("::/0"), Via: a("2001:db8::1"), Dev: "eth0"}},
		{raw: "default dev eth0 src 2001:db8::2", want: Route{Dst: p("::/0"), Dev: "eth0", Src: a("2001:db8::2")}},
		{raw: "10.0.0.5 dev eth0", want: Route{Dst: p("10.0.0.5/32"), Dev: "eth0"}},
		{raw: "2001:db8::5 dev eth0", want: Route{Dst: p("2001:db8::5/128"), Dev: "eth0"}},
		{raw: "  10.1.0.0/16   dev eth0  via 10.0.0.1 metric 100 table 7 src 10.0.0.2 ",
			want: Route{Dst: p("10.1.0.0/16"), Via: a("10.0.0.1"), Dev: "eth0", Src: a("10.0.0.2"), Metric: 100, Table: 7}},
		{raw: "10.1.0.0/16 via 10.0.0.1 table main", want: Route{Dst: p("10.1.0.0/16"), Via: a("10.0.0.1")}},
		{raw: "10.1.0.0/16 via 10.0.0.1 table 254", want: Route{Dst: p("10.1.0.0/16"), Via: a("10.0.0.1")}},
		{raw: "", err: `route "": empty route`},
		{raw: "default", err: `route "default": a route needs a gateway (via GW) or an interface (dev IF)`},
		{raw: "10.0.0.0/33 dev eth0", err: `route "10.0.0.0/33 dev eth0": destination "10.0.0.0/33" is not a prefix like 10.0.0.0/24`},
		{raw: "10.0.0.1/24 dev eth0", err: `route "10.0.0.1/24 dev eth0": destination 10.0.0.1/24 has host bits set (did you mean 10.0.0.0/24?)`},
		{raw: "somewhere dev eth0", err: `route "somewhere dev eth0": destination "somewhere" is neither "default", a prefix nor an address`},
		{raw: "default via 10.0.0.1 via 10.0.0.2", err: `route "default via 10.0.0.1 via 10.0.0.2": via is given twice`},
		{raw: "default via 10.0.0.300", err: `route "default via 10.0.0.300": via "10.0.0.300" is not an IP address`},
		{raw: "default via 10.0.0.1 onlink", err: `route "default via 10.0.0.1 onlink": unknown word "onlink"; after the destination come via GW, dev IF, src IP, metric N, table N`},
		{raw: "default via 10.0.0.1 table 0", err: `route "default via 10.0.0.1 table 0": table "0" is not main, default, local or a number from 1 to 4294967295`},
		{raw: "default via 10.0.0.1 metric -1", err: `route "default via 10.0.0.1 metric -1": metric "-1" is not a number from 0 to 4294967295`},
		{raw: "10.0.0.0/8 via 2001:db8::1", err: `route "10.0.0.0/8 via 2001:db8::1": gateway 2001:db8::1 is not of the destination's IP family`},
		{raw: "10.0.0.0/8 dev eth0 src 2001:db8::1", err: `route "10.0.0.0/8 dev eth0 src 2001:db8::1": source 2001:db8::1 is not of the destination's IP family`},
		{raw: "10.0.0.0/8 dev an-interface-name-too-long", err: `route "10.0.0.0/8 dev an-interface-name-too-long": interface name "an-interface-name-too-long" is 26 characters; Linux allows at most 15 (IFNAMSIZ)`},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := ParseRoute(tt.raw)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Raw = tt.raw
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{in: "", want: nil},
		{in: "  -A  INPUT\t-j ACCEPT ", want: []string{"-A", "INPUT", "-j", "ACCEPT"}},
		{in: `-m comment --comment "a b"`, want: []string{"-m", "comment", "--comment", "a b"}},
		{in: `--comment 'it''s' x`, want: []string{"--comment", "its", "x"}},
		{in: `--comment 'a "b" \c'`, want: []string{"--comment", `a "b" \c`}},
		{in: `--comment "a \"b\" \c \\ \$"`, want: []string{"--comment", `a "b" \c \ $`}},
		{in: `a\ b c\"d`, want: []string{"a b", `c"d`}},
		{in: `""`, want: []string{""}},
		{in: `x"y z"w`, want: []string{"xy zw"}},
		{in: `"a`, err: `unterminated quote: " at offset 0`},
		{in: `b 'a`, err: `unterminated quote: ' at offset 2`},
		{in: `a\`, err: `a backslash ends the text; it has nothing to escape`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := SplitArgs(tt.in)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := SplitArgs(`"x`); !errors.Is(err, ErrUnterminatedQuote) {
		t.Errorf("errors.Is(%v, ErrUnterminatedQuote) = false", err)
	}
}

func TestParseIPTables(t *testing.T) {
	tests := []struct {
		raw  string
		want IPTablesCommand
		err  string
	}{
		{raw: "-A INPUT -j ACCEPT", want: IPTablesCommand{Table: "filter", Op: "-A", Chain: "INPUT", Args: []string{"-j", "ACCEPT"}}},
		{raw: "-A FORWARD", want: IPTablesCommand{Table: "filter", Op: "-A", Chain: "FORWARD", Args: []string{}}},
		{raw: "-t nat -A POSTROUTING -s 10.0.0.0/24 ! -o br0 -j MASQUERADE",
			want: IPTablesCommand{Table: "nat", Op: "-A", Chain: "POSTROUTING", Args: []string{"-s", "10.0.0.0/24", "!", "-o", "br0", "-j", "MASQUERADE"}}},
		{raw: "-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.0.0.2 -t nat",
			want: IPTablesCommand{Table: "nat", Op: "-A", Chain: "PREROUTING", Args: []string{"-p", "tcp", "--dport", "80", "-j", "DNAT", "--to-destination", "10.0.0.2"}}},
		{raw: "--table=mangle --append OUTPUT -j MARK --set-mark 1",
			want: IPTablesCommand{Table: "mangle", Op: "-A", Chain: "OUTPUT", Args: []string{"-j", "MARK", "--set-mark", "1"}}},
		{raw: "-traw -I PREROUTING 1 -j NOTRACK",
			want: IPTablesCommand{Table: "raw", Op: "-I", Chain: "PREROUTING", Args: []string{"1", "-j", "NOTRACK"}}},
		{raw: "-N MY-CHAIN", want: IPTablesCommand{Table: "filter", Op: "-N", Chain: "MY-CHAIN", Args: []string{}}},
		{raw: "--policy FORWARD DROP", want: IPTablesCommand{Table: "filter", Op: "-P", Chain: "FORWARD", Args: []string{"DROP"}}},
		{raw: `-A INPUT -m comment --comment "-t nat -j DROP" -j ACCEPT`,
			want: IPTablesCommand{Table: "filter", Op: "-A", Chain: "INPUT", Args: []string{"-m", "comment", "--comment", "-t nat -j DROP", "-j", "ACCEPT"}}},
		{raw: `-A INPUT -j LOG --log-prefix -i`,
			want: IPTablesCommand{Table: "filter", Op: "-A", Chain: "INPUT", Args: []string{"-j", "LOG", "--log-prefix", "-i"}}},

		{raw: "", err: `iptables "": no command; write -A, -I, -N or -P and a chain`},
		{raw: "-t nat", err: `iptables "-t nat": no command; write -A, -I, -N or -P and a chain`},
		{raw: "-A INPUT -t", err: `iptables "-A INPUT -t": -t needs a table name`},
		{raw: "-t nat -t filter -A INPUT", err: `iptables "-t nat -t filter -A INPUT": the table is given twice`},
		{raw: "-j ACCEPT -A INPUT", err: `iptables "-j ACCEPT -A INPUT": expected -A, -I, -N or -P first, found "-j"`},
		{raw: "-F", err: `iptables "-F": -F is not supported: a scenario builds its rule set with -A, -I, -N and -P`},
		{raw: "-A", err: `iptables "-A": -A needs a chain name`},
		{raw: "-A -j ACCEPT", err: `iptables "-A -j ACCEPT": -A needs a chain name`},
		{raw: "-N FOO bar", err: `iptables "-N FOO bar": -N takes only a chain name, found "bar" after it`},
		{raw: "-N INPUT", err: `iptables "-N INPUT": INPUT is a built-in chain of table filter`},
		{raw: "-N ACCEPT", err: `iptables "-N ACCEPT": "ACCEPT" cannot be a chain name`},
		{raw: "-N A-CHAIN-NAME-OF-29-CHARACTERS", err: `iptables "-N A-CHAIN-NAME-OF-29-CHARACTERS": chain name "A-CHAIN-NAME-OF-29-CHARACTERS" is longer than 28 characters`},
		{raw: "-P INPUT", err: `iptables "-P INPUT": -P INPUT takes one target, ACCEPT or DROP`},
		{raw: "-t nat -P PREROUTING DROP", err: `iptables "-t nat -P PREROUTING DROP": the nat table is not for filtering; iptables refuses a DROP policy there`},
		{raw: "-I INPUT 0 -j ACCEPT", err: `iptables "-I INPUT 0 -j ACCEPT": rule number "0" must be 1 or more`},
		{raw: "-A INPUT -o eth0", err: `iptables "-A INPUT -o eth0": -o cannot be used in INPUT: packets there have no output interface yet`},
		{raw: "-A INPUT -i", err: `iptables "-A INPUT -i": -i needs a value`},
		{raw: "-t nat -A OUTPUT -j SNAT --to-source 10.0.0.1", err: `iptables "-t nat -A OUTPUT -j SNAT --to-source 10.0.0.1": target SNAT works only in POSTROUTING or INPUT, not in OUTPUT`},
		{raw: "-A FORWARD -j DNAT --to-destination 10.0.0.1", err: `iptables "-A FORWARD -j DNAT --to-destination 10.0.0.1": target DNAT works only in the nat table (add -t nat)`},
		{raw: "sudo iptables -A INPUT", err: `iptables "sudo iptables -A INPUT": write only the arguments, without a leading "sudo"`},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := ParseIPTables(tt.raw)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Raw = tt.raw
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestCheckChains runs command sequences through the per-namespace chain
// bookkeeping.
func TestCheckChains(t *testing.T) {
	tests := []struct {
		name string
		cmds []string
		want string // the problem with the last command, or ""
	}{
		{"jump to a chain made before", []string{"-N WEB", "-A INPUT -j WEB", "-A WEB -j RETURN"}, ""},
		{"goto a chain made before", []string{"-N WEB", "-A INPUT -g WEB"}, ""},
		{"goto a built-in target", []string{"-A INPUT -g ACCEPT"}, `goto target "ACCEPT" is not a chain made earlier with -N in table filter`},
		{"chain made in another table", []string{"-t nat -N WEB", "-A INPUT -j WEB"}, `target "WEB" is neither a known target nor a chain made earlier with -N in table filter`},
		{"chain made twice", []string{"-N WEB", "-N WEB"}, "chain WEB already exists in table filter"},
		{"insert at the end", []string{"-A INPUT -j ACCEPT", "-I INPUT 2 -j DROP"}, ""},
		{"insert past the end", []string{"-A INPUT -j ACCEPT", "-I INPUT 3 -j DROP"}, "rule number 3 is past the end of INPUT, which has 1 rule at this point"},
		{"policies do not count as rules", []string{"-P INPUT DROP", "-I INPUT 2 -j DROP"}, "rule number 2 is past the end of INPUT, which has 0 rules at this point"},
		{"extension targets", []string{"-A INPUT -j REJECT", "-A INPUT -j LOG", "-t mangle -A FORWARD -j TCPMSS --clamp-mss-to-pmtu"}, ""},
		{"chain of another table", []string{"-A PREROUTING -j ACCEPT"}, "table filter has no chain PREROUTING; it is built into nat, mangle, raw (add -t nat)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			created, rules := map[string][]string{}, map[string]int{}
			var got string
			for i, raw := range tt.cmds {
				cmd, err := ParseIPTables(raw)
				if err != nil {
					t.Fatalf("ParseIPTables(%q): %v", raw, err)
				}
				got = checkChains(cmd, created, rules)
				if got != "" && i < len(tt.cmds)-1 {
					t.Fatalf("command %q: %s", raw, got)
				}
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseNeighbor(t *testing.T) {
	tests := []struct {
		raw string
		ip  string
		mac string
		dev string
		err string
	}{
		{raw: "10.0.0.2 lladdr 02:00:00:00:00:02 dev eth0", ip: "10.0.0.2", mac: "02:00:00:00:00:02", dev: "eth0"},
		{raw: "2001:db8::2 dev eth0 lladdr 02-00-00-00-00-02", ip: "2001:db8::2", mac: "02:00:00:00:00:02", dev: "eth0"},
		{raw: "", err: `neighbor "": empty entry; write IP lladdr MAC dev IF`},
		{raw: "router lladdr 02:00:00:00:00:02 dev eth0", err: `neighbor "router lladdr 02:00:00:00:00:02 dev eth0": "router" is not an IP address`},
		{raw: "10.0.0.2 dev eth0", err: `neighbor "10.0.0.2 dev eth0": missing lladdr MAC`},
		{raw: "10.0.0.2 lladdr 02:00:00:00:00:02 dev", err: `neighbor "10.0.0.2 lladdr 02:00:00:00:00:02 dev": dev needs a value`},
		{raw: "10.0.0.2 lladdr ff:ff:ff:ff:ff:ff dev eth0", err: `neighbor "10.0.0.2 lladdr ff:ff:ff:ff:ff:ff dev eth0": MAC "ff:ff:ff:ff:ff:ff" is a multicast address; an interface needs a unicast one (first byte even, e.g. 02:...)`},
		{raw: "10.0.0.2 lladdr 02:00:00:00:00:02 dev eth0 nud permanent", err: `neighbor "10.0.0.2 lladdr 02:00:00:00:00:02 dev eth0 nud permanent": unknown word "nud"; write IP lladdr MAC dev IF`},
		{raw: "10.0.0.2 dev eth0 dev eth1", err: `neighbor "10.0.0.2 dev eth0 dev eth1": dev is given twice`},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := ParseNeighbor(tt.raw)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.IP.String() != tt.ip || got.MAC.String() != tt.mac || got.Dev != tt.dev || got.Raw != tt.raw {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func TestParseCount(t *testing.T) {
	tests := []struct {
		in   string
		want Count
		err  bool
	}{
		{in: "0", want: Count{"==", 0}},
		{in: "7", want: Count{"==", 7}},
		{in: ">0", want: Count{">", 0}},
		{in: ">= 3", want: Count{">=", 3}},
		{in: "<5", want: Count{"<", 5}},
		{in: "<=5", want: Count{"<=", 5}},
		{in: "==2", want: Count{"==", 2}},
		{in: "<0", err: true},
		{in: ">-1", err: true},
		{in: "=>1", err: true},
		{in: "many", err: true},
		{in: "", err: true},
	}
	for _, tt := range tests {
		got, err := ParseCount(tt.in)
		if (err != nil) != tt.err || (!tt.err && got != tt.want) {
			t.Errorf("ParseCount(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	// Match follows the operator.
	for _, tt := range []struct {
		c    Count
		v    uint64
		want bool
	}{
		{Count{">", 0}, 0, false}, {Count{">", 0}, 1, true},
		{Count{">=", 2}, 2, true}, {Count{"<", 2}, 2, false},
		{Count{"<=", 2}, 2, true}, {Count{"==", 3}, 3, true}, {Count{"==", 3}, 4, false},
	} {
		if got := tt.c.Match(tt.v); got != tt.want {
			t.Errorf("%s.Match(%d) = %v", tt.c, tt.v, got)
		}
	}
}

func TestParseLoss(t *testing.T) {
	for in, want := range map[string]float64{"0%": 0, "100%": 1, "12.5%": 0.125, " 50 % ": 0.5} {
		if got, err := parseLoss(in); err != nil || got != want {
			t.Errorf("parseLoss(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"50", "-1%", "101%", "NaN%", "%", "half"} {
		if _, err := parseLoss(in); err == nil {
			t.Errorf("parseLoss(%q) succeeded", in)
		}
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		check func(string) string
		in    string
		ok    bool
	}{
		{checkScenarioName, "nat-egress", true},
		{checkScenarioName, "0day", true},
		{checkScenarioName, "-x", false},
		{checkScenarioName, "Nat", false},
		{checkScenarioName, "a23456789012345678901234567890ab", true},
		{checkScenarioName, "a23456789012345678901234567890abc", false},
		{checkNamespaceName, "ns_1-a", true},
		{checkNamespaceName, "host", true},
		{checkNamespaceName, "1ns", false},
		{checkNamespaceName, "a2345678901234b", true},
		{checkNamespaceName, "a2345678901234bc", false},
		{checkNamespaceName, "ns.1", false},
		{checkIfName, "veth_1", true},
		{checkIfName, "eth0.100", true},
		{checkIfName, "Wan-0", true},
		{checkIfName, "veth12345678901", true},
		{checkIfName, "veth123456789012", false},
		{checkIfName, "..", false},
		{checkIfName, "eth%d", false},
		{checkIfName, "a b", false},
		{checkIfName, "", false},
	}
	for _, tt := range tests {
		if msg := tt.check(tt.in); (msg == "") != tt.ok {
			t.Errorf("%q: %q, want ok=%v", tt.in, msg, tt.ok)
		}
	}
}

func TestCheckSysctlKey(t *testing.T) {
	for key, ok := range map[string]bool{
		"net.ipv4.ip_forward":              true,
		"net.ipv4.conf.eth0/100.rp_filter": true,
		"net.ipv6.conf.all.forwarding":     true,
		"kernel.panic":                     false,
		"net":                              false,
		"net..ipv4":                        false,
		"net.ipv4.conf.//.rp_filter":       false,
		"net.ipv4.conf.a b.rp_filter":      false,
	} {
		if msg := checkSysctlKey(key); (msg == "") != ok {
			t.Errorf("checkSysctlKey(%q) = %q, want ok=%v", key, msg, ok)
		}
	}
	for key, want := range map[string]string{
		"net.ipv4.conf.eth0.rp_filter":              "eth0",
		"net.ipv4.conf.eth0/100.rp_filter":          "eth0.100",
		"net.ipv6.neigh.br0.base_reachable_time_ms": "br0",
		"net.ipv4.conf.all.rp_filter":               "",
		"net.ipv4.conf.default.rp_filter":           "",
		"net.ipv4.ip_forward":                       "",
		"net.core.somaxconn":                        "",
	} {
		if got := sysctlInterface(key); got != want {
			t.Errorf("sysctlInterface(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	keys := []string{"type", "addresses", "up", "master", "mtu", "mac"}
	for in, want := range map[string]string{
		"adress":    ` (did you mean "addresses"?)`,
		"addresses": ` (did you mean "addresses"?)`,
		"Type":      ` (did you mean "type"?)`,
		"mastr":     ` (did you mean "master"?)`,
		"tpye":      ` (did you mean "type"?)`,
		"bandwidth": "",
		"x":         "",
	} {
		if got := didYouMean(in, keys); got != want {
			t.Errorf("didYouMean(%q) = %q, want %q", in, got, want)
		}
	}
	for _, tt := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"nmae", "name", 1}, {"kitten", "sitting", 3}, {"adress", "addresses", 3}} {
		if got := editDistance(tt.a, tt.b); got != tt.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.d)
		}
	}
}

func TestCauseCodes(t *testing.T) {
	codes := CauseCodes()
	if len(codes) != 16 || codes[0] != "no-route" || codes[len(codes)-1] != "unknown" {
		t.Errorf("CauseCodes() = %v", codes)
	}
	codes[0] = "changed"
	if CauseCodes()[0] != CauseNoRoute || !IsCauseCode(CauseNoRoute) || IsCauseCode("changed") {
		t.Error("CauseCodes shares its slice with callers")
	}
}

func TestPosString(t *testing.T) {
	for _, tt := range []struct {
		p    Pos
		want string
	}{
		{Pos{"a.yaml", 3, 7}, "a.yaml:3:7"},
		{Pos{"a.yaml", 3, 0}, "a.yaml:3"},
		{Pos{"a.yaml", 0, 0}, "a.yaml"},
	} {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

package scenario

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseRule(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tt := range []struct {
		raw  string
		want Rule
		err  string
	}{
		{raw: "from 10.1.0.0/24 table 100", want: Rule{From: p("10.1.0.0/24"), Table: 100, Priority: -1}},
		{raw: "from 10.1.0.0/24 lookup 100 priority 100", want: Rule{From: p("10.1.0.0/24"), Table: 100, Priority: 100}},
		{raw: "to 192.0.2.7 iif eth0 pref 5 lookup main", want: Rule{To: p("192.0.2.7/32"), IIf: "eth0", Priority: 5}},
		{raw: "not from all to 2001:db8::/32 oif eth1 prio 7 table 254", want: Rule{V6: true, Not: true, To: p("2001:db8::/32"), OIf: "eth1", Priority: 7}},
		{raw: "-6 fwmark 0x10/0xf0 table default", want: Rule{V6: true, HasMark: true, Mark: 0x10, Mask: 0xf0, Table: 253, Priority: -1}},
		{raw: "fwmark 3 dev lo table local", want: Rule{HasMark: true, Mark: 3, Mask: 0xffffffff, IIf: "lo", Table: 255, Priority: -1}},
		{raw: "from 0.0.0.0/0 table 7", want: Rule{Table: 7, Priority: -1}},
		{raw: "", err: `rule "": empty rule; write for example: from 10.1.0.0/24 table 100`},
		{raw: "from 10.1.0.5/24 table 100", err: `rule "from 10.1.0.5/24 table 100": from 10.1.0.5/24 has host bits set (did you mean 10.1.0.0/24?)`},
		{raw: "from 10.1.0.0/24 via 10.0.0.1", err: `rule "from 10.1.0.0/24 via 10.0.0.1": unknown word "via"; a rule takes from PREFIX, to PREFIX, iif IF, oif IF, fwmark N[/M], priority N, table N`},
		{raw: "table 100 lookup 200", err: `rule "table 100 lookup 200": table is given twice`},
		{raw: "from 10.1.0.0/24 to 2001:db8::/32", err: `rule "from 10.1.0.0/24 to 2001:db8::/32": from and to are of different IP families`},
		{raw: "-6 from 10.1.0.0/24", err: `rule "-6 from 10.1.0.0/24": -6 does not match the family of its addresses`},
		{raw: "table vrf-blue", err: `rule "table vrf-blue": table "vrf-blue" is not main, default, local or a number from 1 to 4294967295`},
		{raw: "priority -1", err: `rule "priority -1": priority "-1" is not a number from 0 to 4294967295`},
		{raw: "fwmark x", err: `rule "fwmark x": fwmark "x" is not a number (decimal or 0x hexadecimal), optionally /MASK`},
		{raw: "from", err: `rule "from": from needs a value`},
	} {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := ParseRule(tt.raw)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Raw = ""
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestRulesInScenario(t *testing.T) {
	s, err := Parse("t.yaml", []byte(`name: t
namespaces:
  r:
    interfaces:
      eth0: {type: dummy, addresses: [10.0.0.1/24]}
      eth1: {type: dummy, addresses: [198.51.100.2/24]}
    routes:
      - default via 198.51.100.1 table 100
    rules:
      - from 10.0.0.0/24 lookup 100 priority 100
      - iif eth9 table 100
`))
	if err != nil {
		t.Fatal(err)
	}
	ns := s.Namespace("r")
	if len(ns.Rules) != 2 || ns.Rules[0].Table != 100 || ns.Rules[0].Pos.Line != 10 || ns.Rules[1].IIf != "eth9" {
		t.Errorf("rules: %+v", ns.Rules)
	}
	if ns.Routes[0].Table != 100 {
		t.Errorf("route table: %+v", ns.Routes[0])
	}

	_, err = Parse("t.yaml", []byte(`name: t
namespaces:
  r:
    rules:
      - from 10.0.0.0/24 lookup 100 priority 100
      - from 10.0.0.0/24 table 100 pref 100
      - from 10.0.0.0/24 table 100
      - from 10.0.0.0/24 table 100
      - form 10.0.0.0/24 table 100
`))
	want := []string{
		`t.yaml:6:9: namespaces.r.rules[1]: rule "from 10.0.0.0/24 table 100 pref 100": the same rule is already added at line 5`,
		`t.yaml:9:9: namespaces.r.rules[4]: rule "form 10.0.0.0/24 table 100": unknown word "form"; a rule takes from PREFIX, to PREFIX, iif IF, oif IF, fwmark N[/M], priority N, table N`,
	}
	var list ErrorList
	if !errors.As(err, &list) || err.Error() != strings.Join(want, "\n") {
		t.Errorf("got:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

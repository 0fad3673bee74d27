package plan

import (
	"testing"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

// Rules come after every route, in the written order.
func TestRulesAfterRoutes(t *testing.T) {
	sc, err := scenario.Parse("t.yaml", []byte(`name: t
namespaces:
  r:
    interfaces:
      eth0: {type: dummy, addresses: [10.0.0.1/24]}
    rules:
      - from 10.1.0.0/24 table 100
      - iif eth0 table 200 priority 10
    routes:
      - 10.9.0.0/16 via 10.0.0.2 table 100
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(sc)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []Kind
	var rules []string
	for _, s := range p.Steps {
		if s.Kind == AddRoute || s.Kind == AddRule {
			kinds = append(kinds, s.Kind)
		}
		if s.Kind == AddRule {
			rules = append(rules, s.Rule.Raw+" @"+s.Field)
		}
	}
	if len(kinds) != 3 || kinds[0] != AddRoute || kinds[1] != AddRule || kinds[2] != AddRule {
		t.Errorf("route and rule steps in order %v", kinds)
	}
	if len(rules) != 2 || rules[0] != "from 10.1.0.0/24 table 100 @namespaces.r.rules[0]" || rules[1] != "iif eth0 table 200 priority 10 @namespaces.r.rules[1]" {
		t.Errorf("rules %q", rules)
	}
}

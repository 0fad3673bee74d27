package plan

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

// TestParsedExample plans the format page's example as scenario.Parse
// reads it (testdata/nat-egress.yaml, verbatim) and checks that it gives
// the same recipe as the hand-built copy the other tests use, so that
// plantest builds scenarios shaped as the parser does.
func TestParsedExample(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "nat-egress.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scenario.Parse("scenarios/nat-egress.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := New(sc)
	if err != nil {
		t.Fatal(err)
	}
	hand, err := New(natEgress())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := parsed.Script(runName), hand.Script(runName); got != want {
		t.Errorf("parsed example plans differently from the hand-built one:\nparsed:\n%s\nhand-built:\n%s", got, want)
	}
	checkOrder(t, sc, parsed.Steps)
}

// TestLibraryPlans plans every scenario of the library and checks the
// ordering rules on each.
func TestLibraryPlans(t *testing.T) {
	scs, err := scenario.Load(filepath.Join("..", "..", "scenarios"))
	if err != nil {
		t.Fatal(err)
	}
	if len(scs) == 0 {
		t.Fatal("no scenarios in the library")
	}
	for _, sc := range scs {
		t.Run(sc.Name, func(t *testing.T) {
			p, err := New(sc)
			if err != nil {
				t.Fatal(err)
			}
			checkOrder(t, sc, p.Steps)
		})
	}
}

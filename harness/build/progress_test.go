package build_test

import (
	"context"
	"testing"

	"github.com/hopcheck/hopcheck/harness/build"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// TestProgress: Options.Progress hears of every build step, in order, up
// to the total, and of every namespace Down deletes.
func TestProgress(t *testing.T) {
	privtest.Require(t)
	type call struct {
		phase       string
		done, total int
	}
	var calls []call
	record := func(phase string, done, total int) { calls = append(calls, call{phase, done, total}) }
	sc := bridgeScenario()
	topo, err := build.Up(context.Background(), sc, build.Options{Progress: record})
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	var built, torn []call
	for _, c := range calls {
		if c.phase == build.PhaseBuild {
			built = append(built, c)
		} else {
			torn = append(torn, c)
		}
	}
	check := func(phase string, cs []call, total int) {
		t.Helper()
		if len(cs) == 0 || len(cs) != cs[0].total || (total > 0 && cs[0].total != total) {
			t.Fatalf("%s: %d calls %v", phase, len(cs), cs)
		}
		for i, c := range cs {
			if c.done != i+1 || c.total != cs[0].total {
				t.Errorf("%s: call %d is %+v, want done %d of %d", phase, i, c, i+1, cs[0].total)
			}
		}
	}
	check(build.PhaseBuild, built, 0)
	check(build.PhaseTeardown, torn, len(sc.Namespaces))
}

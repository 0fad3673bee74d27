package trace

import (
	"testing"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

func TestProbeFeatures(t *testing.T) {
	privtest.Require(t)
	before, err := netns.List()
	if err != nil {
		t.Fatal(err)
	}
	f := ProbeFeatures()
	t.Logf("features: %s", f)

	// Every false feature says why; no true one has a reason.
	for name, ok := range map[Feature]bool{
		FeatureBTF: f.HasBTF, FeatureLoad: f.CanLoad, FeatureTCX: f.HasTCX,
		FeatureClsact: f.HasClsact, FeatureKfreeSkbReason: f.KfreeSkbHasReason,
	} {
		why, missing := f.Missing[name]
		if ok == missing || (missing && why == "") {
			t.Errorf("%s: present %v, reason %q", name, ok, why)
		}
	}
	// The clsact probe's namespace is gone.
	after, err := netns.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) > len(before) {
		t.Errorf("namespaces before probing %v, after %v", before, after)
	}

	// hopcheck's CI and development kernels are 6.6 or later.
	for name, ok := range map[Feature]bool{FeatureBTF: f.HasBTF, FeatureLoad: f.CanLoad,
		FeatureTCX: f.HasTCX, FeatureClsact: f.HasClsact, FeatureKfreeSkbReason: f.KfreeSkbHasReason} {
		if !ok {
			privtest.Unavailable(t, string(name)+" ("+f.Missing[name]+")")
		}
	}
}

package trace

import (
	"testing"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

func TestProbeFeatures(t *testing.T) {
	privtest.Require(t)
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
	// hopcheck's CI and development kernels are 6.6 or later.
	for name, ok := range map[Feature]bool{FeatureBTF: f.HasBTF, FeatureLoad: f.CanLoad,
		FeatureTCX: f.HasTCX, FeatureClsact: f.HasClsact, FeatureKfreeSkbReason: f.KfreeSkbHasReason} {
		if !ok {
			privtest.Unavailable(t, string(name)+" ("+f.Missing[name]+")")
		}
	}
}

// TestProbeClsactCleansUp runs the clsact probe in a namespace of a known
// name: afterwards the namespace is gone.
func TestProbeClsactCleansUp(t *testing.T) {
	privtest.Require(t)
	runID, err := netns.NewRunID()
	if err != nil {
		t.Fatal(err)
	}
	name := netns.Name(runID, "probe")
	if why := probeClsactIn(name); why != "" {
		privtest.Unavailable(t, "clsact ("+why+")")
	}
	if netns.Exists(name) {
		t.Errorf("probe namespace %s left behind", name)
		_ = netns.Delete(name)
	}
}

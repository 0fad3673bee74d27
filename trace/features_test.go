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
		FeatureNetnsCookie: f.HasNetnsCookie,
	} {
		why, missing := f.Missing[name]
		if ok == missing || (missing && why == "") {
			t.Errorf("%s: present %v, reason %q", name, ok, why)
		}
	}
	// hopcheck's CI and development kernels are 6.6 or later.
	for name, ok := range map[Feature]bool{FeatureBTF: f.HasBTF, FeatureLoad: f.CanLoad,
		FeatureTCX: f.HasTCX, FeatureClsact: f.HasClsact, FeatureKfreeSkbReason: f.KfreeSkbHasReason,
		FeatureNetnsCookie: f.HasNetnsCookie} {
		if !ok {
			privtest.Unavailable(t, string(name)+" ("+f.Missing[name]+")")
		}
	}
}

// TestProbeClsactLeavesNothing runs the clsact probe: it works in an
// unnamed namespace, so no named namespace appears.
func TestProbeClsactLeavesNothing(t *testing.T) {
	privtest.Require(t)
	before, err := netns.List()
	if err != nil {
		t.Fatal(err)
	}
	if why := probeClsact(); why != "" {
		privtest.Unavailable(t, "clsact ("+why+")")
	}
	after, err := netns.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) > len(before) {
		t.Errorf("named namespaces before the probe %v, after %v", before, after)
	}
}

package trace

import (
	"os"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

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
// unnamed namespace, so no named namespace appears. The probe runs in a
// child process of this test with a mount namespace of its own and an
// empty tmpfs on the named-namespace directory, so namespaces that other
// tests name meanwhile cannot be taken for the probe's.
func TestProbeClsactLeavesNothing(t *testing.T) {
	privtest.Require(t)
	if os.Getenv("HOPCHECK_PROBE_CHILD") == "1" {
		if err := unix.Mount("tmpfs", netns.RunDir, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatalf("mount a private %s: %v", netns.RunDir, err)
		}
		if why := probeClsact(); why != "" {
			privtest.Unavailable(t, "clsact ("+why+")")
		}
		ents, err := os.ReadDir(netns.RunDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			t.Errorf("the probe left %s/%s", netns.RunDir, e.Name())
		}
		return
	}
	if err := os.MkdirAll(netns.RunDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestProbeClsactLeavesNothing$", "-test.v")
	cmd.Env = append(os.Environ(), "HOPCHECK_PROBE_CHILD=1")
	// Go makes the child's mounts private before it runs: the tmpfs
	// stays in the child's mount namespace.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("probe in a private mount namespace: %v\n%s", err, out)
	}
}

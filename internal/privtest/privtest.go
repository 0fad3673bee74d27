// Package privtest decides whether a test that needs root (namespaces,
// netlink, iptables, BPF) may run: outside CI it skips with a clear message
// when not root; under CI=true it fails instead, so CI can never pass by
// skipping the tests that matter.
package privtest

import (
	"os"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Require skips (or, in CI, fails) t unless the process is root.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "root (network namespaces, netlink, iptables, BPF)")
	}
}

// Unavailable ends t because a requirement named by what is missing: a skip
// with that name outside CI, a failure in CI.
func Unavailable(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("this test needs %s, which is not available; CI=true, so it fails instead of skipping", what)
	}
	t.Skipf("skipped: needs %s (run as root to include it)", what)
}

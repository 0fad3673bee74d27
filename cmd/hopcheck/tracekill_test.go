package main

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// TestCleanAfterKilledClsactTrace: a `trace --tc-attach clsact` killed with
// SIGKILL leaves its filters and qdiscs in namespaces hopcheck did not
// make; `clean` removes them, and a trace that ends normally leaves no
// record for clean.
func TestCleanAfterKilledClsactTrace(t *testing.T) {
	privtest.Require(t)
	runID, err := netns.NewRunID()
	if err != nil {
		t.Fatal(err)
	}
	names := [2]string{netns.Name(runID, "ka"), netns.Name(runID, "kb")}
	_, nls := sandboxPair(t, sandboxEnd{names[0], "eth0", "10.70.0.1/24"}, sandboxEnd{names[1], "eth0", "10.70.0.2/24"})
	// hopcheck's filters and clsact qdiscs on eth0 of both namespaces.
	attached := func() (filters, qdiscs int) {
		t.Helper()
		for _, h := range nls {
			l, err := h.LinkByName("eth0")
			if err != nil {
				t.Fatal(err)
			}
			for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
				fs, _ := h.FilterList(l, parent)
				filters += len(fs)
			}
			qs, err := h.QdiscList(l)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range qs {
				if q.Type() == "clsact" {
					qdiscs++
				}
			}
		}
		return filters, qdiscs
	}
	e := newEnv(t)
	p := e.startTrace("--tc-attach", "clsact", "--netns", names[0]+","+names[1])
	if f, q := attached(); f != 4 || q != 2 {
		t.Fatalf("while tracing: %d filters and %d clsact qdiscs, want 4 and 2", f, q)
	}
	p.signal(t, syscall.SIGKILL)
	p.wait()
	if f, _ := attached(); f != 4 {
		t.Fatalf("after SIGKILL: %d filters, want the 4 the trace left", f)
	}
	r := e.run("clean")
	if r.code != 0 || !strings.Contains(r.stdout, "removed the tc filters a killed trace left in "+names[0]) {
		t.Fatalf("clean: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if f, q := attached(); f != 0 || q != 0 {
		t.Errorf("after clean: %d filters and %d clsact qdiscs, want none", f, q)
	}

	// Ended normally, a trace detaches itself and leaves no record.
	p = e.startTrace("--tc-attach", "clsact", "--netns", names[0]+","+names[1])
	p.signal(t, syscall.SIGINT)
	if r := p.wait(); r.code != 0 {
		t.Fatalf("trace: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if f, q := attached(); f != 0 || q != 0 {
		t.Errorf("after an interrupted trace: %d filters and %d clsact qdiscs, want none", f, q)
	}
	if left, _ := filepath.Glob(filepath.Join(e.state, "attached", "*.json")); len(left) != 0 {
		t.Errorf("records left: %v", left)
	}
}

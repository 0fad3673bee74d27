package main

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// upLine is the first line `hopcheck up` prints.
var upLine = regexp.MustCompile(`^(\S+) is up \(run ([a-z0-9]+)\)\. Enter a namespace with:\n`)

// up runs `hopcheck up file` and returns the record of the topology it
// kept, checked against what it printed.
func (e *env) up(file, scenario string) *runs.Record {
	e.t.Helper()
	res := e.run("up", file)
	m := upLine.FindStringSubmatch(res.stdout)
	if res.code != exitOK || m == nil || m[1] != scenario {
		e.t.Fatalf("up %s: %v\nwant exit code 0 and %q first", file, res, scenario+" is up (run ID). Enter a namespace with:")
	}
	rec, err := e.store.Find(m[2])
	if err != nil {
		e.t.Fatalf("up printed run %s, which has no record: %v", m[2], err)
	}
	if !rec.Kept || rec.Scenario != scenario || !allExist(rec) {
		e.t.Fatalf("record of run %s = %+v (namespaces present: %v); want a kept %s whose namespaces all exist", m[2], rec, stillExisting(rec), scenario)
	}
	for _, ns := range rec.NamespaceNames() {
		if want := "sudo ip netns exec " + rec.Namespaces[ns] + " bash"; !strings.Contains(res.stdout, want) {
			e.t.Errorf("up does not tell how to enter %s (%q):\n%s", ns, want, res.stdout)
		}
	}
	return rec
}

// TestUpListExecDown keeps a topology up, finds it with list, runs
// commands in two of its namespaces, and takes it down again; then keeps
// two and takes both down with --all.
func TestUpListExecDown(t *testing.T) {
	t.Parallel()
	privtest.Require(t)
	if _, err := exec.LookPath("ip"); err != nil {
		privtest.Unavailable(t, "the ip command (iproute2) to run through hopcheck exec")
	}
	e := newEnv(t)
	rec := e.up("testdata/pass.yaml", "e2e-pass")

	res := e.run("list")
	if res.code != exitOK || !regexp.MustCompile(`(?m)^e2e-pass\s+`+rec.RunID+`\s+kept\s+2\s+testdata/pass.yaml\s`).MatchString(res.stdout) {
		t.Errorf("list: %v\nwant a line: e2e-pass %s kept 2 testdata/pass.yaml ...", res, rec.RunID)
	}

	// exec runs the command in the namespace named, which the addresses
	// prove: each namespace has its own.
	for _, tt := range []struct{ ns, addr, other string }{
		{"a", "10.9.0.1/24", "10.9.0.2/24"},
		{"b", "10.9.0.2/24", "10.9.0.1/24"},
	} {
		res := e.run("exec", "e2e-pass", tt.ns, "--", "ip", "-br", "addr")
		eth0 := lineWith(res.stdout, "eth0")
		if res.code != exitOK || !strings.Contains(eth0, " UP ") || !strings.Contains(eth0, tt.addr) || strings.Contains(res.stdout, tt.other) {
			t.Errorf("exec in %s: %v\nwant eth0 UP with %s only", tt.ns, res, tt.addr)
		}
	}
	if res := e.run("exec", "e2e-pass", "nosuchns", "--", "true"); res.code != exitBadInput || !strings.Contains(res.stderr, `has no namespace "nosuchns"`) {
		t.Errorf("exec in a missing namespace: %v\nwant exit code %d naming it", res, exitBadInput)
	}

	res = e.run("down", "e2e-pass")
	if res.code != exitOK || res.stdout != "removed e2e-pass (run "+rec.RunID+")\n" {
		t.Errorf("down: %v", res)
	}
	if left := stillExisting(rec); len(left) > 0 {
		t.Errorf("down left namespaces: %v", left)
	}
	if res := e.run("list"); strings.Contains(res.stdout, rec.RunID) {
		t.Errorf("list after down still shows run %s:\n%s", rec.RunID, res.stdout)
	}
	if res := e.run("down", "e2e-pass"); res.code != exitBadInput {
		t.Errorf("down of a topology that is gone: %v\nwant exit code %d", res, exitBadInput)
	}

	kept := []*runs.Record{e.up("testdata/pass.yaml", "e2e-pass"), e.up("testdata/fail.yaml", "e2e-fail")}
	res = e.run("down", "--all")
	if res.code != exitOK {
		t.Errorf("down --all: %v", res)
	}
	for _, r := range kept {
		if !strings.Contains(res.stdout, "removed "+r.Scenario+" (run "+r.RunID+")\n") {
			t.Errorf("down --all did not report removing %s (run %s):\n%s", r.Scenario, r.RunID, res.stdout)
		}
		if left := stillExisting(r); len(left) > 0 {
			t.Errorf("down --all left namespaces of %s: %v", r.Scenario, left)
		}
	}
	e.assertNothingLeft()
}

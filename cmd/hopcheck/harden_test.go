package main

// Tests of issue 13: hostile state directories, runs killed mid-build,
// half-created namespaces, concurrent cleans, hostile report paths.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"golang.org/x/sys/unix"
)

// manyNamespaces writes a scenario of n bare namespaces, slow enough to
// build that a test can kill the build half way.
func manyNamespaces(t *testing.T, name string, n int) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nnamespaces:\n", name)
	for i := range n {
		fmt.Fprintf(&b, "  n%03d:\n    interfaces:\n      d0: {type: dummy, addresses: [192.0.2.%d/32]}\n", i, i%250+1)
	}
	p := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCleanAfterUpKilledMidBuild kills `up` with SIGKILL while it builds.
// The run never finished, so it is not kept: list calls it left over, and
// clean removes it, including a namespace entry created but never mounted.
// Three cleans at once all succeed and report each namespace once in all.
func TestCleanAfterUpKilledMidBuild(t *testing.T) {
	t.Parallel()
	privtest.Require(t)
	e := newEnv(t)
	p := e.start("up", manyNamespaces(t, "e2e-killed-up", 200))
	var rec *runs.Record
	deadline := time.Now().Add(30 * time.Second)
	for rec == nil && time.Now().Before(deadline) && !p.exited() {
		for _, r := range e.records() {
			if r.PID == p.cmd.Process.Pid && len(stillExisting(r)) > 0 {
				rec = r
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if rec == nil {
		t.Fatalf("up made no namespace within 30s:\n%v", p.wait())
	}
	p.signal(t, syscall.SIGKILL)
	if res := p.wait(); strings.Contains(res.stdout, " is up (run ") {
		t.Skipf("up finished its build before SIGKILL arrived; nothing to test")
	}
	// What SIGKILL between creating an entry and mounting it leaves.
	for _, ns := range slices.Backward(rec.NamespaceNames()) {
		if k := rec.Namespaces[ns]; !netns.Exists(k) {
			if err := os.WriteFile(filepath.Join(netns.RunDir, k), nil, 0o444); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	left := stillExisting(rec)

	res := e.run("list")
	if !regexp.MustCompile(`(?m)^e2e-killed-up\s+` + rec.RunID + `\s+left over`).MatchString(res.stdout) {
		t.Errorf("list: %v\nwant run %s left over", res, rec.RunID)
	}
	cleans := []*proc{e.start("clean"), e.start("clean"), e.start("clean")}
	var removed []string
	for _, c := range cleans {
		res := c.wait()
		if res.code != exitOK {
			t.Errorf("clean: %v", res)
		}
		for l := range strings.Lines(res.stdout) {
			if n, ok := strings.CutPrefix(strings.TrimSpace(l), "removed namespace "); ok {
				removed = append(removed, n)
			}
		}
	}
	slices.Sort(removed)
	if !slices.Equal(removed, left) {
		t.Errorf("the cleans removed %d namespaces in all; want each of the %d left over exactly once\nremoved: %v\nleft:    %v", len(removed), len(left), removed, left)
	}
	e.assertNothingLeft()
}

// TestStateDirectoryPlantedFiles plants files in the state directory: a
// FIFO and a symbolic link named like records, and a record naming a path
// outside the netns run directory. list and clean finish at once, warn
// about each and trust none; down finds no such run and deletes nothing.
func TestStateDirectoryPlantedFiles(t *testing.T) {
	t.Parallel()
	privtest.Require(t)
	e := newEnv(t)
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(e.state, "fifofi.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(e.state, "linkli.json")); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(runs.Record{RunID: "escape", Scenario: "escape", Kept: true, Namespaces: map[string]string{"x": "../../../.." + victim}})
	if err := os.WriteFile(filepath.Join(e.state, "escape.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"list"}, {"clean"}, {"down", "--all"}, {"down", "escape"}} {
		start := time.Now()
		res := e.run(args...)
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("%v took %v", args, d)
		}
		if args[len(args)-1] == "escape" {
			if res.code != exitBadInput || !strings.Contains(res.stderr, `"escape": no such run`) {
				t.Errorf("down escape: %v\nwant exit code 2, no such run", res)
			}
			continue
		}
		if res.code != exitOK {
			t.Errorf("%v: %v", args, res)
		}
		for _, f := range []string{"fifofi.json", "linkli.json", "escape.json"} {
			if !strings.Contains(res.stderr, "hopcheck: ignored: ") || !strings.Contains(res.stderr, "/"+f+":") {
				t.Errorf("%v: no warning about %s:\n%v", args, f, res)
			}
		}
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "precious" {
		t.Errorf("victim after down: %q, %v", b, err)
	}

	// A state directory others may write is refused whole.
	if err := os.Chmod(e.state, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"list", "clean"} {
		res := e.run(cmd)
		if res.code != exitBadInput || !strings.Contains(res.stderr, "writable by group or others") {
			t.Errorf("%s in a world-writable state directory: %v\nwant exit code 2 and why", cmd, res)
		}
	}
}

// TestRunRefusesClashingOutputs: outputs that would overwrite each other or
// a scenario file, and a --pcap that is a file, are bad input: exit 2
// before anything is built or recorded.
func TestRunRefusesClashingOutputs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "scenario-link.json")
	abs, _ := filepath.Abs("testdata/pass.yaml")
	if err := os.Symlink(abs, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--json", out, "--junit", out}, "--json " + out + " and --junit " + out + " are the same file"},
		{[]string{"--json", "testdata/pass.yaml"}, "--json testdata/pass.yaml is the scenario file testdata/pass.yaml"},
		{[]string{"--junit", link}, "--junit " + link + " is the scenario file testdata/pass.yaml"},
		{[]string{"--pcap", file}, "--pcap " + file + ": not a directory"},
		{[]string{"--pcap", dir, "--json", filepath.Join(dir, "e2e-pass.pcapng")}, "are the same file"},
	} {
		e := newEnv(t)
		res := e.run(append(append([]string{"run"}, tt.args...), "testdata/pass.yaml")...)
		if res.code != exitBadInput || !strings.Contains(res.stderr, tt.want) || res.stdout != "" {
			t.Errorf("run %v: %v\nwant exit code %d and %q", tt.args, res, exitBadInput, tt.want)
		}
		if ids := e.runIDs(); len(ids) > 0 {
			t.Errorf("run %v recorded runs: %v", tt.args, ids)
		}
	}
	if b, _ := os.ReadFile("testdata/pass.yaml"); !strings.HasPrefix(string(b), "#") && !strings.Contains(string(b), "name:") {
		t.Errorf("testdata/pass.yaml was overwritten")
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Errorf("the file given as --pcap was changed: %q", b)
	}
}

// TestRunReportsReplacePlantedLinks plants symbolic links where the run's
// reports and capture go: one to a file that must not change, one dangling.
// The run replaces each link with its report, writing through none.
func TestRunReportsReplacePlantedLinks(t *testing.T) {
	t.Parallel()
	privtest.Require(t)
	e := newEnv(t)
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	pcapDir := filepath.Join(dir, "pcap")
	if err := os.Mkdir(pcapDir, 0o755); err != nil {
		t.Fatal(err)
	}
	jsonPath, junitPath, pcapPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "j.xml"), filepath.Join(pcapDir, "e2e-pass.pcapng")
	victim2 := filepath.Join(dir, "victim2")
	if err := os.WriteFile(victim2, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	for p, target := range map[string]string{jsonPath: victim, junitPath: filepath.Join(dir, "made-through-link"), pcapPath: victim2} {
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	res := e.run("run", "--json", jsonPath, "--junit", junitPath, "--pcap", pcapDir, "testdata/pass.yaml")
	if res.code != exitOK {
		t.Fatalf("run: %v", res)
	}
	for _, v := range []string{victim, victim2} {
		if b, _ := os.ReadFile(v); string(b) != "precious" {
			t.Errorf("a report was written through a planted link: %s holds %.40q", v, b)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "made-through-link")); err == nil {
		t.Errorf("a dangling link's target was created")
	}
	for _, p := range []string{jsonPath, junitPath, pcapPath} {
		if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
			t.Errorf("%s: %v, %v; want a regular, non-empty report", p, fi, err)
		}
	}
	var rep map[string]any
	readJSON(t, jsonPath, &rep)
	if ents, _ := os.ReadDir(pcapDir); len(ents) != 1 {
		t.Errorf("--pcap directory holds %d entries; want only the capture", len(ents))
	}
	e.assertNothingLeft()
}

package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/internal/privtest"
)

func readJUnit(t *testing.T, path string) junitDoc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read JUnit report: %v", err)
	}
	var d junitDoc
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s is not valid XML: %v\n%s", path, err, b)
	}
	return d
}

// reportedRun is the part of a JSON report these tests read.
type reportedRun struct {
	Passed    bool `json:"passed"`
	Scenarios []struct {
		Name       string `json:"name"`
		File       string `json:"file"`
		Passed     bool   `json:"passed"`
		InputError bool   `json:"input_error"`
		Error      string `json:"error"`
		Checks     []struct {
			Passed bool `json:"passed"`
		} `json:"checks"`
	} `json:"scenarios"`
}

// TestBadInputAmongGoodKeepsReports: a run given an invalid file among
// valid ones prints the file's problems, still runs the valid scenario,
// writes --json and --junit with the invalid file as an errored "validate"
// testcase carrying its file:line:col message, and exits 2.
func TestBadInputAmongGoodKeepsReports(t *testing.T) {
	t.Parallel()
	privtest.Require(t)
	e := newEnv(t)
	dir := t.TempDir()
	jsonPath, junitPath := filepath.Join(dir, "report.json"), filepath.Join(dir, "junit.xml")
	const bad = "testdata/bad/bad-cidr.yaml"
	want := badInputs[0].want[0]
	if !strings.HasPrefix(want, bad+":") {
		t.Fatalf("badInputs[0] is not %s", bad)
	}
	res := e.run("run", "--json", jsonPath, "--junit", junitPath, bad, "testdata/pass.yaml")
	if res.code != exitBadInput {
		t.Errorf("exit code %d, want %d\n%v", res.code, exitBadInput, res)
	}
	if res.stderr != want+"\n" {
		t.Errorf("stderr %q, want the file's problem %q", res.stderr, want)
	}
	if !strings.Contains(res.stdout, "PASS  e2e-pass") || !strings.Contains(res.stdout, ", 1 invalid") {
		t.Errorf("stdout should show the valid scenario's checks and count the invalid file:\n%s", res.stdout)
	}

	var rep reportedRun
	readJSON(t, jsonPath, &rep)
	if rep.Passed || len(rep.Scenarios) != 2 {
		t.Fatalf("JSON report: passed %v, %d scenarios; want a failed run of 2", rep.Passed, len(rep.Scenarios))
	}
	inv, good := rep.Scenarios[0], rep.Scenarios[1]
	if !inv.InputError || inv.File != bad || inv.Error != want || len(inv.Checks) != 0 {
		t.Errorf("invalid file's report = %+v; want input_error with %q", inv, want)
	}
	if good.Name != "e2e-pass" || !good.Passed || len(good.Checks) != 3 {
		t.Errorf("valid scenario's report = %+v; want e2e-pass run and passed", good)
	}

	doc := readJUnit(t, junitPath)
	if doc.Errors != 1 || len(doc.Suites) != 2 {
		t.Fatalf("JUnit: %d errors, %d suites; want 1 error in 2 suites", doc.Errors, len(doc.Suites))
	}
	s := doc.Suites[0]
	if s.Name != bad || len(s.Cases) != 1 || s.Cases[0].Name != "validate" || s.Cases[0].Error == nil {
		t.Fatalf("JUnit suite for %s = %+v; want one errored testcase \"validate\"", bad, s)
	}
	if e := s.Cases[0].Error; e.Message != want || e.Type != "validate" || strings.TrimSpace(e.Body) != want {
		t.Errorf("JUnit error = %+v; want message and body %q", e, want)
	}
	e.assertNothingLeft()
}

// TestBadInputOnlyKeepsReports: when every file is invalid, nothing needs
// root and nothing is built, but the reports are still written; exit 2.
func TestBadInputOnlyKeepsReports(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// nobody must be able to write the reports; t.TempDir's parent is
	// private.
	dir, err := os.MkdirTemp("", "hopcheck-badreport-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	jsonPath, junitPath := filepath.Join(dir, "report.json"), filepath.Join(dir, "junit.xml")
	res := e.runUnprivileged("run", "--json", jsonPath, "--junit", junitPath, "testdata/bad/syntax.yaml", "testdata/bad/veth-twice.yaml")
	var want []string
	for _, b := range badInputs {
		if b.file == "syntax.yaml" || b.file == "veth-twice.yaml" {
			want = append(want, b.want...)
		}
	}
	if res.code != exitBadInput || res.stderr != wantStderr(want) || res.stdout != "" {
		t.Errorf("got %v\nwant exit code %d, no stdout, stderr:\n%s", res, exitBadInput, wantStderr(want))
	}
	var rep reportedRun
	readJSON(t, jsonPath, &rep)
	if rep.Passed || len(rep.Scenarios) != 2 || !rep.Scenarios[0].InputError || !rep.Scenarios[1].InputError {
		t.Errorf("JSON report = %+v; want two invalid files", rep)
	}
	if doc := readJUnit(t, junitPath); doc.Errors != 2 || doc.Tests != 2 {
		t.Errorf("JUnit: %d tests, %d errors; want 2 errored testcases", doc.Tests, doc.Errors)
	}
	if ids := e.runIDs(); len(ids) > 0 {
		t.Errorf("runs recorded for bad input: %v", ids)
	}
}

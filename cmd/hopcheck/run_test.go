package main

import (
	"encoding/xml"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// jsonRequired are the keys issue 2 requires in the JSON report, by level.
var jsonRequired = struct{ run, scenario, check []string }{
	run:      []string{"passed", "scenarios"},
	scenario: []string{"name", "file", "passed", "duration_ms", "checks"},
	check:    []string{"name", "kind", "expect", "passed", "duration_ms", "error", "details"},
}

// junitDoc is the JUnit shape CI systems read: testsuites > testsuite >
// testcase > failure | error.
type junitDoc struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Cases    []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Body    string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Body    string `xml:",chardata"`
			} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// TestRunExitCodeAndReports runs one scenario that passes and one with a
// ping that cannot succeed: exit codes 0 and 1, and JSON and JUnit reports
// that parse and say the same as the exit code.
func TestRunExitCodeAndReports(t *testing.T) {
	t.Parallel()
	privtest.Require(t)
	tests := []struct {
		file     string
		scenario string
		code     int
		// checks maps each check's name to whether it passed.
		checks map[string]bool
	}{
		{"testdata/pass.yaml", "e2e-pass", exitOK, map[string]bool{
			"ping a -> 10.9.0.2":           true,
			"link b eth0":                  true,
			"nothing answers for 10.9.0.3": true,
		}},
		{"testdata/fail.yaml", "e2e-fail", exitCheckFailed, map[string]bool{
			"ping a -> 10.9.0.2":              true,
			"a reaches an address nobody has": false,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			dir := t.TempDir()
			jsonPath, junitPath := filepath.Join(dir, "report.json"), filepath.Join(dir, "junit.xml")
			res := e.run("run", "--json", jsonPath, "--junit", junitPath, tt.file)
			if res.code != tt.code {
				t.Errorf("exit code %d, want %d\n%v", res.code, tt.code, res)
			}
			passed := tt.code == exitOK
			checkJSONReport(t, jsonPath, tt.scenario, tt.file, passed, tt.checks)
			checkJUnitReport(t, junitPath, tt.scenario, tt.checks)
			e.assertNothingLeft()
		})
	}
}

// checkJSONReport asserts that the JSON report has every required key at
// every level and reports one scenario with the given check results.
func checkJSONReport(t *testing.T, path, scenario, file string, passed bool, checks map[string]bool) {
	t.Helper()
	var doc map[string]any
	readJSON(t, path, &doc)
	requireKeys(t, "report", doc, jsonRequired.run)
	if doc["passed"] != passed {
		t.Errorf("report passed = %v, want %v", doc["passed"], passed)
	}
	scs, _ := doc["scenarios"].([]any)
	if len(scs) != 1 {
		t.Fatalf("report has %d scenarios, want 1: %v", len(scs), doc["scenarios"])
	}
	sc, _ := scs[0].(map[string]any)
	requireKeys(t, "scenario", sc, jsonRequired.scenario)
	if sc["name"] != scenario || sc["file"] != file || sc["passed"] != passed {
		t.Errorf("scenario name %v, file %v, passed %v; want %s, %s, %v", sc["name"], sc["file"], sc["passed"], scenario, file, passed)
	}
	cks, _ := sc["checks"].([]any)
	got := map[string]bool{}
	for i, c := range cks {
		ck, _ := c.(map[string]any)
		requireKeys(t, fmt.Sprintf("check %d", i), ck, jsonRequired.check)
		name, _ := ck["name"].(string)
		p, _ := ck["passed"].(bool)
		got[name] = p
		if errMsg, _ := ck["error"].(string); p == (errMsg != "") {
			t.Errorf("check %q: passed %v but error %q", name, p, errMsg)
		}
	}
	if !maps.Equal(got, checks) {
		t.Errorf("JSON checks (name: passed) = %v, want %v", got, checks)
	}
}

// requireKeys fails t for every key of want that m lacks.
func requireKeys(t *testing.T, what string, m map[string]any, want []string) {
	t.Helper()
	if m == nil {
		t.Fatalf("%s is not a JSON object", what)
	}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("%s has no key %q (keys: %v)", what, k, slices.Sorted(maps.Keys(m)))
		}
	}
}

// checkJUnitReport asserts that the JUnit file parses into one testsuite
// named for the scenario with one testcase per check, a <failure> with a
// message exactly on the failed ones, and counts that agree.
func checkJUnitReport(t *testing.T, path, scenario string, checks map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc junitDoc
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s is not JUnit XML: %v\n%s", path, err, b)
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("JUnit has %d testsuites, want 1:\n%s", len(doc.Suites), b)
	}
	s := doc.Suites[0]
	failures := 0
	got := map[string]bool{}
	for _, c := range s.Cases {
		got[c.Name] = c.Failure == nil
		if c.Failure != nil {
			failures++
			if c.Failure.Message == "" {
				t.Errorf("testcase %q: <failure> without a message", c.Name)
			}
		}
	}
	if s.Name != scenario || s.Tests != len(checks) || s.Failures != failures || doc.Tests != s.Tests || doc.Failures != failures {
		t.Errorf("JUnit counts: suite %q tests %d failures %d, testsuites tests %d failures %d; want %q, %d, %d\n%s",
			s.Name, s.Tests, s.Failures, doc.Tests, doc.Failures, scenario, len(checks), failures, b)
	}
	if !maps.Equal(got, checks) {
		t.Errorf("JUnit testcases (name: passed) = %v, want %v", got, checks)
	}
}

// TestRunLeavesRootNamespaceAlone snapshots the root namespace around a full
// run of a library scenario that sets sysctls and iptables rules in its
// sandbox host: links, routes, rules, iptables and sysctls must be as
// before, and nothing of the run may remain.
func TestRunLeavesRootNamespaceAlone(t *testing.T) {
	t.Parallel()
	privtest.Require(t)
	e := newEnv(t)
	before := snapshotRoot(t)
	res := e.run("run", "../../scenarios/nat-egress.yaml")
	after := snapshotRoot(t)
	if res.code != exitOK {
		t.Errorf("nat-egress did not pass:\n%v", res)
	}
	for _, part := range slices.Sorted(maps.Keys(before)) {
		if before[part] != after[part] {
			t.Errorf("root namespace %s changed:\nbefore:\n%s\nafter:\n%s", part, before[part], after[part])
		}
	}
	e.assertNothingLeft()
}

// rootSysctls are the root namespace's settings a scenario most plausibly
// sets in its own namespaces (forwarding, reverse-path filter, ICMP
// sockets), read to prove the run set them only there.
var rootSysctls = []string{
	"net/ipv4/ip_forward",
	"net/ipv4/conf/all/forwarding",
	"net/ipv4/conf/all/rp_filter",
	"net/ipv4/conf/default/rp_filter",
	"net/ipv4/conf/all/proxy_arp",
	"net/ipv4/ping_group_range",
	"net/ipv6/conf/all/forwarding",
}

// counters matches the packet and byte counters of iptables-save, which
// traffic outside the test may move.
var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// snapshotRoot describes the root namespace (this test process's) by part:
// each part is text, so a change can be shown.
func snapshotRoot(t *testing.T) map[string]string {
	t.Helper()
	snap := map[string]string{}

	links, err := netlink.LinkList()
	if err != nil {
		t.Fatalf("list links: %v", err)
	}
	var ls []string
	for _, l := range links {
		a := l.Attrs()
		ls = append(ls, fmt.Sprintf("%d %s %s flags=%v mtu=%d master=%d", a.Index, a.Name, l.Type(), a.Flags, a.MTU, a.MasterIndex))
	}
	snap["links"] = lines(ls)

	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatalf("list routes: %v", err)
	}
	var rs []string
	for _, r := range routes {
		rs = append(rs, fmt.Sprintf("table %d %s", r.Table, r))
	}
	snap["routes"] = lines(rs)

	rules, err := netlink.RuleList(netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("list rules: %v", err)
	}
	var rus []string
	for _, r := range rules {
		rus = append(rus, r.String())
	}
	snap["rules"] = lines(rus)

	for _, k := range rootSysctls {
		b, err := os.ReadFile("/proc/sys/" + k)
		if err != nil {
			b = []byte("(" + err.Error() + ")")
		}
		snap["sysctl "+k] = strings.TrimSpace(string(b))
	}

	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		if _, err := exec.LookPath(save); err != nil {
			continue
		}
		out, err := exec.Command(save).Output()
		if err != nil {
			t.Fatalf("%s: %v", save, err)
		}
		var kept []string
		for l := range strings.Lines(string(out)) {
			if !strings.HasPrefix(l, "#") { // "# Generated by ... on <time>"
				kept = append(kept, counters.ReplaceAllString(strings.TrimSpace(l), "[-:-]"))
			}
		}
		snap[save] = strings.Join(kept, "\n")
	}
	return snap
}

// lines sorts ss and joins them one per line.
func lines(ss []string) string {
	slices.Sort(ss)
	return strings.Join(ss, "\n")
}

// TestRunSameScenarioTwiceAtOnce runs two processes of the bridge scenario
// at the same time: run-specific names keep them apart, so both pass.
func TestRunSameScenarioTwiceAtOnce(t *testing.T) {
	t.Parallel()
	privtest.Require(t)
	e := newEnv(t)
	a := e.start("run", "../../scenarios/bridge.yaml")
	b := e.start("run", "../../scenarios/bridge.yaml")
	for i, p := range []*proc{a, b} {
		if res := p.wait(); res.code != exitOK {
			t.Errorf("run %d: %v", i+1, res)
		}
	}
	if ids := e.assertNothingLeft(); len(ids) != 2 {
		t.Errorf("runs recorded: %v; want two distinct runs", ids)
	}
}

// TestRunShards runs the three shards of a directory of five scenarios:
// together they run every scenario exactly once.
func TestRunShards(t *testing.T) {
	t.Parallel()
	privtest.Require(t)
	e := newEnv(t)
	dir := t.TempDir()
	seen := map[string]string{}
	for k := 1; k <= 3; k++ {
		shard := fmt.Sprintf("%d/3", k)
		jsonPath := filepath.Join(dir, fmt.Sprintf("shard%d.json", k))
		res := e.run("run", "--shard", shard, "--json", jsonPath, "testdata/shard")
		if res.code != exitOK {
			t.Errorf("shard %s: %v", shard, res)
		}
		var rep struct {
			Shard     string `json:"shard"`
			Scenarios []struct {
				Name string `json:"name"`
			} `json:"scenarios"`
		}
		readJSON(t, jsonPath, &rep)
		if rep.Shard != shard {
			t.Errorf("shard %s: report says shard %q", shard, rep.Shard)
		}
		if len(rep.Scenarios) == 0 {
			t.Errorf("shard %s ran no scenario", shard)
		}
		for _, s := range rep.Scenarios {
			if prev, ok := seen[s.Name]; ok {
				t.Errorf("%s ran in shard %s and again in shard %s", s.Name, prev, shard)
			}
			seen[s.Name] = shard
		}
	}
	want := []string{"e2e-shard-1", "e2e-shard-2", "e2e-shard-3", "e2e-shard-4", "e2e-shard-5"}
	if got := slices.Sorted(maps.Keys(seen)); !slices.Equal(got, want) {
		t.Errorf("the shards ran %v; want each of %v once", got, want)
	}
	e.assertNothingLeft()
}

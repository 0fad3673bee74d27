package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"golang.org/x/sys/unix"
)

// badInputs are the files in testdata/bad, one mistake each, with the exact
// report hopcheck must give: file:line:col: field: message, one line per
// problem. (YAML syntax errors carry a line only: the YAML parser does not
// report a column.)
var badInputs = []struct {
	file string
	want []string
}{
	{"bad-cidr.yaml", []string{
		`testdata/bad/bad-cidr.yaml:6:26: namespaces.bad-a.interfaces.eth0.addresses[0]: address "10.0.0.300/24" is not a CIDR`,
	}},
	{"bad-iptables.yaml", []string{
		`testdata/bad/bad-iptables.yaml:8:9: namespaces.bad-a.iptables[0]: iptables "-A INPUT -p icmp -j NOSUCHTARGET": target "NOSUCHTARGET" is neither a known target nor a chain made earlier with -N in table filter`,
	}},
	{"bad-mac.yaml", []string{
		`testdata/bad/bad-mac.yaml:6:45: namespaces.bad-a.interfaces.eth0.mac: MAC "02:00:00:00:01" is not an Ethernet address like 02:00:00:00:00:01`,
	}},
	{"bad-route.yaml", []string{
		`testdata/bad/bad-route.yaml:8:9: namespaces.bad-a.routes[0]: route "default gw 10.0.0.2": unknown word "gw"; after the destination come via GW, dev IF, src IP, metric N, table N`,
	}},
	{"duplicate-key.yaml", []string{
		`testdata/bad/duplicate-key.yaml:10:3: namespaces: duplicate key "bad-a" (first at line 4:3)`,
	}},
	{"iptables-modprobe.yaml", []string{
		`testdata/bad/iptables-modprobe.yaml:7:9: namespaces.bad-a.iptables[0]: iptables "-A INPUT -p icmp --modprobe=/tmp/evil -j ACCEPT": --modprobe=/tmp/evil is not allowed: it makes iptables run a program of your choice as root to load modules`,
	}},
	{"link-missing-ns.yaml", []string{
		`testdata/bad/link-missing-ns.yaml:9:18: links[0][1]: no namespace "bad-c" (did you mean "bad-a"?)`,
	}},
	{"long-name.yaml", []string{
		`testdata/bad/long-name.yaml:6:7: namespaces.bad-a.interfaces: interface name "eth0-to-bad-b-ns" is 16 characters; Linux allows at most 15 (IFNAMSIZ)`,
		`testdata/bad/long-name.yaml:11:6: links[0][0]: interface name "eth0-to-bad-b-ns" is 16 characters; Linux allows at most 15 (IFNAMSIZ)`,
	}},
	{"master-not-bridge.yaml", []string{
		`testdata/bad/master-not-bridge.yaml:6:23: namespaces.bad-a.interfaces.veth1.master: master veth2 is not a bridge (it is a veth)`,
	}},
	{"merge-scalar.yaml", []string{
		`testdata/bad/merge-scalar.yaml:6:17: namespaces.bad-a.interfaces.br0: a merge key (<<) takes a mapping or a list of mappings, found "bridge"`,
	}},
	{"nat-family.yaml", []string{
		`testdata/bad/nat-family.yaml:13:45: checks[0].ping.snat: snat 2001:db8::1 is IPv6 but the probe goes to 10.0.0.2, an IPv4 address; NAT never changes the family, so this can never pass`,
	}},
	{"syntax.yaml", []string{
		`testdata/bad/syntax.yaml:5: YAML syntax: did not find expected ',' or '}'`,
	}},
	{"sysctl-newline.yaml", []string{
		`testdata/bad/sysctl-newline.yaml:6:28: namespaces.bad-a.sysctls.net.ipv4.ip_forward: sysctl net.ipv4.ip_forward: the value "1\n0" holds a control character (U+000A); write it on one line, words separated by spaces`,
	}},
	{"to-lo.yaml", []string{
		`testdata/bad/to-lo.yaml:11:29: checks[0].ping.to: bad-b/lo has no address in the scenario to send to (an IPv4 address, or an IPv6 one that is not link-local, outside loopback 127.0.0.0/8 and ::1); give it one, or write the address`,
	}},
	{"unknown-key.yaml", []string{
		`testdata/bad/unknown-key.yaml:6:14: namespaces.bad-a.interfaces.eth0: unknown key "adress" (did you mean "addresses"?)`,
	}},
	{"veth-twice.yaml", []string{
		`testdata/bad/veth-twice.yaml:11:6: links[1][0]: veth end bad-a/eth0 is already used by the link at line 10:6`,
	}},
}

// badNamespaces are the namespace names the files in testdata/bad use;
// nothing else in these tests uses them.
var badNamespaces = []string{"bad-a", "bad-b", "bad-c"}

// wantStderr is what hopcheck prints for a list of problems: every line
// starts with its position, the first one included, so that editors and CI
// annotations can jump to each.
func wantStderr(lines []string) string {
	return strings.Join(lines, "\n") + "\n"
}

// TestBadInputValidate runs validate without root (as nobody when the
// tests run as root): it reports each mistake exactly and exits 2.
func TestBadInputValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range badInputs {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			res := e.runUnprivileged("validate", filepath.Join("testdata/bad", tt.file))
			if res.code != exitBadInput || res.stderr != wantStderr(tt.want) || res.stdout != "" {
				t.Errorf("got %v\nwant exit code %d, no stdout, stderr:\n%s", res, exitBadInput, wantStderr(tt.want))
			}
		})
	}
}

// TestBadInputValidateDirectory validates the whole directory: every file's
// problems, in file order, in one report.
func TestBadInputValidateDirectory(t *testing.T) {
	t.Parallel()
	var all []string
	for _, tt := range badInputs {
		all = append(all, tt.want...)
	}
	if ents, err := os.ReadDir("testdata/bad"); err != nil || len(ents) != len(badInputs) {
		t.Fatalf("testdata/bad holds %d files (%v); the table covers %d", len(ents), err, len(badInputs))
	}
	e := newEnv(t)
	res := e.runUnprivileged("validate", "testdata/bad")
	if res.code != exitBadInput || res.stderr != wantStderr(all) {
		t.Errorf("got %v\nwant exit code %d, stderr:\n%s", res, exitBadInput, wantStderr(all))
	}
}

// TestBadInputRun runs each bad file as root: the same report, exit code 2,
// and nothing created: no run record was ever written, and no namespace of
// the file's exists.
func TestBadInputRun(t *testing.T) {
	t.Parallel()
	privtest.Require(t)
	for _, tt := range badInputs {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			res := e.run("run", filepath.Join("testdata/bad", tt.file))
			if res.code != exitBadInput || res.stderr != wantStderr(tt.want) || res.stdout != "" {
				t.Errorf("got %v\nwant exit code %d, no stdout, stderr:\n%s", res, exitBadInput, wantStderr(tt.want))
			}
			if ids := e.runIDs(); len(ids) > 0 {
				t.Errorf("runs recorded for bad input: %v", ids)
			}
			assertNoBadNamespaces(t)
		})
	}
}

// assertNoBadNamespaces fails t if any hopcheck namespace on the machine
// has a name that only the files in testdata/bad use.
func assertNoBadNamespaces(t *testing.T) {
	t.Helper()
	names, err := netns.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, ns, ok := netns.ParseName(n); ok && slices.Contains(badNamespaces, ns) {
			t.Errorf("namespace %s exists after bad input", n)
		}
	}
}

// TestIPTablesRejectsAtBuild runs a rule that the parser accepts and
// iptables refuses: the scenario fails to build with iptables' own message
// under the rule's position, the run tears down what it built before the
// rule, and hopcheck exits 2.
func TestIPTablesRejectsAtBuild(t *testing.T) {
	t.Parallel()
	privtest.Require(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		privtest.Unavailable(t, "the iptables command")
	}
	e := newEnv(t)
	const file = "testdata/iptables-rejected.yaml"
	jsonPath := filepath.Join(t.TempDir(), "report.json")

	vres := e.run("validate", file)
	if vres.code != exitOK {
		t.Fatalf("validate should accept %s, which only iptables refuses: %v", file, vres)
	}
	res := e.run("run", "--json", jsonPath, file)
	if res.code != exitBadInput {
		t.Errorf("exit code %d, want %d\n%v", res.code, exitBadInput, res)
	}
	// The position and field are hopcheck's; the reason is iptables' own
	// words, which vary a little between iptables versions.
	const where = file + `:10:9: namespaces.rej-a.iptables[1]: iptables -t nat -A PREROUTING -p tcp --dport 80 -j DNAT --to-destinaton 10.9.0.2: `
	const why = `unknown option "--to-destinaton"`
	line := lineWith(res.stdout, where)
	if line == "" || !strings.Contains(line, why) {
		t.Errorf("stdout has no line with %q ... %q:\n%s", where, why, res.stdout)
	}

	var rep struct {
		Passed    bool `json:"passed"`
		Scenarios []struct {
			Name       string            `json:"name"`
			Passed     bool              `json:"passed"`
			BuildError bool              `json:"build_error"`
			Error      string            `json:"error"`
			Checks     []json.RawMessage `json:"checks"`
		} `json:"scenarios"`
	}
	readJSON(t, jsonPath, &rep)
	if rep.Passed || len(rep.Scenarios) != 1 {
		t.Fatalf("report: passed %v, %d scenarios; want a failed run of 1", rep.Passed, len(rep.Scenarios))
	}
	s := rep.Scenarios[0]
	if s.Passed || !s.BuildError || !strings.HasPrefix(s.Error, where) || len(s.Checks) != 0 {
		t.Errorf("scenario report = %+v; want a build error starting %q and no checks run", s, where)
	}
	e.assertNothingLeft()
}

// lineWith returns the first line of s that contains sub, trimmed.
func lineWith(s, sub string) string {
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// readJSON decodes the JSON file at path into v, failing t on any error.
func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read report: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s is not valid JSON: %v\n%s", path, err, b)
	}
}

// TestRunNeedsRoot runs a good scenario without root (as nobody when the
// tests run as root): run refuses plainly, with exit code 2, and validate
// accepts the same file.
func TestRunNeedsRoot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if res := e.runUnprivileged("validate", "testdata/pass.yaml"); res.code != exitOK {
		t.Errorf("validate without root: %v", res)
	}
	res := e.runUnprivileged("run", "testdata/pass.yaml")
	const want = "hopcheck: run needs root (network namespaces, iptables, BPF): run it with sudo\n"
	if res.code != exitBadInput || res.stderr != want || res.stdout != "" {
		t.Errorf("run without root: %v\nwant exit code %d and stderr %q", res, exitBadInput, want)
	}
	if ids := e.runIDs(); len(ids) > 0 {
		t.Errorf("runs recorded without root: %v", ids)
	}
}

// TestBadInputHostileFiles names scenario paths that are not files a person
// wrote: links to endless devices, a FIFO nobody writes to, a file over the
// size limit. validate and run refuse each at once, with one line about the
// file, exit code 2, and nothing created; none of them reads the device or
// waits for the FIFO.
func TestBadInputHostileFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	for name, target := range map[string]string{"zero.yaml": "/dev/zero", "random.yaml": "/dev/urandom"} {
		if err := os.Symlink(target, path(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(path("fifo.yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(path("fifo.yaml"), path("fifo-link.yaml")); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, scenario.MaxFileSize+1)
	copy(big, "name: big\nnamespaces:\n  bad-a: {}\n#")
	if err := os.WriteFile(path("big.yaml"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	const notRegular = "cannot read: not a regular file (it is %s); a scenario must be a regular file"
	cases := []struct{ file, want string }{
		{"zero.yaml", fmt.Sprintf(notRegular, "a character device")},
		{"random.yaml", fmt.Sprintf(notRegular, "a character device")},
		{"fifo.yaml", fmt.Sprintf(notRegular, "a FIFO")},
		{"fifo-link.yaml", fmt.Sprintf(notRegular, "a FIFO")},
		{"big.yaml", fmt.Sprintf("cannot read: file too large: %d bytes; the limit is 4 MiB", len(big))},
	}
	for _, cmd := range []string{"validate", "run"} {
		for _, tt := range cases {
			t.Run(cmd+"/"+tt.file, func(t *testing.T) {
				t.Parallel()
				if cmd == "run" {
					privtest.Require(t)
				}
				e := newEnv(t)
				start := time.Now()
				res := e.run(cmd, path(tt.file))
				want := path(tt.file) + ": " + tt.want + "\n"
				if res.code != exitBadInput || res.stderr != want || res.stdout != "" {
					t.Errorf("got %v\nwant exit code %d, no stdout, stderr:\n%s", res, exitBadInput, want)
				}
				if d := time.Since(start); d > 20*time.Second {
					t.Errorf("%s took %v; a file that is not a scenario is refused at once", cmd, d)
				}
				if ids := e.runIDs(); len(ids) > 0 {
					t.Errorf("runs recorded for bad input: %v", ids)
				}
			})
		}
	}
}

// TestBadInputNetns: --netns lists with empty names are refused before
// anything is opened (",,," once opened the netns run directory itself),
// and a path that is not a network namespace is bad input (exit 2), not a
// failed probe (exit 1).
func TestBadInputNetns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, args := range [][]string{
		{"trace", "--netns", ",,,"},
		{"why", "--netns", "a,,b", "--from", "a", "--to", "192.0.2.1"},
	} {
		res := e.runUnprivileged(args...)
		if res.code != exitBadInput || !strings.Contains(res.stderr, "--netns: name ") || !strings.Contains(res.stderr, " is empty") {
			t.Errorf("hopcheck %s: %v\nwant exit code %d and the empty name refused", strings.Join(args, " "), res, exitBadInput)
		}
	}
	if os.Geteuid() != 0 {
		return
	}
	res := e.run("why", "--netns", "/etc/passwd", "--from", "/etc/passwd", "--to", "192.0.2.1", "--trace-off")
	if res.code != exitBadInput || !strings.Contains(res.stderr, "/etc/passwd: not a network namespace") {
		t.Errorf("why --netns /etc/passwd: %v\nwant exit code %d and 'not a network namespace'", res, exitBadInput)
	}
}

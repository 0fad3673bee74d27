package vm_test

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/hopcheck/hopcheck/multipass"
	"github.com/hopcheck/hopcheck/multipass/internal/standintest"
)

// The end-to-end test of `hopcheck run --vm` and `hopcheck vm up|down`. It
// builds the REAL hopcheck binary and drives it as a user would, but against
// the multipass STAND-IN (multipass/internal/standin), not a real multipass:
// there is no VM. The stand-in's instances are directories, and its `exec`
// runs the guest's `sudo hopcheck run ...` on this machine as root, so the
// scenarios really are built in network namespaces here and their checks
// really run. What this covers is the whole flow around that: launching,
// streaming the binary and scenarios in, streaming the report, bringing the
// JSON, JUnit and pcapng files home, exit codes, and deleting or keeping the
// VM, with the stand-in confined as the Linux snap is and unconfined. `make vm-test` runs the scenario library through the same flow with a
// real multipass and VM.

// e2eTimeout bounds one hopcheck command. The scenarios here take seconds.
const e2eTimeout = 3 * time.Minute

// e2eVM is the name of the stand-in VM that `run --vm` uses.
const e2eVM = "e2e"

// e2e is what the subtests share: one build of hopcheck and one stand-in.
type e2e struct {
	root     string // the module root; hopcheck runs there, so scenario paths are relative to it
	bin      string // the real hopcheck, static, so that the CLI hands itself to the guest
	standin  string // the stand-in's instances ($HOPCHECK_STANDIN_DIR)
	stateDir string // hopcheck's run records ($HOPCHECK_STATE_DIR)
	tmpDir   string // $TMPDIR of every hopcheck process, which must leave it empty
	records  *recordWatch
	// runIDs are the runs seen so far, for the cleanup's safety net.
	runIDs []string
}

// result is one finished hopcheck command.
type result struct {
	code           int
	stdout, stderr string
	// runIDs are the runs the command made (on the host or in the guest,
	// which are the same machine with the stand-in).
	runIDs []string
}

func TestRunVMEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: builds hopcheck and runs scenarios through the stand-in; not with -short")
	}
	privtest.Require(t)
	// Against multipass as the strictly confined snap of Linux, and as the
	// unconfined install of macOS and Windows.
	for _, m := range standintest.Modes() {
		t.Run(m.Name, func(t *testing.T) {
			e := setupE2E(t, m)
			testRunVMEndToEnd(t, e, m)
			standintest.CheckNoHostPaths(t, e.standin)
		})
	}
}

func testRunVMEndToEnd(t *testing.T, e *e2e, m standintest.Mode) {
	out := t.TempDir()

	t.Run("passing scenario, VM deleted", func(t *testing.T) {
		jsonPath, junitPath := filepath.Join(out, "pass.json"), filepath.Join(out, "junit", "pass.xml")
		const scenario = "scenarios/single-container.yaml"
		r := e.hopcheck(t, "run", "--vm", e2eVM, "--json", jsonPath, "--junit", junitPath, scenario)
		if r.code != 0 {
			t.Fatalf("exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		e.checkBuiltAndClean(t, r, 1)
		e.checkVMGone(t, e2eVM)

		rep := readJSONReport(t, jsonPath)
		if !rep.Passed || len(rep.Scenarios) != 1 || rep.Scenarios[0].File != scenario || len(rep.Scenarios[0].Checks) == 0 {
			t.Fatalf("JSON report = %+v, want one passed scenario from %s with checks", rep, scenario)
		}
		checkRows(t, r.stdout, rep)
		checkJUnit(t, junitPath, rep)

		// The same report a local run of the same file prints, apart from
		// the figures that differ between any two runs.
		local := e.hopcheck(t, "run", scenario)
		if local.code != 0 {
			t.Fatalf("local run: exit code %d\n%s%s", local.code, local.stdout, local.stderr)
		}
		e.checkBuiltAndClean(t, local, 1)
		if got, want := reportShape(r.stdout), reportShape(local.stdout); !slices.Equal(got, want) {
			t.Errorf("the VM run's report differs from the local run's:\nvm:\n%s\nlocal:\n%s",
				strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		// Progress goes to stderr, so stdout stays the report alone.
		if !strings.Contains(r.stderr, "launching VM "+e2eVM) || !strings.Contains(r.stderr, "deleting VM "+e2eVM) {
			t.Errorf("stderr does not say that the VM was launched and deleted:\n%s", r.stderr)
		}
	})

	t.Run("kept VM, then vm down", func(t *testing.T) {
		r := e.hopcheck(t, "run", "--vm", e2eVM, "--keep-vm", "scenarios/single-container.yaml")
		if r.code != 0 {
			t.Fatalf("exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		e.checkBuiltAndClean(t, r, 1)
		in, err := (&multipass.Client{}).Info(t.Context(), e2eVM)
		if err != nil || in.State != multipass.StateRunning {
			t.Fatalf("VM after --keep-vm: %+v, %v; want it running", in, err)
		}
		if left, _ := filepath.Glob(filepath.Join(e.standin, e2eVM, "home", "ubuntu", "*")); len(left) != 0 {
			t.Errorf("the kept VM still holds the run's files: %q", left)
		}

		down := e.hopcheck(t, "vm", "down", e2eVM)
		if down.code != 0 {
			t.Fatalf("vm down: exit code %d\n%s", down.code, down.stderr)
		}
		e.checkVMGone(t, e2eVM)
	})

	t.Run("failing scenario with captures", func(t *testing.T) {
		jsonPath, junitPath, pcapDir := filepath.Join(out, "fail.json"), filepath.Join(out, "fail.xml"), filepath.Join(out, "pcap")
		r := e.hopcheck(t, "run", "--vm", e2eVM, "--json", jsonPath, "--junit", junitPath, "--pcap", pcapDir,
			"multipass/vm/testdata/e2e/unreachable.yaml")
		if r.code != 1 {
			t.Fatalf("exit code %d, want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		e.checkBuiltAndClean(t, r, 1)
		e.checkVMGone(t, e2eVM)

		rep := readJSONReport(t, jsonPath)
		if rep.Passed || len(rep.Scenarios) != 1 || rep.Scenarios[0].Passed {
			t.Fatalf("JSON report = %+v, want passed=false", rep)
		}
		var failed []string
		for _, c := range rep.Scenarios[0].Checks {
			if !c.Passed {
				failed = append(failed, c.Name)
			}
		}
		if want := []string{"a ping to an address nobody holds"}; !slices.Equal(failed, want) {
			t.Errorf("failed checks %q, want %q", failed, want)
		}
		checkRows(t, r.stdout, rep)
		checkJUnit(t, junitPath, rep)
		checkCapture(t, filepath.Join(pcapDir, "e2e-unreachable.pcapng"), "a/eth0", "b/eth0")
	})

	t.Run("an interrupted run stops the guest run, which tears down", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), e2eTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, e.bin, "run", "--vm", e2eVM, "multipass/vm/testdata/e2e/slow.yaml")
		cmd.Dir = e.root
		cmd.Env = append(os.Environ(), "HOPCHECK_STATE_DIR="+e.stateDir, "TMPDIR="+e.tmpDir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		slow := func() []string {
			names, err := netns.List()
			if err != nil {
				t.Fatal(err)
			}
			var found []string
			for _, n := range names {
				if _, ns, ok := netns.ParseName(n); ok && (ns == "slowa" || ns == "slowb") {
					found = append(found, n)
				}
			}
			return found
		}
		// The guest run is under way once its namespaces exist.
		for deadline := time.Now().Add(time.Minute); len(slow()) < 2; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the guest run never built its topology:\n%s", out.String())
			}
		}
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		e.runIDs = append(e.runIDs, e.records.runIDs(t)...)
		if err == nil {
			t.Errorf("an interrupted run --vm exited 0:\n%s", out.String())
		}
		if left := slow(); len(left) > 0 {
			t.Errorf("the guest run's namespaces remain after the interrupt: %v\n%s", left, out.String())
		}
		e.checkVMGone(t, e2eVM)
	})

	t.Run("bad input", func(t *testing.T) {
		r := e.hopcheck(t, "run", "--vm", e2eVM, "--json", filepath.Join(out, "bad.json"), "multipass/vm/testdata/e2e/bad-input.yaml")
		if r.code != 2 {
			t.Fatalf("exit code %d, want 2\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		// The guest's message, with the file's position, reaches the user.
		if want := "bad-input.yaml:6:5:"; !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, `"interfacez"`) {
			t.Errorf("stderr lacks %q and the misspelt key:\n%s", want, r.stderr)
		}
		e.checkBuiltAndClean(t, r, 0)
		e.checkVMGone(t, e2eVM)
	})

	// The cross-compiled binary travels as any other; one mode is enough
	// for the minute the build takes.
	crossCompile := t.Run
	if !m.Confined {
		crossCompile = func(string, func(*testing.T)) bool { return true }
	}
	crossCompile("a hopcheck the guest cannot take is cross-compiled", func(t *testing.T) {
		// A position-independent build has a program interpreter, which a
		// guest may lack, so the CLI builds a static hopcheck from the
		// source tree for the guest, as it must for another architecture.
		pie := buildHopcheck(t, e.root, "-buildmode=pie")
		if isStatic(t, pie) {
			privtest.Unavailable(t, "a dynamically linked build (go build -buildmode=pie)")
		}
		jsonPath := filepath.Join(out, "cross.json")
		r := e.run(t, pie, "run", "--vm", e2eVM, "--json", jsonPath, "scenarios/single-container.yaml")
		if r.code != 0 {
			t.Fatalf("exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		if want := "building hopcheck for linux/"; !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
		// The build lives in $TMPDIR only as long as the run.
		e.checkBuiltAndClean(t, r, 1)
		e.checkVMGone(t, e2eVM)
		if rep := readJSONReport(t, jsonPath); !rep.Passed {
			t.Errorf("JSON report = %+v, want passed=true", rep)
		}
	})

	t.Run("vm up and down", func(t *testing.T) {
		const name = "e2e-up"
		up := e.hopcheck(t, "vm", "up", name)
		if up.code != 0 || !strings.HasPrefix(up.stdout, name+" is Running") {
			t.Fatalf("vm up: exit code %d, stdout %q\n%s", up.code, up.stdout, up.stderr)
		}
		in, err := (&multipass.Client{}).Info(t.Context(), name)
		if err != nil || in.State != multipass.StateRunning {
			t.Fatalf("VM after vm up: %+v, %v; want it running", in, err)
		}
		if _, err := os.Stat(filepath.Join(e.standin, name, "cloud-init.yaml")); err != nil {
			t.Errorf("vm up launched without cloud-init: %v", err)
		}
		if again := e.hopcheck(t, "vm", "up", name); again.code != 0 || strings.Contains(again.stderr, "launching") {
			t.Errorf("second vm up: exit code %d, stderr %q; want the running VM reused", again.code, again.stderr)
		}

		if down := e.hopcheck(t, "vm", "down", name); down.code != 0 {
			t.Fatalf("vm down: exit code %d\n%s", down.code, down.stderr)
		}
		e.checkVMGone(t, name)
		again := e.hopcheck(t, "vm", "down", name)
		if again.code == 0 || !strings.Contains(again.stderr, "does not exist") {
			t.Errorf("vm down of a missing VM: exit code %d, stderr %q; want a failure naming it missing", again.code, again.stderr)
		}
	})
}

// setupE2E builds hopcheck and the stand-in and gives hopcheck fresh state,
// temporary and stand-in directories.
func setupE2E(t *testing.T, m standintest.Mode) *e2e {
	t.Helper()
	e := &e2e{
		root:     moduleRoot(t),
		standin:  standintest.SetupMode(t, m),
		stateDir: t.TempDir(),
		tmpDir:   t.TempDir(),
	}
	e.bin = buildHopcheck(t, e.root)
	if !isStatic(t, e.bin) {
		t.Fatal("CGO_ENABLED=0 built a dynamically linked hopcheck; the CLI would cross-compile another one for the guest")
	}
	e.records = watchRecords(t, e.stateDir)
	// A safety net: whatever a failing run left, the test removes.
	t.Cleanup(func() {
		names, err := netns.List()
		if err != nil {
			t.Errorf("list namespaces: %v", err)
			return
		}
		for _, n := range names {
			if id, _, ok := netns.ParseName(n); ok && slices.Contains(e.runIDs, id) {
				if err := netns.Delete(n); err != nil {
					t.Errorf("remove left-over namespace %s: %v", n, err)
				}
			}
		}
	})
	return e
}

// moduleRoot finds hopcheck's module above the test's working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/hopcheck/hopcheck\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no hopcheck go.mod above the working directory")
		}
		dir = parent
	}
}

// buildHopcheck builds ./cmd/hopcheck with cgo off, the way a user's
// `CGO_ENABLED=0 go build` does, adding buildFlags.
func buildHopcheck(t *testing.T, root string, buildFlags ...string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		privtest.Unavailable(t, "the go tool (to build hopcheck)")
	}
	bin := filepath.Join(t.TempDir(), "hopcheck")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	args := append(append([]string{"build"}, buildFlags...), "-o", bin, "./cmd/hopcheck")
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// isStatic reports whether the executable at name runs without a program
// interpreter. Only such a hopcheck of this machine's architecture is one
// that the CLI hands to the guest as it is.
func isStatic(t *testing.T, name string) bool {
	t.Helper()
	f, err := elf.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// hopcheck runs the built binary with args from the module root.
func (e *e2e) hopcheck(t *testing.T, args ...string) result {
	t.Helper()
	return e.run(t, e.bin, args...)
}

// run runs the hopcheck at bin with args from the module root.
func (e *e2e) run(t *testing.T, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), e2eTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = e.root
	// PATH (the stand-in first) and HOPCHECK_STANDIN_DIR come from
	// standintest.Setup; the guest run inherits all of it through the
	// stand-in's exec.
	cmd.Env = append(os.Environ(), "HOPCHECK_STATE_DIR="+e.stateDir, "TMPDIR="+e.tmpDir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), runIDs: e.records.runIDs(t)}
	e.runIDs = append(e.runIDs, r.runIDs...)
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		r.code = ee.ExitCode()
	default:
		t.Fatalf("hopcheck %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, r.stdout, r.stderr)
	}
	return r
}

// checkBuiltAndClean checks that the command built wantRuns scenarios and
// that nothing of them is left: no namespace, no run record, no temporary
// file.
func (e *e2e) checkBuiltAndClean(t *testing.T, r result, wantRuns int) {
	t.Helper()
	if len(r.runIDs) != wantRuns {
		t.Errorf("the command made %d runs (%q), want %d", len(r.runIDs), r.runIDs, wantRuns)
	}
	names, err := netns.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if id, _, ok := netns.ParseName(n); ok && slices.Contains(r.runIDs, id) {
			t.Errorf("namespace %s left behind", n)
		}
	}
	for dir, what := range map[string]string{e.stateDir: "run records", e.tmpDir: "temporary files"} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, ent := range ents {
			t.Errorf("%s left behind: %s", what, filepath.Join(dir, ent.Name()))
		}
	}
}

// checkVMGone checks that the stand-in no longer has the VM, in the words
// of the client and on disk.
func (e *e2e) checkVMGone(t *testing.T, name string) {
	t.Helper()
	if in, err := (&multipass.Client{}).Info(t.Context(), name); !errors.Is(err, multipass.ErrNotFound) {
		t.Errorf("VM %s: %+v, %v; want it deleted", name, in, err)
	}
	if _, err := os.Stat(filepath.Join(e.standin, name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stand-in still holds VM %s (%v)", name, err)
	}
}

// jsonReport is the part of the JSON report a CI job reads.
type jsonReport struct {
	Passed    bool `json:"passed"`
	Scenarios []struct {
		Name   string `json:"name"`
		File   string `json:"file"`
		Passed bool   `json:"passed"`
		Checks []struct {
			Name   string `json:"name"`
			Passed bool   `json:"passed"`
		} `json:"checks"`
	} `json:"scenarios"`
}

func readJSONReport(t *testing.T, name string) jsonReport {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("JSON report: %v", err)
	}
	var r jsonReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("JSON report %s: %v", name, err)
	}
	return r
}

// checkRows checks that stdout has one report line per check of rep, in
// order, with its status.
func checkRows(t *testing.T, stdout string, rep jsonReport) {
	t.Helper()
	var want []string
	for _, s := range rep.Scenarios {
		for _, c := range s.Checks {
			status := "FAIL"
			if c.Passed {
				status = "PASS"
			}
			want = append(want, strings.Join([]string{status, s.Name, c.Name}, " | "))
		}
	}
	var got []string
	for _, l := range reportShape(stdout) {
		if strings.Count(l, " | ") == 2 {
			got = append(got, l)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("report lines on stdout:\n%s\nwant, from the JSON report:\n%s\nstdout:\n%s",
			strings.Join(got, "\n"), strings.Join(want, "\n"), stdout)
	}
}

// columnGap separates the columns of a text report line: padding and the
// two-space gap, never the single spaces within a check's name.
var columnGap = regexp.MustCompile(`\s{2,}`)

// reportShape reduces a text report to what two runs of one scenario print
// alike: of a check line its status, scenario and check name (the figures
// after them hold round-trip times, MAC addresses and neighbour states), and
// the summary without its duration.
func reportShape(out string) []string {
	var shape []string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		fields := columnGap.Split(strings.TrimSpace(line), -1)
		switch fields[0] {
		case "PASS", "FAIL":
			fields = fields[:min(len(fields), 3)]
		case "duration":
			fields = fields[:1]
		}
		shape = append(shape, strings.Join(fields, " | "))
	}
	return shape
}

// junitReport is the part of the JUnit XML that CI systems read.
type junitReport struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Suites   []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Name    string    `xml:"name,attr"`
			Failure *struct{} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// checkJUnit checks that the JUnit report at name holds the checks of rep.
func checkJUnit(t *testing.T, name string, rep jsonReport) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("JUnit report: %v", err)
	}
	var j junitReport
	if err := xml.Unmarshal(b, &j); err != nil {
		t.Fatalf("JUnit report %s: %v", name, err)
	}
	var want, got []string
	for _, s := range rep.Scenarios {
		for _, c := range s.Checks {
			want = append(want, fmt.Sprintf("%s/%s failed=%v", s.Name, c.Name, !c.Passed))
		}
	}
	failures := 0
	for _, s := range j.Suites {
		for _, c := range s.Cases {
			got = append(got, fmt.Sprintf("%s/%s failed=%v", s.Name, c.Name, c.Failure != nil))
			if c.Failure != nil {
				failures++
			}
		}
	}
	if !slices.Equal(got, want) || j.Tests != len(want) || j.Failures != failures {
		t.Errorf("JUnit report: %d tests, %d failures:\n%s\nwant, from the JSON report:\n%s",
			j.Tests, j.Failures, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// checkCapture checks that name is a pcapng file with packets and with an
// interface for each of ifaces ("ns/if").
func checkCapture(t *testing.T, name string, ifaces ...string) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("capture %s: %v", name, err)
	}
	packets := 0
	for {
		_, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("capture %s, packet %d: %v", name, packets+1, err)
		}
		packets++
	}
	var names []string
	for i := range r.NInterfaces() {
		in, err := r.Interface(i)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, in.Name)
	}
	if packets == 0 {
		t.Errorf("capture %s has no packets", name)
	}
	for _, want := range ifaces {
		if !slices.Contains(names, want) {
			t.Errorf("capture %s has interfaces %q, want %s among them", name, names, want)
		}
	}
}

// recordWatch learns the IDs of the runs that hopcheck processes make, so
// that the test can look for their namespaces by name. Every run writes a
// record named RUNID.json into $HOPCHECK_STATE_DIR while it holds kernel
// objects; inotify queues the creation of each record in the kernel, so
// none is missed however briefly it exists, and reading the queue after a
// command has finished needs no goroutine.
type recordWatch struct {
	fd int
}

func watchRecords(t *testing.T, dir string) *recordWatch {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	// Records are written to a temporary name and renamed into place.
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		t.Fatalf("inotify: watch %s: %v", dir, err)
	}
	return &recordWatch{fd: fd}
}

// runIDs drains the queued events and returns the run IDs of the records
// created since the last call.
func (w *recordWatch) runIDs(t *testing.T) []string {
	t.Helper()
	var ids []string
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(w.fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return ids
		}
		if err != nil {
			t.Fatalf("inotify: read: %v", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			size := int(binary.NativeEndian.Uint32(buf[off+12:]))
			name := string(bytes.TrimRight(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+size], "\x00"))
			off += unix.SizeofInotifyEvent + size
			if mask&unix.IN_Q_OVERFLOW != 0 {
				t.Fatal("inotify: event queue overflowed; runs may have been missed")
			}
			if id, ok := strings.CutSuffix(name, ".json"); ok && !strings.HasPrefix(name, ".") && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
}

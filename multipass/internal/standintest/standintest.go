// Package standintest builds the multipass stand-in (../standin) for tests
// and puts it first on PATH, so that code under test that runs "multipass"
// runs the stand-in instead of a real multipass.
package standintest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/internal/privtest"
)

// Environment of the stand-in.
const (
	// StateDirEnv names the directory in which the stand-in keeps its
	// instances; empty, the stand-in answers as a multipass whose daemon is
	// not running.
	StateDirEnv = "HOPCHECK_STANDIN_DIR"
	// ConfinedEnv set to "0" models an unconfined multipass (macOS,
	// Windows); unset, the stand-in is a strictly confined snap, as
	// multipass is on Linux.
	ConfinedEnv = "HOPCHECK_STANDIN_CONFINED"
	// LaunchDelayEnv is how long a launched instance takes to initialise
	// (a Go duration).
	LaunchDelayEnv = "HOPCHECK_STANDIN_LAUNCH_DELAY"
)

// Mode is one way the stand-in can be installed.
type Mode struct {
	Name     string
	Confined bool
}

// Modes returns the ways multipass is installed that hopcheck must work
// with: the strictly confined snap of Linux, and the unconfined install of
// macOS and Windows. VM tests run over both.
func Modes() []Mode {
	return []Mode{{Name: "confined", Confined: true}, {Name: "unconfined", Confined: false}}
}

const standinPkg = "github.com/hopcheck/hopcheck/multipass/internal/standin"

// Setup builds the stand-in as "multipass" in a temporary directory, puts
// that directory first on PATH and points the stand-in at a fresh state
// directory, which it returns. Both are restored and removed when t ends.
// The stand-in is confined, as multipass is on Linux. Tests calling it
// cannot run in parallel (they change the environment).
func Setup(t testing.TB) (stateDir string) {
	t.Helper()
	return SetupMode(t, Modes()[0])
}

// SetupMode is Setup with the stand-in installed as m says.
func SetupMode(t testing.TB, m Mode) (stateDir string) {
	t.Helper()
	binDir := Build(t, standinPkg, "multipass")
	t.Setenv("PATH", binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	stateDir = t.TempDir()
	t.Setenv(StateDirEnv, stateDir)
	if m.Confined {
		t.Setenv(ConfinedEnv, "1")
	} else {
		t.Setenv(ConfinedEnv, "0")
	}
	t.Setenv(LaunchDelayEnv, "")
	return stateDir
}

// Calls returns the command lines the stand-in with state directory
// stateDir has run, in order, each without the executable's name.
func Calls(t testing.TB, stateDir string) [][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, ".calls"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var calls [][]string
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var args []string
		if err := json.Unmarshal(line, &args); err != nil {
			t.Fatalf("stand-in call log: %v", err)
		}
		calls = append(calls, args)
	}
	return calls
}

// CheckNoHostPaths fails t when any call recorded in stateDir handed the
// multipass client a host path to open: a transfer, a mount, or a
// cloud-init file. A strictly confined multipass cannot open most of them
// (see the stand-in's documentation), so hopcheck streams instead.
func CheckNoHostPaths(t testing.TB, stateDir string) {
	t.Helper()
	calls := Calls(t, stateDir)
	if len(calls) == 0 {
		t.Error("the stand-in recorded no calls")
	}
	for _, c := range calls {
		switch {
		case len(c) > 0 && (c[0] == "transfer" || c[0] == "copy-files" || c[0] == "mount"):
			t.Errorf("multipass %s: hands the client host paths", strings.Join(c, " "))
		case len(c) > 0 && c[0] == "launch":
			for i, a := range c {
				if (a == "--cloud-init" && i+1 < len(c) && c[i+1] != "-") || (strings.HasPrefix(a, "--cloud-init=") && a != "--cloud-init=-") {
					t.Errorf("multipass %s: hands the client a cloud-init file", strings.Join(c, " "))
				}
			}
		}
	}
}

// Build compiles the main package pkg into a temporary directory as name and
// returns the directory. It needs the go tool; without it the test is
// skipped, or fails under CI=true.
func Build(t testing.TB, pkg, name string) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("the multipass stand-in runs commands locally and is built for Linux only, not %s", runtime.GOOS)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		privtest.Unavailable(t, "the go tool (to build "+pkg+")")
	}
	dir := t.TempDir()
	cmd := exec.Command(goTool, "build", "-o", filepath.Join(dir, name), pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return dir
}

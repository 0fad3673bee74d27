// Package standintest builds the multipass stand-in (../standin) for tests
// and puts it first on PATH, so that code under test that runs "multipass"
// runs the stand-in instead of a real multipass.
package standintest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/hopcheck/hopcheck/internal/privtest"
)

// StateDirEnv names the directory in which the stand-in keeps its instances.
const StateDirEnv = "HOPCHECK_STANDIN_DIR"

const standinPkg = "github.com/hopcheck/hopcheck/multipass/internal/standin"

// Setup builds the stand-in as "multipass" in a temporary directory, puts
// that directory first on PATH and points the stand-in at a fresh state
// directory, which it returns. Both are restored and removed when t ends.
// Tests calling it cannot run in parallel (they change the environment).
func Setup(t testing.TB) (stateDir string) {
	t.Helper()
	binDir := Build(t, standinPkg, "multipass")
	t.Setenv("PATH", binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	stateDir = t.TempDir()
	t.Setenv(StateDirEnv, stateDir)
	return stateDir
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

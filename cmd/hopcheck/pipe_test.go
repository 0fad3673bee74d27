package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// `hopcheck run ... | head` closes the pipe while the run goes on. The run
// must still tear down: a write to the closed pipe must not kill it.
func TestRunTearsDownWhenStdoutCloses(t *testing.T) {
	privtest.Require(t)
	e := newEnv(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// The reader is gone before hopcheck writes its first line.
	r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, hopcheckBin, "run", "testdata/pass.yaml")
	cmd.Env = append(os.Environ(), runs.DirEnv+"="+e.state, "NO_COLOR=1", "GORACE=atexit_sleep_ms=0")
	cmd.Stdout = w
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	w.Close()
	if cmd.ProcessState == nil {
		t.Fatalf("hopcheck did not run: %v", err)
	}
	if !cmd.ProcessState.Exited() {
		t.Fatalf("hopcheck was killed (%v) instead of finishing its run; stderr:\n%s", cmd.ProcessState, stderr.String())
	}
	e.assertNothingLeft()
}

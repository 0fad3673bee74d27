package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionOf(t *testing.T) {
	platform := " go1.26.8 " + runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"release, clean", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd4567890fedcba"}, {Key: "vcs.time", Value: "2025-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "false"},
		}}, "v1.2.0 (commit 0123abcd4567, 2025-01-02T03:04:05Z)" + platform},
		{"checkout, modified", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"},
		}}, "(devel) (commit abc, modified)" + platform},
		{"no VCS", debug.BuildInfo{GoVersion: "go1.26.8"}, "(devel)" + platform},
	} {
		if got := versionOf(&tc.bi); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestVersionFlag: --version prints one line, needs no root, exits 0.
func TestVersionFlag(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.runUnprivileged("--version")
	if res.code != exitOK || !strings.HasPrefix(res.stdout, "hopcheck ") || strings.Count(res.stdout, "\n") != 1 ||
		!strings.Contains(res.stdout, runtime.Version()) || res.stderr != "" {
		t.Errorf("hopcheck --version: %v\nwant one line \"hopcheck VERSION ... %s\", exit code 0", res, runtime.Version())
	}
}

// TestCompletion: cobra's completion command is there, as the README says.
func TestCompletion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, shell := range []string{"bash", "zsh", "fish"} {
		res := e.runUnprivileged("completion", shell)
		if res.code != exitOK || !strings.Contains(res.stdout, "hopcheck") {
			t.Errorf("hopcheck completion %s: exit code %d, %d bytes", shell, res.code, len(res.stdout))
		}
	}
}

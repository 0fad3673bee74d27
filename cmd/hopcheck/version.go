package main

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// version describes this binary from its build info: the module version
// ("(devel)" for a build from a checkout), the VCS commit and its time
// (when the build recorded them; `go build -buildvcs=false` does not), and
// the Go toolchain and platform.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build info) " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	}
	return versionOf(bi)
}

// versionOf formats bi for --version: "v1.2.0 (commit 0123abcd4567,
// 2025-01-02T03:04:05Z, modified) go1.26.8 linux/amd64".
func versionOf(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	var vcs []string
	if rev != "" {
		vcs = append(vcs, "commit "+rev[:min(len(rev), 12)])
	}
	if at != "" {
		vcs = append(vcs, at)
	}
	if modified {
		vcs = append(vcs, "modified")
	}
	if len(vcs) > 0 {
		v += " (" + strings.Join(vcs, ", ") + ")"
	}
	goVersion := bi.GoVersion
	if goVersion == "" {
		goVersion = runtime.Version()
	}
	return v + " " + goVersion + " " + runtime.GOOS + "/" + runtime.GOARCH
}

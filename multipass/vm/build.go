package vm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// buildTimeout bounds one cross-compilation of hopcheck.
const buildTimeout = 10 * time.Minute

// mainPackage is hopcheck's command, relative to the module root.
const mainPackage = "./cmd/hopcheck"

// BuildBinary cross-compiles hopcheck for linux/goarch from the module in
// moduleDir into out, with cgo off so that the binary is static and runs on
// any Ubuntu guest. It needs the go tool on PATH.
func BuildBinary(ctx context.Context, moduleDir, goarch, out string) error {
	if !knownGOARCH(goarch) {
		return fmt.Errorf("build hopcheck: GOARCH %q is not a Linux architecture hopcheck builds for", goarch)
	}
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	args := buildArgs(out)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = moduleDir
	// Later entries win over the caller's environment.
	cmd.Env = append(os.Environ(), buildEnv(goarch)...)
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build hopcheck for linux/%s: go %s: %w\n%s", goarch, strings.Join(args, " "), err, output)
	}
	return nil
}

// buildArgs is the go command line for BuildBinary: no debug information
// and no local paths, which makes a smaller binary to copy into the guest.
func buildArgs(out string) []string {
	return []string{"build", "-trimpath", "-ldflags=-s -w", "-o", out, mainPackage}
}

func buildEnv(goarch string) []string {
	return []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + goarch}
}

// knownGOARCH reports whether goarch is one guestArch can return.
func knownGOARCH(goarch string) bool {
	switch goarch {
	case "amd64", "arm64", "arm", "386", "ppc64le", "riscv64", "loong64":
		return true
	}
	return false
}

package realnode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// CrictlVersion is the release of sigs.k8s.io/cri-tools whose crictl the
// tests run, and that hopcheck's cri: containers are tested with.
const CrictlVersion = "v1.37.0"

// CrictlEnv, when set, names a directory that already holds crictl.
const CrictlEnv = "HOPCHECK_CRICTL"

const crictlPkg = "sigs.k8s.io/cri-tools/cmd/crictl"

// CrictlDir returns the directory of the pinned crictl: $HOPCHECK_CRICTL,
// or hopcheck/crictl-VERSION under the user's cache directory.
func CrictlDir() (string, error) {
	if d := os.Getenv(CrictlEnv); d != "" {
		return d, nil
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(c, "hopcheck", "crictl-"+CrictlVersion), nil
}

// BuildCrictl builds the pinned crictl into CrictlDir with `go install`
// (through the Go module proxy), unless it is there already, and returns
// the directory. `make crictl` runs it once so that tests find it.
func BuildCrictl(ctx context.Context) (string, error) {
	dir, err := CrictlDir()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "crictl")); err == nil {
		return dir, nil
	}
	if os.Getenv(CrictlEnv) != "" {
		return "", fmt.Errorf("%s=%s lacks crictl", CrictlEnv, dir)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build crictl: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "install", crictlPkg+"@"+CrictlVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %v\n%s", crictlPkg, CrictlVersion, err, out)
	}
	return dir, nil
}

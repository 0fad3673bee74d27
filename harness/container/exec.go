package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hopcheck/hopcheck/internal/netns"
)

// maxStdout and maxStderr bound what is kept of a CLI's output: one
// container's inspect is a few kilobytes.
const (
	maxStdout = 4 << 20
	maxStderr = 64 << 10
)

// Exec runs argv with os/exec in the caller's environment (so the CLI
// reads DOCKER_HOST, CONTAINER_HOST, CONTAINERS_STORAGE_CONF,
// CONTAINER_RUNTIME_ENDPOINT and its own configuration), with no stdin,
// and returns its stdout. ctx kills it.
func Exec(ctx context.Context, argv []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("container: empty command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr capped
	stdout.max, stderr.max = maxStdout, maxStderr
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A CLI's children (podman's conmon, a credential helper) could keep
	// the pipes open after it was killed; stop waiting for them.
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Could not start it at all: not on PATH, not executable.
		return nil, err
	}
	return stdout.Bytes(), &CLIError{Argv: argv, Code: ee.ExitCode(), Stderr: stderr.String(), Err: err}
}

// capped is a buffer that keeps the first max bytes written to it.
type capped struct {
	bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// lookPath is exec.LookPath.
func lookPath(file string) (string, error) { return exec.LookPath(file) }

// trimStderr keeps the gist of a CLI's stderr: its last three non-empty
// lines, each at most 300 bytes, joined with " / ".
func trimStderr(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if len(l) > 300 {
				l = l[:300] + "..."
			}
			lines = append(lines, l)
		}
	}
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, " / ")
}

// classify turns a failed CLI run into an *Error a user can act on, from
// the CLI's stderr. hint names the environment that CLI reads, for the
// cases where another daemon or storage may hold the container.
func classify(runtime, name string, err error, hint string) error {
	var ce *Error
	if errors.As(err, &ce) {
		return err
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		return &Error{Runtime: runtime, Name: name, Err: ErrNoCLI, Detail: ee.Error(), Hint: "install it, or add its directory to PATH"}
	}
	var cli *CLIError
	if !errors.As(err, &cli) {
		return fmt.Errorf("%s:%s: %w", runtime, name, err)
	}
	detail := trimStderr(cli.Stderr)
	if detail == "" {
		detail = fmt.Sprintf("%s exited with %d", cli.Argv[0], cli.Code)
	}
	low := strings.ToLower(cli.Stderr)
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(low, s) {
				return true
			}
		}
		return false
	}
	switch {
	case has("no such container", "code = notfound", "not found"):
		return &Error{Runtime: runtime, Name: name, Err: ErrNotFound, Detail: detail, Hint: hint}
	case has("permission denied", "operation not permitted", "access denied"):
		return &Error{Runtime: runtime, Name: name, Err: ErrPermission, Detail: detail,
			Hint: "run hopcheck as root (it needs root to trace anyway)"}
	case has("cannot connect", "connection refused", "dial unix", "dial tcp", "unable to connect",
		"is the docker daemon running", "code = unavailable", "deadline exceeded", "no such host"):
		return &Error{Runtime: runtime, Name: name, Err: ErrUnreachable, Detail: detail, Hint: hint}
	}
	return fmt.Errorf("%s:%s: %w", runtime, name, cli)
}

// Open resolves spec and opens the container's network namespace. The
// namespace is opened right after the inspect, and the runtime is asked
// again afterwards: only when the same process still runs the container
// is the handle returned, so a PID reused in between cannot swap in
// another process's namespace. The caller closes the handle.
func (r Resolver) Open(ctx context.Context, spec string) (Container, netns.Handle, error) {
	c, err := r.Resolve(ctx, spec)
	if err != nil {
		return Container{}, netns.Handle(-1), err
	}
	h, err := netns.OpenPath(c.NetNS)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Container{}, h, &Error{Runtime: c.Runtime, Name: c.Name, Err: ErrNotRunning,
				Detail: fmt.Sprintf("process %d exited while hopcheck opened its namespace", c.PID), Hint: "start it, then probe again"}
		}
		return Container{}, h, fmt.Errorf("%s: %w", c.Spec(), err)
	}
	again, err := r.inspect(ctx, r.runtime(c.Runtime), c.ID)
	if err == nil && again.PID != c.PID {
		err = &Error{Runtime: c.Runtime, Name: c.Name, Err: ErrNotRunning,
			Detail: fmt.Sprintf("restarted while hopcheck opened its namespace (process %d, now %d)", c.PID, again.PID),
			Hint:   "probe again"}
	}
	if err != nil {
		h.Close()
		return Container{}, netns.Handle(-1), err
	}
	return c, h, nil
}

package multipass

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Errors that callers act on. An *Error from a failed multipass call matches
// at most one of them with errors.Is; the rest of the failures (bad image
// name, disk full, ...) match none and carry multipass's own message.
var (
	// ErrNotFound: the instance does not exist
	// (`instance "x" does not exist`).
	ErrNotFound = errors.New("instance does not exist")
	// ErrExists: an instance of that name already exists, possibly deleted
	// but not purged (`instance "x" already exists`).
	ErrExists = errors.New("instance already exists")
	// ErrDaemonUnavailable: the client cannot reach multipassd
	// (`cannot connect to the multipass socket`, or exit code 3).
	ErrDaemonUnavailable = errors.New("multipass daemon unavailable")
	// ErrTimeout: the call ran out of time, either the context's deadline
	// or multipass's own --timeout (exit code 5).
	ErrTimeout = errors.New("timed out")
	// ErrNotInstalled: the multipass executable was not found.
	ErrNotInstalled = errors.New("multipass executable not found (install it from https://canonical.com/multipass/install)")
	// ErrInvalidName: the instance name is not one multipass accepts.
	ErrInvalidName = errors.New("invalid instance name")
)

// Exit codes of the multipass client (include/multipass/cli/return_codes.h
// and constants.h in canonical/multipass). `multipass exec` returns the
// inner command's status instead when multipass itself succeeded.
const (
	ExitCommandLineError = 1
	ExitCommandFail      = 2
	ExitDaemonFail       = 3
	ExitTimeout          = 5
	ExitShellExecFail    = 255
)

// Error is a failed multipass call.
type Error struct {
	// Argv is the full command line, starting with the executable.
	Argv []string
	// ExitCode is multipass's exit status, or -1 when it did not exit on its
	// own (not started, killed at the deadline).
	ExitCode int
	// Stderr is what multipass printed on stderr (its tail, for exec).
	Stderr string
	// Err is the sentinel the failure matched (ErrNotFound ...), a context
	// or exec error, or nil when nothing more is known than Stderr.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(strings.Join(e.Argv, " "))
	b.WriteString(": ")
	msg := failureMessage(e.Stderr)
	switch {
	case msg != "":
		b.WriteString(msg)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("failed")
	}
	if e.ExitCode >= 0 {
		fmt.Fprintf(&b, " (exit status %d)", e.ExitCode)
	}
	return b.String()
}

// Unwrap returns the sentinel or cause, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

var (
	notFoundRE = regexp.MustCompile(`instance "[^"]*" does not exist`)
	existsRE   = regexp.MustCompile(`instance "[^"]*" already exists`)
)

// classify maps multipass's stderr and exit code to a sentinel error, or nil
// when the failure is none of the kinds callers act on. Texts are matched
// before codes because newer multipass versions report an unreachable daemon
// with exit code 2, older ones with 3.
func classify(stderr string, exitCode int) error {
	switch {
	case notFoundRE.MatchString(stderr):
		return ErrNotFound
	case existsRE.MatchString(stderr):
		return ErrExists
	case strings.Contains(stderr, "cannot connect to the multipass socket"),
		strings.Contains(stderr, "multipass socket access denied"),
		exitCode == ExitDaemonFail:
		return ErrDaemonUnavailable
	case exitCode == ExitTimeout, strings.Contains(stderr, "Timed out waiting"):
		return ErrTimeout
	}
	return nil
}

// execFailure reports whether stderr of `multipass exec` ends with
// multipass's own failure report rather than only the inner command's
// output. Multipass prints "exec failed: ..." when it cannot reach the
// instance, and "start failed: ..." when the automatic start of a stopped
// instance fails; both come last, after anything the command printed.
func execFailure(stderr string) bool {
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(line, "exec failed: ") || strings.HasPrefix(line, "start failed: ") {
			return true
		}
	}
	return false
}

// failureMessage picks multipass's failure report out of stderr, joined into
// one line: `info failed: The following errors occurred: instance "x" does
// not exist`. Without a report it returns stderr's last non-empty line.
func failureMessage(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i, line := range lines {
		if cmd, _, ok := strings.Cut(line, " failed: "); ok && isCommandWord(cmd) {
			return strings.Join(trimAll(lines[i:]), " ")
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if s := strings.TrimSpace(lines[i]); s != "" {
			return s
		}
	}
	return ""
}

// isCommandWord reports whether s is a multipass subcommand name such as
// "launch" or "copy-files".
func isCommandWord(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '-' {
			return false
		}
	}
	return true
}

func trimAll(lines []string) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

package multipass

import (
	"errors"
	"fmt"
	"regexp"
	"runtime"
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
	// but not purged (`instance "x" already exists`): a deleted instance
	// keeps its name until `multipass purge` or `multipass delete --purge
	// NAME` (canonical/multipass#189, #499).
	ErrExists = errors.New("instance already exists")
	// ErrDeleted: the instance is deleted but not purged
	// (`instance "x" is deleted`); `multipass recover NAME` brings it back,
	// `multipass delete --purge NAME` frees the name.
	ErrDeleted = errors.New("instance is deleted")
	// ErrDaemonUnavailable: the client cannot reach multipassd
	// (`cannot connect to the multipass socket`, or exit code 3).
	ErrDaemonUnavailable = errors.New("multipass daemon unavailable")
	// ErrTimeout: the call ran out of time, either the context's deadline
	// or multipass's own --timeout (exit code 5).
	ErrTimeout = errors.New("timed out")
	// ErrNotInstalled: the multipass executable was not found.
	ErrNotInstalled = errors.New("multipass executable not found")
	// ErrHostPath: the multipass client could not open a host path it was
	// given. On Linux multipass is a strictly confined snap: its client
	// sees only non-hidden paths under the user's home, and a /tmp of its
	// own (`Source path "/tmp/x" does not exist`, canonical/multipass#1783,
	// #1598; `error opening file for reading: Permission denied` for a
	// hidden folder, #1783). This package never gives multipass a host
	// path; the error is for callers that run multipass themselves.
	ErrHostPath = errors.New("the multipass client cannot open the host path (a strictly confined snap sees only non-hidden paths under your home, and has a /tmp of its own)")
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
	if h := hint(e.Err, runtime.GOOS); h != "" {
		b.WriteString("; ")
		b.WriteString(h)
	}
	return b.String()
}

// hint says what a person can do about a failure that is not theirs to
// read out of multipass's message: a multipass that is not installed, or a
// daemon that does not answer. On Linux multipass comes as a snap whose
// daemon is the snap service multipass.multipassd, and whose socket is
// owned by root:sudo with mode 660 (canonical/multipass#1074).
func hint(err error, goos string) string {
	switch {
	case errors.Is(err, ErrNotInstalled) && goos == "linux":
		return "install Multipass with `sudo snap install multipass` (https://canonical.com/multipass/install)"
	case errors.Is(err, ErrNotInstalled):
		return "install Multipass from https://canonical.com/multipass/install"
	case errors.Is(err, ErrDaemonUnavailable) && goos == "linux":
		return "is the multipass daemon running? `snap services multipass` shows it, `sudo snap start multipass` starts it " +
			"(and `sudo snap restart multipass` when it hangs); the socket belongs to the sudo group, so use an admin user or sudo"
	case errors.Is(err, ErrDaemonUnavailable):
		return "is the multipass daemon running? Start Multipass (its app, or the multipassd service), then try again"
	}
	return ""
}

// Unwrap returns the sentinel or cause, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

var (
	notFoundRE   = regexp.MustCompile(`instance "[^"]*" does not exist`)
	existsRE     = regexp.MustCompile(`instance "[^"]*" already exists`)
	deletedRE    = regexp.MustCompile(`instance "[^"]*" is deleted`)
	sourcePathRE = regexp.MustCompile(`(?m)^Source path "[^"]*" does not exist`)
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
	case deletedRE.MatchString(stderr):
		return ErrDeleted
	case sourcePathRE.MatchString(stderr),
		strings.Contains(stderr, "error opening file for reading: Permission denied"):
		return ErrHostPath
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

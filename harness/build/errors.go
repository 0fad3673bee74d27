package build

import (
	"errors"
	"fmt"
	"strings"

	"github.com/coreos/go-iptables/iptables"
	"github.com/hopcheck/hopcheck/harness/plan"
	"github.com/hopcheck/hopcheck/harness/scenario"
)

// StepError is a build step that failed: the scenario position and field
// it came from, the step, and the kernel's (or iptables') reason. The CLI
// answers it with exit code 2, like bad input: the scenario asked for
// something this kernel refuses.
type StepError struct {
	Pos   scenario.Pos
	Field string
	Step  plan.Step
	Err   error
}

// Error formats e as "file:line:col: field: step: reason".
func (e *StepError) Error() string {
	return e.Pos.String() + ": " + e.Field + ": " + e.Step.String() + ": " + e.Err.Error()
}

// Unwrap returns the reason.
func (e *StepError) Unwrap() error { return e.Err }

// ErrNotSupported is matched (errors.Is) by every error that says the
// running kernel lacks a feature a scenario needs.
var ErrNotSupported = errors.New("not supported by this kernel")

// UnsupportedKindError says that the running kernel cannot create
// interfaces of a kind at all (its module is not built), as opposed to
// refusing one particular interface's settings.
type UnsupportedKindError struct {
	Type scenario.LinkType
	// Config is the kernel option that provides the kind: CONFIG_DUMMY.
	Config string
}

// Error says plainly what the kernel cannot do and which option enables it.
func (e *UnsupportedKindError) Error() string {
	return fmt.Sprintf("this kernel cannot create %s interfaces (%s is off)", e.Type, e.Config)
}

// Is makes errors.Is(err, ErrNotSupported) true.
func (e *UnsupportedKindError) Is(target error) bool { return target == ErrNotSupported }

// iptablesError is an iptables command that iptables itself rejected,
// carrying iptables' own message (go-iptables prefixes it with the whole
// argv and exit status, which the scenario line already says better).
type iptablesError struct {
	msg string
	err *iptables.Error
}

func (e *iptablesError) Error() string { return e.msg }
func (e *iptablesError) Unwrap() error { return e.err }

// iptablesReason turns err into iptables' own message when it is an
// *iptables.Error.
func iptablesReason(err error) error {
	var ie *iptables.Error
	if !errors.As(err, &ie) {
		return err
	}
	return &iptablesError{msg: iptablesMessage(ie.Error(), ie.ExitStatus()), err: ie}
}

// iptablesMessage extracts iptables' message from the text of an
// *iptables.Error. go-iptables keeps stderr unexported and formats it as
// "running [ARGV]: exit status N: STDERR"; the first line of STDERR is the
// reason, the rest iptables' "Try `iptables -h'" hint.
func iptablesMessage(text string, status int) string {
	const marker = "]: exit status "
	// The last marker: the argv before it may contain anything.
	if i := strings.LastIndex(text, marker); i >= 0 {
		rest := text[i+len(marker):]
		if j := strings.Index(rest, ": "); j >= 0 {
			text = rest[j+2:]
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return fmt.Sprintf("iptables failed with exit status %d", status)
}

package container

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hopcheck/hopcheck/internal/netns"
)

// Container is a running container found by a runtime's CLI.
type Container struct {
	// Runtime is the runtime that knows it: "docker", "podman" or "cri".
	Runtime string
	// Name is the container's name as its runtime shows it (Docker's
	// leading '/' removed): what hopcheck calls its namespace.
	Name string
	// ID is the runtime's full container ID.
	ID string
	// PID is the container's first process, in the caller's PID
	// namespace.
	PID int
	// NetNS is the path of the container's network namespace,
	// /proc/PID/ns/net.
	NetNS string
	// Addresses are those the runtime recorded for the container's
	// interfaces when it connected them (IPAM): what they should have,
	// whatever they have now. Docker and Podman record them; CRI does
	// not say them here.
	Addresses []Address
}

// Address is an address a runtime recorded for one of a container's
// interfaces.
type Address struct {
	// Network is the runtime's name for the network ("bridge",
	// "podman").
	Network string
	// MAC is the interface's MAC as recorded: how to tell which
	// interface it belongs to. Empty when the runtime did not say.
	MAC string
	// Addr is the address with its prefix length, and Gateway the
	// network's gateway (invalid when it has none).
	Addr    netip.Prefix
	Gateway netip.Addr
}

// Spec is how the container is given, "runtime:NAME".
func (c Container) Spec() string { return c.Runtime + ":" + c.Name }

// Exec returns the argv prefix that runs a command in the container's
// network namespace, with the host's tools: "nsenter -t PID -n". It
// holds the PID, so it is good until the container restarts.
func (c Container) Exec() []string { return netns.ExecPID(c.PID) }

// Errors a user can act on, matched with errors.Is. Every error Resolve
// returns about one container is an *Error wrapping one of them.
var (
	// ErrNoCLI: the runtime's CLI is not on PATH.
	ErrNoCLI = errors.New("CLI not found in PATH")
	// ErrNotFound: the runtime does not know the container.
	ErrNotFound = errors.New("no such container")
	// ErrNotRunning: the container exists but has no process (created,
	// exited, paused ...), so it has no network namespace to enter.
	ErrNotRunning = errors.New("container is not running")
	// ErrPermission: the CLI may not talk to its daemon or storage.
	ErrPermission = errors.New("permission denied")
	// ErrUnreachable: the CLI could not reach its daemon or runtime
	// endpoint, or did not answer in time.
	ErrUnreachable = errors.New("runtime not reachable")
	// ErrAmbiguous: a plain NAME is known to more than one runtime, or
	// (CRI) names more than one container.
	ErrAmbiguous = errors.New("ambiguous container name")
	// ErrBadSpec: the spec is not NAME or RUNTIME:NAME.
	ErrBadSpec = errors.New("not a container spec")
	// ErrBadOutput: the CLI's output is not what its runtime documents.
	ErrBadOutput = errors.New("unexpected CLI output")
)

// Error is a failure to resolve one container: which runtime, which
// name, what went wrong (one of the Err values above) and what the CLI
// said, trimmed.
type Error struct {
	Runtime string // "docker", "podman", "cri"; empty when no runtime was chosen
	Name    string
	Err     error
	// Detail is the CLI's own message (its stderr, trimmed) or the
	// state the container is in.
	Detail string
	// Hint says what to do.
	Hint string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Runtime != "" {
		b.WriteString(e.Runtime + ":")
	}
	b.WriteString(e.Name + ": " + e.Err.Error())
	if e.Detail != "" {
		b.WriteString(" (" + e.Detail + ")")
	}
	if e.Hint != "" {
		b.WriteString("; " + e.Hint)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Run runs a CLI (argv[0] is the program) and returns its stdout. A run
// that exits non-zero returns a *CLIError.
type Run func(ctx context.Context, argv []string) ([]byte, error)

// CLIError is a CLI run that failed: its command line, exit code (-1 when
// it did not exit on its own) and stderr.
type CLIError struct {
	Argv   []string
	Code   int
	Stderr string
	Err    error // from os/exec
}

func (e *CLIError) Error() string {
	msg := fmt.Sprintf("%s: exit %d", strings.Join(e.Argv, " "), e.Code)
	if s := trimStderr(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

func (e *CLIError) Unwrap() error { return e.Err }

// Runtime is one container runtime, asked through its CLI.
type Runtime interface {
	// Name is the runtime's name in a spec: "docker", "podman", "cri".
	Name() string
	// CLI is the program Inspect runs: "docker", "podman", "crictl".
	CLI() string
	// Inspect finds the container called name (or with that ID) with
	// run, and returns it running, or an *Error.
	Inspect(ctx context.Context, run Run, name string) (Container, error)
}

// Runtimes returns the runtimes hopcheck knows, in the order a plain
// NAME is looked up.
func Runtimes() []Runtime {
	return []Runtime{Docker{}, Podman{}, CRI{}}
}

// DefaultTimeout bounds one CLI call when Resolver.Timeout is zero.
const DefaultTimeout = 15 * time.Second

// Resolver resolves container specs. The zero value asks every runtime
// of Runtimes through the CLIs on PATH.
type Resolver struct {
	// Runtimes are asked, in order; nil means Runtimes().
	Runtimes []Runtime
	// Run runs a CLI; nil means Exec.
	Run Run
	// LookPath finds a CLI; nil means exec.LookPath.
	LookPath func(file string) (string, error)
	// Timeout bounds each CLI call; zero means DefaultTimeout.
	Timeout time.Duration
}

// Resolve finds the running container spec names. spec is "RUNTIME:NAME"
// (docker:web, podman:web, cri:web) or a plain "NAME", which every
// runtime whose CLI is on PATH is asked about: exactly one must know it.
// NAME may also be a container ID (a prefix, where the runtime takes
// one).
func (r Resolver) Resolve(ctx context.Context, spec string) (Container, error) {
	rtName, name, err := r.parseSpec(spec)
	if err != nil {
		return Container{}, err
	}
	if rtName != "" {
		rt := r.runtime(rtName)
		if _, err := r.lookPath(rt.CLI()); err != nil {
			return Container{}, &Error{Runtime: rtName, Name: name, Err: ErrNoCLI,
				Detail: rt.CLI(), Hint: "install it, or add its directory to PATH"}
		}
		return r.inspect(ctx, rt, name)
	}
	return r.detect(ctx, name)
}

// ParseSpec splits spec into a runtime name ("" for a plain NAME) and the
// container's name, checking both.
func ParseSpec(spec string) (runtime, name string, err error) {
	return Resolver{}.parseSpec(spec)
}

func (r Resolver) parseSpec(spec string) (string, string, error) {
	known := r.runtimeNames()
	bad := func(why string) (string, string, error) {
		return "", "", &Error{Name: spec, Err: ErrBadSpec, Detail: why,
			Hint: "give NAME or RUNTIME:NAME, RUNTIME one of " + strings.Join(known, ", ")}
	}
	rt, name, ok := strings.Cut(spec, ":")
	if !ok {
		rt, name = "", spec
	} else if !slices.Contains(known, rt) {
		return bad(fmt.Sprintf("unknown runtime %q", rt))
	}
	switch {
	case name == "":
		return bad("empty name")
	case strings.ContainsAny(name, ":/ \t\n\x00"):
		// Container names of every runtime are [a-zA-Z0-9][a-zA-Z0-9_.-]*,
		// IDs hex: neither holds these, and a '/' would make the name a
		// path elsewhere in hopcheck.
		return bad(fmt.Sprintf("%q is not a container name or ID", name))
	case strings.HasPrefix(name, "-"):
		// Never passed to a CLI where it reads as an option.
		return bad(fmt.Sprintf("%q starts with '-'", name))
	}
	return rt, name, nil
}

func (r Resolver) runtimes() []Runtime {
	if r.Runtimes != nil {
		return r.Runtimes
	}
	return Runtimes()
}

func (r Resolver) runtimeNames() []string {
	var out []string
	for _, rt := range r.runtimes() {
		out = append(out, rt.Name())
	}
	return out
}

func (r Resolver) runtime(name string) Runtime {
	for _, rt := range r.runtimes() {
		if rt.Name() == name {
			return rt
		}
	}
	return nil
}

func (r Resolver) lookPath(file string) (string, error) {
	if r.LookPath != nil {
		return r.LookPath(file)
	}
	return lookPath(file)
}

// inspect asks one runtime, each CLI call bounded by the timeout.
func (r Resolver) inspect(ctx context.Context, rt Runtime, name string) (Container, error) {
	run := r.Run
	if run == nil {
		run = Exec
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	bounded := func(ctx context.Context, argv []string) ([]byte, error) {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		out, err := run(cctx, argv)
		if err != nil && ctx.Err() == nil && cctx.Err() != nil {
			return out, &Error{Runtime: rt.Name(), Name: name, Err: ErrUnreachable,
				Detail: fmt.Sprintf("%s did not answer within %v", strings.Join(argv, " "), timeout)}
		}
		return out, err
	}
	c, err := rt.Inspect(ctx, bounded, name)
	if err != nil {
		if ctx.Err() != nil {
			return Container{}, fmt.Errorf("%s:%s: %w", rt.Name(), name, ctx.Err())
		}
		return Container{}, err
	}
	return c, nil
}

// detect asks every runtime whose CLI is on PATH about a plain name, at
// once, and returns the one container exactly one of them knows.
func (r Resolver) detect(ctx context.Context, name string) (Container, error) {
	var (
		asked  []Runtime
		absent []string
	)
	for _, rt := range r.runtimes() {
		if _, err := r.lookPath(rt.CLI()); err != nil {
			absent = append(absent, rt.CLI())
			continue
		}
		asked = append(asked, rt)
	}
	if len(asked) == 0 {
		return Container{}, &Error{Name: name, Err: ErrNoCLI, Detail: "none of " + strings.Join(absent, ", "),
			Hint: "install the runtime's CLI, or add its directory to PATH"}
	}
	type answer struct {
		c   Container
		err error
	}
	answers := make([]answer, len(asked))
	done := make(chan struct{})
	for i, rt := range asked {
		go func() {
			defer func() { done <- struct{}{} }()
			c, err := r.inspect(ctx, rt, name)
			answers[i] = answer{c, err}
		}()
	}
	for range asked {
		<-done
	}
	if err := ctx.Err(); err != nil {
		return Container{}, fmt.Errorf("%s: %w", name, err)
	}
	// A runtime knows the container when it found it, running or not.
	var knowers []int
	for i, a := range answers {
		if a.err == nil || errors.Is(a.err, ErrNotRunning) || errors.Is(a.err, ErrAmbiguous) {
			knowers = append(knowers, i)
		}
	}
	switch len(knowers) {
	case 1:
		a := answers[knowers[0]]
		return a.c, a.err
	case 0:
	default:
		var specs []string
		for _, i := range knowers {
			specs = append(specs, asked[i].Name()+":"+name)
		}
		return Container{}, &Error{Name: name, Err: ErrAmbiguous,
			Detail: "known to " + strings.Join(specs, " and "),
			Hint:   "say which: " + strings.Join(specs, " or ") + " (its namespace is called " + name + " either way)"}
	}
	// Nobody knows it: not found, when every runtime could say so;
	// otherwise what kept the others from answering.
	var errs []error
	allNotFound := true
	for _, a := range answers {
		errs = append(errs, a.err)
		if !errors.Is(a.err, ErrNotFound) {
			allNotFound = false
		}
	}
	var names []string
	for _, rt := range asked {
		names = append(names, rt.Name())
	}
	detail := "asked " + strings.Join(names, ", ")
	if len(absent) > 0 {
		detail += "; not on PATH: " + strings.Join(absent, ", ")
	}
	if allNotFound {
		return Container{}, &Error{Name: name, Err: ErrNotFound, Detail: detail,
			Hint: "check the name with 'docker ps', 'podman ps' or 'crictl ps'"}
	}
	return Container{}, fmt.Errorf("%s: no runtime found the container (%s):\n  %w", name, detail, joinIndented(errs))
}

// joinIndented joins errs one per line, indented under a heading line.
func joinIndented(errs []error) error {
	var nonNil []error
	for _, e := range errs {
		if e != nil {
			nonNil = append(nonNil, e)
		}
	}
	return indented{nonNil}
}

type indented struct{ errs []error }

func (e indented) Error() string {
	var s []string
	for _, err := range e.errs {
		s = append(s, err.Error())
	}
	return strings.Join(s, "\n  ")
}

func (e indented) Unwrap() []error { return e.errs }

// fromState builds the running container, or the ErrNotRunning error.
func fromState(runtime, name, id string, pid int, running bool, state string) (Container, error) {
	if !running || pid <= 0 {
		if state == "" {
			state = "not running"
		}
		return Container{}, &Error{Runtime: runtime, Name: name, Err: ErrNotRunning, Detail: "state " + state,
			Hint: "start it, then probe again"}
	}
	return Container{Runtime: runtime, Name: name, ID: id, PID: pid, NetNS: "/proc/" + strconv.Itoa(pid) + "/ns/net"}, nil
}

package multipass

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Default bounds of one multipass call, used when the Client leaves them zero.
const (
	// DefaultTimeout bounds info, list, start, stop, delete and exec; it
	// matches multipass's own default for starting an instance.
	DefaultTimeout = 5 * time.Minute
	// DefaultLaunchTimeout bounds launch, which may download an image and
	// waits for cloud-init to install packages.
	DefaultLaunchTimeout = 20 * time.Minute
)

// launchGrace is how much longer than multipass's own --timeout the launch
// call may take, so that multipass reports its timeout (and cleans up)
// before the context kills it.
const launchGrace = time.Minute

// waitDelay bounds how long a call waits for its output pipes after
// multipass has exited or been killed: a process the command started may
// hold them open.
const waitDelay = 5 * time.Second

// tailSize is how much of stderr a streaming call keeps to find multipass's
// failure report in.
const tailSize = 8 << 10

// Client runs the multipass executable. The zero value uses "multipass" from
// PATH and the default timeouts. A Client holds no state between calls and
// may be copied and used from several goroutines.
type Client struct {
	// Path of the multipass executable; "" means "multipass" from PATH.
	Path string
	// Timeout bounds every call except Launch and Shell; 0 means
	// DefaultTimeout. The caller's context can only shorten it.
	Timeout time.Duration
	// LaunchTimeout bounds Launch and is passed to multipass as --timeout;
	// 0 means DefaultLaunchTimeout.
	LaunchTimeout time.Duration
}

func (c *Client) path() string {
	if c.Path == "" {
		return "multipass"
	}
	return c.Path
}

func (c *Client) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

func (c *Client) launchTimeout() time.Duration {
	if c.LaunchTimeout <= 0 {
		return DefaultLaunchTimeout
	}
	return c.LaunchTimeout
}

// ExecResult is the outcome of a command run in an instance.
type ExecResult struct {
	Stdout, Stderr []byte
	// ExitCode is the command's exit status.
	ExitCode int
}

// Launch creates and starts an instance, and waits until cloud-init has
// finished in it (multipass waits for that before it returns). When
// multipass's own --timeout runs out first, the error matches ErrTimeout
// and the instance is left behind, running, with cloud-init perhaps still
// at work in it (canonical/multipass#2574, #3536, #4395).
func (c *Client) Launch(ctx context.Context, o LaunchOptions) error {
	args, err := launchArgs(o, c.launchTimeout())
	if err != nil {
		return err
	}
	var stdin io.Reader
	if o.CloudInit != nil {
		stdin = bytes.NewReader(o.CloudInit)
	}
	progress := &progressWriter{w: orDiscard(o.Progress)}
	var stderr bytes.Buffer
	code, err := c.invoke(ctx, c.launchTimeout()+launchGrace, args, stdin, progress, &stderr, nil)
	progress.Flush()
	if err != nil {
		return err
	}
	if code != 0 {
		return &Error{Argv: c.argv(args), ExitCode: code, Stderr: stderr.String(), Err: classify(stderr.String(), code)}
	}
	return nil
}

// Info returns what multipass knows about the instance name.
func (c *Client) Info(ctx context.Context, name string) (Instance, error) {
	if err := ValidName(name); err != nil {
		return Instance{}, err
	}
	args := infoArgs(name)
	out, err := c.command(ctx, c.timeout(), args, nil)
	if err != nil {
		return Instance{}, err
	}
	all, err := parseInfo(out)
	if err != nil {
		return Instance{}, fmt.Errorf("multipass info %s: %w", name, err)
	}
	for _, in := range all {
		if in.Name == name {
			return in, nil
		}
	}
	// multipass answered without an error but without this instance either.
	return Instance{}, fmt.Errorf("multipass info %s: %w", name, ErrNotFound)
}

// List returns every instance multipass knows, deleted ones included.
func (c *Client) List(ctx context.Context) ([]Instance, error) {
	out, err := c.command(ctx, c.timeout(), listArgs(), nil)
	if err != nil {
		return nil, err
	}
	all, err := parseList(out)
	if err != nil {
		return nil, fmt.Errorf("multipass list: %w", err)
	}
	return all, nil
}

// Start starts a stopped or suspended instance.
func (c *Client) Start(ctx context.Context, name string) error {
	return c.simple(ctx, "start", name)
}

// Stop stops a running instance.
func (c *Client) Stop(ctx context.Context, name string) error {
	return c.simple(ctx, "stop", name)
}

// Delete deletes and purges an instance, so that its name can be launched
// again at once.
func (c *Client) Delete(ctx context.Context, name string) error {
	return c.simple(ctx, "delete", "--purge", name)
}

func (c *Client) simple(ctx context.Context, args ...string) error {
	if err := ValidName(args[len(args)-1]); err != nil {
		return err
	}
	_, err := c.command(ctx, c.timeout(), args, nil)
	return err
}

// Exec runs argv in the instance as its default user (prefix "sudo" for
// root) and collects its output. A nonzero exit status of the command is
// reported in ExitCode with a nil error; the error is for multipass's own
// failures (instance missing, daemon down, timeout).
func (c *Client) Exec(ctx context.Context, name string, argv []string, stdin io.Reader) (ExecResult, error) {
	var stdout, stderr bytes.Buffer
	code, err := c.ExecStream(ctx, name, argv, stdin, &stdout, &stderr)
	return ExecResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: code}, err
}

// ExecStream is Exec with the command's output copied to stdout and stderr
// as it comes (nil discards). The two writers are never written at the same
// time, so they may be the same buffer.
func (c *Client) ExecStream(ctx context.Context, name string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if err := ValidName(name); err != nil {
		return -1, err
	}
	args, err := execArgs(name, argv)
	if err != nil {
		return -1, err
	}
	var tail tailBuffer
	var mu sync.Mutex
	code, err := c.invoke(ctx, c.timeout(), args, stdin,
		&lockedWriter{mu: &mu, w: orDiscard(stdout)},
		io.MultiWriter(&lockedWriter{mu: &mu, w: orDiscard(stderr)}, &tail), nil)
	if err != nil {
		return -1, err
	}
	if code != 0 && execFailure(tail.String()) {
		return -1, &Error{Argv: c.argv(args), ExitCode: code, Stderr: tail.String(), Err: classify(tail.String(), code)}
	}
	return code, nil
}

// ExecOutput is ExecStream with the command's stdout handed to read as a
// stream, in the calling goroutine, instead of copied to a writer: what
// `multipass exec NAME -- tar -c ...` sends can be unpacked as it comes,
// with no file in between. read must consume what it needs and return; what
// it leaves unread is discarded. When read fails, the command is stopped
// and read's error is returned.
func (c *Client) ExecOutput(ctx context.Context, name string, argv []string, stdin io.Reader, stderr io.Writer, read func(io.Reader) error) (int, error) {
	if err := ValidName(name); err != nil {
		return -1, err
	}
	args, err := execArgs(name, argv)
	if err != nil {
		return -1, err
	}
	var tail tailBuffer
	code, err := c.invoke(ctx, c.timeout(), args, stdin, nil, io.MultiWriter(orDiscard(stderr), &tail), read)
	if err != nil {
		return -1, err
	}
	if code != 0 && execFailure(tail.String()) {
		return -1, &Error{Argv: c.argv(args), ExitCode: code, Stderr: tail.String(), Err: classify(tail.String(), code)}
	}
	return code, nil
}

// Shell opens an interactive shell in the instance on the caller's terminal
// (`multipass shell NAME`). Only ctx bounds it: a person is typing. The
// shell's own exit status is the person's business and is not an error.
func (c *Client) Shell(ctx context.Context, name string) error {
	// Ask first, so that a missing instance or an unreachable daemon comes
	// back as a typed error: the shell's stderr goes to the terminal
	// untouched, because multipass needs the real terminal to run one.
	if _, err := c.Info(ctx, name); err != nil {
		return err
	}
	args := []string{"shell", name}
	cmd := exec.CommandContext(ctx, c.path(), args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return c.startError(ctx, args, ctx.Err())
	}
	var ee *exec.ExitError
	if err == nil || errors.As(err, &ee) {
		return nil
	}
	return c.startError(ctx, args, err)
}

// command runs a multipass subcommand other than exec, and returns its
// stdout. A nonzero exit becomes an *Error classified from stderr.
func (c *Client) command(ctx context.Context, timeout time.Duration, args []string, stdin io.Reader) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	code, err := c.invoke(ctx, timeout, args, stdin, &stdout, &stderr, nil)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, &Error{Argv: c.argv(args), ExitCode: code, Stderr: stderr.String(), Err: classify(stderr.String(), code)}
	}
	return stdout.Bytes(), nil
}

// invoke runs multipass with args under a deadline of timeout and returns
// its exit code. stdout goes to the writer, or, when read is not nil, to
// read through a pipe. The error is only for multipass not starting or not
// finishing (an *Error wrapping ErrNotInstalled, ErrTimeout or the
// context's error), and for read failing.
func (c *Client) invoke(parent context.Context, timeout time.Duration, args []string, stdin io.Reader, stdout, stderr io.Writer, read func(io.Reader) error) (int, error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.path(), args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.WaitDelay = waitDelay
	var err error
	if read == nil {
		err = cmd.Run()
	} else {
		var readErr error
		readErr, err = runReading(cmd, cancel, read)
		if readErr != nil {
			return -1, fmt.Errorf("%s: %w", strings.Join(c.argv(args), " "), readErr)
		}
	}
	if ctx.Err() != nil {
		// Killed at the deadline or on cancellation, whatever it returned.
		return -1, c.startError(ctx, args, ctx.Err())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode(), nil
	default:
		return -1, c.startError(ctx, args, err)
	}
}

// runReading runs cmd with its stdout read by read in this goroutine. When
// read fails, the pipe is closed and the command killed (stop), so that it
// cannot block writing to a reader that is gone.
func runReading(cmd *exec.Cmd, stop func(), read func(io.Reader) error) (readErr, err error) {
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if readErr = read(pipe); readErr == nil {
		// What read left is not wanted, but the command must finish.
		_, readErr = io.Copy(io.Discard, pipe)
	}
	if readErr != nil {
		pipe.Close()
		stop()
	}
	return readErr, cmd.Wait()
}

// startError wraps a failure to run multipass to completion.
func (c *Client) startError(ctx context.Context, args []string, err error) error {
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, os.ErrNotExist):
		err = fmt.Errorf("%w: %w", ErrNotInstalled, err)
	case errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("%w: %w", ErrTimeout, err)
	case ctx.Err() != nil:
		err = ctx.Err()
	}
	return &Error{Argv: c.argv(args), ExitCode: -1, Err: err}
}

func (c *Client) argv(args []string) []string {
	return append([]string{c.path()}, args...)
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// lockedWriter serialises writes from exec's stdout and stderr copiers,
// which run in separate goroutines, so that callers may pass one writer for
// both.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// tailBuffer keeps the last tailSize bytes written to it.
type tailBuffer struct {
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - tailSize; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

package main

// The tests of this package run the real hopcheck binary as a subprocess,
// the way a user or a CI job does, and judge it by its exit code, its
// output, its report files and what it leaves in the kernel.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/internal/netns"
	"golang.org/x/sys/unix"
)

// hopcheckBin is the binary under test, built once by TestMain.
var hopcheckBin string

// commandTimeout bounds every hopcheck process a test starts, so a hang
// fails the test instead of the whole test binary.
const commandTimeout = 90 * time.Second

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hopcheck-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	// Others may enter the directory, so that tests run as root can also
	// run the binary as an unprivileged user (see runUnprivileged).
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	hopcheckBin = filepath.Join(dir, "hopcheck")
	if err := buildBinary(hopcheckBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinary builds this package to out, with the race detector when the
// tests themselves run with it, so that `go test -race` also finds races in
// the binary's parallel runner.
func buildBinary(out string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build hopcheck: %w", err)
	}
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, append(args, ".")...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// env is one test's view of hopcheck: its own state directory, so its run
// records never mix with another test's or another user's, and a watch on
// that directory that learns the ID of every run started there, even one
// that comes and goes between two looks.
type env struct {
	t       *testing.T
	state   string
	store   runs.Store
	watchFD int
	// ids are the run IDs seen so far; runIDs adds what the watch saw since.
	ids map[string]bool
}

// newEnv returns an env whose cleanup kills what the test left running and
// removes every namespace of every run it saw, even when the test failed.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, state: t.TempDir(), ids: map[string]bool{}}
	e.store = runs.Store{Dir: e.state}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	e.watchFD = fd
	// runs.Store.Save writes ".tmp-<id>-*" and renames it to "<id>.json":
	// the create and the rename each name the run.
	if _, err := unix.InotifyAddWatch(fd, e.state, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		unix.Close(fd)
		t.Fatalf("inotify watch %s: %v", e.state, err)
	}
	t.Cleanup(func() {
		ids := e.runIDs()
		unix.Close(e.watchFD)
		if os.Geteuid() != 0 {
			return
		}
		for _, name := range e.namespacesOf(ids) {
			if err := netns.Delete(name); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return e
}

// runIDs returns the IDs of every run whose record was ever written to this
// env's state directory, sorted.
func (e *env) runIDs() []string {
	e.t.Helper()
	buf := make([]byte, 64*1024)
	for {
		n, err := unix.Read(e.watchFD, buf)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			e.t.Fatalf("read inotify: %v", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := string(bytes.TrimRight(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)], "\x00"))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				e.t.Fatalf("inotify queue overflowed: runs may have gone unseen")
			}
			if id := recordRunID(name); id != "" {
				e.ids[id] = true
			}
		}
	}
	out := make([]string, 0, len(e.ids))
	for id := range e.ids {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// recordRunID returns the run ID in the name of a record file or of its
// temporary file, "" for other names.
func recordRunID(name string) string {
	if id, ok := strings.CutSuffix(name, ".json"); ok && !strings.HasPrefix(name, ".") {
		return id
	}
	if rest, ok := strings.CutPrefix(name, ".tmp-"); ok {
		id, _, _ := strings.Cut(rest, "-")
		return id
	}
	return ""
}

// namespacesOf returns the namespaces on this machine that belong to the
// given runs.
func (e *env) namespacesOf(ids []string) []string {
	e.t.Helper()
	names, err := netns.List()
	if err != nil {
		e.t.Fatalf("list namespaces: %v", err)
	}
	var out []string
	for _, n := range names {
		if id, _, ok := netns.ParseName(n); ok && slices.Contains(ids, id) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// records returns the run records in this env's state directory.
func (e *env) records() []*runs.Record {
	e.t.Helper()
	recs, err := e.store.List()
	if err != nil {
		e.t.Fatalf("list records: %v", err)
	}
	return recs
}

// assertNothingLeft fails the test unless every run this env saw is gone:
// no namespace and no record. It returns the run IDs it checked, and fails
// when there are none, since then it would have checked nothing.
func (e *env) assertNothingLeft() []string {
	e.t.Helper()
	ids := e.runIDs()
	if len(ids) == 0 {
		e.t.Fatalf("no run was recorded in %s: nothing to check", e.state)
	}
	if left := e.namespacesOf(ids); len(left) > 0 {
		e.t.Errorf("namespaces left behind: %v", left)
	}
	for _, r := range e.records() {
		e.t.Errorf("record left behind: run %s (%s), pid %d, kept %v", r.RunID, r.Scenario, r.PID, r.Kept)
	}
	return ids
}

// result is how a hopcheck process ended.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit code %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// proc is a hopcheck process running in the background.
type proc struct {
	cmd    *exec.Cmd
	stdout *os.File
	stderr *os.File
	done   chan struct{}
	res    result
}

// start runs hopcheck with args in the background, in this package's
// directory, with this env's state directory. Its output goes to files, not
// pipes, so what it has written can be read at any moment (see
// stdoutSoFar). The test's cleanup kills it if the test did not wait for
// it.
func (e *env) start(args ...string) *proc {
	e.t.Helper()
	return e.startAs(nil, args...)
}

// startAs is start with the process's credentials set to cred; nil keeps
// this process's.
func (e *env) startAs(cred *syscall.Credential, args ...string) *proc {
	e.t.Helper()
	dir := e.t.TempDir()
	p := &proc{done: make(chan struct{})}
	var err error
	if p.stdout, err = os.Create(filepath.Join(dir, "stdout")); err != nil {
		e.t.Fatal(err)
	}
	if p.stderr, err = os.Create(filepath.Join(dir, "stderr")); err != nil {
		p.stdout.Close()
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	p.cmd = exec.CommandContext(ctx, hopcheckBin, args...)
	p.cmd.Env = append(os.Environ(), runs.DirEnv+"="+e.state, "NO_COLOR=1")
	if raceEnabled && os.Getenv("GORACE") == "" {
		// A race-enabled binary sleeps a second before exiting, by default,
		// to let race reports finish; there are dozens of processes here.
		p.cmd.Env = append(p.cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	// On timeout, ask for a clean teardown first, as a CI runner would;
	// SIGKILL follows if that does not end it.
	p.cmd.Cancel = func() error { return p.cmd.Process.Signal(syscall.SIGTERM) }
	p.cmd.WaitDelay = 20 * time.Second
	if err := p.cmd.Start(); err != nil {
		cancel()
		p.stdout.Close()
		p.stderr.Close()
		e.t.Fatalf("start hopcheck %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		defer close(p.done)
		defer cancel()
		err := p.cmd.Wait()
		p.res = result{code: p.cmd.ProcessState.ExitCode(), stdout: readAll(p.stdout), stderr: readAll(p.stderr)}
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			p.res.stderr += "\n(wait: " + err.Error() + ")"
		}
		p.stdout.Close()
		p.stderr.Close()
	}()
	e.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// readAll returns what was written to f, or why it cannot be read.
func readAll(f *os.File) string {
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(b)
}

// stdoutSoFar returns what p has written to stdout until now.
func (p *proc) stdoutSoFar() string { return readAll(p.stdout) }

// wait waits for p to exit and returns how it ended.
func (p *proc) wait() result {
	<-p.done
	return p.res
}

// exited reports whether p has exited, without waiting.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to p.
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// run runs hopcheck with args and waits for it.
func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.start(args...).wait()
}

// nobody is the unprivileged user that runUnprivileged runs hopcheck as.
const nobody = 65534

// runUnprivileged runs hopcheck like run, but as user nobody when the tests
// run as root, so a command that claims to need no privileges is held to
// that even in CI.
func (e *env) runUnprivileged(args ...string) result {
	e.t.Helper()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: nobody, Gid: nobody}
	}
	return e.startAs(cred, args...).wait()
}

// waitBuilt waits until p has recorded a run in this env's state directory
// whose every namespace exists, and returns that record. It fails the test
// when p exits first or the wait runs out.
func (e *env) waitBuilt(p *proc) *runs.Record {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range e.records() {
			if r.PID == p.cmd.Process.Pid && allExist(r) {
				return r
			}
		}
		if p.exited() {
			e.t.Fatalf("hopcheck exited before its namespaces existed:\n%v", p.wait())
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("hopcheck (pid %d) did not build its namespaces within 30s", p.cmd.Process.Pid)
	return nil
}

// allExist reports whether every namespace of r exists.
func allExist(r *runs.Record) bool {
	if len(r.Namespaces) == 0 {
		return false
	}
	for _, k := range r.Namespaces {
		if !netns.Exists(k) {
			return false
		}
	}
	return true
}

// stillExisting returns the namespaces of r that exist.
func stillExisting(r *runs.Record) []string {
	var out []string
	for _, ns := range r.NamespaceNames() {
		if netns.Exists(r.Namespaces[ns]) {
			out = append(out, r.Namespaces[ns])
		}
	}
	return out
}

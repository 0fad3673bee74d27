package vm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hopcheck/hopcheck/multipass"
)

// DefaultRunTimeout bounds the guest's `hopcheck run` when RunOptions leaves
// Timeout zero. The multipass calls around it have the client's timeouts.
const DefaultRunTimeout = time.Hour

// cleanupTimeout bounds the removal of the guest run directory and the
// deletion of the VM, which happen even after ctx is canceled.
const cleanupTimeout = 5 * time.Minute

// RunOptions describes one `hopcheck run` in a VM.
type RunOptions struct {
	// Spec names the VM and says how to launch it when missing.
	Spec
	// KeepVM leaves the VM running after the run. By default a VM that Run
	// launched is deleted and purged, so that every run starts from a
	// fresh kernel state; a VM that already existed is never deleted. See
	// the package documentation.
	KeepVM bool

	// Paths are the scenario files and directories, as given on the host
	// command line. Relative ones are taken from Dir.
	Paths []string
	// Dir is the directory relative Paths start from; "" means the current
	// directory. Paths under it keep their relative form in the guest.
	Dir string

	// JSONPath, JUnitPath and PcapDir are where the guest's reports and
	// captures are written on the host; "" skips one. Captures are only
	// made when PcapDir is set.
	JSONPath, JUnitPath, PcapDir string
	// Args are further flags for the guest's `hopcheck run` (such as
	// "--shard=1/4"), placed before the paths.
	Args []string

	// Binary returns the path of a hopcheck executable for linux/goarch,
	// goarch being the guest's architecture; the CLI reuses its own
	// executable when it fits or builds one with BuildBinary.
	Binary func(ctx context.Context, goarch string) (string, error)

	// Stdout and Stderr receive the guest run's output as it comes; nil
	// discards it.
	Stdout, Stderr io.Writer
	// Timeout bounds the guest run; 0 means DefaultRunTimeout.
	Timeout time.Duration
	// MaxResults bounds the size of the reports and captures brought home;
	// 0 means DefaultMaxResults.
	MaxResults int64
}

// DefaultMaxResults bounds what a run brings home when RunOptions leaves
// MaxResults zero: a guest cannot fill the host's disk.
const DefaultMaxResults = 4 << 30

func (o RunOptions) maxResults() int64 {
	if o.MaxResults <= 0 {
		return DefaultMaxResults
	}
	return o.MaxResults
}

// Run runs hopcheck in the VM and returns the guest run's exit code: 0 when
// every check passed, 1 when one failed, 2 for bad input. The code is -1
// when the run did not finish; err then says why. After a finished run, err
// reports a failure to bring results home or to clean up, and the exit code
// is still the run's.
func (b *Backend) Run(ctx context.Context, opts RunOptions) (exitCode int, err error) {
	spec := opts.Spec.withDefaults()
	if len(opts.Paths) == 0 {
		return -1, errors.New("vm run: no scenario paths")
	}
	if opts.Binary == nil {
		return -1, errors.New("vm run: no Binary function to provide hopcheck for the guest")
	}
	base, err := baseDir(opts.Dir)
	if err != nil {
		return -1, err
	}
	files, args, err := collect(base, opts.Paths)
	if err != nil {
		return -1, err
	}

	c := b.client()
	_, launched, err := b.ensure(ctx, spec)
	if err != nil {
		if launched && !opts.KeepVM {
			// A failed launch may leave a broken instance behind.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			err = errors.Join(err, b.deleteVM(cctx, spec.Name, true))
		}
		return -1, err
	}
	g := &guest{c: c, name: spec.Name}
	exitCode = -1
	var runDir string
	running := false // the guest run was started and has not returned
	defer func() {
		// Clean up even when ctx is canceled: that is when it matters most.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if running {
			// Cancelling kills the local multipass client, not the guest's
			// hopcheck: interrupt it there, so that it tears its topologies
			// down, before its directory (or the VM) goes away.
			err = errors.Join(err, g.interrupt(cctx, runDir))
		}
		// A VM this run did not launch belongs to the user (made with
		// `hopcheck vm up` or by hand): only the run's own directory goes.
		if opts.KeepVM || !launched {
			if runDir != "" {
				_, cerr := g.run(cctx, "sudo", "rm", "-rf", runDir)
				err = errors.Join(err, cerr)
			}
			return
		}
		err = errors.Join(err, b.deleteVM(cctx, spec.Name, false))
	}()

	machine, err := g.run(ctx, "uname", "-m")
	if err != nil {
		return exitCode, err
	}
	goarch, err := guestArch(machine)
	if err != nil {
		return exitCode, fmt.Errorf("vm %s: %w", spec.Name, err)
	}
	bin, err := opts.Binary(ctx, goarch)
	if err != nil {
		return exitCode, fmt.Errorf("vm %s: hopcheck binary for linux/%s: %w", spec.Name, goarch, err)
	}
	home, err := g.run(ctx, "printenv", "HOME")
	if err != nil {
		return exitCode, err
	}
	if !path.IsAbs(home) {
		return exitCode, fmt.Errorf("vm %s: guest home directory %q is not an absolute path", spec.Name, home)
	}
	runDir = path.Join(home, "hopcheck-run-"+newID())

	// Host → guest: one archive with the binary and the scenarios, streamed
	// into tar in the guest. No host path is handed to multipass, which a
	// strictly confined snap could not open outside the user's home.
	b.logf("copying hopcheck and %d scenario files into VM %s", len(files), spec.Name)
	if _, err := g.run(ctx, "mkdir", "-p", path.Join(runDir, outDir)); err != nil {
		return exitCode, err
	}
	if err := g.pushBundle(ctx, runDir, bin, files); err != nil {
		return exitCode, err
	}

	// The run, from the scenarios' directory so that relative paths read
	// as they do on the host.
	argv := guestRunArgv(runDir, opts.PcapDir != "", opts.Args, args)
	long := *c
	long.Timeout = opts.Timeout
	if long.Timeout <= 0 {
		long.Timeout = DefaultRunTimeout
	}
	running = true
	code, err := long.ExecStream(ctx, spec.Name, argv, nil, opts.Stdout, opts.Stderr)
	running = ctx.Err() != nil
	if err != nil {
		return exitCode, fmt.Errorf("vm %s: hopcheck run: %w", spec.Name, err)
	}
	exitCode = code
	if code < 0 || code > 2 {
		// 126/127: the binary could not run there; 128+n: killed by signal n.
		return exitCode, fmt.Errorf("vm %s: hopcheck run exited with status %d", spec.Name, code)
	}

	// Guest → host: the reports and captures, packed by root because root
	// wrote them, and streamed back on stdout.
	dests := resultDests{JSON: opts.JSONPath, JUnit: opts.JUnitPath, Pcap: opts.PcapDir}
	if dests == (resultDests{}) {
		return exitCode, nil
	}
	got, err := g.pullResults(ctx, path.Join(runDir, outDir), dests, opts.maxResults())
	if err != nil {
		return exitCode, err
	}
	// Bad input (2) may stop a run before it writes reports; a run that
	// checked something (0, 1) must have written them.
	if err := missingReports(dests, got, exitCode); err != nil {
		return exitCode, fmt.Errorf("vm %s: %w", spec.Name, err)
	}
	return exitCode, nil
}

// guestRunArgv is the guest's command line for the run.
func guestRunArgv(runDir string, pcap bool, extra, paths []string) []string {
	out := path.Join(runDir, outDir)
	argv := []string{
		// env -C (coreutils ≥ 8.28) sets the working directory without a
		// shell; sudo cannot, unless sudoers allows it.
		"sudo", "env", "-C", path.Join(runDir, inDir),
		path.Join(runDir, binName), "run",
		"--json", path.Join(out, jsonName),
		"--junit", path.Join(out, junitName),
	}
	if pcap {
		argv = append(argv, "--pcap", path.Join(out, pcapName))
	}
	argv = append(argv, extra...)
	return append(argv, paths...)
}

// interruptWait bounds the wait for an interrupted guest run's teardown.
const interruptWait = 30 * time.Second

// interrupt sends SIGINT to the guest's hopcheck run from runDir, and waits
// until it has exited (bounded), so its teardown finishes.
func (g *guest) interrupt(ctx context.Context, runDir string) error {
	// The pattern matches "<runDir>/hopcheck run", unique to this run, but
	// not the pkill or pgrep command line (nor sudo's around it), which
	// holds "[h]opcheck" instead.
	bin := regexp.QuoteMeta(runDir) + "/[" + binName[:1] + "]" + regexp.QuoteMeta(binName[1:]) + " run"
	// pkill and pgrep exit 1 when nothing matches: the run has ended.
	res, err := g.c.Exec(ctx, g.name, []string{"sudo", "pkill", "-INT", "-f", bin}, nil)
	switch {
	case err != nil:
		return fmt.Errorf("vm %s: interrupt the guest run: %w", g.name, err)
	case res.ExitCode == 1:
		return nil
	case res.ExitCode != 0:
		return fmt.Errorf("vm %s: interrupt the guest run: pkill exit status %d: %s", g.name, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	deadline := time.Now().Add(interruptWait)
	for time.Now().Before(deadline) {
		res, err := g.c.Exec(ctx, g.name, []string{"pgrep", "-f", bin}, nil)
		if err != nil {
			return fmt.Errorf("vm %s: wait for the interrupted guest run: %w", g.name, err)
		}
		if res.ExitCode != 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("vm %s: the interrupted guest run did not exit within %v", g.name, interruptWait)
}

// deleteVM deletes the VM; a VM already gone is fine when missingOK.
func (b *Backend) deleteVM(ctx context.Context, name string, missingOK bool) error {
	err := b.Down(ctx, name)
	if missingOK && errors.Is(err, multipass.ErrNotFound) {
		return nil
	}
	return err
}

// guest runs commands in one instance that must succeed.
type guest struct {
	c    *multipass.Client
	name string
}

// run runs argv in the guest and returns its trimmed stdout; a nonzero exit
// status is an error carrying the command's stderr.
func (g *guest) run(ctx context.Context, argv ...string) (string, error) {
	res, err := g.c.Exec(ctx, g.name, argv, nil)
	if err != nil {
		return "", fmt.Errorf("vm %s: %w", g.name, err)
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("vm %s: %s: exit status %d: %s", g.name, strings.Join(argv, " "), res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}

func baseDir(dir string) (string, error) {
	if dir == "" {
		return os.Getwd()
	}
	return filepath.Abs(dir)
}

// pushBundle streams the bundle of bin and files into `tar -x` in the
// guest, which unpacks it into runDir as the default user. The archive is
// written into a pipe as multipass reads it, never to a file.
func (g *guest) pushBundle(ctx context.Context, runDir, bin string, files []bundleFile) error {
	pr, pw := io.Pipe()
	written := make(chan error, 1)
	go func() {
		err := writeBundle(pw, bin, files)
		pw.CloseWithError(err) // nil: EOF for tar
		written <- err
	}()
	var stderr bytes.Buffer
	argv := []string{"tar", "-x", "-f", "-", "--no-same-owner", "-C", runDir}
	code, err := g.c.ExecStream(ctx, g.name, argv, pr, nil, &stderr)
	// Unblock the writer when tar stopped reading early, then wait for it.
	pr.CloseWithError(errBundleUnread)
	werr := <-written
	switch {
	case werr != nil && !errors.Is(werr, errBundleUnread):
		return fmt.Errorf("vm %s: bundle: %w", g.name, werr)
	case err != nil:
		return fmt.Errorf("vm %s: copy the bundle in: %w", g.name, err)
	case code != 0:
		return fmt.Errorf("vm %s: %s: exit status %d: %s", g.name, strings.Join(argv, " "), code, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// errBundleUnread ends the bundle's writer when the guest's tar exited
// before it read the whole archive; the tar's own failure is reported.
var errBundleUnread = errors.New("the guest's tar stopped reading")

// pullResults streams the guest directory outDir out of `sudo tar -c` (root
// wrote it) and unpacks the reports and captures into dests as they come.
func (g *guest) pullResults(ctx context.Context, outDir string, dests resultDests, limit int64) (found, error) {
	var got found
	var stderr bytes.Buffer
	argv := []string{"sudo", "tar", "-c", "-f", "-", "-C", outDir, "."}
	code, err := g.c.ExecOutput(ctx, g.name, argv, nil, &stderr, func(r io.Reader) error {
		var err error
		got, err = extractResults(r, dests, limit)
		return err
	})
	switch {
	case err != nil:
		return got, fmt.Errorf("vm %s: bring the results home: %w", g.name, err)
	case code != 0:
		return got, fmt.Errorf("vm %s: %s: exit status %d: %s", g.name, strings.Join(argv, " "), code, strings.TrimSpace(stderr.String()))
	}
	return got, nil
}

// newID names a run directory so that two runs in one VM do not collide.
func newID() string {
	var b [6]byte
	rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}

package qemu

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hopcheck/hopcheck/multipass/vm"
)

// outDirName is the run directory's output directory, shared with the
// Multipass backend.
const outDirName = vm.GuestOutDir

// Errors of a guest that did not finish its run. They are not check
// results: the CLI reports them as errors of their own.
var (
	// ErrGuestPanic: the guest kernel panicked (the error carries the
	// console's panic message).
	ErrGuestPanic = errors.New("the guest kernel panicked")
	// ErrGuestStopped: the guest stopped before its run ended, without a
	// panic on the console (init failed, qemu died).
	ErrGuestStopped = errors.New("the guest stopped before its run ended")
	// ErrGuestTimeout: the guest did not boot, or did not finish its run,
	// in time; it was stopped.
	ErrGuestTimeout = errors.New("the guest did not finish in time")
)

// Defaults of RunOptions.
const (
	DefaultCPUs        = 2
	DefaultMemoryMiB   = 2048
	DefaultBootTimeout = 5 * time.Minute
	DefaultRunTimeout  = time.Hour
	// DefaultMaxResults is the size of the results disk: the most the
	// reports and captures may take. The disk is a sparse file.
	DefaultMaxResults = 1 << 30
)

// consoleKeep is how many console lines an error quotes at most.
const consoleKeep = 40

// Accel chooses qemu's accelerator.
type Accel string

const (
	// AccelAuto is KVM when /dev/kvm can be opened, TCG otherwise.
	AccelAuto Accel = ""
	AccelKVM  Accel = "kvm"
	AccelTCG  Accel = "tcg"
)

// RunOptions describes one `hopcheck run` under a kernel.
type RunOptions struct {
	// Kernel is the --kernel PATH: a linux-image .deb or a vmlinuz-REL
	// with its modules beside it (see OpenKernel).
	Kernel string
	// Paths and Dir are the scenario paths and the directory relative
	// ones start from ("" means the current directory).
	Paths []string
	Dir   string
	// JSONPath, JUnitPath and PcapDir are where the guest's reports and
	// captures go on the host; "" skips one.
	JSONPath, JUnitPath, PcapDir string
	// Args are further flags for the guest's `hopcheck run`.
	Args []string
	// Env are VAR=value settings for the guest run (NO_COLOR=1).
	Env []string
	// Binary returns a static hopcheck for linux/amd64.
	Binary func(ctx context.Context) (string, error)

	// Stdout and Stderr receive the guest run's output as it comes.
	Stdout, Stderr io.Writer
	// Console, when set, receives the guest's kernel console (boot
	// messages, the init's progress) as it comes.
	Console io.Writer
	// Log receives one line per step of the host's own ("booting 6.1.0
	// under TCG").
	Log io.Writer

	// Accel, CPUs and MemoryMiB size the VM; zero values are the defaults.
	Accel     Accel
	CPUs      int
	MemoryMiB int
	// BootTimeout bounds the time until the guest run starts, Timeout the
	// guest run itself; zero values are the defaults.
	BootTimeout, Timeout time.Duration
	// MaxResults bounds what comes home; 0 means DefaultMaxResults.
	MaxResults int64

	// initExtra is shell the init runs as the guest run starts (tests
	// make the guest panic or hang with it).
	initExtra string
}

// Run boots the kernel with hopcheck and the scenarios, runs them, brings
// the reports home and returns the guest run's exit code (0, 1 or 2). The
// code is -1 when the run did not finish; err says why, and wraps
// ErrGuestPanic, ErrGuestStopped or ErrGuestTimeout when the guest is to
// blame. After a finished run, err reports a failure to bring results
// home, and the exit code is still the run's.
func Run(ctx context.Context, opts RunOptions) (int, error) {
	if opts.Binary == nil {
		return -1, errors.New("qemu run: no Binary function to provide hopcheck for the guest")
	}
	qemuPath, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return -1, errors.New("--kernel needs qemu-system-x86_64: install qemu-system-x86 (make deps)")
	}
	bundle, err := vm.Collect(opts.Dir, opts.Paths)
	if err != nil {
		return -1, err
	}
	scratch, err := os.MkdirTemp("", "hopcheck-kernel-")
	if err != nil {
		return -1, err
	}
	defer os.RemoveAll(scratch)

	start := time.Now()
	k, err := OpenKernel(opts.Kernel, scratch)
	if err != nil {
		return -1, err
	}
	bin, err := opts.Binary(ctx)
	if err != nil {
		return -1, fmt.Errorf("hopcheck binary for the guest: %w", err)
	}
	initrd := filepath.Join(scratch, "initramfs.cpio")
	if err := buildInitramfs(initrd, k, bin, bundle, opts); err != nil {
		return -1, err
	}
	limit := opts.MaxResults
	if limit <= 0 {
		limit = DefaultMaxResults
	}
	disk := filepath.Join(scratch, "results.img")
	if err := makeSparse(disk, limit); err != nil {
		return -1, err
	}
	// Auto: KVM where /dev/kvm opens, but a KVM that qemu cannot use (a
	// nested one missing a CPU feature, say) fails before the guest boots;
	// then TCG.
	accels := []Accel{opts.Accel}
	if opts.Accel == AccelAuto {
		accels = []Accel{AccelTCG}
		if kvmUsable() {
			accels = []Accel{AccelKVM, AccelTCG}
		}
	}
	var code int
	var g *guest
	for i, accel := range accels {
		logf(opts.Log, "booting %s under %s (initramfs built in %s)", k.Release, strings.ToUpper(string(accel)), time.Since(start).Round(100*time.Millisecond))
		g, err = boot(ctx, qemuPath, qemuArgs(k, initrd, disk, accel, opts), opts)
		if err != nil {
			return -1, err
		}
		code, err = g.wait(ctx, opts)
		if err != nil && i+1 < len(accels) && !g.booted && errors.Is(err, ErrGuestStopped) {
			logf(opts.Log, "qemu failed under %s before the guest booted: %s", strings.ToUpper(string(accel)), firstLine(g.stderr.String()))
			continue
		}
		break
	}
	if err != nil {
		return -1, err
	}
	logf(opts.Log, "guest run exited %d after %s", code, time.Since(start).Round(100*time.Millisecond))
	if code < 0 || code > 2 {
		return -1, fmt.Errorf("guest hopcheck run exited with status %d%s", code, g.console.tail())
	}
	dests := vm.Results{JSON: opts.JSONPath, JUnit: opts.JUnitPath, Pcap: opts.PcapDir}
	if dests.Empty() {
		return code, nil
	}
	if g.resultsStatus != 0 {
		return code, fmt.Errorf("the guest could not write its results (tar exit status %d; more than %d bytes?)", g.resultsStatus, limit)
	}
	f, err := os.Open(disk)
	if err != nil {
		return code, err
	}
	defer f.Close()
	if err := vm.ExtractResults(f, dests, limit, code); err != nil {
		return code, fmt.Errorf("bring the results home: %w", err)
	}
	return code, nil
}

// buildInitramfs writes the guest's initramfs to p.
func buildInitramfs(p string, k *Kernel, bin string, bundle *vm.Bundle, opts RunOptions) error {
	t := newTree()
	busybox, err := staticBusybox()
	if err != nil {
		return err
	}
	t.addHost("/bin/busybox", busybox, 0o755)
	libDirs, err := addIptables(t)
	if err != nil {
		return err
	}
	for _, etc := range []string{"/etc/protocols", "/etc/services", "/etc/ethertypes"} {
		if _, err := os.Stat(etc); err == nil {
			t.addHost(etc, etc, 0o644)
		}
	}
	if k.Modules != "" {
		mods, err := selectModules(k.Modules)
		if err != nil {
			return err
		}
		base := path.Join("/lib/modules", k.Release)
		for _, m := range mods.mods {
			t.addData(path.Join(base, m.out), m.data, 0o644)
		}
		for name, data := range mods.files {
			t.addData(path.Join(base, name), data, 0o644)
		}
	}
	var tarBuf bytes.Buffer
	if err := bundle.Write(&tarBuf, bin); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	t.addData(guestBundle, tarBuf.Bytes(), 0o644)

	workdir, argv := vm.GuestRun(guestRunDir, opts.PcapDir != "", opts.Args, bundle)
	env := append([]string{"HOME=/root", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LD_LIBRARY_PATH=" + strings.Join(libDirs, ":")}, opts.Env...)
	t.addData("/init", []byte(initScript(workdir, argv, env, opts.initExtra)), 0o755)
	t.addDir("/root")
	t.addDir("/etc")

	f, err := os.Create(p)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = t.write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	return nil
}

func makeSparse(p string, size int64) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// kvmUsable reports whether this process can create KVM VMs.
func kvmUsable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// qemuArgs is qemu's command line. The guest has no network device:
// its scenarios' namespaces are all the network there is. Serial ports:
// ttyS0 the console, ttyS1 and ttyS2 the guest run's stdout and stderr,
// each on a pipe passed as fds 3, 4 and 5.
func qemuArgs(k *Kernel, initrd, disk string, accel Accel, opts RunOptions) []string {
	cpus := opts.CPUs
	if cpus <= 0 {
		cpus = DefaultCPUs
	}
	mem := opts.MemoryMiB
	if mem <= 0 {
		mem = DefaultMemoryMiB
	}
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-smp", strconv.Itoa(cpus), "-m", strconv.Itoa(mem),
		"-kernel", k.Vmlinuz, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet rdinit=/init random.trust_cpu=on",
		"-serial", "file:/dev/fd/3", "-serial", "file:/dev/fd/4", "-serial", "file:/dev/fd/5",
		"-drive", "file=" + disk + ",format=raw,if=virtio,cache=unsafe",
		"-device", "virtio-rng-pci",
		"-nic", "none",
	}
	if accel == AccelKVM {
		return append(args, "-accel", "kvm", "-cpu", "host")
	}
	// TCG's "max" CPU has RDRAND, which seeds the guest's getrandom early.
	return append(args, "-accel", "tcg,thread=multi", "-cpu", "max")
}

// guest is a running qemu.
type guest struct {
	cmd     *exec.Cmd
	done    chan error // qemu's exit
	copies  sync.WaitGroup
	stderr  bytes.Buffer
	console *console
	markers chan marker

	resultsStatus int
	booted        bool // the init said it runs
}

type marker struct{ word, arg string }

// boot starts qemu with its serial ports on pipes.
func boot(ctx context.Context, qemuPath string, args []string, opts RunOptions) (*guest, error) {
	g := &guest{done: make(chan error, 1), markers: make(chan marker, 16), console: &console{}}
	var pipes [3][2]*os.File // console, stdout, stderr: read, write
	for i := range pipes {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		pipes[i] = [2]*os.File{r, w}
	}
	g.cmd = exec.Command(qemuPath, args...)
	g.cmd.ExtraFiles = []*os.File{pipes[0][1], pipes[1][1], pipes[2][1]}
	g.cmd.Stderr = &g.stderr
	if err := g.cmd.Start(); err != nil {
		for _, p := range pipes {
			p[0].Close()
			p[1].Close()
		}
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	for _, p := range pipes {
		p[1].Close() // qemu has them
	}
	g.copies.Add(3)
	go func() {
		defer g.copies.Done()
		defer pipes[0][0].Close()
		g.console.read(pipes[0][0], opts.Console, g.markers)
	}()
	for i, w := range []io.Writer{opts.Stdout, opts.Stderr} {
		if w == nil {
			w = io.Discard
		}
		go func() {
			defer g.copies.Done()
			defer pipes[i+1][0].Close()
			io.Copy(w, pipes[i+1][0])
		}()
	}
	go func() { g.done <- g.cmd.Wait() }()
	return g, nil
}

// wait follows the guest until qemu exits and returns the guest run's
// exit code.
func (g *guest) wait(ctx context.Context, opts RunOptions) (int, error) {
	bootTimeout := opts.BootTimeout
	if bootTimeout <= 0 {
		bootTimeout = DefaultBootTimeout
	}
	runTimeout := opts.Timeout
	if runTimeout <= 0 {
		runTimeout = DefaultRunTimeout
	}
	phase := "booting"
	timer := time.NewTimer(bootTimeout)
	defer timer.Stop()
	code := -1
	var failed string
	stop := func() {
		g.cmd.Process.Kill()
		<-g.done
		g.copies.Wait()
	}
	for {
		select {
		case <-ctx.Done():
			stop()
			return -1, ctx.Err()
		case <-timer.C:
			stop()
			limit := bootTimeout
			if phase != "booting" {
				limit = runTimeout
			}
			return -1, fmt.Errorf("%w: still %s after %s; stopped it%s", ErrGuestTimeout, phase, limit, g.console.tail())
		case m := <-g.markers:
			switch m.word {
			case markerBooted:
				g.booted = true
				logf(opts.Log, "guest kernel %s booted", m.arg)
			case markerRun:
				phase = "running hopcheck"
				timer.Reset(runTimeout)
			case markerResults:
				g.resultsStatus, _ = strconv.Atoi(m.arg)
			case markerExit:
				code, _ = strconv.Atoi(m.arg)
				phase = "powering off"
				timer.Reset(time.Minute)
			case markerFail:
				failed = m.arg
			}
		case err := <-g.done:
			g.copies.Wait()
			// Markers read before qemu's exit are still queued.
			for drained := false; !drained; {
				select {
				case m := <-g.markers:
					switch m.word {
					case markerResults:
						g.resultsStatus, _ = strconv.Atoi(m.arg)
					case markerExit:
						code, _ = strconv.Atoi(m.arg)
					case markerFail:
						failed = m.arg
					}
				default:
					drained = true
				}
			}
			if p := g.console.panicMessage(); p != "" {
				return -1, fmt.Errorf("%w: %s%s", ErrGuestPanic, p, g.console.tail())
			}
			if failed != "" {
				return -1, fmt.Errorf("%w: the guest's init gave up: %s%s", ErrGuestStopped, failed, g.console.tail())
			}
			if code < 0 {
				why := "qemu exited"
				if err != nil {
					why = fmt.Sprintf("qemu: %v: %s", err, strings.TrimSpace(g.stderr.String()))
				}
				return -1, fmt.Errorf("%w while %s (%s)%s", ErrGuestStopped, phase, why, g.console.tail())
			}
			return code, nil
		}
	}
}

// console reads the guest's kernel console: it keeps the last lines for
// errors, finds the init's markers and a kernel panic.
type console struct {
	mu    sync.Mutex
	last  []string
	panic string
}

func (c *console) read(r io.Reader, echo io.Writer, markers chan<- marker) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if echo != nil {
			fmt.Fprintln(echo, line)
		}
		if rest, ok := strings.CutPrefix(line, markerPrefix); ok {
			word, arg, _ := strings.Cut(rest, " ")
			markers <- marker{word, arg}
			continue
		}
		c.mu.Lock()
		c.last = append(c.last, line)
		if len(c.last) > consoleKeep {
			c.last = c.last[len(c.last)-consoleKeep:]
		}
		if i := strings.Index(line, "Kernel panic - not syncing"); i >= 0 && c.panic == "" {
			c.panic = strings.TrimSpace(line[i:])
		}
		c.mu.Unlock()
	}
	// Keep reading nothing: the markers channel is not closed, wait
	// selects on qemu's exit instead.
}

func (c *console) panicMessage() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.panic
}

// tail returns the last console lines, indented, for an error message.
func (c *console) tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.last) == 0 {
		return ""
	}
	return "\nlast lines of the guest console:\n  " + strings.Join(c.last, "\n  ")
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, "hopcheck: "+format+"\n", args...)
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

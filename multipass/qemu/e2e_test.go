package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/harness/report"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/hopcheck/hopcheck/multipass/vm"
)

// The tests below boot a real kernel in qemu with the real hopcheck: the
// kernel in HOPCHECK_TEST_KERNEL (a .deb or a vmlinuz), else Debian
// bookworm's cloud kernel, fetched once into .cache/kernels by the
// kernel-matrix script's private apt (the cache `make kernel-matrix`
// uses). Without qemu, busybox-static, iptables or a kernel they skip
// outside CI and fail in it (privtest).

var (
	kernelOnce sync.Once
	kernelPath string
	kernelErr  string

	binOnce sync.Once
	binPath string
	binErr  error
)

func testKernel(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a kernel in qemu")
	}
	for _, cmd := range []string{"qemu-system-x86_64", "iptables"} {
		if _, err := exec.LookPath(cmd); err != nil {
			privtest.Unavailable(t, cmd+" (make deps)")
		}
	}
	if _, err := staticBusybox(); err != nil {
		privtest.Unavailable(t, "busybox-static ("+err.Error()+")")
	}
	kernelOnce.Do(func() {
		if k := os.Getenv("HOPCHECK_TEST_KERNEL"); k != "" {
			kernelPath = k
			return
		}
		root, _ := filepath.Abs("../..")
		cmd := exec.Command("bash", "kernel-matrix.sh", "fetch", "bookworm")
		cmd.Env = append(os.Environ(), "KERNEL_CACHE="+filepath.Join(root, ".cache", "kernels"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			kernelErr = "a kernel to boot: fetching Debian bookworm's failed: " + err.Error() + ": " + stderr.String()
			return
		}
		kernelPath = strings.TrimSpace(string(out))
	})
	if kernelErr != "" {
		privtest.Unavailable(t, kernelErr)
	}
	return kernelPath
}

func testBinary(t *testing.T) func(context.Context) (string, error) {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hopcheck-qemu-test-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "hopcheck")
		binErr = vm.BuildBinary(context.Background(), "../..", "amd64", binPath)
	})
	if binErr != nil {
		t.Fatalf("build hopcheck: %v", binErr)
	}
	return func(context.Context) (string, error) { return binPath, nil }
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

type guestRun struct {
	code           int
	err            error
	stdout, stderr string
	dir            string
}

// runKernel runs the scenario in testdata under the test kernel, with
// reports into a temporary directory.
func runKernel(t *testing.T, scenario string, opts RunOptions) guestRun {
	t.Helper()
	opts.Kernel = testKernel(t)
	opts.Binary = testBinary(t)
	dir := t.TempDir()
	if opts.Paths == nil {
		opts.Paths = []string{filepath.Join("testdata", scenario)}
	}
	opts.JSONPath = filepath.Join(dir, "report.json")
	opts.JUnitPath = filepath.Join(dir, "junit.xml")
	opts.Env = []string{"NO_COLOR=1"}
	opts.CPUs = 1
	opts.MemoryMiB = 1024
	var stdout, stderr, log syncBuffer
	opts.Stdout, opts.Stderr, opts.Log = &stdout, &stderr, &log
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 3 * time.Minute
	}
	if opts.Timeout == 0 {
		opts.Timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	code, err := Run(ctx, opts)
	t.Logf("%s: exit %d, err %v, %s\nlog:\n%s", scenario, code, err, time.Since(start).Round(time.Second), log.String())
	return guestRun{code: code, err: err, stdout: stdout.String(), stderr: stderr.String(), dir: dir}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func readReport(t *testing.T, dir string) report.Run {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatalf("JSON report not brought home: %v", err)
	}
	var r report.Run
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("JSON report: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "junit.xml")); err != nil {
		t.Errorf("JUnit report not brought home: %v", err)
	}
	return r
}

func TestRunKernelPass(t *testing.T) {
	t.Parallel()
	pcap := filepath.Join(t.TempDir(), "pcap")
	r := runKernel(t, "pass.yaml", RunOptions{PcapDir: pcap, Args: []string{"--trace=always"}})
	if r.code != 0 || r.err != nil {
		t.Fatalf("exit %d, %v; want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.err, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "PASS  kernel-pass") {
		t.Errorf("the guest's report was not streamed to stdout:\n%s", r.stdout)
	}
	rep := readReport(t, r.dir)
	if !rep.Passed || len(rep.Scenarios) != 1 || !rep.Tracing.Enabled {
		t.Errorf("report: passed %v, %d scenarios, tracing %+v", rep.Passed, len(rep.Scenarios), rep.Tracing)
	}
	if len(rep.Scenarios) == 1 && len(rep.Scenarios[0].Checks) == 1 && len(rep.Scenarios[0].Checks[0].Hops) == 0 {
		t.Errorf("the ping has no hops under --trace=always")
	}
	caps, _ := filepath.Glob(filepath.Join(pcap, "*.pcapng"))
	if len(caps) == 0 {
		t.Errorf("no capture brought home into %s", pcap)
	}
}

func TestRunKernelFail(t *testing.T) {
	t.Parallel()
	r := runKernel(t, "fail.yaml", RunOptions{})
	if r.code != 1 || r.err != nil {
		t.Fatalf("exit %d, %v; want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.err, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "FAIL  kernel-fail") {
		t.Errorf("no FAIL line streamed:\n%s", r.stdout)
	}
	if rep := readReport(t, r.dir); rep.Passed {
		t.Errorf("the JSON report says the run passed")
	}
}

func TestRunKernelBadInput(t *testing.T) {
	t.Parallel()
	r := runKernel(t, "bad.yaml", RunOptions{})
	if r.code != 2 || r.err != nil {
		t.Fatalf("exit %d, %v; want 2\nstdout:\n%s\nstderr:\n%s", r.code, r.err, r.stdout, r.stderr)
	}
	// The guest names the file as the host does, with line and column.
	if !strings.Contains(r.stderr, "testdata/bad.yaml:3:41:") {
		t.Errorf("stderr does not name testdata/bad.yaml:3:41:\n%s", r.stderr)
	}
}

// TestRunKernelPanic makes the guest kernel panic just before the run:
// the error says so, and it is not an exit code of the run.
func TestRunKernelPanic(t *testing.T) {
	t.Parallel()
	r := runKernel(t, "pass.yaml", RunOptions{initExtra: "echo 1 >/proc/sys/kernel/sysrq\necho c >/proc/sysrq-trigger\nsleep 60\n"})
	if r.code != -1 || !errors.Is(r.err, ErrGuestPanic) {
		t.Fatalf("exit %d, %v; want -1 and ErrGuestPanic", r.code, r.err)
	}
	if !strings.Contains(r.err.Error(), "Kernel panic - not syncing") {
		t.Errorf("the error does not quote the panic: %v", r.err)
	}
}

// TestRunKernelHang: a guest run that outlives its timeout is stopped and
// reported as a hang.
func TestRunKernelHang(t *testing.T) {
	t.Parallel()
	start := time.Now()
	r := runKernel(t, "pass.yaml", RunOptions{initExtra: "sleep 600\n", Timeout: 5 * time.Second})
	if r.code != -1 || !errors.Is(r.err, ErrGuestTimeout) {
		t.Fatalf("exit %d, %v; want -1 and ErrGuestTimeout", r.code, r.err)
	}
	if !strings.Contains(r.err.Error(), "running hopcheck after 5s") {
		t.Errorf("the error does not say what timed out: %v", r.err)
	}
	if d := time.Since(start); d > 4*time.Minute {
		t.Errorf("took %v", d)
	}
}

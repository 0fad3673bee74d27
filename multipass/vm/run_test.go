package vm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/multipass"
	"github.com/hopcheck/hopcheck/multipass/internal/standintest"
	"github.com/hopcheck/hopcheck/multipass/vm"
)

// These tests drive Run against the multipass stand-in with echorun
// (testdata/echorun), a FAKE of `hopcheck run` that only reports what reached
// it. They check the backend's plumbing: files in and out, layout, flags,
// streaming, exit codes, VM lifecycle. The end-to-end test of `run --vm`
// with the real hopcheck binary belongs with the CLI.

type fixture struct {
	stateDir string // the stand-in's instances
	work     string // the host directory the scenario paths are relative to
	echorun  string // the fake hopcheck
	goarches []string
	b        *vm.Backend
	log      bytes.Buffer
}

// forModes runs test against the stand-in installed each way multipass is:
// confined (the Linux snap) and not (macOS, Windows). Afterwards it checks
// that no multipass call handed the client a host path to open.
func forModes(t *testing.T, test func(t *testing.T, f *fixture)) {
	for _, m := range standintest.Modes() {
		t.Run(m.Name, func(t *testing.T) {
			f := setup(t, m)
			// The backend keeps nothing in the host's temporary directory.
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			test(t, f)
			standintest.CheckNoHostPaths(t, f.stateDir)
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("temporary files left on the host: %v", left)
			}
		})
	}
}

func setup(t *testing.T, m standintest.Mode) *fixture {
	t.Helper()
	f := &fixture{stateDir: standintest.SetupMode(t, m), work: t.TempDir()}
	f.echorun = filepath.Join(standintest.Build(t, "./testdata/echorun", "hopcheck"), "hopcheck")
	f.b = &vm.Backend{Log: &f.log}
	writeFiles(t, f.work, map[string]string{
		"scenarios/pass.yaml":        "name: pass\n",
		"scenarios/broken/fail.yaml": "name: fail\nexit: 1\n",
		"bad.yaml":                   "exit: 2\n",
	})
	return f
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// binary is the RunOptions.Binary of the tests: it records the guest
// architecture asked for and hands out echorun.
func (f *fixture) binary(_ context.Context, goarch string) (string, error) {
	f.goarches = append(f.goarches, goarch)
	return f.echorun, nil
}

type echoReport struct {
	Files []string `json:"files"`
	Shard string   `json:"shard"`
	Exit  int      `json:"exit"`
}

func readReport(t *testing.T, name string) echoReport {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	var r echoReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report %s: %v", name, err)
	}
	return r
}

// runDirs lists the run directories left in the guest's home.
func runDirs(t *testing.T, stateDir, name string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(stateDir, name, "home", "ubuntu", "hopcheck-run-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func unameGOARCH(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("uname", "-m").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(out)) == "x86_64" {
		return "amd64"
	}
	return runtime.GOARCH
}

func TestRun(t *testing.T) { forModes(t, testRun) }

func testRun(t *testing.T, f *fixture) {
	tests := []struct {
		name      string
		paths     []string
		args      []string
		pcap      bool
		keepVM    bool
		wantCode  int
		wantFiles []string
	}{
		{
			name:      "passing scenario, VM deleted",
			paths:     []string{"scenarios/pass.yaml"},
			wantCode:  0,
			wantFiles: []string{"scenarios/pass.yaml"},
		},
		{
			name:      "failing directory with captures and flags, VM kept",
			paths:     []string{"scenarios"},
			args:      []string{"--shard=1/2"},
			pcap:      true,
			keepVM:    true,
			wantCode:  1,
			wantFiles: []string{"scenarios/broken/fail.yaml", "scenarios/pass.yaml"},
		},
		{
			name:      "bad input",
			paths:     []string{"./bad.yaml"},
			wantCode:  2,
			wantFiles: []string{"bad.yaml"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("hc-run-%d", i)
			f.goarches = nil
			out := t.TempDir()
			var stdout, stderr bytes.Buffer
			opts := vm.RunOptions{
				Spec:      vm.Spec{Name: name},
				KeepVM:    tt.keepVM,
				Paths:     tt.paths,
				Dir:       f.work,
				JSONPath:  filepath.Join(out, "report.json"),
				JUnitPath: filepath.Join(out, "junit", "report.xml"),
				Args:      tt.args,
				Binary:    f.binary,
				Stdout:    &stdout,
				Stderr:    &stderr,
			}
			if tt.pcap {
				opts.PcapDir = filepath.Join(out, "pcap")
			}
			code, err := f.b.Run(context.Background(), opts)
			if err != nil {
				t.Fatalf("Run = %d, %v\nlog:\n%s", code, err, f.log.String())
			}
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d", code, tt.wantCode)
			}
			if want := []string{unameGOARCH(t)}; !reflect.DeepEqual(f.goarches, want) {
				t.Errorf("Binary asked for %q, want %q", f.goarches, want)
			}

			r := readReport(t, opts.JSONPath)
			if !reflect.DeepEqual(r.Files, tt.wantFiles) {
				t.Errorf("the guest run read %q, want %q (relative layout kept)", r.Files, tt.wantFiles)
			}
			if want := strings.TrimPrefix(strings.Join(tt.args, ""), "--shard="); r.Shard != want {
				t.Errorf("the guest run got --shard %q, want %q", r.Shard, want)
			}
			if b, err := os.ReadFile(opts.JUnitPath); err != nil || !strings.HasPrefix(string(b), "<testsuites") {
				t.Errorf("JUnit report = %q, %v", b, err)
			}
			_, perr := os.Stat(filepath.Join(out, "pcap", "all.pcapng"))
			if tt.pcap != (perr == nil) {
				t.Errorf("capture on the host: %v, want present=%v", perr, tt.pcap)
			}

			// The guest's output streamed through.
			for _, want := range tt.wantFiles {
				if !strings.Contains(stdout.String(), "echorun: read "+want) {
					t.Errorf("stdout %q lacks the guest's line for %s", stdout.String(), want)
				}
			}
			if !strings.Contains(stderr.String(), "echorun: exit") {
				t.Errorf("stderr %q lacks the guest's stderr", stderr.String())
			}

			in, err := (&multipass.Client{}).Info(context.Background(), name)
			if tt.keepVM {
				if err != nil || in.State != multipass.StateRunning {
					t.Errorf("kept VM: %+v, %v; want it running", in, err)
				}
				if left := runDirs(t, f.stateDir, name); len(left) != 0 {
					t.Errorf("run directories left in the guest: %q", left)
				}
			} else if !errors.Is(err, multipass.ErrNotFound) {
				t.Errorf("VM after the run: %+v, %v; want it deleted", in, err)
			}
		})
	}

	t.Run("path outside Dir", func(t *testing.T) {
		far := t.TempDir()
		writeFiles(t, far, map[string]string{"far.yaml": "exit: 1\n"})
		out := filepath.Join(t.TempDir(), "r.json")
		code, err := f.b.Run(context.Background(), vm.RunOptions{
			Spec: vm.Spec{Name: "hc-far"}, Paths: []string{filepath.Join(far, "far.yaml"), "scenarios/pass.yaml"},
			Dir: f.work, JSONPath: out, Binary: f.binary,
		})
		if err != nil || code != 1 {
			t.Fatalf("Run = %d, %v; want 1", code, err)
		}
		r := readReport(t, out)
		if len(r.Files) != 2 || !strings.HasPrefix(r.Files[0], "_outside/") || !strings.HasSuffix(r.Files[0], "/far.yaml") {
			t.Errorf("the guest run read %q, want the far file under _outside/", r.Files)
		}
	})

	t.Run("a VM the run did not launch is never deleted", func(t *testing.T) {
		ctx := context.Background()
		c := &multipass.Client{}
		if err := c.Launch(ctx, multipass.LaunchOptions{Name: "hc-mine", CPUs: 1}); err != nil {
			t.Fatal(err)
		}
		code, err := f.b.Run(ctx, vm.RunOptions{
			Spec: vm.Spec{Name: "hc-mine"}, Paths: []string{"scenarios/pass.yaml"}, Dir: f.work, Binary: f.binary,
		})
		if err != nil || code != 0 {
			t.Fatalf("Run = %d, %v", code, err)
		}
		if in, err := c.Info(ctx, "hc-mine"); err != nil || in.State != multipass.StateRunning {
			t.Errorf("the user's VM after a run without --keep-vm: %+v, %v; want it still running", in, err)
		}
		if err := c.Delete(ctx, "hc-mine"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("stopped VM is started, not relaunched", func(t *testing.T) {
		ctx := context.Background()
		c := &multipass.Client{}
		if err := c.Launch(ctx, multipass.LaunchOptions{Name: "hc-old", CPUs: 1}); err != nil {
			t.Fatal(err)
		}
		if err := c.Stop(ctx, "hc-old"); err != nil {
			t.Fatal(err)
		}
		code, err := f.b.Run(ctx, vm.RunOptions{
			Spec: vm.Spec{Name: "hc-old"}, KeepVM: true, Paths: []string{"scenarios/pass.yaml"}, Dir: f.work, Binary: f.binary,
		})
		if err != nil || code != 0 {
			t.Fatalf("Run = %d, %v", code, err)
		}
		in, err := c.Info(ctx, "hc-old")
		if err != nil || in.State != multipass.StateRunning || in.CPUs != 1 {
			t.Errorf("VM after the run: %+v, %v; want the same VM (1 CPU), running", in, err)
		}
		if _, err := os.Stat(filepath.Join(f.stateDir, "hc-old", "cloud-init.yaml")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the existing VM was launched again (%v)", err)
		}
		if !strings.Contains(f.log.String(), "starting VM hc-old") {
			t.Errorf("log %q does not say the VM was started", f.log.String())
		}
	})
}

func TestRunFailures(t *testing.T) { forModes(t, testRunFailures) }

func testRunFailures(t *testing.T, f *fixture) {
	ctx := context.Background()

	t.Run("binary unavailable", func(t *testing.T) {
		code, err := f.b.Run(ctx, vm.RunOptions{
			Spec: vm.Spec{Name: "hc-nobin"}, Paths: []string{"scenarios"}, Dir: f.work,
			Binary: func(context.Context, string) (string, error) { return "", errors.New("no go tool") },
		})
		if code != -1 || err == nil || !strings.Contains(err.Error(), "no go tool") {
			t.Errorf("Run = %d, %v; want -1 and the Binary error", code, err)
		}
		if _, err := (&multipass.Client{}).Info(ctx, "hc-nobin"); !errors.Is(err, multipass.ErrNotFound) {
			t.Errorf("the VM launched for the failed run is still there (%v)", err)
		}
	})

	t.Run("missing scenario path", func(t *testing.T) {
		code, err := f.b.Run(ctx, vm.RunOptions{Spec: vm.Spec{Name: "hc-nopath"}, Paths: []string{"nope.yaml"}, Dir: f.work, Binary: f.binary})
		if code != -1 || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Run = %d, %v; want -1 and ErrNotExist", code, err)
		}
		if list, _ := (&multipass.Client{}).List(ctx); len(list) != 0 {
			t.Errorf("a VM was launched for bad input: %+v", list)
		}
	})

	t.Run("binary that cannot run in the guest", func(t *testing.T) {
		notExec := filepath.Join(t.TempDir(), "hopcheck")
		writeFiles(t, filepath.Dir(notExec), map[string]string{"hopcheck": "not a program\n"})
		code, err := f.b.Run(ctx, vm.RunOptions{
			Spec: vm.Spec{Name: "hc-noexec"}, Paths: []string{"scenarios"}, Dir: f.work,
			Binary: func(context.Context, string) (string, error) { return notExec, nil },
		})
		if code == 0 || code == 1 || code == 2 || err == nil {
			t.Errorf("Run = %d, %v; want the guest's failure to start as an error", code, err)
		}
	})

	t.Run("daemon unavailable", func(t *testing.T) {
		t.Setenv(standintest.StateDirEnv, "")
		code, err := f.b.Run(ctx, vm.RunOptions{Paths: []string{"scenarios"}, Dir: f.work, Binary: f.binary})
		if code != -1 || !errors.Is(err, multipass.ErrDaemonUnavailable) {
			t.Errorf("Run = %d, %v; want ErrDaemonUnavailable", code, err)
		}
		// The message says how to look at and start the snap's daemon.
		if err != nil && (!strings.Contains(err.Error(), "snap services multipass") || !strings.Contains(err.Error(), "snap start multipass")) {
			t.Errorf("message %q does not say how to start the daemon", err)
		}
	})

	t.Run("multipass not installed", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		_, err := f.b.Up(ctx, vm.Spec{Name: "hc-none"})
		if !errors.Is(err, multipass.ErrNotInstalled) || !strings.Contains(err.Error(), "snap install multipass") {
			t.Errorf("Up = %v; want ErrNotInstalled saying how to install multipass", err)
		}
	})

	t.Run("canceled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		code, err := f.b.Run(cctx, vm.RunOptions{Spec: vm.Spec{Name: "hc-cancel"}, Paths: []string{"scenarios"}, Dir: f.work, Binary: f.binary})
		if code != -1 || !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %d, %v; want context.Canceled", code, err)
		}
	})
}

func TestUpShellDown(t *testing.T) { forModes(t, testUpShellDown) }

func testUpShellDown(t *testing.T, f *fixture) {
	ctx := context.Background()
	in, err := f.b.Up(ctx, vm.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	if in.Name != vm.DefaultName || in.State != multipass.StateRunning || in.CPUs != vm.DefaultCPUs ||
		in.ImageRelease != vm.DefaultImage || in.Memory.Total != 2<<30 || in.Disks["sda1"].Total != 10<<30 {
		t.Errorf("Up() = %+v, want the default VM running", in)
	}
	ci, err := os.ReadFile(filepath.Join(f.stateDir, vm.DefaultName, "cloud-init.yaml"))
	if err != nil || !bytes.Equal(ci, vm.CloudInit()) {
		t.Errorf("launched with cloud-init %q (%v), want vm.CloudInit()", ci, err)
	}
	if again, err := f.b.Up(ctx, vm.Spec{}); err != nil || again.Name != in.Name {
		t.Errorf("second Up = %+v, %v", again, err)
	}
	if err := f.b.Shell(ctx, "hc-none"); !errors.Is(err, multipass.ErrNotFound) {
		t.Errorf("Shell of a missing VM = %v, want ErrNotFound", err)
	}
	if err := f.b.Down(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.b.Down(ctx, ""); !errors.Is(err, multipass.ErrNotFound) {
		t.Errorf("second Down = %v, want ErrNotFound", err)
	}
}

// mp runs the stand-in as a person would, for states the backend never
// makes itself.
func mp(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("multipass", args...).CombinedOutput(); err != nil {
		t.Fatalf("multipass %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestRunVMStates(t *testing.T) { forModes(t, testRunVMStates) }

func testRunVMStates(t *testing.T, f *fixture) {
	ctx := context.Background()
	c := &multipass.Client{}
	opts := func(name string) vm.RunOptions {
		return vm.RunOptions{Spec: vm.Spec{Name: name}, KeepVM: true, Paths: []string{"scenarios/pass.yaml"}, Dir: f.work, Binary: f.binary}
	}

	t.Run("first launch shows multipass's progress", func(t *testing.T) {
		f.log.Reset()
		if code, err := f.b.Run(ctx, opts("hc-progress")); err != nil || code != 0 {
			t.Fatalf("Run = %d, %v", code, err)
		}
		for _, want := range []string{"hopcheck: multipass: Retrieving image: 0%\n", "hopcheck: multipass: Retrieving image: 100%\n", "hopcheck: multipass: Launched: hc-progress\n"} {
			if !strings.Contains(f.log.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, f.log.String())
			}
		}
	})

	t.Run("suspended VM is resumed", func(t *testing.T) {
		if err := c.Launch(ctx, multipass.LaunchOptions{Name: "hc-susp"}); err != nil {
			t.Fatal(err)
		}
		mp(t, "suspend", "hc-susp")
		f.log.Reset()
		if code, err := f.b.Run(ctx, opts("hc-susp")); err != nil || code != 0 {
			t.Fatalf("Run = %d, %v", code, err)
		}
		if !strings.Contains(f.log.String(), "starting VM hc-susp (Suspended)") {
			t.Errorf("log %q does not say the suspended VM was started", f.log.String())
		}
		if in, err := c.Info(ctx, "hc-susp"); err != nil || in.State != multipass.StateRunning {
			t.Errorf("after the run: %+v, %v; want Running", in, err)
		}
	})

	t.Run("deleted but not purged VM is left alone", func(t *testing.T) {
		if err := c.Launch(ctx, multipass.LaunchOptions{Name: "hc-del"}); err != nil {
			t.Fatal(err)
		}
		mp(t, "delete", "hc-del")
		code, err := f.b.Run(ctx, opts("hc-del"))
		if code != -1 || !errors.Is(err, multipass.ErrDeleted) || !strings.Contains(err.Error(), "multipass recover hc-del") {
			t.Errorf("Run = %d, %v; want ErrDeleted naming recover and purge", code, err)
		}
		if _, err := f.b.Up(ctx, vm.Spec{Name: "hc-del"}); !errors.Is(err, multipass.ErrDeleted) {
			t.Errorf("Up = %v; want ErrDeleted", err)
		}
		if in, err := c.Info(ctx, "hc-del"); err != nil || in.State != multipass.StateDeleted {
			t.Errorf("after the run: %+v, %v; want it still Deleted", in, err)
		}
	})

	t.Run("launch time-out", func(t *testing.T) {
		t.Setenv(standintest.LaunchDelayEnv, "2500ms")
		var log bytes.Buffer
		b := &vm.Backend{Client: &multipass.Client{LaunchTimeout: time.Second}, Log: &log, Heartbeat: 200 * time.Millisecond}
		o := opts("hc-slow")
		o.KeepVM = false
		code, err := b.Run(ctx, o)
		if code != -1 || !errors.Is(err, multipass.ErrTimeout) {
			t.Fatalf("Run = %d, %v; want ErrTimeout", code, err)
		}
		if !strings.Contains(log.String(), "hopcheck: still launching VM hc-slow") {
			t.Errorf("no heartbeat while launching:\n%s", log.String())
		}
		if _, err := c.Info(ctx, "hc-slow"); !errors.Is(err, multipass.ErrNotFound) {
			t.Errorf("the VM Run launched is still there after the time-out (%v)", err)
		}

		// vm up keeps it; the next vm up waits for it to come up.
		_, err = b.Up(ctx, vm.Spec{Name: "hc-slow"})
		if !errors.Is(err, multipass.ErrTimeout) || !strings.Contains(err.Error(), "may still be initialising") {
			t.Fatalf("Up = %v; want ErrTimeout saying the VM may still be initialising", err)
		}
		log.Reset()
		in, err := (&vm.Backend{Log: &log}).Up(ctx, vm.Spec{Name: "hc-slow"})
		if err != nil || in.State != multipass.StateRunning {
			t.Fatalf("second Up = %+v, %v; want it Running", in, err)
		}
		if !strings.Contains(log.String(), "waiting for VM hc-slow (Starting)") {
			t.Errorf("log %q does not say it waited for the starting VM", log.String())
		}
	})
}

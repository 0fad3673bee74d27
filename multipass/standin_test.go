package multipass_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/multipass"
	"github.com/hopcheck/hopcheck/multipass/internal/standintest"
)

// These tests drive the client against the multipass stand-in
// (internal/standin), which keeps multipass's command line, JSON and failure
// texts but runs no VM.

func launch(t *testing.T, c *multipass.Client, name string) {
	t.Helper()
	if err := c.Launch(context.Background(), multipass.LaunchOptions{Name: name}); err != nil {
		t.Fatalf("Launch(%s): %v", name, err)
	}
}

func TestStandinLifecycle(t *testing.T) {
	stateDir := standintest.Setup(t)
	ctx := context.Background()
	c := &multipass.Client{}
	cloudInit := []byte("#cloud-config\npackages:\n  - iptables\n")

	err := c.Launch(ctx, multipass.LaunchOptions{Name: "hc-life", Image: "22.04", CPUs: 2, Memory: "2G", Disk: "10G", CloudInit: cloudInit})
	if err != nil {
		t.Fatal(err)
	}
	recorded, err := os.ReadFile(filepath.Join(stateDir, "hc-life", "cloud-init.yaml"))
	if err != nil || !bytes.Equal(recorded, cloudInit) {
		t.Errorf("cloud-init reached the stand-in as %q (%v), want %q", recorded, err, cloudInit)
	}

	err = c.Launch(ctx, multipass.LaunchOptions{Name: "hc-life"})
	var me *multipass.Error
	if !errors.Is(err, multipass.ErrExists) || !errors.As(err, &me) || me.ExitCode != multipass.ExitCommandFail {
		t.Fatalf("second Launch = %v, want ErrExists with exit code 2", err)
	}
	if me.Argv[1] != "launch" || !strings.Contains(me.Stderr, `instance "hc-life" already exists`) {
		t.Errorf("Error carries argv %q and stderr %q", me.Argv, me.Stderr)
	}

	in, err := c.Info(ctx, "hc-life")
	if err != nil {
		t.Fatal(err)
	}
	if in.Name != "hc-life" || in.State != multipass.StateRunning || in.CPUs != 2 || in.ImageRelease != "22.04" ||
		in.Memory.Total != 2<<30 || in.Disks["sda1"].Total != 10<<30 || in.Release == "" {
		t.Errorf("Info() = %+v", in)
	}

	for _, step := range []struct {
		do   func(context.Context, string) error
		want multipass.State
	}{
		{c.Stop, multipass.StateStopped},
		{c.Start, multipass.StateRunning},
	} {
		if err := step.do(ctx, "hc-life"); err != nil {
			t.Fatal(err)
		}
		list, err := c.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].Name != "hc-life" || list[0].State != step.want {
			t.Errorf("List() = %+v, want hc-life %s", list, step.want)
		}
	}

	if err := c.Delete(ctx, "hc-life"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Info(ctx, "hc-life"); !errors.Is(err, multipass.ErrNotFound) {
		t.Errorf("Info after Delete = %v, want ErrNotFound", err)
	}
	if list, err := c.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("List after Delete = %+v, %v; want nothing", list, err)
	}
	for name, op := range map[string]func(context.Context, string) error{"Start": c.Start, "Stop": c.Stop, "Delete": c.Delete} {
		if err := op(ctx, "hc-life"); !errors.Is(err, multipass.ErrNotFound) {
			t.Errorf("%s of a missing instance = %v, want ErrNotFound", name, err)
		}
	}
}

func TestStandinExec(t *testing.T) {
	stateDir := standintest.Setup(t)
	c := &multipass.Client{}
	launch(t, c, "hc-exec")
	home := filepath.Join(stateDir, "hc-exec", "home", "ubuntu")

	tests := []struct {
		name               string
		argv               []string
		stdin              string
		code               int
		stdout, stderrPart string
	}{
		{name: "success", argv: []string{"true"}},
		{name: "inner exit status", argv: []string{"sh", "-c", "exit 3"}, code: 3},
		{name: "inner exit 2 is not multipass's 2", argv: []string{"sh", "-c", "echo oops >&2; exit 2"}, code: 2, stderrPart: "oops"},
		{name: "streams kept apart", argv: []string{"sh", "-c", "echo out; echo err >&2"}, stdout: "out\n", stderrPart: "err"},
		{name: "stdin", argv: []string{"cat"}, stdin: "scenario bytes", stdout: "scenario bytes"},
		{name: "home of the default user", argv: []string{"printenv", "HOME"}, stdout: home + "\n"},
		{name: "sudo", argv: []string{"sudo", "id", "-u"}, stdout: fmt.Sprintf("%d\n", os.Geteuid())},
		{name: "unknown command", argv: []string{"hopcheck-no-such-command"}, code: 127, stderrPart: "command not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Exec(context.Background(), "hc-exec", tt.argv, strings.NewReader(tt.stdin))
			if err != nil {
				t.Fatalf("Exec(%q) error = %v; a command's status is not an error", tt.argv, err)
			}
			if res.ExitCode != tt.code {
				t.Errorf("ExitCode = %d, want %d (stderr %q)", res.ExitCode, tt.code, res.Stderr)
			}
			if tt.stdout != "" && string(res.Stdout) != tt.stdout {
				t.Errorf("Stdout = %q, want %q", res.Stdout, tt.stdout)
			}
			if !strings.Contains(string(res.Stderr), tt.stderrPart) {
				t.Errorf("Stderr = %q, want it to contain %q", res.Stderr, tt.stderrPart)
			}
		})
	}

	t.Run("one writer for both streams", func(t *testing.T) {
		var both bytes.Buffer
		code, err := c.ExecStream(context.Background(), "hc-exec", []string{"sh", "-c", "echo a; echo b >&2; echo c"}, nil, &both, &both)
		if err != nil || code != 0 {
			t.Fatalf("ExecStream = %d, %v", code, err)
		}
		if got := strings.Fields(both.String()); len(got) != 3 {
			t.Errorf("combined output %q, want three lines", both.String())
		}
	})

	t.Run("missing instance", func(t *testing.T) {
		res, err := c.Exec(context.Background(), "hc-missing", []string{"true"}, nil)
		var me *multipass.Error
		if !errors.Is(err, multipass.ErrNotFound) || !errors.As(err, &me) {
			t.Fatalf("Exec on a missing instance = %+v, %v; want ErrNotFound", res, err)
		}
		if me.ExitCode != multipass.ExitCommandFail || res.ExitCode != -1 {
			t.Errorf("multipass exit %d, result exit %d; want 2 and -1", me.ExitCode, res.ExitCode)
		}
	})

	t.Run("stopped instance starts", func(t *testing.T) {
		if err := c.Stop(context.Background(), "hc-exec"); err != nil {
			t.Fatal(err)
		}
		if res, err := c.Exec(context.Background(), "hc-exec", []string{"true"}, nil); err != nil || res.ExitCode != 0 {
			t.Fatalf("Exec on a stopped instance = %+v, %v", res, err)
		}
		if in, err := c.Info(context.Background(), "hc-exec"); err != nil || in.State != multipass.StateRunning {
			t.Errorf("after exec the instance is %q (%v), want Running", in.State, err)
		}
	})
}

// mp runs the stand-in (first on PATH) with args, as a person would, and
// returns its output and exit code.
func mp(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command("multipass", args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("multipass %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

// TestStandinTransfer checks the stand-in's model of `multipass transfer`,
// confined and not. Confined, it shows why hopcheck no longer transfers
// files through /tmp: the old `run --vm` built its bundle in
// /tmp/hopcheck-vm-* and pushed it from there, which a strictly confined
// multipass cannot see (canonical/multipass#1783), and pulled its results
// back into that directory, which the client's private /tmp does not have.
func TestStandinTransfer(t *testing.T) {
	for _, m := range standintest.Modes() {
		t.Run(m.Name, func(t *testing.T) {
			stateDir := standintest.SetupMode(t, m)
			c := &multipass.Client{}
			launch(t, c, "hc-xfer")
			guestHome := filepath.Join(stateDir, "hc-xfer", "home", "ubuntu")
			// The user's home, and a /tmp directory like the old bundle's.
			home := t.TempDir()
			t.Setenv("HOME", home)
			tmp, err := os.MkdirTemp("/tmp", "hopcheck-vm-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(tmp) })
			for _, f := range []string{filepath.Join(home, "bundle.tar"), filepath.Join(home, ".hidden", "bundle.tar"), filepath.Join(tmp, "bundle.tar")} {
				if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(f, []byte("bundle"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(guestHome, "results.tar"), []byte("results"), 0o644); err != nil {
				t.Fatal(err)
			}

			// Host → guest.
			push := []struct {
				name, src  string
				code       int // when confined
				stderrPart string
			}{
				{"from the home", filepath.Join(home, "bundle.tar"), 0, ""},
				{"from /tmp (the old run --vm)", filepath.Join(tmp, "bundle.tar"), multipass.ExitCommandLineError,
					fmt.Sprintf("Source path %q does not exist", filepath.Join(tmp, "bundle.tar"))},
				{"from a hidden folder", filepath.Join(home, ".hidden", "bundle.tar"), multipass.ExitCommandFail,
					"transfer failed: [sftp push] error opening file for reading: Permission denied"},
			}
			for i, tt := range push {
				dst := fmt.Sprintf("in-%d.tar", i)
				_, stderr, code := mp(t, "transfer", tt.src, "hc-xfer:"+dst)
				want := 0
				if m.Confined {
					want = tt.code
				}
				if code != want || (want != 0 && !strings.Contains(stderr, tt.stderrPart)) {
					t.Errorf("push %s: exit code %d, stderr %q; want %d and %q", tt.name, code, stderr, want, tt.stderrPart)
				}
				_, err := os.Stat(filepath.Join(guestHome, dst))
				if (err == nil) != (want == 0) {
					t.Errorf("push %s: in the guest: %v; want it there only on success", tt.name, err)
				}
			}
			// The client's view of that failure, had hopcheck still used it.
			_, stderr, code := mp(t, "transfer", filepath.Join(tmp, "bundle.tar"), "hc-xfer:x")
			e := &multipass.Error{Argv: []string{"multipass", "transfer"}, ExitCode: code, Stderr: stderr}
			if m.Confined && !strings.Contains(e.Error(), "does not exist") {
				t.Errorf("Error() = %q", e.Error())
			}

			// Guest → host: into the old run's /tmp directory, which the
			// snap's own /tmp does not have, the pull fails; into /tmp
			// itself the copy lands in the snap's /tmp, out of the caller's
			// sight.
			dst := filepath.Join(tmp, "results.tar")
			_, stderr, code = mp(t, "transfer", "hc-xfer:results.tar", dst)
			if (code == 0) == m.Confined {
				t.Errorf("pull into %s: exit code %d, stderr %q; want a failure exactly when confined", dst, code, stderr)
			}
			dst = tmp + "-results.tar"
			t.Cleanup(func() { os.Remove(dst) })
			if _, stderr, code := mp(t, "transfer", "hc-xfer:results.tar", dst); code != 0 {
				t.Fatalf("pull into /tmp: exit code %d, stderr %q", code, stderr)
			}
			_, err = os.Stat(dst)
			if m.Confined != errors.Is(err, os.ErrNotExist) {
				t.Errorf("pulled into %s, the caller sees: %v; want it missing exactly when confined", dst, err)
			}
			if _, stderr, code := mp(t, "transfer", "hc-xfer:results.tar", filepath.Join(home, "results.tar")); code != 0 {
				t.Errorf("pull into the home: exit code %d, stderr %q", code, stderr)
			}
			// The default user cannot write outside its home in the guest.
			if _, stderr, code := mp(t, "transfer", filepath.Join(home, "bundle.tar"), "hc-xfer:/etc/x"); code != 2 || !strings.Contains(stderr, "permission denied") {
				t.Errorf("push outside the guest home: exit code %d, stderr %q; want permission denied", code, stderr)
			}
			// Standard input is no path: cloud-init from a file in /tmp
			// fails when confined (canonical/multipass#3693), from stdin
			// never (what hopcheck does).
			ci := filepath.Join(tmp, "ci.yaml")
			if err := os.WriteFile(ci, []byte("#cloud-config\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, stderr, code = mp(t, "launch", "--name", "hc-ci", "--cloud-init", ci)
			if m.Confined && (code != 1 || !strings.Contains(stderr, "error loading cloud-init config: bad file")) {
				t.Errorf("launch --cloud-init %s confined: exit code %d, stderr %q", ci, code, stderr)
			}
			if !m.Confined && code != 0 {
				t.Errorf("launch --cloud-init %s unconfined: exit code %d, stderr %q", ci, code, stderr)
			}
			if err := c.Launch(t.Context(), multipass.LaunchOptions{Name: "hc-ci2", CloudInit: []byte("#cloud-config\n")}); err != nil {
				t.Errorf("launch --cloud-init -: %v", err)
			}
		})
	}
}

func TestStandinStates(t *testing.T) {
	standintest.Setup(t)
	ctx := t.Context()
	c := &multipass.Client{}
	launch(t, c, "hc-st")
	state := func() multipass.State {
		t.Helper()
		in, err := c.Info(ctx, "hc-st")
		if err != nil {
			t.Fatal(err)
		}
		return in.State
	}
	// Suspend, then start resumes it; exec starts a suspended instance.
	if _, stderr, code := mp(t, "suspend", "hc-st"); code != 0 {
		t.Fatalf("suspend: %d %s", code, stderr)
	}
	if s := state(); s != multipass.StateSuspended {
		t.Errorf("after suspend: %s", s)
	}
	if res, err := c.Exec(ctx, "hc-st", []string{"true"}, nil); err != nil || res.ExitCode != 0 {
		t.Fatalf("exec on a suspended instance: %+v, %v", res, err)
	}
	if s := state(); s != multipass.StateRunning {
		t.Errorf("after exec: %s, want Running", s)
	}

	// Deleted but not purged: listed, refusing exec and start, holding the
	// name.
	if _, stderr, code := mp(t, "delete", "hc-st"); code != 0 {
		t.Fatalf("delete: %d %s", code, stderr)
	}
	if s := state(); s != multipass.StateDeleted {
		t.Errorf("after delete: %s, want Deleted", s)
	}
	if _, err := c.Exec(ctx, "hc-st", []string{"true"}, nil); !errors.Is(err, multipass.ErrDeleted) {
		t.Errorf("exec on a deleted instance = %v, want ErrDeleted", err)
	}
	if err := c.Start(ctx, "hc-st"); !errors.Is(err, multipass.ErrDeleted) {
		t.Errorf("start of a deleted instance = %v, want ErrDeleted", err)
	}
	if err := c.Launch(ctx, multipass.LaunchOptions{Name: "hc-st"}); !errors.Is(err, multipass.ErrExists) {
		t.Errorf("launch over a deleted instance = %v, want ErrExists", err)
	}
	if _, stderr, code := mp(t, "recover", "hc-st"); code != 0 || state() != multipass.StateStopped {
		t.Errorf("recover: %d %s, state %s; want Stopped", code, stderr, state())
	}
	mp(t, "delete", "hc-st")
	if _, stderr, code := mp(t, "purge"); code != 0 {
		t.Fatalf("purge: %d %s", code, stderr)
	}
	if _, err := c.Info(ctx, "hc-st"); !errors.Is(err, multipass.ErrNotFound) {
		t.Errorf("after purge: %v, want ErrNotFound", err)
	}
	launch(t, c, "hc-st")
	// delete --purge works on a deleted instance too (canonical/multipass#189).
	mp(t, "delete", "hc-st")
	if err := c.Delete(ctx, "hc-st"); err != nil {
		t.Errorf("delete --purge of a deleted instance: %v", err)
	}
	launch(t, c, "hc-st")
}

func TestStandinLaunchProgress(t *testing.T) {
	standintest.Setup(t)
	ctx := t.Context()
	c := &multipass.Client{}
	var first, second bytes.Buffer
	if err := c.Launch(ctx, multipass.LaunchOptions{Name: "hc-p1", Image: "22.04", Progress: &first}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Retrieving image: 0%\n", "Retrieving image: 50%\n", "Retrieving image: 100%\n", "Waiting for initialization to complete\n", "Launched: hc-p1\n"} {
		if !strings.Contains(first.String(), want) {
			t.Errorf("first launch's progress lacks %q:\n%s", want, first.String())
		}
	}
	if strings.Contains(first.String(), "Retrieving image: 55%") || strings.ContainsAny(first.String(), "\r\b") {
		t.Errorf("progress not reduced to lines per tenth:\n%q", first.String())
	}
	if err := c.Launch(ctx, multipass.LaunchOptions{Name: "hc-p2", Image: "22.04", Progress: &second}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(second.String(), "Retrieving image") || !strings.Contains(second.String(), "Launched: hc-p2") {
		t.Errorf("second launch of the image retrieved it again:\n%s", second.String())
	}
}

func TestStandinLaunchTimeout(t *testing.T) {
	standintest.Setup(t)
	t.Setenv(standintest.LaunchDelayEnv, "2500ms")
	ctx := t.Context()
	c := &multipass.Client{LaunchTimeout: time.Second}
	err := c.Launch(ctx, multipass.LaunchOptions{Name: "hc-slow"})
	var me *multipass.Error
	if !errors.Is(err, multipass.ErrTimeout) || !errors.As(err, &me) || me.ExitCode != multipass.ExitTimeout {
		t.Fatalf("Launch past --timeout = %v, want ErrTimeout with exit code 5", err)
	}
	// The instance stays, starting, and comes up by itself.
	in, err := c.Info(ctx, "hc-slow")
	if err != nil || in.State != multipass.StateStarting {
		t.Errorf("after the timeout: %+v, %v; want it Starting", in, err)
	}
	time.Sleep(2 * time.Second)
	if in, err := c.Info(ctx, "hc-slow"); err != nil || in.State != multipass.StateRunning {
		t.Errorf("later: %+v, %v; want it Running", in, err)
	}
}

func TestStandinFailures(t *testing.T) {
	standintest.Setup(t)
	ctx := context.Background()

	t.Run("daemon unavailable", func(t *testing.T) {
		t.Setenv(standintest.StateDirEnv, "")
		if _, err := (&multipass.Client{}).List(ctx); !errors.Is(err, multipass.ErrDaemonUnavailable) {
			t.Errorf("List = %v, want ErrDaemonUnavailable", err)
		}
	})

	t.Run("not installed", func(t *testing.T) {
		c := &multipass.Client{Path: filepath.Join(t.TempDir(), "multipass")}
		if _, err := c.List(ctx); !errors.Is(err, multipass.ErrNotInstalled) {
			t.Errorf("List with a missing executable = %v, want ErrNotInstalled", err)
		}
		t.Setenv("PATH", t.TempDir())
		if _, err := (&multipass.Client{}).List(ctx); !errors.Is(err, multipass.ErrNotInstalled) {
			t.Errorf("List with no multipass on PATH = %v, want ErrNotInstalled", err)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		c := &multipass.Client{Timeout: 300 * time.Millisecond}
		launch(t, c, "hc-slow")
		_, err := c.Exec(ctx, "hc-slow", []string{"sleep", "30"}, nil)
		if !errors.Is(err, multipass.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Exec past the timeout = %v, want ErrTimeout", err)
		}
	})

	t.Run("canceled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := (&multipass.Client{}).List(cctx); !errors.Is(err, context.Canceled) || errors.Is(err, multipass.ErrTimeout) {
			t.Errorf("List with a canceled context = %v, want context.Canceled", err)
		}
	})

	t.Run("invalid name", func(t *testing.T) {
		if _, err := (&multipass.Client{}).Info(ctx, "--all"); !errors.Is(err, multipass.ErrInvalidName) {
			t.Errorf("Info(--all) = %v, want ErrInvalidName", err)
		}
	})

	t.Run("shell of a missing instance", func(t *testing.T) {
		if err := (&multipass.Client{}).Shell(ctx, "hc-missing"); !errors.Is(err, multipass.ErrNotFound) {
			t.Errorf("Shell = %v, want ErrNotFound", err)
		}
	})
}

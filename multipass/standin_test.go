package multipass_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
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

func TestStandinTransfer(t *testing.T) {
	stateDir := standintest.Setup(t)
	ctx := context.Background()
	c := &multipass.Client{}
	launch(t, c, "hc-xfer")
	home := filepath.Join(stateDir, "hc-xfer", "home", "ubuntu")

	host := t.TempDir()
	tree := map[string]string{"a.yaml": "a: 1\n", "sub/b.yaml": "b: 2\n", "sub/deeper/c.yaml": "c: 3\n"}
	for rel, data := range tree {
		p := filepath.Join(host, "src", rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A directory into the guest and back out again keeps every file.
	if err := c.Push(ctx, "hc-xfer", filepath.Join(host, "src"), home+"/in"); err != nil {
		t.Fatal(err)
	}
	if err := c.Pull(ctx, "hc-xfer", home+"/in", filepath.Join(host, "back")); err != nil {
		t.Fatal(err)
	}
	for rel, data := range tree {
		got, err := os.ReadFile(filepath.Join(host, "back", rel))
		if err != nil || string(got) != data {
			t.Errorf("%s came back as %q (%v), want %q", rel, got, err, data)
		}
	}

	// A single file, with a guest path relative to the home directory.
	if err := c.Push(ctx, "hc-xfer", filepath.Join(host, "src", "a.yaml"), "one.yaml"); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(home, "one.yaml")); err != nil || string(got) != tree["a.yaml"] {
		t.Errorf("pushed file reads %q (%v)", got, err)
	}

	// The default user cannot write outside its home.
	err := c.Push(ctx, "hc-xfer", filepath.Join(host, "src", "a.yaml"), filepath.Join(t.TempDir(), "x"))
	var me *multipass.Error
	if !errors.As(err, &me) || !strings.Contains(me.Stderr, "permission denied") {
		t.Errorf("Push outside the home = %v, want permission denied", err)
	}

	if err := c.Pull(ctx, "hc-missing", "/x", host); !errors.Is(err, multipass.ErrNotFound) {
		t.Errorf("Pull from a missing instance = %v, want ErrNotFound", err)
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

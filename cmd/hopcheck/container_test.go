package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// The tests here start real Podman and Docker, each inside a sandbox
// namespace that plays the container host's node, and run hopcheck there
// with --container. The code that starts the runtimes is deliberately
// small and lives here only until internal/realnode (real Podman, Docker
// and CNI inside sandbox namespaces, for every test that needs them)
// replaces it.

// TestContainerPodman resolves a Podman container by podman:NAME and by
// plain NAME, and probes from it.
func TestContainerPodman(t *testing.T) {
	privtest.Require(t)
	podman := tool(t, "podman", "podman")
	rootBefore := rootState(t)
	node := sandboxNode(t, "pn")
	dir := t.TempDir()
	tar := busyboxTar(t, dir)
	p := podmanIn(t, podman, node, dir)
	p.run(t, "import "+tar+" localhost/bb")
	sandboxKey := strings.TrimSpace(p.run(t, "run -d --cgroups=disabled --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "+
		"--name web localhost/bb httpd -f -p 80 >/dev/null && "+p.cmd+" inspect --format '{{.NetworkSettings.SandboxKey}}' web"))
	t.Cleanup(func() { p.remove(t, "web", sandboxKey) })
	if !strings.HasPrefix(sandboxKey, "/run/netns/") {
		t.Fatalf("podman's namespace of web is %q, want an entry of /run/netns", sandboxKey)
	}

	for _, spec := range []string{"podman:web", "web"} {
		t.Run(spec, func(t *testing.T) {
			code, out := hopcheckIn(t, node, p.env, "why", "--node", "--container", spec, "--from", "web", "--to", "10.88.0.1")
			if code != 0 || !strings.Contains(out, "web/eth0") || !strings.Contains(out, "ping web -> 10.88.0.1") {
				t.Errorf("exit %d, want 0 with hops at web/eth0:\n%s", code, out)
			}
		})
	}
	t.Run("a stopped container is named as such", func(t *testing.T) {
		p.run(t, "create --cgroups=disabled --name idle localhost/bb sleep 1000 >/dev/null")
		code, out := hopcheckIn(t, node, p.env, "why", "--container", "podman:idle", "--from", "idle", "--to", "10.88.0.1")
		if code != 2 || !strings.Contains(out, "podman:idle: container is not running (state created)") {
			t.Errorf("exit %d, want 2 saying idle is not running:\n%s", code, out)
		}
	})
	t.Run("an unknown container", func(t *testing.T) {
		code, out := hopcheckIn(t, node, p.env, "why", "--container", "podman:nosuch", "--from", "nosuch", "--to", "10.88.0.1")
		if code != 2 || !strings.Contains(out, "podman:nosuch: no such container") {
			t.Errorf("exit %d, want 2 saying no such container:\n%s", code, out)
		}
	})
	t.Run("trace", func(t *testing.T) {
		code, out := traceIn(t, node, p.env, "--node", "--container", "web")
		if code != 0 || !strings.Contains(out, "tracing node, web") {
			t.Errorf("exit %d, want 0 tracing node and web:\n%s", code, out)
		}
	})
	p.remove(t, "web", sandboxKey)
	rootState(t).same(t, rootBefore)
}

// TestContainerDocker resolves a Docker container by docker:NAME and by
// plain NAME while the podman CLI is also on PATH, and probes from it.
func TestContainerDocker(t *testing.T) {
	privtest.Require(t)
	// docker.io's own client: /usr/local/bin may hold another.
	dockerCLI := "/usr/bin/docker"
	if _, err := os.Stat(dockerCLI); err != nil {
		privtest.Unavailable(t, "/usr/bin/docker (apt-get install docker.io)")
	}
	dockerd := tool(t, "dockerd", "docker.io")
	rootBefore := rootState(t)
	node := sandboxNode(t, "dk")
	dir := t.TempDir()
	tar := busyboxTar(t, dir)
	d := dockerIn(t, dockerd, dockerCLI, node, dir)
	d.run(t, "import", tar, "bb")
	d.run(t, "run", "-d", "--name", "web", "bb", "httpd", "-f", "-p", "80")

	for _, spec := range []string{"docker:web", "web"} {
		t.Run(spec, func(t *testing.T) {
			code, out := hopcheckIn(t, node, d.env, "why", "--node", "--container", spec, "--from", "web", "--to", "172.17.0.1")
			if code != 0 || !strings.Contains(out, "web/eth0") || !strings.Contains(out, "node/docker0") {
				t.Errorf("exit %d, want 0 with hops at web/eth0 and node/docker0:\n%s", code, out)
			}
		})
	}
	t.Run("TCP from the node to the container's httpd", func(t *testing.T) {
		ip := strings.TrimSpace(d.run(t, "inspect", "--format", "{{.NetworkSettings.IPAddress}}", "web"))
		code, out := hopcheckIn(t, node, d.env, "why", "--node", "--container", "web", "--from", "node", "--to", ip+":80", "--tcp")
		if code != 0 || !strings.Contains(out, "web/eth0") {
			t.Errorf("exit %d, want 0 with hops at web/eth0:\n%s", code, out)
		}
	})
	t.Run("a daemon that is not there", func(t *testing.T) {
		env := append(d.env[:len(d.env):len(d.env)], "DOCKER_HOST=unix://"+filepath.Join(dir, "none.sock"))
		code, out := hopcheckIn(t, node, env, "why", "--container", "docker:web", "--from", "web", "--to", "172.17.0.1")
		if code != 2 || !strings.Contains(out, "docker:web: runtime not reachable") || !strings.Contains(out, "DOCKER_HOST") {
			t.Errorf("exit %d, want 2 saying the daemon is not reachable:\n%s", code, out)
		}
	})
	d.stop(t)
	rootState(t).same(t, rootBefore)
}

// sandboxNode makes a fresh namespace with lo up, deleted when the test
// ends, and returns its name.
func sandboxNode(t *testing.T, short string) string {
	t.Helper()
	runID, err := netns.NewRunID()
	if err != nil {
		t.Fatal(err)
	}
	name := netns.Name(runID, short)
	h, err := netns.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	t.Cleanup(func() {
		if err := netns.Delete(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	runOK(t, nil, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// busyboxTar writes a root filesystem of busybox alone, as a tar that
// both runtimes import as an image.
func busyboxTar(t *testing.T, dir string) string {
	t.Helper()
	bb := tool(t, "busybox", "busybox-static")
	root := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	runOK(t, nil, "cp", bb, filepath.Join(root, "bin", "busybox"))
	for _, l := range []string{"sh", "httpd", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", l)); err != nil {
			t.Fatal(err)
		}
	}
	tar := filepath.Join(dir, "bb.tar")
	runOK(t, nil, "tar", "-C", root, "-cf", tar, ".")
	return tar
}

// podmanSandbox is Podman with its storage in a test directory, run in a
// sandbox node.
type podmanSandbox struct {
	node, cmd string
	env       []string // what hopcheck needs to find its containers
}

func podmanIn(t *testing.T, podman, node, dir string) *podmanSandbox {
	t.Helper()
	root, run := filepath.Join(dir, "root"), filepath.Join(dir, "run")
	conf := filepath.Join(dir, "storage.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n", root, run), 0o644); err != nil {
		t.Fatal(err)
	}
	return &podmanSandbox{
		node: node,
		cmd: podman + " --root " + root + " --runroot " + run + " --storage-driver vfs --cgroup-manager cgroupfs" +
			" --events-backend file --network-backend netavark",
		env: []string{"CONTAINERS_STORAGE_CONF=" + conf},
	}
}

// run runs podman ARGS (a shell line) in the node, in a mount namespace
// of its own that has a cgroup file system for crun.
func (p *podmanSandbox) run(t *testing.T, args string) string {
	t.Helper()
	return runOK(t, nil, "ip", "netns", "exec", p.node, "sh", "-c", "mount -t cgroup2 none /sys/fs/cgroup && "+p.cmd+" "+args)
}

// remove removes the container, from the mount namespace of its conmon:
// only there is its network namespace mounted at sandboxKey
// (/run/netns/netns-UUID), which podman unmounts and removes; from
// anywhere else the entry would stay in 'ip netns list'. Removing it
// twice is harmless.
func (p *podmanSandbox) remove(t *testing.T, name, sandboxKey string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", p.cmd+" inspect --format '{{.State.ConmonPid}}' "+name+" 2>/dev/null").Output()
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && pid > 0 {
		runOK(t, nil, "nsenter", "-t", strconv.Itoa(pid), "-m", "-n", "sh", "-c", p.cmd+" rm -f -t 0 "+name+" >/dev/null")
	}
	if sandboxKey != "" {
		if _, err := os.Stat(sandboxKey); err == nil {
			t.Errorf("podman left %s behind", sandboxKey)
		}
	}
}

// dockerSandbox is a dockerd of the test's own, run in a sandbox node.
type dockerSandbox struct {
	cli    string
	env    []string
	daemon *exec.Cmd
	done   chan struct{}
}

func dockerIn(t *testing.T, dockerd, cli, node, dir string) *dockerSandbox {
	t.Helper()
	sock := filepath.Join(dir, "docker.sock")
	// PATH: docker.io's client first, for hopcheck too.
	d := &dockerSandbox{cli: cli, done: make(chan struct{}),
		env: []string{"DOCKER_HOST=unix://" + sock, "PATH=" + filepath.Dir(cli) + ":" + os.Getenv("PATH"),
			// The podman CLI is on PATH too; its storage here is empty.
			"CONTAINERS_STORAGE_CONF=" + filepath.Join(dir, "no-storage.conf")}}
	conf := fmt.Appendf(nil, "[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n", filepath.Join(dir, "proot"), filepath.Join(dir, "prun"))
	if err := os.WriteFile(filepath.Join(dir, "no-storage.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	// ip netns exec and sh both exec: the process is dockerd itself.
	d.daemon = exec.Command("ip", "netns", "exec", node, "sh", "-c", "mount -t cgroup2 none /sys/fs/cgroup && exec "+dockerd+
		" --data-root "+filepath.Join(dir, "data")+" --exec-root "+filepath.Join(dir, "exec")+" -H unix://"+sock+
		" --pidfile "+filepath.Join(dir, "pid")+" --storage-driver vfs --containerd-namespace hc-test"+
		" --default-ulimit nofile=1024:1024")
	log, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.daemon.Stdout, d.daemon.Stderr = log, log
	if err := d.daemon.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.daemon.Wait(); log.Close(); close(d.done) }()
	t.Cleanup(func() { d.stop(t) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		cmd := exec.Command(cli, "version")
		cmd.Env = append(os.Environ(), d.env...)
		if cmd.Run() == nil {
			return d
		}
		select {
		case <-d.done:
			b, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("dockerd exited:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("dockerd did not answer within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (d *dockerSandbox) run(t *testing.T, args ...string) string {
	t.Helper()
	return runOK(t, d.env, d.cli, args...)
}

// stop removes the containers and stops dockerd (which stops its
// containerd); everything they mounted was in dockerd's own mount
// namespace and goes with it. Stopping twice is harmless.
func (d *dockerSandbox) stop(t *testing.T) {
	t.Helper()
	select {
	case <-d.done:
		return
	default:
	}
	cmd := exec.Command(d.cli, "rm", "-f", "web")
	cmd.Env = append(os.Environ(), d.env...)
	cmd.Run()
	d.daemon.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.daemon.Process.Kill()
		<-d.done
		t.Error("dockerd did not stop within 30s of SIGTERM")
	}
}

// hopcheckIn runs hopcheck inside the node, with env added.
func hopcheckIn(t *testing.T, node string, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", node, hopcheckBin}, args...)...)
	cmd.Env = append(append(os.Environ(), runs.DirEnv+"="+t.TempDir(), "NO_COLOR=1", "GORACE=atexit_sleep_ms=0"), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("hopcheck %s: %v", strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// traceIn starts hopcheck trace inside the node, interrupts it once it
// says it is tracing, and returns how it ended.
func traceIn(t *testing.T, node string, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	// ip netns exec execs hopcheck: the signal reaches it.
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", node, hopcheckBin, "trace"}, args...)...)
	cmd.Env = append(append(os.Environ(), runs.DirEnv+"="+t.TempDir(), "NO_COLOR=1", "GORACE=atexit_sleep_ms=0"), env...)
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	for {
		b, _ := os.ReadFile(out)
		if strings.Contains(string(b), "Ctrl-C to stop") {
			cmd.Process.Signal(os.Interrupt)
			break
		}
		select {
		case <-done:
			return cmd.ProcessState.ExitCode(), string(b)
		case <-time.After(50 * time.Millisecond):
		}
	}
	<-done
	b, _ := os.ReadFile(out)
	return cmd.ProcessState.ExitCode(), string(b)
}

// runOK runs a command with env added and returns its stdout, failing the
// test when it fails.
func runOK(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// rootNS is what the tests may never change in the namespace they run in.
type rootNS struct{ links, iptables string }

func rootState(t *testing.T) rootNS {
	t.Helper()
	var s rootNS
	s.links = runOK(t, nil, "ip", "-o", "link", "show")
	if _, err := exec.LookPath("iptables-save"); err == nil {
		s.iptables = stripComments(runOK(t, nil, "iptables-save"))
	}
	return s
}

func (s rootNS) same(t *testing.T, before rootNS) {
	t.Helper()
	if s.links != before.links {
		t.Errorf("links of the root namespace changed:\nbefore:\n%s\nafter:\n%s", before.links, s.links)
	}
	if s.iptables != before.iptables {
		t.Errorf("iptables of the root namespace changed:\nbefore:\n%s\nafter:\n%s", before.iptables, s.iptables)
	}
}

// stripComments drops iptables-save's dated comment lines and counters.
func stripComments(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, ":") {
			if i := strings.LastIndex(l, " ["); i > 0 {
				l = l[:i]
			}
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

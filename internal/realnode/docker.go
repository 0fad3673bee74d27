package realnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// startDocker starts dockerd in the node, its state, sockets and managed
// containerd under the node's directory, then imports the busybox image.
// dockerd runs in a mount namespace of its own (ip netns exec), so what it
// mounts never shows in the caller's; its containers' cgroups go under a
// parent named after the node, removed at cleanup.
func (n *Node) startDocker(ctx context.Context) error {
	d := filepath.Join(n.dir, "docker")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return err
	}
	// The trust key would otherwise go to /etc/docker/key.json.
	cfg, _ := json.Marshal(map[string]any{"deprecated-key-path": filepath.Join(d, "key.json")})
	if err := os.WriteFile(filepath.Join(d, "daemon.json"), cfg, 0o600); err != nil {
		return err
	}
	sock := filepath.Join(d, "docker.sock")
	n.dockerHost = "unix://" + sock
	log, err := os.Create(filepath.Join(d, "dockerd.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	script := `mount -t cgroup2 none /sys/fs/cgroup && exec "$@"`
	cmd := exec.Command(n.ip, "netns", "exec", n.NS, "sh", "-c", script, "sh",
		lookPathOr("dockerd"),
		"--config-file", filepath.Join(d, "daemon.json"),
		"--data-root", filepath.Join(d, "data"),
		"--exec-root", filepath.Join(d, "exec"),
		"--pidfile", filepath.Join(d, "dockerd.pid"),
		"-H", n.dockerHost,
		"--storage-driver", "vfs",
		"--containerd-namespace", "hc"+strings.TrimPrefix(n.NS, "hcrn"),
		"--containerd-plugins-namespace", "hcp"+strings.TrimPrefix(n.NS, "hcrn"),
		"--cgroup-parent", "/"+n.NS,
		"--default-ulimit", "nofile=1024:1024",
	)
	if err := n.startDaemon(ctx, cmd, log, "dockerd", func() (string, error) {
		return n.docker(ctx, "version", "--format", "{{.Server.Version}}")
	}); err != nil {
		return err
	}
	tarball := filepath.Join(n.dir, "busybox.tar")
	if err := writeImage(tarball); err != nil {
		return err
	}
	n.image = "hcrn-busybox:latest"
	if out, err := n.docker(ctx, "import", tarball, n.image); err != nil {
		return fmt.Errorf("docker import: %v: %s", err, out)
	}
	return nil
}

// startDaemon starts cmd, a daemon run inside the node with its output in
// log, dying with the test binary (cleanup sweeps the rest), and waits
// until ready answers, the daemon exits, or daemonTimeout passes.
func (n *Node) startDaemon(ctx context.Context, cmd *exec.Cmd, log *os.File, name string, ready func() (string, error)) error {
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return err
	}
	n.daemon = cmd
	n.daemonDone = make(chan error, 1)
	go func() { n.daemonDone <- cmd.Wait() }()
	deadline := time.Now().Add(daemonTimeout)
	for {
		out, err := ready()
		if err == nil {
			return nil
		}
		select {
		case err := <-n.daemonDone:
			n.daemonDone <- err
			logText, _ := os.ReadFile(log.Name())
			return fmt.Errorf("%s exited: %v\n%s", name, err, tail(logText))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			logText, _ := os.ReadFile(log.Name())
			return fmt.Errorf("%s did not answer within %v: %v: %s\n%s", name, daemonTimeout, err, out, tail(logText))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func lookPathOr(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return name
}

func tail(b []byte) string {
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// docker runs docker.io's client against the node's daemon.
func (n *Node) docker(ctx context.Context, args ...string) (string, error) {
	return n.output(ctx, n.Env(), n.dockerBin, args...)
}

type dockerInspect struct {
	ID    string `json:"Id"`
	State struct {
		Pid int
	}
	NetworkSettings struct {
		IPAddress string
		Gateway   string
	}
}

func (n *Node) runDocker(ctx context.Context, name, publish string, cmd []string) (*Container, error) {
	args := []string{"run", "-d", "--name", name}
	if publish != "" {
		args = append(args, "-p", publish)
	}
	args = append(append(args, n.image), cmd...)
	if out, err := n.docker(ctx, args...); err != nil {
		return &Container{Name: name}, fmt.Errorf("docker run: %v: %s", err, out)
	}
	out, err := n.docker(ctx, "inspect", "--type", "container", name)
	if err != nil {
		return &Container{Name: name}, fmt.Errorf("docker inspect: %v: %s", err, out)
	}
	var ins []dockerInspect
	if err := json.Unmarshal([]byte(out), &ins); err != nil || len(ins) != 1 {
		return &Container{Name: name}, fmt.Errorf("docker inspect %s: %v: %s", name, err, out)
	}
	c := &Container{Name: name, ID: ins[0].ID, PID: ins[0].State.Pid, Bridge: "docker0"}
	if c.IP, err = netip.ParseAddr(ins[0].NetworkSettings.IPAddress); err != nil {
		return c, fmt.Errorf("docker inspect %s: IP: %v", name, err)
	}
	if c.Gateway, err = netip.ParseAddr(ins[0].NetworkSettings.Gateway); err != nil {
		return c, fmt.Errorf("docker inspect %s: gateway: %v", name, err)
	}
	if c.PID == 0 {
		return c, fmt.Errorf("docker inspect %s: no process", name)
	}
	return c, nil
}

// stopDocker stops dockerd (which stops its containerd) and removes the
// cgroups its containers had.
func (n *Node) stopDocker(ctx context.Context) error {
	if n.daemon == nil {
		return nil
	}
	var errs []error
	if out, err := n.docker(ctx, "ps", "-aq"); err == nil {
		if ids := strings.Fields(out); len(ids) > 0 {
			if out, err := n.docker(ctx, append([]string{"rm", "-f"}, ids...)...); err != nil {
				errs = append(errs, fmt.Errorf("docker rm: %v: %s", err, out))
			}
		}
	}
	errs = append(errs, n.stopDaemon("dockerd"), n.removeCgroupParent(ctx))
	return errors.Join(errs...)
}

// stopDaemon stops the node's daemon (dockerd, containerd): SIGTERM, and
// SIGKILL after 30 s.
func (n *Node) stopDaemon(name string) error {
	// The daemon is the exec'd sh; it was started by us, so signal it by PID.
	_ = n.daemon.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.daemonDone:
		n.daemonDone <- err
	case <-time.After(30 * time.Second):
		_ = n.daemon.Process.Kill()
		n.daemonDone <- <-n.daemonDone
		return fmt.Errorf("%s did not stop within 30s of SIGTERM; killed", name)
	}
	return nil
}

// removeCgroupParent removes the containers' cgroups (empty now) under the
// node's parent, /NODE.
func (n *Node) removeCgroupParent(ctx context.Context) error {
	script := `mount -t cgroup2 none /sys/fs/cgroup && d=/sys/fs/cgroup/` + n.NS +
		` && if [ -d "$d" ]; then find "$d" -depth -type d -exec rmdir {} + ; fi`
	if out, err := n.run(ctx, nil, n.ip, "netns", "exec", n.NS, "sh", "-c", script); err != nil {
		return fmt.Errorf("remove cgroup %s: %v: %s", n.NS, err, out)
	}
	return nil
}

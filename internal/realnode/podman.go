package realnode

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// startPodman writes the node's containers.conf and storage.conf (all
// state under the node's directory, vfs storage, netavark, no cgroups) and
// imports the busybox image. Podman has no daemon: each command runs in
// the node, and conmon stays there with the container.
func (n *Node) startPodman(ctx context.Context) error {
	root := filepath.Join(n.dir, "podman")
	for _, d := range []string{"root", "run", "tmp", "networks"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return err
		}
	}
	n.storageConf = filepath.Join(root, "storage.conf")
	storage := fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(root, "root"), filepath.Join(root, "run"))
	if err := os.WriteFile(n.storageConf, []byte(storage), 0o600); err != nil {
		return err
	}
	n.containersConf = filepath.Join(root, "containers.conf")
	conf := fmt.Sprintf(`[containers]
cgroups = "disabled"
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = %q

[network]
network_backend = "netavark"
network_config_dir = %q
`, filepath.Join(root, "tmp"), filepath.Join(root, "networks"))
	if err := os.WriteFile(n.containersConf, []byte(conf), 0o600); err != nil {
		return err
	}
	// Every podman command runs in one mount namespace of the node's own,
	// held by a process that does nothing else: there crun finds a cgroup
	// file system at /sys/fs/cgroup (which the fresh /sys of
	// `ip netns exec` lacks), and the bind mounts podman makes for its
	// containers' namespaces (/run/netns/netns-UUID) stay, for later
	// commands to find, without ever reaching the caller's mount namespace.
	hold := exec.Command(n.ip, "netns", "exec", n.NS, "sh", "-c", "mount -t cgroup2 none /sys/fs/cgroup && echo ready && exec sleep 3600")
	hold.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := hold.StdoutPipe()
	if err != nil {
		return err
	}
	if err := hold.Start(); err != nil {
		return err
	}
	n.podmanHold = hold
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		return fmt.Errorf("mount namespace for podman: %q %v", line, err)
	}
	tarball := filepath.Join(n.dir, "busybox.tar")
	if err := writeImage(tarball); err != nil {
		return err
	}
	n.image = "localhost/hcrn-busybox"
	if out, err := n.podman(ctx, "import", tarball, n.image); err != nil {
		return fmt.Errorf("podman import: %v: %s", err, out)
	}
	return nil
}

// podman runs podman in the node, in its mount namespace, with the node's
// configuration, and returns its standard output.
func (n *Node) podman(ctx context.Context, args ...string) (string, error) {
	pid := strconv.Itoa(n.podmanHold.Process.Pid)
	return n.output(ctx, n.Env(), lookPathOr("nsenter"), append([]string{"--mount=/proc/" + pid + "/ns/mnt", "--net=/run/netns/" + n.NS, "--", n.podmanBin}, args...)...)
}

type podmanInspect struct {
	ID    string `json:"Id"`
	State struct {
		Pid int
	}
	NetworkSettings struct {
		SandboxKey string
		Networks   map[string]struct {
			IPAddress string
			Gateway   string
		}
	}
}

func (n *Node) runPodman(ctx context.Context, name, publish string, cmd []string) (*Container, error) {
	args := []string{"run", "-d", "--name", name}
	if publish != "" {
		args = append(args, "-p", publish)
	}
	args = append(append(args, n.image), cmd...)
	if out, err := n.podman(ctx, args...); err != nil {
		return &Container{Name: name}, fmt.Errorf("podman run: %v: %s", err, out)
	}
	out, err := n.podman(ctx, "inspect", "--type", "container", name)
	if err != nil {
		return &Container{Name: name}, fmt.Errorf("podman inspect: %v: %s", err, out)
	}
	var ins []podmanInspect
	if err := json.Unmarshal([]byte(out), &ins); err != nil || len(ins) != 1 {
		return &Container{Name: name}, fmt.Errorf("podman inspect %s: %v: %s", name, err, out)
	}
	c := &Container{Name: name, ID: ins[0].ID, PID: ins[0].State.Pid, Bridge: "podman0", sandboxKey: ins[0].NetworkSettings.SandboxKey}
	net, ok := ins[0].NetworkSettings.Networks["podman"]
	if !ok {
		return c, fmt.Errorf("podman inspect %s: not on the network podman: %s", name, out)
	}
	if c.IP, err = netip.ParseAddr(net.IPAddress); err != nil {
		return c, fmt.Errorf("podman inspect %s: IP: %v", name, err)
	}
	if c.Gateway, err = netip.ParseAddr(net.Gateway); err != nil {
		return c, fmt.Errorf("podman inspect %s: gateway: %v", name, err)
	}
	if c.PID == 0 {
		return c, fmt.Errorf("podman inspect %s: no process", name)
	}
	return c, nil
}

// stopPodman removes what podman may still hold: containers left by a
// failed run and the network's firewall rules go with `podman rm`; the
// state is in the node's directory.
func (n *Node) stopPodman(ctx context.Context) error {
	if n.podmanHold == nil {
		return nil
	}
	defer func() {
		_ = n.podmanHold.Process.Kill()
		_ = n.podmanHold.Wait()
	}()
	out, err := n.podman(ctx, "ps", "-aq")
	if err != nil {
		return fmt.Errorf("podman ps: %v: %s", err, out)
	}
	if ids := strings.Fields(out); len(ids) > 0 {
		if out, err := n.podman(ctx, append([]string{"rm", "-f", "-t", "0"}, ids...)...); err != nil {
			return fmt.Errorf("podman rm: %v: %s", err, out)
		}
	}
	return nil
}

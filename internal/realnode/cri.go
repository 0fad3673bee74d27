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
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"github.com/hopcheck/hopcheck/internal/privtest"
)

// The CRI node's images, imported with ctr (no registry is reachable):
// the pod sandbox ("pause") image, whose entrypoint sleeps, and the
// workload image; both the busybox root file system.
const (
	criPauseImage = "localhost/hcrn-pause:1"
	criImage      = "localhost/hcrn-busybox:latest"
)

// criConfig is containerd's configuration (version 2) for a node: every
// path under dir, the CRI plugin with the native snapshotter, runc
// through the v2 shim, and the node's CNI network. Cgroups are disabled
// as in the Podman node: where the unified hierarchy lacks the cpu and
// memory controllers (a host on cgroup v1 or hybrid), the CRI plugin's
// default CPU shares make runc fail. oom_score_adj is kept at least
// containerd's own: lowering it needs CAP_SYS_RESOURCE, which a
// containerised test host may lack.
func criConfig(dir, cniBin string) string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  disable_apparmor = true
  disable_cgroup = true
  restrict_oom_score_adj = true
  enable_selinux = false
  enable_unprivileged_ports = false
  enable_unprivileged_icmp = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = %[7]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[8]q
    conf_dir = %[9]q
    max_conf_num = 1
`,
		filepath.Join(dir, "root"), filepath.Join(dir, "state"),
		filepath.Join(dir, "containerd.sock"), filepath.Join(dir, "containerd.sock.ttrpc"),
		filepath.Join(dir, "opt"), criPauseImage, lookPathOr("runc"),
		cniBin, filepath.Join(dir, "cni-conf"))
}

// criSetup is what containerd's shell does in the mount namespace that
// `ip netns exec` gives it, before it execs containerd ($1 is the node's
// name): a cgroup file system at /sys/fs/cgroup (the fresh /sys lacks
// one) for runc, which makes each container's cgroup beside its own
// (cgroups disabled: no limits, only a place); containerd in
// /NODE/daemon, so that they are /NODE/ID and go at cleanup with /NODE;
// and empty file systems over /run and /var/lib, where containerd 1.6
// keeps what no setting moves (the shims' sockets in /run/containerd/s,
// runc's state, the pods' namespaces in /run/netns, go-cni's cache in
// /var/lib/cni). They go with the namespace when its last process does,
// and never show in the caller's. A soft limit of 1024 open files for
// what it starts, as Docker's --default-ulimit in docker.go.
const criSetup = `mount -t cgroup2 none /sys/fs/cgroup && mkdir -p "/sys/fs/cgroup/$1/daemon" && ` +
	`echo $$ > "/sys/fs/cgroup/$1/daemon/cgroup.procs" && ` +
	`mount -t tmpfs -o mode=0755 hcrn-run /run && mount -t tmpfs -o mode=0755 hcrn-varlib /var/lib && ` +
	`ulimit -Sn 1024 && shift && exec "$@"`

// startCRI starts containerd with its CRI plugin in the node, its state,
// socket and configuration under the node's directory, and imports the
// sandbox and workload images into its k8s.io namespace.
func (n *Node) startCRI(ctx context.Context) error {
	plugins, err := BuildCNIPlugins(ctx)
	if err != nil {
		privtest.Unavailable(n.t, "the CNI reference plugins "+CNIPluginsVersion+": "+err.Error())
	}
	crictl, err := BuildCrictl(ctx)
	if err != nil {
		privtest.Unavailable(n.t, "crictl "+CrictlVersion+": "+err.Error())
	}
	n.crictlDir = crictl
	d := filepath.Join(n.dir, "cri")
	for _, sub := range []string{"cni-conf", "cni-ipam", "logs"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(d, "cni-conf", "10-hcrn.conflist"), []byte(cniConflist(filepath.Join(d, "cni-ipam"))), 0o600); err != nil {
		return err
	}
	cfg := filepath.Join(d, "config.toml")
	if err := os.WriteFile(cfg, []byte(criConfig(d, plugins)), 0o600); err != nil {
		return err
	}
	n.criSock = filepath.Join(d, "containerd.sock")
	log, err := os.Create(filepath.Join(d, "containerd.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(n.ip, "netns", "exec", n.NS, "sh", "-c", criSetup, "sh", n.NS, lookPathOr("containerd"), "--config", cfg)
	// Ready when the CRI plugin answers (it starts after containerd's
	// socket does).
	if err := n.startDaemon(ctx, cmd, log, "containerd's CRI", func() (string, error) { return n.crictl(ctx, "info") }); err != nil {
		return err
	}
	tarball := filepath.Join(n.dir, "busybox-image.tar")
	if err := writeImageArchive(tarball, []string{"/bin/sleep", "2147483647"}, criPauseImage, criImage); err != nil {
		return err
	}
	n.image = criImage
	if out, err := n.output(ctx, nil, lookPathOr("ctr"), "--address", n.criSock, "--namespace", "k8s.io",
		"images", "import", "--snapshotter", "native", tarball); err != nil {
		return fmt.Errorf("ctr images import: %v: %s", err, out)
	}
	// The CRI plugin learns of the images from containerd's events.
	for _, img := range []string{criPauseImage, criImage} {
		for try := 0; ; try++ {
			out, err := n.crictl(ctx, "inspecti", "-q", img)
			if err == nil {
				break
			}
			if try == 50 {
				return fmt.Errorf("the CRI plugin does not see the imported image %s: %v: %s", img, err, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// crictl runs the pinned crictl against the node's containerd and returns
// its standard output.
func (n *Node) crictl(ctx context.Context, args ...string) (string, error) {
	return n.output(ctx, n.Env(), filepath.Join(n.crictlDir, "crictl"), append([]string{"--timeout", "60s"}, args...)...)
}

// runCRI runs cmd as a container named name in a pod of its own, as a
// kubelet would: crictl runp (the sandbox, its network through CNI with
// publish as the pod's port mapping), create, start.
func (n *Node) runCRI(ctx context.Context, name, publish string, cmd []string) (*Container, error) {
	c := &Container{Name: name, Bridge: "cni0"}
	d := filepath.Join(n.dir, "cri")
	pod := map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "hcrn", "uid": n.NS + "-" + name, "attempt": 0},
		"hostname":      name,
		"log_directory": filepath.Join(d, "logs", name),
	}
	if publish != "" {
		host, ctr, ok := strings.Cut(publish, ":")
		hp, err1 := strconv.Atoi(host)
		cp, err2 := strconv.Atoi(ctr)
		if !ok || err1 != nil || err2 != nil {
			return c, fmt.Errorf("publish %q: want HOSTPORT:CONTAINERPORT", publish)
		}
		pod["port_mappings"] = []map[string]any{{"protocol": 0, "container_port": cp, "host_port": hp}}
	}
	ctrCfg := map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": n.image},
		"command":  cmd,
		"log_path": name + ".log",
	}
	if cmd[0] == "httpd" {
		// busybox httpd serves its working directory.
		ctrCfg["working_dir"] = "/www"
	}
	podFile, ctrFile := filepath.Join(d, name+"-pod.json"), filepath.Join(d, name+"-ctr.json")
	for f, v := range map[string]any{podFile: pod, ctrFile: ctrCfg} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return c, err
		}
		if err := os.WriteFile(f, b, 0o600); err != nil {
			return c, err
		}
	}
	out, err := n.crictl(ctx, "runp", podFile)
	if err != nil {
		return c, fmt.Errorf("crictl runp: %v", err)
	}
	c.podID = strings.TrimSpace(out)
	if out, err = n.crictl(ctx, "create", c.podID, ctrFile, podFile); err != nil {
		return c, fmt.Errorf("crictl create: %v", err)
	}
	c.ID = strings.TrimSpace(out)
	if _, err := n.crictl(ctx, "start", c.ID); err != nil {
		return c, fmt.Errorf("crictl start: %v", err)
	}
	out, err = n.crictl(ctx, "inspect", "-o", "json", c.ID)
	if err != nil {
		return c, fmt.Errorf("crictl inspect: %v", err)
	}
	var ins struct {
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(out), &ins); err != nil || ins.Info.Pid == 0 {
		return c, fmt.Errorf("crictl inspect %s: no pid (%v): %s", c.ID, err, out)
	}
	c.PID = ins.Info.Pid
	if c.netLink, err = os.Readlink(fmt.Sprintf("/proc/%d/ns/net", c.PID)); err != nil {
		return c, err
	}
	out, err = n.crictl(ctx, "inspectp", "-o", "json", c.podID)
	if err != nil {
		return c, fmt.Errorf("crictl inspectp: %v", err)
	}
	var insp struct {
		Status struct {
			Network struct {
				IP string `json:"ip"`
			} `json:"network"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &insp); err != nil {
		return c, fmt.Errorf("crictl inspectp %s: %v: %s", c.podID, err, out)
	}
	if c.IP, err = netip.ParseAddr(insp.Status.Network.IP); err != nil {
		return c, fmt.Errorf("crictl inspectp %s: IP: %v: %s", c.podID, err, out)
	}
	if c.Gateway, err = defaultGateway(fmt.Sprintf("/proc/%d/ns/net", c.PID)); err != nil {
		return c, err
	}
	return c, nil
}

// defaultGateway returns the gateway of the default IPv4 route in the
// namespace at path.
func defaultGateway(path string) (netip.Addr, error) {
	h, err := vnetns.GetFromPath(path)
	if err != nil {
		return netip.Addr{}, err
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return netip.Addr{}, err
	}
	defer nl.Close()
	routes, err := nl.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw != nil {
			if gw, ok := netip.AddrFromSlice(r.Gw.To4()); ok {
				return gw, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("%s: no default route", path)
}

// removeCRI stops and removes the container's pod (its containers, its
// network through CNI DEL, its namespace).
func (n *Node) removeCRI(ctx context.Context, c *Container) error {
	if c.podID == "" || n.daemon == nil {
		return nil
	}
	if out, err := n.crictl(ctx, "rmp", "--force", c.podID); err != nil {
		return fmt.Errorf("crictl rmp %s: %v: %s", c.Name, err, out)
	}
	return nil
}

// stopCRI removes every pod left, stops containerd, kills what is left of
// the shims and containers, and removes the cgroups under /NODE.
func (n *Node) stopCRI(ctx context.Context) error {
	if n.daemon == nil {
		return nil
	}
	var errs []error
	if out, err := n.crictl(ctx, "rmp", "--all", "--force"); err != nil {
		errs = append(errs, fmt.Errorf("crictl rmp --all: %v: %s", err, out))
	}
	errs = append(errs, n.stopDaemon("containerd"))
	// The shims outlive containerd by design; a container whose pod could
	// not be removed still runs in its namespace.
	for _, c := range n.containers {
		if c.netLink != "" {
			errs = append(errs, killNet(c.netLink, c.Name))
		}
	}
	errs = append(errs, killIn("/run/netns/"+n.NS))
	errs = append(errs, n.removeCgroupParent(ctx))
	return errors.Join(errs...)
}

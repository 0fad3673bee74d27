package realnode

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"github.com/hopcheck/hopcheck/internal/privtest"
)

// Kind names a container runtime a Node runs.
type Kind string

// The runtimes a Node can run.
const (
	Podman Kind = "podman" // podman with netavark, bridge podman0
	Docker Kind = "docker" // dockerd (docker.io), bridge docker0
	CNI    Kind = "cni"    // the CNI reference plugins through libcni, bridge cni0
	CRI    Kind = "cri"    // containerd's CRI plugin driven by crictl, with the same CNI network
)

// Kinds returns every Kind, in a fixed order.
func Kinds() []Kind { return []Kind{Podman, Docker, CNI, CRI} }

// The node's addresses. The internet namespace answers at RemoteAddr.
const (
	NodeAddr     = "198.51.100.2"
	UplinkGW     = "198.51.100.1"
	RemoteAddr   = "203.0.113.8"
	uplinkPrefix = "/24"
)

// cmdTimeout bounds every command the package runs; dockerTimeout bounds
// the wait for a daemon to answer.
const (
	cmdTimeout    = 2 * time.Minute
	daemonTimeout = 60 * time.Second
)

// Node is a sandbox namespace running one container runtime.
type Node struct {
	Kind     Kind
	NS       string // the node's namespace name (ip netns list)
	Internet string // the internet namespace's name

	t     testing.TB
	ip    string
	dir   string
	image string // the busybox image's name in the runtime

	podmanBin, dockerBin string
	storageConf          string
	containersConf       string
	dockerHost           string
	daemon               *exec.Cmd // dockerd, containerd
	daemonDone           chan error
	criSock              string // containerd's socket
	crictlDir            string // the directory of the pinned crictl
	cni                  *cniNet
	podmanHold           *exec.Cmd

	containers []*Container
}

// Container is one container a Node runs.
type Container struct {
	Name, ID string
	PID      int
	NetNS    string     // /proc/PID/ns/net
	Bridge   string     // the node's bridge the container hangs on
	Gateway  netip.Addr // the container's default gateway (the bridge's address)
	IP       netip.Addr
	HostVeth string // the node-side end of the container's eth0

	sandboxKey string    // podman: /run/netns/netns-UUID
	podID      string    // cri: the pod sandbox's ID
	netLink    string    // cri: net:[INODE], for the sweep at cleanup
	proc       *exec.Cmd // cni: the process started in the sandbox
	cniNS      string    // cni: the sandbox namespace's name
}

// New makes a node with kind's runtime started in it, and registers its
// teardown with t.Cleanup. It ends t (skip, or failure under CI=true) when
// a tool is missing.
func New(ctx context.Context, t testing.TB, kind Kind) *Node {
	t.Helper()
	privtest.Require(t)
	ip := lookTool(t, "ip", "iproute2")
	lookTool(t, "busybox", "busybox-static")
	suffix := randSuffix(t)
	n := &Node{
		Kind:     kind,
		NS:       "hcrn" + suffix + "-node",
		Internet: "hcrn" + suffix + "-internet",
		t:        t,
		ip:       ip,
	}
	switch kind {
	case Podman:
		n.podmanBin = lookTool(t, "podman", "podman")
		lookTool(t, "netavark", "netavark")
		lookTool(t, "conmon", "conmon")
		lookTool(t, "crun", "crun")
	case Docker:
		n.dockerBin = lookTool(t, "docker", "docker.io")
		lookTool(t, "dockerd", "docker.io")
		lookTool(t, "containerd", "containerd")
		lookTool(t, "runc", "runc")
	case CNI:
	case CRI:
		lookTool(t, "containerd", "containerd")
		lookTool(t, "ctr", "containerd")
		lookTool(t, "containerd-shim-runc-v2", "containerd")
		lookTool(t, "runc", "runc")
	default:
		t.Fatalf("realnode: unknown kind %q", kind)
	}
	lookTool(t, "iptables", "iptables")
	// A short path: unix sockets under it must stay below 108 bytes.
	dir, err := os.MkdirTemp("", "hcrn")
	if err != nil {
		t.Fatal(err)
	}
	n.dir = dir
	t.Cleanup(n.cleanup)

	if err := n.makeNamespaces(ctx); err != nil {
		t.Fatalf("realnode: %v", err)
	}
	var start func(context.Context) error
	switch kind {
	case Podman:
		start = n.startPodman
	case Docker:
		start = n.startDocker
	case CNI:
		start = n.startCNI
	case CRI:
		start = n.startCRI
	}
	if err := start(ctx); err != nil {
		t.Fatalf("realnode: start %s in %s: %v", kind, n.NS, err)
	}
	return n
}

// lookTool returns the path of a command, ending t when it is missing.
func lookTool(t testing.TB, name, pkg string) string {
	t.Helper()
	if name == "docker" {
		// docker.io's own client; a newer one may be first in PATH.
		if _, err := os.Stat("/usr/bin/docker"); err == nil {
			return "/usr/bin/docker"
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/lib/podman", "/usr/libexec/podman"} {
			if _, serr := os.Stat(filepath.Join(dir, name)); serr == nil {
				return filepath.Join(dir, name)
			}
		}
		privtest.Unavailable(t, fmt.Sprintf("the %s command (Debian package %s)", name, pkg))
	}
	return p
}

func randSuffix(t testing.TB) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

// makeNamespaces builds the node, the internet and the uplink between them.
// The veth is made in the node with its peer placed straight into the
// internet namespace: neither end ever exists in the caller's namespace.
func (n *Node) makeNamespaces(ctx context.Context) error {
	steps := [][]string{
		{"netns", "add", n.NS},
		{"netns", "add", n.Internet},
		{"-n", n.NS, "link", "set", "lo", "up"},
		{"-n", n.Internet, "link", "set", "lo", "up"},
		{"-n", n.NS, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", n.Internet},
		{"-n", n.NS, "addr", "add", NodeAddr + uplinkPrefix, "dev", "eth0"},
		{"-n", n.Internet, "addr", "add", UplinkGW + uplinkPrefix, "dev", "eth0"},
		{"-n", n.Internet, "addr", "add", RemoteAddr + "/32", "dev", "lo"},
		{"-n", n.NS, "link", "set", "eth0", "up"},
		{"-n", n.Internet, "link", "set", "eth0", "up"},
		{"-n", n.NS, "route", "add", "default", "via", UplinkGW},
		// Like a real internet router, accept any source, so that a
		// container's un-NATed packet arrives and only its reply is lost.
		{"netns", "exec", n.Internet, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0"},
	}
	for _, s := range steps {
		if out, err := n.run(ctx, nil, n.ip, s...); err != nil {
			return fmt.Errorf("ip %s: %v\n%s", strings.Join(s, " "), err, out)
		}
	}
	return nil
}

// run runs a command with a bounded lifetime and returns its combined output.
func (n *Node) run(ctx context.Context, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// output runs a command with a bounded lifetime and returns its standard
// output; its standard error goes into the error.
func (n *Node) output(ctx context.Context, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", filepath.Base(name), err, stderr.Bytes())
	}
	return out.String(), nil
}

// Sh runs script with sh -c inside the node (ip netns exec), with Env set,
// and returns its combined output.
func (n *Node) Sh(ctx context.Context, script string) (string, error) {
	return n.run(ctx, n.Env(), n.ip, "netns", "exec", n.NS, "sh", "-c", script)
}

// MustSh is Sh that ends the test on failure.
func (n *Node) MustSh(ctx context.Context, script string) string {
	n.t.Helper()
	out, err := n.Sh(ctx, script)
	if err != nil {
		n.t.Fatalf("in %s: %s: %v\n%s", n.NS, script, err, out)
	}
	return out
}

// Env returns the environment that points runtime CLIs at this node's
// runtime: DOCKER_HOST for Docker; CONTAINERS_STORAGE_CONF and
// CONTAINERS_CONF for Podman (so that a plain `podman inspect NAME` finds
// the node's containers); CONTAINER_RUNTIME_ENDPOINT and
// IMAGE_SERVICE_ENDPOINT for CRI, with the pinned crictl first on PATH (so
// that a plain `crictl ps` finds them). Nothing for CNI, which has no CLI.
func (n *Node) Env() []string {
	switch n.Kind {
	case CRI:
		ep := "unix://" + n.criSock
		return []string{"CONTAINER_RUNTIME_ENDPOINT=" + ep, "IMAGE_SERVICE_ENDPOINT=" + ep,
			"PATH=" + n.crictlDir + string(os.PathListSeparator) + os.Getenv("PATH")}
	case Docker:
		return []string{"DOCKER_HOST=" + n.dockerHost}
	case Podman:
		return []string{"CONTAINERS_STORAGE_CONF=" + n.storageConf, "CONTAINERS_CONF=" + n.containersConf}
	}
	return nil
}

// Dir is the node's private directory (runtime state, configuration).
func (n *Node) Dir() string { return n.dir }

// RunContainer starts a container from the busybox image running cmd
// (busybox applets: "httpd", "-f", "-p", "80"), with publish ("8080:80",
// or "" for none) as its published port, and returns it once its process
// runs in its own namespace. The container is removed at cleanup.
func (n *Node) RunContainer(ctx context.Context, name, publish string, cmd ...string) *Container {
	n.t.Helper()
	var c *Container
	var err error
	switch n.Kind {
	case Podman:
		c, err = n.runPodman(ctx, name, publish, cmd)
	case Docker:
		c, err = n.runDocker(ctx, name, publish, cmd)
	case CNI:
		c, err = n.runCNI(ctx, name, publish, cmd)
	case CRI:
		c, err = n.runCRI(ctx, name, publish, cmd)
	}
	if c != nil {
		n.containers = append(n.containers, c)
	}
	if err != nil {
		n.t.Fatalf("realnode: %s container %s: %v", n.Kind, name, err)
	}
	c.NetNS = fmt.Sprintf("/proc/%d/ns/net", c.PID)
	if c.HostVeth, err = hostVeth(n.NS, c.NetNS); err != nil {
		n.t.Fatalf("realnode: %s container %s: %v", n.Kind, name, err)
	}
	return c
}

// hostVeth names the node-side peer of the container's eth0.
func hostVeth(node, ctrPath string) (string, error) {
	ch, err := vnetns.GetFromPath(ctrPath)
	if err != nil {
		return "", err
	}
	defer ch.Close()
	cl, err := netlink.NewHandleAt(ch)
	if err != nil {
		return "", err
	}
	defer cl.Close()
	eth0, err := cl.LinkByName("eth0")
	if err != nil {
		return "", fmt.Errorf("%s: eth0: %w", ctrPath, err)
	}
	nh, err := vnetns.GetFromName(node)
	if err != nil {
		return "", err
	}
	defer nh.Close()
	nl, err := netlink.NewHandleAt(nh)
	if err != nil {
		return "", err
	}
	defer nl.Close()
	peer, err := nl.LinkByIndex(eth0.Attrs().ParentIndex)
	if err != nil {
		return "", fmt.Errorf("%s: peer %d of the container's eth0: %w", node, eth0.Attrs().ParentIndex, err)
	}
	return peer.Attrs().Name, nil
}

// cleanup removes everything the node made, in reverse order, reporting
// (not stopping at) each failure.
func (n *Node) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var errs []error
	for i := len(n.containers) - 1; i >= 0; i-- {
		if err := n.removeContainer(ctx, n.containers[i]); err != nil {
			errs = append(errs, err)
		}
	}
	switch n.Kind {
	case Docker:
		errs = append(errs, n.stopDocker(ctx))
	case Podman:
		errs = append(errs, n.stopPodman(ctx))
	case CRI:
		errs = append(errs, n.stopCRI(ctx))
	}
	// Whatever still runs in the node's namespaces (conmon, shims,
	// docker-proxy, a container's process) dies with them.
	for _, ns := range n.namespacePaths() {
		errs = append(errs, killIn(ns))
	}
	for _, c := range n.containers {
		if c.cniNS != "" {
			errs = append(errs, n.delNetns(ctx, c.cniNS))
		}
		if c.sandboxKey != "" {
			if _, err := os.Stat(c.sandboxKey); err == nil {
				_ = syscall.Unmount(c.sandboxKey, syscall.MNT_DETACH)
				errs = append(errs, os.Remove(c.sandboxKey))
			}
		}
	}
	errs = append(errs, n.delNetns(ctx, n.NS), n.delNetns(ctx, n.Internet))
	if n.dir != "" {
		errs = append(errs, os.RemoveAll(n.dir))
	}
	if err := errors.Join(errs...); err != nil {
		n.t.Errorf("realnode: cleanup of %s: %v", n.NS, err)
	}
}

func (n *Node) namespacePaths() []string {
	var paths []string
	for _, c := range n.containers {
		if c.cniNS != "" {
			paths = append(paths, "/run/netns/"+c.cniNS)
		}
		if c.sandboxKey != "" {
			paths = append(paths, c.sandboxKey)
		}
	}
	return append(paths, "/run/netns/"+n.NS, "/run/netns/"+n.Internet)
}

func (n *Node) delNetns(ctx context.Context, name string) error {
	if _, err := os.Stat("/run/netns/" + name); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if out, err := n.run(ctx, nil, n.ip, "netns", "del", name); err != nil {
		return fmt.Errorf("ip netns del %s: %v: %s", name, err, out)
	}
	return nil
}

func (n *Node) removeContainer(ctx context.Context, c *Container) error {
	switch n.Kind {
	case Podman:
		if out, err := n.podman(ctx, "rm", "-f", "-i", "-t", "0", c.Name); err != nil {
			return fmt.Errorf("podman rm %s: %v: %s", c.Name, err, out)
		}
	case Docker:
		if out, err := n.docker(ctx, "rm", "-f", c.Name); err != nil && !strings.Contains(err.Error(), "No such container") {
			return fmt.Errorf("docker rm %s: %v: %s", c.Name, err, out)
		}
	case CNI:
		return n.removeCNI(ctx, c)
	case CRI:
		return n.removeCRI(ctx, c)
	}
	return nil
}

// killIn kills every process whose network namespace is the one at path,
// and waits (bounded) until none is left.
func killIn(path string) error {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("stat %s: %w", path, err)
	}
	return killNet(fmt.Sprintf("net:[%d]", st.Ino), path)
}

// killNet kills every process whose /proc/PID/ns/net links to want
// ("net:[INODE]"), and waits (bounded) until none is left; what names the
// namespace in errors.
func killNet(want, what string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := pidsIn(want)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: processes %v still run after SIGKILL", what, pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func pidsIn(netLink string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		l, err := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "net"))
		if err != nil || l != netLink {
			continue
		}
		// A zombie has exited already; its parent reaps it.
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i > 0 && len(st) > i+2 && st[i+2] == 'Z' {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// waitNetns waits until process pid has left the namespace it started in
// (the caller's) for one of its own, as a container's process does.
func waitNetns(ctx context.Context, pid int) error {
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			return fmt.Errorf("process %d: %w", pid, err)
		}
		if l != self {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("process %d is still in the caller's namespace", pid)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

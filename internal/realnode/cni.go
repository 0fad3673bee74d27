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
	"syscall"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/hopcheck/hopcheck/internal/privtest"
)

// CNIPluginsVersion is the release of github.com/containernetworking/plugins
// the tests run.
const CNIPluginsVersion = "v1.6.2"

// CNIPluginsEnv, when set, names a directory that already holds the CNI
// plugins (bridge, host-local, portmap, firewall, loopback).
const CNIPluginsEnv = "HOPCHECK_CNI_PLUGINS"

// cniPluginPkgs returns the plugins' packages, by binary name.
func cniPluginPkgs() map[string]string {
	const mod = "github.com/containernetworking/plugins/plugins/"
	return map[string]string{
		"bridge":     mod + "main/bridge",
		"loopback":   mod + "main/loopback",
		"host-local": mod + "ipam/host-local",
		"portmap":    mod + "meta/portmap",
		"firewall":   mod + "meta/firewall",
	}
}

// CNIPluginsDir returns the directory of the pinned CNI plugins: $HOPCHECK_CNI_PLUGINS,
// or hopcheck/cni-plugins-VERSION under the user's cache directory.
func CNIPluginsDir() (string, error) {
	if d := os.Getenv(CNIPluginsEnv); d != "" {
		return d, nil
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(c, "hopcheck", "cni-plugins-"+CNIPluginsVersion), nil
}

// BuildCNIPlugins builds the pinned CNI plugins into CNIPluginsDir with
// `go install` (through the Go module proxy), unless they are there
// already, and returns the directory. `make cni-plugins` runs it once so
// that tests find them.
func BuildCNIPlugins(ctx context.Context) (string, error) {
	dir, err := CNIPluginsDir()
	if err != nil {
		return "", err
	}
	var pkgs []string
	for bin, pkg := range cniPluginPkgs() {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			pkgs = append(pkgs, pkg+"@"+CNIPluginsVersion)
		}
	}
	if len(pkgs) == 0 {
		return dir, nil
	}
	if os.Getenv(CNIPluginsEnv) != "" {
		return "", fmt.Errorf("%s=%s lacks %s", CNIPluginsEnv, dir, strings.Join(pkgs, ", "))
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build the CNI plugins: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, append([]string{"install"}, pkgs...)...)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %v\n%s", strings.Join(pkgs, " "), err, out)
	}
	return dir, nil
}

// cniNet is the node's CNI network: wrappers that run each plugin inside
// the node, and the libcni configuration that calls them.
type cniNet struct {
	cfg      *libcni.CNIConfig
	list     *libcni.NetworkConfigList
	loopback *libcni.NetworkConfigList
}

// startCNI prepares the node for CNI: a conflist like a Kubernetes node's
// (containerd's default): bridge cni0 10.22.0.0/16 with masquerading and
// host-local addresses, portmap for published ports and the firewall
// plugin's forward chain; plus loopback.
func (n *Node) startCNI(ctx context.Context) error {
	plugins, err := BuildCNIPlugins(ctx)
	if err != nil {
		privtest.Unavailable(n.t, "the CNI reference plugins "+CNIPluginsVersion+": "+err.Error())
	}
	wrappers := filepath.Join(n.dir, "cni-bin")
	if err := os.MkdirAll(wrappers, 0o700); err != nil {
		return err
	}
	// Each plugin runs inside the node, where its host-side work belongs.
	for bin := range cniPluginPkgs() {
		script := fmt.Sprintf("#!/bin/sh\nexec %s netns exec %s %s\n", n.ip, n.NS, filepath.Join(plugins, bin))
		if err := os.WriteFile(filepath.Join(wrappers, bin), []byte(script), 0o700); err != nil {
			return err
		}
	}
	conflist := cniConflist(filepath.Join(n.dir, "cni-ipam"))
	list, err := libcni.NetworkConfFromBytes([]byte(conflist))
	if err != nil {
		return err
	}
	lo, err := libcni.NetworkConfFromBytes([]byte(`{"cniVersion": "1.0.0", "name": "hcrn-lo", "plugins": [{"type": "loopback"}]}`))
	if err != nil {
		return err
	}
	n.cni = &cniNet{
		cfg:      libcni.NewCNIConfigWithCacheDir([]string{wrappers}, filepath.Join(n.dir, "cni-cache"), nil),
		list:     list,
		loopback: lo,
	}
	return nil
}

// cniConflist is the node's network: bridge cni0 10.22.0.0/16 with
// masquerading and host-local addresses (kept in ipamDir), portmap for
// published ports and the firewall plugin's forward chain (CNI-FORWARD).
// The CNI kind runs it through libcni, the CRI kind through containerd.
func cniConflist(ipamDir string) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "hcrn",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.22.0.0/16"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall", "backend": "iptables"}
  ]
}`, ipamDir)
}

func (n *Node) cniRuntime(c *Container, ifName, publish string) (*libcni.RuntimeConf, error) {
	rt := &libcni.RuntimeConf{ContainerID: c.ID, NetNS: "/run/netns/" + c.cniNS, IfName: ifName}
	if publish != "" {
		host, ctr, ok := strings.Cut(publish, ":")
		hp, err1 := strconv.Atoi(host)
		cp, err2 := strconv.Atoi(ctr)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("publish %q: want HOSTPORT:CONTAINERPORT", publish)
		}
		rt.CapabilityArgs = map[string]any{"portMappings": []map[string]any{
			{"hostPort": hp, "containerPort": cp, "protocol": "tcp"},
		}}
	}
	return rt, nil
}

// runCNI makes a sandbox namespace, adds it to the network with CNI ADD
// and starts the busybox applet cmd in it, bound to the test's life.
func (n *Node) runCNI(ctx context.Context, name, publish string, cmd []string) (*Container, error) {
	c := &Container{Name: name, ID: strings.TrimPrefix(n.NS, "hcrn") + "-" + name, Bridge: "cni0", cniNS: strings.TrimSuffix(n.NS, "-node") + "-" + name}
	if out, err := n.run(ctx, nil, n.ip, "netns", "add", c.cniNS); err != nil {
		c.cniNS = ""
		return c, fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	lo, err := n.cniRuntime(c, "lo", "")
	if err != nil {
		return c, err
	}
	if _, err := n.cni.cfg.AddNetworkList(ctx, n.cni.loopback, lo); err != nil {
		return c, fmt.Errorf("CNI ADD loopback: %w", err)
	}
	rt, err := n.cniRuntime(c, "eth0", publish)
	if err != nil {
		return c, err
	}
	res, err := n.cni.cfg.AddNetworkList(ctx, n.cni.list, rt)
	if err != nil {
		return c, fmt.Errorf("CNI ADD: %w", err)
	}
	if err := cniAddresses(c, res); err != nil {
		return c, err
	}
	proc := exec.Command(n.ip, append([]string{"netns", "exec", c.cniNS, "/bin/busybox"}, cmd...)...)
	proc.Dir = n.dir
	if cmd[0] == "httpd" {
		// busybox httpd serves its working directory.
		www := filepath.Join(n.dir, "www-"+name)
		if err := os.MkdirAll(www, 0o755); err != nil {
			return c, err
		}
		if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("hopcheck\n"), 0o644); err != nil {
			return c, err
		}
		proc.Dir = www
	}
	proc.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := proc.Start(); err != nil {
		return c, err
	}
	c.proc, c.PID = proc, proc.Process.Pid
	if err := waitNetns(ctx, c.PID); err != nil {
		return c, err
	}
	return c, nil
}

func cniAddresses(c *Container, res types.Result) error {
	r, err := current.NewResultFromResult(res)
	if err != nil {
		return fmt.Errorf("CNI result: %w", err)
	}
	for _, ipc := range r.IPs {
		if ipc.Address.IP.To4() == nil {
			continue
		}
		ip, _ := netip.AddrFromSlice(ipc.Address.IP.To4())
		gw, _ := netip.AddrFromSlice(ipc.Gateway.To4())
		c.IP, c.Gateway = ip, gw
		return nil
	}
	b, _ := json.Marshal(r)
	return fmt.Errorf("CNI result has no IPv4 address: %s", b)
}

// removeCNI stops the sandbox's process and runs CNI DEL; the namespace
// itself goes in cleanup, after the sweep of its processes.
func (n *Node) removeCNI(ctx context.Context, c *Container) error {
	var errs []error
	if c.proc != nil {
		_ = c.proc.Process.Kill()
		_ = c.proc.Wait()
	}
	if c.cniNS == "" || n.cni == nil {
		return nil
	}
	if rt, err := n.cniRuntime(c, "eth0", ""); err == nil {
		if err := n.cni.cfg.DelNetworkList(ctx, n.cni.list, rt); err != nil {
			errs = append(errs, fmt.Errorf("CNI DEL %s: %w", c.Name, err))
		}
	}
	if lo, err := n.cniRuntime(c, "lo", ""); err == nil {
		if err := n.cni.cfg.DelNetworkList(ctx, n.cni.loopback, lo); err != nil {
			errs = append(errs, fmt.Errorf("CNI DEL loopback %s: %w", c.Name, err))
		}
	}
	return errors.Join(errs...)
}

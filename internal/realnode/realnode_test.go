package realnode

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestNode starts each runtime in a node, runs a web server in a container
// and checks the three paths the diagnosis tests rely on: the container
// reaches the internet through the runtime's NAT, the internet reaches the
// container through the runtime's published port, and the runtime's CLI
// finds the container through Env alone. Then it checks that cleanup left
// nothing behind.
func TestNode(t *testing.T) {
	for _, kind := range Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var node *Node
			t.Run("up", func(t *testing.T) {
				node = New(ctx, t, kind)
				web := node.RunContainer(ctx, "web", "8080:80", "httpd", "-f", "-p", "80")
				t.Logf("%s: %+v", kind, *web)
				if !web.IP.IsValid() || !web.Gateway.IsValid() || web.HostVeth == "" || web.PID == 0 {
					t.Fatalf("incomplete container: %+v", *web)
				}
				node.MustSh(ctx, "nsenter --net="+web.NetNS+" ping -c1 -W2 "+RemoteAddr)
				// busybox-static's wget crashes in its name service code; nc does not.
				out, err := node.run(ctx, nil, node.ip, "netns", "exec", node.Internet, "sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc -w 5 `+NodeAddr+` 8080`)
				if err != nil || !strings.HasPrefix(out, "HTTP/1.") {
					t.Errorf("internet -> %s:8080: %v: %q", NodeAddr, err, out)
				}
				switch kind {
				case Podman:
					cmd := exec.CommandContext(ctx, node.podmanBin, "inspect", "--format", "{{.State.Pid}}", "web")
					cmd.Env = append(os.Environ(), node.Env()...)
					b, err := cmd.CombinedOutput()
					if err != nil || strings.TrimSpace(string(b)) == "" {
						t.Errorf("podman inspect with Env %v: %v: %s", node.Env(), err, b)
					}
				case CRI:
					// Through Env's PATH and endpoint alone, as hopcheck's own
					// crictl is found.
					cmd := exec.CommandContext(ctx, "sh", "-c", "crictl inspect -o go-template --template '{{.info.pid}}' $(crictl ps --name '^web$' -q)")
					cmd.Env = append(os.Environ(), node.Env()...)
					b, err := cmd.Output()
					if err != nil || strings.TrimSpace(string(b)) != itoa(web.PID) {
						t.Errorf("crictl inspect with Env %v: %v: %s, want %d", node.Env(), err, b, web.PID)
					}
				case Docker:
					cmd := exec.CommandContext(ctx, node.dockerBin, "inspect", "--format", "{{.State.Pid}}", "web")
					cmd.Env = append(os.Environ(), node.Env()...)
					b, err := cmd.CombinedOutput()
					if err != nil || strings.TrimSpace(string(b)) == "" {
						t.Errorf("docker inspect with Env %v: %v: %s", node.Env(), err, b)
					}
				}
			})
			if node == nil {
				return
			}
			// "up" has run its cleanup: nothing of the node remains.
			for _, p := range []string{"/run/netns/" + node.NS, "/run/netns/" + node.Internet, node.dir} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s is left behind", p)
				}
			}
			for _, c := range node.containers {
				if c.sandboxKey != "" {
					if _, err := os.Stat(c.sandboxKey); err == nil {
						t.Errorf("%s is left behind", c.sandboxKey)
					}
				}
				if _, err := os.Stat("/proc/" + itoa(c.PID)); err == nil {
					if b, _ := os.ReadFile("/proc/" + itoa(c.PID) + "/cmdline"); strings.Contains(string(b), "httpd") {
						t.Errorf("container process %d still runs", c.PID)
					}
				}
			}
			mounts, _ := os.ReadFile("/proc/self/mountinfo")
			if strings.Contains(string(mounts), node.dir) || strings.Contains(string(mounts), strings.TrimSuffix(node.NS, "-node")) {
				t.Errorf("mounts of the node left in the root mount namespace:\n%s", mounts)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

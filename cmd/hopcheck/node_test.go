package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netlink"

	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// TestNodeFromInsideASandbox runs hopcheck inside a sandbox namespace that
// plays a container host's node (never the machine's own), with one
// container namespace behind a veth, the way Docker wires one.
func TestNodeFromInsideASandbox(t *testing.T) {
	privtest.Require(t)
	ipBin := tool(t, "ip", "iproute2")
	runID, err := netns.NewRunID()
	if err != nil {
		t.Fatal(err)
	}
	nodeNS, ctrNS := netns.Name(runID, "nd"), netns.Name(runID, "ct")
	hs, nls := sandboxPair(t, sandboxEnd{nodeNS, "vct", "10.69.0.1/24"}, sandboxEnd{ctrNS, "eth0", "10.69.0.2/24"})
	nodeH, nd := hs[0], nls[0]

	state := t.TempDir()
	inNode := func(args ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, ipBin, append([]string{"netns", "exec", nodeNS, hopcheckBin}, args...)...)
		cmd.Env = append(os.Environ(), runs.DirEnv+"="+state, "NO_COLOR=1", "GORACE=atexit_sleep_ms=0")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("hopcheck %s: %v", strings.Join(args, " "), err)
		}
		return cmd.ProcessState.ExitCode(), out.String()
	}

	t.Run("the node is refused without --node", func(t *testing.T) {
		code, out := inNode("why", "--netns", ctrNS, "--from", "node", "--to", "10.69.0.2")
		if code != 2 || !strings.Contains(out, "only with --node") {
			t.Errorf("exit %d, want 2 with a hint at --node:\n%s", code, out)
		}
	})
	t.Run("a container's ping to the node, traced through it", func(t *testing.T) {
		code, out := inNode("why", "--node", "--netns", ctrNS, "--from", ctrNS, "--to", "10.69.0.1")
		if code != 0 || !strings.Contains(out, "node/vct") {
			t.Errorf("exit %d, want 0 with hops at node/vct:\n%s", code, out)
		}
	})
	t.Run("a probe from the node when asked", func(t *testing.T) {
		code, out := inNode("why", "--node", "--netns", ctrNS, "--from", "node", "--to", "10.69.0.2")
		if code != 0 {
			t.Errorf("exit %d, want 0:\n%s", code, out)
		}
	})
	t.Run("the node's own firewall, diagnosed there", func(t *testing.T) {
		ipt, err := iptables.New()
		if err != nil {
			privtest.Unavailable(t, "the iptables command")
		}
		rule := []string{"-p", "icmp", "-s", "10.69.0.2", "-j", "DROP"}
		if err := netns.Do(nodeH, func() error { return ipt.Append("filter", "INPUT", rule...) }); err != nil {
			t.Fatal(err)
		}
		defer netns.Do(nodeH, func() error { return ipt.Delete("filter", "INPUT", rule...) })
		code, out := inNode("why", "--node", "--netns", ctrNS, "--from", ctrNS, "--to", "10.69.0.1")
		if code != 1 || !strings.Contains(out, "netfilter-drop") || !strings.Contains(out, "node") {
			t.Errorf("exit %d, want 1 with netfilter-drop in node:\n%s", code, out)
		}
	})

	// Nothing stays attached to the node once hopcheck has exited.
	l, err := nd.LinkByName("vct")
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
		var res *link.QueryResult
		err := netns.Do(nodeH, func() (err error) {
			res, err = link.QueryPrograms(link.QueryOptions{Target: l.Attrs().Index, Attach: at})
			return err
		})
		if err != nil {
			t.Fatalf("query %s: %v", at, err)
		}
		if len(res.Programs) != 0 {
			t.Errorf("node/vct: %d programs still attached at %s", len(res.Programs), at)
		}
	}
	if filters, err := nd.FilterList(l, netlink.HANDLE_MIN_INGRESS); err == nil && len(filters) != 0 {
		t.Errorf("node/vct: tc filters left: %v", filters)
	}
}

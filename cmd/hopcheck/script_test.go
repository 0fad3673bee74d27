package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/harness/check"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/nl"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/vishvananda/netlink"
)

// TestScriptPrintsTheRecipe: script needs no root and prints the commands
// with the scenario's namespace names, or with run-specific ones.
func TestScriptPrintsTheRecipe(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.runUnprivileged("script", "../../scenarios/nat-egress.yaml")
	for _, want := range []string{
		"#!/bin/bash\n",
		"\nip netns add ns1\n",
		"\nip -n ns1 link add veth_1 type veth peer name veth1 netns host\n",
		"\nip netns exec host sysctl -q -w net.ipv4.ip_forward=1\n",
		"\nip netns exec host iptables -t nat -A POSTROUTING -s 10.0.0.0/24 '!' -o br0 -j MASQUERADE\n",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("script output lacks %q:\n%s", want, res.stdout)
		}
	}
	if res.code != exitOK || res.stderr != "" {
		t.Errorf("script: %v", res)
	}
	// Dependency order: a namespace before its links, a link before its
	// address, an address before the route through it.
	order := []string{"ip netns add host", "link add veth_1", "addr add 10.0.0.2/24", "route add default via 10.0.0.1 dev veth_1"}
	last := -1
	for _, o := range order {
		i := strings.Index(res.stdout, o)
		if i < last {
			t.Errorf("%q comes before what it needs", o)
		}
		last = i
	}
	res = e.runUnprivileged("script", "--run-id", "ab12cd", "--teardown", "../../scenarios/nat-egress.yaml")
	if res.code != exitOK || !strings.Contains(res.stdout, "\nip netns del hcab12cd-ns1 || true\n") {
		t.Errorf("script --run-id ab12cd --teardown: %v", res)
	}
	res = e.runUnprivileged("script", "--run-id", "NOPE", "../../scenarios/nat-egress.yaml")
	if res.code != exitBadInput || !strings.Contains(res.stderr, "--run-id") {
		t.Errorf("script --run-id NOPE: %v; want exit code 2", res)
	}
}

// namedEnv is a check.Env over namespaces that the script made.
type namedEnv map[string]netns.Handle

func (e namedEnv) NS(name string) netns.Handle {
	if h, ok := e[name]; ok {
		return h
	}
	return netns.Handle(-1)
}

// waitCarriers waits, at most 3 seconds, until every interface that is up
// in env is operationally up too, as a person would before a first ping:
// the kernel turns a new link's carrier on from deferred work, up to a
// second after "ip link set up" (hopcheck's builder waits the same way).
func waitCarriers(t *testing.T, env namedEnv) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for _, h := range env {
		nh, err := nl.HandleAt(h)
		if err != nil {
			t.Fatal(err)
		}
		for {
			links, err := nh.LinkList()
			if err != nil {
				t.Fatal(err)
			}
			pending := ""
			for _, l := range links {
				a := l.Attrs()
				if a.Flags&net.FlagUp != 0 && a.OperState == netlink.OperDown {
					pending = a.Name
				}
			}
			if pending == "" || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		nh.Close()
	}
}

// TestScriptBuildsWhatChecksPass runs the printed script of every library
// scenario with bash, in namespaces of a fresh run ID (never the root
// namespace, never a name in use), and runs the scenario's checks against
// what the script built: every one passes. (A check with cause: passes
// here when its probe fails; the cause is the diagnosis', which needs the
// runner.)
func TestScriptBuildsWhatChecksPass(t *testing.T) {
	t.Parallel()
	privtest.Require(t)
	for _, tool := range []string{"bash", "ip", "iptables", "sysctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			privtest.Unavailable(t, "the "+tool+" command")
		}
	}
	files, err := filepath.Glob("../../scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no library scenarios: %v", err)
	}
	e := newEnv(t)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			sc, err := scenario.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			id, err := netns.NewRunID()
			if err != nil {
				t.Fatal(err)
			}
			run := func(args ...string) string {
				res := e.run(append([]string{"script", "--run-id", id}, args...)...)
				if res.code != exitOK {
					t.Fatalf("hopcheck script: %v", res)
				}
				return res.stdout
			}
			build, teardown := run(file), run("--teardown", file)
			t.Cleanup(func() {
				if out, err := exec.Command("bash", "-c", teardown).CombinedOutput(); err != nil {
					t.Errorf("teardown script: %v\n%s", err, out)
				}
				for _, ns := range sc.Namespaces {
					if netns.Exists(netns.Name(id, ns.Name)) {
						t.Errorf("namespace %s left after the teardown script", netns.Name(id, ns.Name))
					}
				}
			})
			var out bytes.Buffer
			cmd := exec.Command("bash")
			cmd.Stdin = strings.NewReader(build)
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("script: %v\n%s", err, out.String())
			}
			env := namedEnv{}
			for _, ns := range sc.Namespaces {
				h, err := netns.Open(netns.Name(id, ns.Name))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { h.Close() })
				env[ns.Name] = h
			}
			waitCarriers(t, env)
			for i := range sc.Checks {
				c := &sc.Checks[i]
				if r := check.Run(context.Background(), env, c); !r.Passed {
					t.Errorf("%s: check %q failed against the script's build: %s %v", file, c.Name, r.Error, r.Err)
				}
			}
		})
	}
}

// TestScriptWaitsForDAD: the script of an IPv6 scenario ends when
// duplicate address detection is over, as the builder does, so that a ping
// typed right after it works, and it names an address DAD found
// duplicated (the kernel never uses it) on its standard error.
func TestScriptWaitsForDAD(t *testing.T) {
	t.Parallel()
	privtest.Require(t)
	file := filepath.Join(t.TempDir(), "dup6.yaml")
	yaml := `name: dup6
namespaces:
  ns1:
    interfaces:
      eth0: {addresses: [2001:db8:9::1/64]}
  ns2:
    interfaces:
      eth0: {addresses: [2001:db8:9::1/64, 2001:db8:9::2/64]}
links:
  - [ns1/eth0, ns2/eth0]
checks:
  - ping: {from: ns2, to: 2001:db8:9::1}
`
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	id, err := netns.NewRunID()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	build := e.run("script", "--run-id", id, file)
	teardown := e.run("script", "--run-id", id, "--teardown", file)
	if build.code != exitOK || teardown.code != exitOK {
		t.Fatalf("hopcheck script: %v %v", build, teardown)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("bash", "-c", teardown.stdout).CombinedOutput(); err != nil {
			t.Errorf("teardown script: %v\n%s", err, out)
		}
	})
	var stderr bytes.Buffer
	cmd := exec.Command("bash")
	cmd.Stdin = strings.NewReader(build.stdout)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("script: %v\n%s", err, stderr.String())
	}
	// Both ends got 2001:db8:9::1 at about the same time: one of them, or
	// both, detect the duplicate, as their solicitations cross.
	named := 0
	for _, ns := range []string{"ns1", "ns2"} {
		if strings.Contains(stderr.String(), netns.Name(id, ns)+": eth0 2001:db8:9::1/64: duplicate address (DAD failed)") {
			named++
		}
	}
	if named == 0 {
		t.Errorf("script's stderr names no duplicate 2001:db8:9::1:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "2001:db8:9::2") || strings.Contains(stderr.String(), "still tentative") {
		t.Errorf("script's stderr names a usable address:\n%s", stderr.String())
	}
	// The script returned after DAD: no address on a link with a carrier
	// is tentative any more, other than the duplicates.
	for _, ns := range []string{"ns1", "ns2"} {
		out, err := exec.Command("ip", "-n", netns.Name(id, ns), "-6", "-o", "addr", "show", "tentative", "-dadfailed").CombinedOutput()
		if err != nil || len(out) != 0 {
			t.Errorf("%s after the script: tentative addresses %q (%v)", ns, out, err)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/harness/diagnose"
	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/internal/realnode"
)

// realHost is one runtime's node with the containers the tests probe: web
// (busybox httpd, published 8080:80) and idle (sleep, published 8081:80,
// nothing listening).
type realHost struct {
	node      *realnode.Node
	web, idle *realnode.Container
	state     string
}

func newRealHost(ctx context.Context, t *testing.T, kind realnode.Kind) *realHost {
	t.Helper()
	n := realnode.New(ctx, t, kind)
	return &realHost{
		node:  n,
		web:   n.RunContainer(ctx, "web", "8080:80", "httpd", "-f", "-p", "80"),
		idle:  n.RunContainer(ctx, "idle", "8081:80", "sleep", "3600"),
		state: t.TempDir(),
	}
}

// webName is how hopcheck names the web container: its name, given by
// --container (Docker, Podman, CRI through crictl); its namespace path
// under CNI, which has no runtime CLI to ask.
func (h *realHost) webName() string {
	if h.node.Kind == realnode.CNI {
		return h.web.NetNS
	}
	return h.web.Name
}

// webArgs are the arguments that make web a participant and start the
// probe there.
func (h *realHost) webArgs() []string {
	if h.node.Kind == realnode.CNI {
		return []string{"--netns", h.web.NetNS, "--from", h.web.NetNS}
	}
	return []string{"--container", string(h.node.Kind) + ":" + h.web.Name, "--from", h.web.Name}
}

// idleArgs makes idle a participant.
func (h *realHost) idleArgs() []string {
	if h.node.Kind == realnode.CNI {
		return []string{"--netns", h.idle.NetNS}
	}
	return []string{"--container", h.idle.Name}
}

// hopcheck runs the binary under test inside the node (as a node's admin
// would, with the runtime's CLI environment) and returns its exit code and
// output.
func (h *realHost) hopcheck(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.node.NS, hopcheckBin}, args...)...)
	cmd.Env = append(append(os.Environ(), h.node.Env()...), runs.DirEnv+"="+h.state, "NO_COLOR=1", "GORACE=atexit_sleep_ms=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("hopcheck %s: %v", strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// whyDiagnosis is what `why` printed about a failed probe.
type whyDiagnosis struct {
	Cause, Place, Summary, Fix string
}

// parseWhy reads the "cause: CODE at NS/IF: summary" and "fix: COMMAND"
// lines of why's text report (why has no JSON output).
func parseWhy(out string) whyDiagnosis {
	var d whyDiagnosis
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "cause: ") && d.Cause == "":
			rest := strings.TrimPrefix(l, "cause: ")
			head, summary, _ := strings.Cut(rest, ": ")
			d.Summary = summary
			d.Cause, d.Place, _ = strings.Cut(head, " at ")
		case strings.HasPrefix(l, "fix: ") && d.Fix == "":
			d.Fix = strings.TrimPrefix(l, "fix: ")
		}
	}
	return d
}

func TestParseWhy(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want whyDiagnosis
	}{
		{"FAIL  why  ping a -> b\n  cause: no-route at /proc/1/ns/net: no route to 203.0.113.8\n    evidence\n  fix: ip route add default via 10.0.0.1\n",
			whyDiagnosis{"no-route", "/proc/1/ns/net", "no route to 203.0.113.8", "ip route add default via 10.0.0.1"}},
		{"cause: link-down at node/veth1a: veth1a is down\nfix: ip link set veth1a up",
			whyDiagnosis{"link-down", "node/veth1a", "veth1a is down", "ip link set veth1a up"}},
		{"cause: unknown: nothing explains it", whyDiagnosis{Cause: "unknown", Summary: "nothing explains it"}},
		{"PASS  why  ping a -> b", whyDiagnosis{}},
	} {
		if got := parseWhy(tc.out); got != tc.want {
			t.Errorf("parseWhy(%q) = %+v, want %+v", tc.out, got, tc.want)
		}
	}
}

// TestRealRuntimes runs hopcheck inside a node that runs a real container
// runtime (Podman with netavark, Docker, the CNI reference plugins,
// containerd's CRI plugin driven by crictl; see
// internal/realnode): healthy paths pass, and each realistic breakage,
// made for real in the node, is diagnosed with its cause, and the fix that
// hopcheck prints, typed in the node, makes the probe pass again.
func TestRealRuntimes(t *testing.T) {
	for _, kind := range realnode.Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			h := newRealHost(ctx, t, kind)
			egress := append([]string{"why", "--node"}, h.webArgs()...)
			egress = append(egress, "--to", realnode.RemoteAddr)

			t.Run("healthy egress", func(t *testing.T) {
				for _, mode := range []string{"traced", "trace-off"} {
					code, out := h.hopcheck(t, withMode(egress, mode)...)
					if code != 0 {
						t.Errorf("%s: exit %d, want 0:\n%s", mode, code, out)
					}
				}
			})
			t.Run("published port", func(t *testing.T) {
				published := realnode.NodeAddr + ":8080"
				for _, args := range [][]string{
					{"why", "--netns", h.node.Internet, "--from", h.node.Internet, "--to", published, "--tcp"},
					{"why", "--node", "--netns", h.node.Internet + "," + h.web.NetNS, "--from", h.node.Internet, "--to", published, "--tcp"},
				} {
					code, out := h.hopcheck(t, args...)
					if code != 0 {
						t.Errorf("hopcheck %s: exit %d, want 0:\n%s", strings.Join(args, " "), code, out)
					}
				}
			})
			t.Run("breakages", func(t *testing.T) {
				for _, b := range breakages(h) {
					if b.kinds != nil && !containsKind(b.kinds, kind) {
						continue
					}
					t.Run(b.name, func(t *testing.T) { h.runBreakage(t, b, egress) })
				}
			})
		})
	}
}

func containsKind(ks []realnode.Kind, k realnode.Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func withMode(args []string, mode string) []string {
	out := append([]string(nil), args...)
	if mode == "trace-off" {
		out = append(out, "--trace-off")
	}
	return out
}

// breakage is one realistic mistake, made in the node with shell commands.
type breakage struct {
	name  string
	kinds []realnode.Kind // nil: every runtime
	// probe is the failing why invocation; nil: the container's egress ping.
	probe []string
	// breakIt and undo are shell commands run in the node; undo restores
	// what breakIt changed outside iptables (iptables is restored from a
	// snapshot taken before breakIt).
	breakIt, undo string
	cause         string
	// place, when set, is where the cause must be: "ns" or "ns/if".
	place string
	// fixHas are strings the printed fix must contain.
	fixHas []string
	// summaryHas, when set, must be in the summary.
	summaryHas string
	// noFix: no command can repair it (nothing listens: a service must
	// be started); the summary must say what to do instead.
	noFix bool
}

// removeMasquerade deletes the runtime's MASQUERADE rules for its
// containers' subnet (every one but the port-forwarding hairpin rules,
// which match a mark), and fails when one is left.
const removeMasquerade = `iptables -t nat -S | grep -e '-j MASQUERADE' | grep -v -e '--mark' | sed 's/^-A /-D /' |
while read -r r; do eval iptables -t nat "$r" || exit 1; done; ! iptables -t nat -S | grep -e '-j MASQUERADE' | grep -qv -e '--mark'`

// breakages returns the table for h's runtime.
func breakages(h *realHost) []breakage {
	ctr := "nsenter --net=" + h.web.NetNS + " "
	webOnly := append([]string{"why"}, h.webArgs()...)
	webOnly = append(webOnly, "--to", realnode.RemoteAddr)
	var chain string // the runtime's own forward chain
	switch h.node.Kind {
	case realnode.Docker:
		chain = "DOCKER-USER"
	case realnode.Podman:
		chain = "NETAVARK_FORWARD"
	case realnode.CNI, realnode.CRI:
		// The firewall plugin's, in the same conflist.
		chain = "CNI-FORWARD"
	}
	dropRule := fmt.Sprintf("%s -s %s/32 -j DROP", chain, h.web.IP)
	published := realnode.NodeAddr + ":8081"
	return []breakage{{
		name:    "ip_forward off",
		breakIt: "sysctl -qw net.ipv4.ip_forward=0",
		undo:    "sysctl -qw net.ipv4.ip_forward=1",
		cause:   diagnose.ForwardingDisabled,
		place:   "node",
		fixHas:  []string{"ip_forward"},
	}, {
		name: "masquerade removed",
		// Every MASQUERADE rule but the hairpin ones that match a mark.
		breakIt: removeMasquerade,
		cause:   diagnose.NoReturnRoute,
		fixHas:  []string{"MASQUERADE"},
	}, {
		// The same, with the internet namespace given to hopcheck, as a
		// test lab would: the reply's fate is then in view.
		name:    "masquerade removed, internet visible",
		probe:   []string{"why", "--node", "--netns", h.web.NetNS + "," + h.node.Internet, "--from", h.web.NetNS, "--to", realnode.RemoteAddr},
		breakIt: removeMasquerade,
		cause:   diagnose.NoReturnRoute,
		fixHas:  []string{"MASQUERADE"},
	}, {
		name:    "FORWARD policy DROP, runtime's accept rules flushed",
		breakIt: "iptables -P FORWARD DROP && iptables -F FORWARD",
		cause:   diagnose.NetfilterDrop,
		place:   "node",
		fixHas:  []string{"FORWARD"},
	}, {
		name:    "container default route deleted",
		breakIt: ctr + "ip route del default",
		undo:    ctr + "ip route replace default via " + h.web.Gateway.String(),
		cause:   diagnose.NoRoute,
		place:   h.webName(),
		fixHas:  []string{"default via " + h.web.Gateway.String()},
	}, {
		name:    "host-side veth down",
		breakIt: "ip link set " + h.web.HostVeth + " down",
		undo:    "ip link set " + h.web.HostVeth + " up",
		cause:   diagnose.LinkDown,
		place:   "node/" + h.web.HostVeth,
		fixHas:  []string{h.web.HostVeth, "up"},
	}, {
		name:       "published port with no listener",
		probe:      append([]string{"why", "--node", "--netns", h.node.Internet, "--from", h.node.Internet, "--to", published, "--tcp"}, h.idleArgs()...),
		cause:      diagnose.NoListener,
		place:      map[bool]string{true: h.idle.NetNS, false: h.idle.Name}[h.node.Kind == realnode.CNI],
		summaryHas: "start the service",
		noFix:      true,
	}, {
		// Only the container is given, not the node: the path leaves the
		// view at the container's veth, and hopcheck says so and how to
		// include the node, rather than a cause from half the picture.
		name:       "the node not given",
		probe:      webOnly,
		breakIt:    "sysctl -qw net.ipv4.ip_forward=0",
		undo:       "sysctl -qw net.ipv4.ip_forward=1",
		cause:      diagnose.Unknown,
		place:      h.webName() + "/eth0",
		summaryHas: "add --node",
		noFix:      true,
	}, {
		name:    "DROP in " + chain,
		breakIt: "iptables -I " + dropRule,
		cause:   diagnose.NetfilterDrop,
		place:   "node",
		fixHas:  []string{"-D " + chain},
	}, {
		name:  "container keeps a gateway MAC the bridge no longer has",
		kinds: []realnode.Kind{realnode.Podman},
		// netavark gives podman0 the MAC of one of its ports, and frames
		// to a port's own MAC still reach the node; so that the old MAC
		// really leaves the node, that port gets a new one too.
		breakIt: fmt.Sprintf(`old=$(cat /sys/class/net/%[1]s/address) && echo $old > %[2]s.mac && : > %[2]s.port &&
for p in /sys/class/net/%[1]s/brif/*; do n=${p##*/}; if [ "$(cat /sys/class/net/$n/address)" = "$old" ]; then echo $n > %[2]s.port; ip link set $n address 02:00:5e:10:00:98 || exit 1; fi; done &&
ip link set %[1]s address 02:00:5e:10:00:99 && %[3]sip neigh replace %[4]s lladdr $old dev eth0 nud permanent`,
			h.web.Bridge, filepath.Join(h.state, "bridge"), ctr, h.web.Gateway),
		undo: fmt.Sprintf(`ip link set %[1]s address $(cat %[2]s.mac) && if [ -s %[2]s.port ]; then ip link set $(cat %[2]s.port) address $(cat %[2]s.mac); fi; %[3]sip neigh del %[4]s dev eth0`,
			h.web.Bridge, filepath.Join(h.state, "bridge"), ctr, h.web.Gateway),
		cause: diagnose.WrongMAC,
		place: h.webName(),
	}}
}

// runBreakage makes b in the node, runs hopcheck traced and with
// --trace-off, checks the diagnosis, types the printed fix in the node,
// probes again, and restores the node whatever happened.
func (h *realHost) runBreakage(t *testing.T, b breakage, egress []string) {
	ctx := context.Background()
	probe := b.probe
	if probe == nil {
		probe = egress
	}
	snapshot := filepath.Join(h.state, "iptables.rules")
	h.node.MustSh(ctx, "iptables-save > "+snapshot)
	defer func() {
		// Restore, then prove the node is healthy again: a row that leaves
		// it broken would make the next rows meaningless.
		if b.undo != "" {
			if out, err := h.node.Sh(ctx, b.undo); err != nil {
				t.Logf("undo %q: %v: %s", b.undo, err, out)
			}
		}
		h.node.MustSh(ctx, "iptables-restore < "+snapshot)
		if b.breakIt == "" {
			return
		}
		if code, out := h.hopcheck(t, egress...); code != 0 {
			t.Fatalf("the node is still broken after restoring it from %q: exit %d:\n%s", b.name, code, out)
		}
	}()
	if b.breakIt != "" {
		h.node.MustSh(ctx, b.breakIt)
	}
	var traced whyDiagnosis
	for _, mode := range []string{"traced", "trace-off"} {
		code, out := h.hopcheck(t, withMode(probe, mode)...)
		d := parseWhy(out)
		t.Logf("RESULT %s | %s | %s | exit %d | cause %q | place %q | summary %q | fix %q", h.node.Kind, b.name, mode, code, d.Cause, d.Place, d.Summary, d.Fix)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1 (probe fails):\n%s", mode, code, out)
			continue
		}
		if d.Cause != b.cause {
			t.Errorf("%s: cause %q, want %q:\n%s", mode, d.Cause, b.cause, out)
		}
		if b.place != "" && d.Place != b.place && !strings.HasPrefix(d.Place, b.place+"/") {
			t.Errorf("%s: at %q, want %q:\n%s", mode, d.Place, b.place, out)
		}
		if !strings.Contains(d.Summary, b.summaryHas) {
			t.Errorf("%s: summary %q does not say %q", mode, d.Summary, b.summaryHas)
		}
		for _, s := range b.fixHas {
			if !strings.Contains(d.Fix, s) {
				t.Errorf("%s: fix %q does not mention %q", mode, d.Fix, s)
			}
		}
		if mode == "traced" {
			traced = d
		}
	}
	if b.noFix {
		if traced.Fix != "" {
			t.Errorf("fix %q printed, where no command can repair it", traced.Fix)
		}
		return
	}
	if traced.Fix == "" {
		t.Errorf("no fix printed")
		t.Logf("RESULT %s | %s | fix worked: no fix", h.node.Kind, b.name)
		return
	}
	out, err := h.node.Sh(ctx, traced.Fix)
	if err != nil {
		t.Errorf("the fix %q, typed in the node, failed: %v\n%s", traced.Fix, err, out)
	}
	// A user retries: a link brought up takes a moment to get its
	// carrier and its bridge port to forward (linkwatch), and the neighbor
	// entry that failed meanwhile must be resolved again. Bounded: three
	// probes, a second apart.
	var (
		code  int
		after string
	)
	for try := range 3 {
		if try > 0 {
			time.Sleep(time.Second)
		}
		if code, after = h.hopcheck(t, probe...); code == 0 {
			break
		}
	}
	t.Logf("RESULT %s | %s | fix worked: %v (fix exit error %v, probe exit %d)", h.node.Kind, b.name, err == nil && code == 0, err, code)
	if code != 0 {
		t.Errorf("after the fix %q, the probe still fails (exit %d):\n%s", traced.Fix, code, after)
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/harness/diagnose"
	"github.com/hopcheck/hopcheck/internal/realnode"
)

// moreHost is a realHost with the extra containers the rows of
// TestRealRuntimesMore need.
type moreHost struct {
	*realHost
	// Docker only.
	lo     *realnode.Container // httpd, published 127.0.0.1:8082:80
	dns    *realnode.Container // sleep, published 5353:53/udp
	a2IP   string              // httpd a2 on noicc (icc=false), next to a1
	b1IP   string              // httpd b1 on network other
	hasNet bool                // a1, a2, b1, nonet were started
}

// dockerCLI is docker.io's own client, as realnode uses.
const dockerCLI = "/usr/bin/docker"

func newMoreHost(ctx context.Context, t *testing.T, kind realnode.Kind) *moreHost {
	t.Helper()
	m := &moreHost{realHost: newRealHost(ctx, t, kind)}
	if kind != realnode.Docker {
		return m
	}
	n := m.node
	m.lo = n.RunContainer(ctx, "lo8082", "127.0.0.1:8082:80", "httpd", "-f", "-p", "80")
	m.dns = n.RunContainer(ctx, "dns", "5353:53/udp", "sleep", "3600")
	img := "hcrn-busybox:latest"
	// Containers realnode cannot make (other networks, no network); the
	// node's cleanup removes every container its dockerd has.
	n.MustSh(ctx, fmt.Sprintf(`set -e
D=%[1]s
$D network create -o com.docker.network.bridge.enable_icc=false noicc >/dev/null
$D network create other >/dev/null
$D run -d --name a1 --network noicc %[2]s httpd -f -p 80 >/dev/null
$D run -d --name a2 --network noicc %[2]s httpd -f -p 80 >/dev/null
$D run -d --name b1 --network other %[2]s httpd -f -p 80 >/dev/null
$D run -d --name nonet --network none %[2]s sleep 3600 >/dev/null`, dockerCLI, img))
	m.hasNet = true
	m.a2IP = strings.TrimSpace(n.MustSh(ctx, dockerCLI+" inspect -f '{{.NetworkSettings.Networks.noicc.IPAddress}}' a2"))
	m.b1IP = strings.TrimSpace(n.MustSh(ctx, dockerCLI+" inspect -f '{{.NetworkSettings.Networks.other.IPAddress}}' b1"))
	return m
}

// passing is a change to the node after which the probe still gets
// through (or one that never broke it): hopcheck must say PASS, traced
// and with --trace-off, rather than blame what was changed.
type passing struct {
	name          string
	kinds         []realnode.Kind
	probe         []string
	breakIt, undo string
}

// TestRealRuntimesMore is TestRealRuntimes' class with more breakages
// users hit on real Docker, Podman and CNI nodes. moreRight were diagnosed
// right when first tried; moreFixed were wrong then (their comments say
// how) and are right now; moreOpen (run only with HOPCHECK_MORE_WRONG=1)
// are rows whose expectations are what hopcheck should say, and does not
// yet.
func TestRealRuntimesMore(t *testing.T) {
	for _, kind := range realnode.Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			m := newMoreHost(ctx, t, kind)
			egress := append([]string{"why", "--node"}, m.webArgs()...)
			egress = append(egress, "--to", realnode.RemoteAddr)
			t.Run("passes", func(t *testing.T) {
				for _, p := range morePassing(m) {
					if p.kinds != nil && !containsKind(p.kinds, kind) {
						continue
					}
					t.Run(p.name, func(t *testing.T) { m.runPassing(t, p) })
				}
			})
			rows := append(moreRight(m), moreFixed(m)...)
			if os.Getenv("HOPCHECK_MORE_WRONG") == "1" {
				rows = append(rows, moreOpen(m)...)
			}
			t.Run("breakages", func(t *testing.T) {
				for _, b := range rows {
					if b.kinds != nil && !containsKind(b.kinds, kind) {
						continue
					}
					t.Run(b.name, func(t *testing.T) { m.runBreakage(t, b, egress) })
				}
			})
			t.Run("side effects", func(t *testing.T) { m.sideEffects(t) })
		})
	}
}

func (m *moreHost) runPassing(t *testing.T, p passing) {
	ctx := context.Background()
	snapshot := filepath.Join(m.state, "iptables.rules")
	m.node.MustSh(ctx, "iptables-save > "+snapshot)
	defer func() {
		if p.undo != "" {
			if out, err := m.node.Sh(ctx, p.undo); err != nil {
				t.Logf("undo %q: %v: %s", p.undo, err, out)
			}
		}
		m.node.MustSh(ctx, "iptables-restore < "+snapshot)
	}()
	if p.breakIt != "" {
		m.node.MustSh(ctx, p.breakIt)
	}
	for _, mode := range []string{"traced", "trace-off"} {
		code, out := m.hopcheck(t, withMode(p.probe, mode)...)
		d := parseWhy(out)
		t.Logf("RESULT %s | %s | %s | exit %d | cause %q | place %q | summary %q | fix %q", m.node.Kind, p.name, mode, code, d.Cause, d.Place, d.Summary, d.Fix)
		if code != 0 {
			t.Errorf("%s: exit %d, want 0 (the probe gets through):\n%s", mode, code, out)
		}
	}
}

// fromInternet probes the node's published port from the internet.
func (m *moreHost) fromInternet(port string, extra ...string) []string {
	return append([]string{"why", "--node", "--netns", m.node.Internet, "--from", m.node.Internet, "--to", realnode.NodeAddr + ":" + port}, extra...)
}

// webCtr makes web a participant without starting the probe there.
func (m *moreHost) webCtr() []string {
	if m.node.Kind == realnode.CNI {
		return []string{"--netns", m.web.NetNS}
	}
	return []string{"--container", string(m.node.Kind) + ":" + m.web.Name}
}

func morePassing(m *moreHost) []passing {
	var ps []passing
	published := m.fromInternet("8080", append(m.webCtr(), "--tcp")...)
	fromNode := append([]string{"why", "--node", "--from", "node", "--to", realnode.NodeAddr + ":8080", "--tcp"}, m.webCtr()...)
	ps = append(ps, passing{
		// An empty table in a rule's lookup falls through to the next rule.
		name:    "ip rule to an empty table",
		probe:   append(append([]string{"why", "--node"}, m.webArgs()...), "--to", realnode.RemoteAddr),
		breakIt: fmt.Sprintf("ip rule add from %s/32 lookup 177 pref 177", m.web.IP),
		undo:    "ip rule del pref 177",
	}, passing{
		// From the node the published port is DNATed in nat/OUTPUT:
		// INPUT never sees the request's port 8080.
		name:    "REJECT on INPUT for 8080, probed from the node",
		probe:   fromNode,
		breakIt: "iptables -I INPUT -p tcp --dport 8080 -j REJECT",
	}, passing{
		// Frames to a bridge port's own MAC are the bridge's: a neighbor
		// entry holding the host-side veth's MAC still reaches the node
		// (wrong-mac must not be named for it; see moreWrong).
		name:  "container's neighbor holds its own veth's MAC",
		probe: append(append([]string{"why", "--node"}, m.webArgs()...), "--to", realnode.RemoteAddr),
		breakIt: fmt.Sprintf("nsenter --net=%s ip neigh replace %s lladdr $(cat /sys/class/net/%s/address) dev eth0 nud permanent",
			m.web.NetNS, m.web.Gateway, m.web.HostVeth),
		undo: fmt.Sprintf("nsenter --net=%s ip neigh del %s dev eth0", m.web.NetNS, m.web.Gateway),
	}, passing{
		name:  "healthy, from the node",
		probe: fromNode,
	}, passing{
		name:  "healthy, published port with the container given",
		probe: published,
	})
	if m.node.Kind == realnode.CNI {
		ps = append(ps, passing{
			// A container reaching its own published port through the
			// node's address: portmap masquerades the hairpin.
			name:  "hairpin to its own published port",
			kinds: []realnode.Kind{realnode.CNI},
			probe: []string{"why", "--node", "--netns", m.web.NetNS, "--from", m.web.NetNS, "--to", realnode.NodeAddr + ":8080", "--tcp"},
		})
	}
	if m.node.Kind == realnode.Docker {
		ps = append(ps, passing{
			// Docker's published-port DNAT gone: docker-proxy, which
			// listens on *:8080 in the node, still relays the connection.
			name:    "nat DOCKER flushed, docker-proxy relays",
			kinds:   []realnode.Kind{realnode.Docker},
			probe:   published,
			breakIt: "iptables -t nat -F DOCKER",
		})
	}
	return ps
}

// moreRight are the rows hopcheck diagnoses right: cause, place, summary,
// and a fix that works when typed in the node.
func moreRight(m *moreHost) []breakage {
	D, P := realnode.Docker, realnode.Podman
	fromNode := append([]string{"why", "--node", "--from", "node", "--to", realnode.NodeAddr + ":8080", "--tcp"}, m.webCtr()...)
	bs := []breakage{{
		// A default-deny INPUT without the ESTABLISHED accept: the
		// container's answer to the node's own connection is dropped.
		name:    "INPUT policy DROP without ESTABLISHED, probed from the node",
		breakIt: "iptables -A INPUT -i lo -j ACCEPT && iptables -P INPUT DROP",
		undo:    "iptables -P INPUT ACCEPT",
		probe:   fromNode,
		cause:   diagnose.NetfilterDrop,
		place:   "node",
		fixHas:  []string{"INPUT", "ESTABLISHED"},
	}}
	switch m.node.Kind {
	case realnode.Docker:
		bs = append(bs, breakage{
			name:       "UDP published port, nothing listens",
			kinds:      []realnode.Kind{D},
			probe:      m.fromInternet("5353", "--container", "docker:dns", "--udp"),
			cause:      diagnose.NoListener,
			place:      "dns",
			summaryHas: "start the service",
			noFix:      true,
		})
	case realnode.Podman:
		bs = append(bs, breakage{
			name:    "podman0 down",
			kinds:   []realnode.Kind{P},
			breakIt: "ip link set podman0 down",
			undo:    "ip link set podman0 up",
			cause:   diagnose.LinkDown,
			place:   "node/podman0",
			fixHas:  []string{"podman0", "up"},
		}, breakage{
			// A kill-switch table: the containers' subnet is routed to a
			// table whose default is a blackhole. (The summary, "node has
			// an blackhole route", does not name the ip rule; the fix
			// works.)
			name:    "ip rule sends the container subnet to a blackhole table",
			kinds:   []realnode.Kind{P},
			breakIt: "ip route add blackhole default table 100 && ip rule add from 10.88.0.0/16 lookup 100 pref 100",
			undo:    "ip rule del pref 100; ip route flush table 100",
			cause:   diagnose.NoRoute,
			place:   "node",
			fixHas:  []string{"table 100"},
		})
	}
	return bs
}

// moreFixed are rows hopcheck got wrong when first tried; each expects
// what a network engineer wants it to say, and the comment says what it
// said before.
func moreFixed(m *moreHost) []breakage {
	h := m.realHost
	ctr := "nsenter --net=" + h.web.NetNS + " "
	D, P, C := realnode.Docker, realnode.Podman, realnode.CNI
	bs := []breakage{{
		// Said no-route at node/<bridge> "has no route to forward it", no
		// fix, and no word of the missing default route. The uplink's
		// gateway is out of view: its neighbor entry names it.
		name:       "node default route removed",
		kinds:      []realnode.Kind{D, C},
		breakIt:    "ip route del default",
		undo:       "ip route replace default via " + realnode.UplinkGW,
		cause:      diagnose.NoRoute,
		place:      "node",
		summaryHas: "default route",
		fixHas:     []string{"default via " + realnode.UplinkGW},
	}, {
		// The container's neighbor entry for its gateway holds the MAC of
		// its own host-side veth (as after the veth was briefly out of the
		// bridge and answered ARP itself): frames to a bridge port's MAC
		// still reach the node, so it is harmless. The real cause here is
		// ip_forward off; hopcheck says wrong-mac (CNI, traced and off),
		// and its fix (ip neigh del) does not help.
		name: "container's neighbor holds its own veth's MAC, ip_forward off",
		breakIt: fmt.Sprintf("%sip neigh replace %s lladdr $(cat /sys/class/net/%s/address) dev eth0 nud permanent && sysctl -qw net.ipv4.ip_forward=0",
			ctr, h.web.Gateway, h.web.HostVeth),
		undo:   fmt.Sprintf("sysctl -qw net.ipv4.ip_forward=1; %sip neigh del %s dev eth0", ctr, h.web.Gateway),
		cause:  diagnose.ForwardingDisabled,
		place:  "node",
		fixHas: []string{"ip_forward"},
	}}
	switch m.node.Kind {
	case realnode.Docker:
		bs = append(bs, breakage{
			// Says no-listener at node/eth0, "nothing listens on tcp port
			// 8082 there; start the service there": the service runs, and
			// docker-proxy listens on 127.0.0.1:8082; Docker's DNAT for
			// it matches -d 127.0.0.1 only. It should say the port is
			// published on 127.0.0.1 only and to publish it with -p 8082:80
			// (or on 198.51.100.2).
			name:       "published on 127.0.0.1 only, probed from the internet",
			kinds:      []realnode.Kind{D},
			probe:      m.fromInternet("8082", "--container", "docker:lo8082", "--tcp"),
			cause:      diagnose.NoListener,
			place:      "node",
			summaryHas: "127.0.0.1",
			noFix:      true,
		}, breakage{
			// icc=false: Docker's FORWARD `-i br-X -o br-X -j DROP`, seen
			// through br_netfilter. Traced: netfilter-drop at node/vethX,
			// "the kernel dropped the probe", no rule, no fix. Off:
			// unknown "an open way", while its own evidence shows that
			// rule counting the packet.
			name:   "icc=false network, container to container",
			kinds:  []realnode.Kind{D},
			probe:  []string{"why", "--node", "--container", "docker:a1,docker:a2", "--from", "a1", "--to", m.a2IP + ":80", "--tcp"},
			cause:  diagnose.NetfilterDrop,
			place:  "node",
			fixHas: []string{"DOCKER-USER", "-i br-"},
		}, breakage{
			// Names the request's DOCKER-ISOLATION-STAGE-2 rule and prints
			// `iptables -t filter -D DOCKER-ISOLATION-STAGE-2 1`: the reply
			// is then dropped by the other network's rule; the fix opens
			// one direction only.
			name:   "two networks, DOCKER-ISOLATION",
			kinds:  []realnode.Kind{D},
			probe:  []string{"why", "--node", "--container", "docker:a1,docker:b1", "--from", "a1", "--to", m.b1IP + ":80", "--tcp"},
			cause:  diagnose.NetfilterDrop,
			place:  "node",
			fixHas: []string{"DOCKER-USER", "ESTABLISHED"},
		}, breakage{
			// Says "nonet has no route to 203.0.113.8", no fix: it has no
			// interface but lo (--network none); it should say so, and
			// that the container must be started on a network.
			name:       "--network none",
			kinds:      []realnode.Kind{D},
			probe:      []string{"why", "--node", "--container", "docker:nonet", "--from", "nonet", "--to", realnode.RemoteAddr},
			cause:      diagnose.NoRoute,
			place:      "nonet",
			summaryHas: "interface",
			noFix:      true,
		}, breakage{
			// The cause (FORWARD policy DROP) is right, but the summary
			// blames network "other"'s egress rule 5 (`-i br-O ! -o br-O
			// -j ACCEPT`, "meant to accept it") and the fix is
			// `iptables -R FORWARD 5 -i eth0 ! -o br-O -j ACCEPT`: it
			// removes that network's egress accept and lets any new
			// connection from eth0 into every other bridge, any port. It
			// should re-add the published port's accept:
			// iptables -A DOCKER -d IP/32 ! -i docker0 -o docker0 -p tcp --dport 80 -j ACCEPT.
			name:  "DOCKER accept for the published port deleted",
			kinds: []realnode.Kind{D},
			probe: m.fromInternet("8080", "--container", "docker:web", "--tcp"),
			breakIt: fmt.Sprintf(`iptables -P FORWARD DROP && iptables -S DOCKER | grep -e '-d %s/32' | sed 's/^-A /-D /' |
while read -r r; do eval iptables "$r" || exit 1; done`, h.web.IP),
			cause:  diagnose.NetfilterDrop,
			place:  "node",
			fixHas: []string{h.web.IP.String() + "/32", "--dport 80"},
		})
	}
	switch m.node.Kind {
	case realnode.Podman, realnode.Docker:
		bs = append(bs, breakage{
			// Says no-route at web, "web has no route to 203.0.113.8", no
			// fix: eth0 lost its address (and so its routes); the runtime
			// knows the address (and the node's neighbor entry for it,
			// unless collected meanwhile).
			name:  "container's address removed",
			kinds: []realnode.Kind{P, D},
			// The container talks first, as a running one does, so the
			// node's neighbor entry is fresh (Podman 4.3's inspect in a
			// sandbox node cannot read its network, so that entry is
			// what is left to know the address by).
			breakIt: ctr + "ping -c 1 -W 1 " + h.web.Gateway.String() + " >/dev/null; " + ctr + "ip addr del " + h.web.IP.String() + "/16 dev eth0",
			undo:    ctr + "ip addr replace " + h.web.IP.String() + "/16 dev eth0 && " + ctr + "ip route replace default via " + h.web.Gateway.String(),
			cause:   diagnose.AddressMissing,
			place:   h.webName(),
			fixHas:  []string{h.web.IP.String()},
		})
	case realnode.CNI:
		bs = append(bs, breakage{
			// Says no-listener at node/eth0 "start the service there":
			// the service runs in web; portmap's DNAT for 8080 is gone.
			name:  "portmap's CNI-DN chains flushed",
			kinds: []realnode.Kind{C},
			probe: m.fromInternet("8080", "--netns", h.web.NetNS, "--tcp"),
			breakIt: `chains=$(iptables -t nat -S | awk '/^-N CNI-DN-/{print $2}') && [ -n "$chains" ] &&
for c in $chains; do iptables -t nat -F $c || exit 1; done`,
			cause:      diagnose.NoListener,
			place:      "node",
			summaryHas: "DNAT for it is gone",
			noFix:      true,
		}, breakage{
			// Says wrong-mac at the container ("node/vethX answers for
			// 10.22.0.1 ... the wrong MAC"), fix ip neigh del: the node
			// answered the container's ARP on the unbridged veth itself.
			// Once that entry is gone it says not-bridged, right.
			name:    "container's veth taken off cni0",
			kinds:   []realnode.Kind{C},
			breakIt: "ip link set " + h.web.HostVeth + " nomaster",
			undo: "ip link set " + h.web.HostVeth + " master cni0 && ip link set " + h.web.HostVeth + " type bridge_slave hairpin on; " +
				ctr + "ip neigh flush dev eth0",
			cause:  diagnose.NotBridged,
			place:  "node/" + h.web.HostVeth,
			fixHas: []string{"master cni0"},
		}, breakage{
			// A container reaching its own published port: without
			// portmap's hairpin masquerade the DNATed SYN comes back
			// with the container's own source (dropped: IP_LOCAL_SOURCE).
			// Says unknown ("an open way"), with the drop in its trace.
			name:    "hairpin masquerade flushed",
			kinds:   []realnode.Kind{C},
			probe:   []string{"why", "--node", "--netns", h.web.NetNS, "--from", h.web.NetNS, "--to", realnode.NodeAddr + ":8080", "--tcp"},
			breakIt: "iptables -t nat -F CNI-HOSTPORT-MASQ",
			cause:   diagnose.NoReturnRoute,
			fixHas:  []string{"MASQUERADE"},
		})
	}
	return bs
}

// moreOpen are the rows hopcheck still gets wrong.
func moreOpen(m *moreHost) []breakage {
	if m.node.Kind != realnode.Podman {
		return nil
	}
	P := realnode.Podman
	return []breakage{{
		// hopcheck says PASS: the handshake is completed by the
		// socket Podman holds on *:8080 in the node for the published
		// port, which never serves anything; with the container
		// given, the DNAT to it is gone and that is what to say.
		name:  "NETAVARK-DN DNAT for the published port deleted",
		kinds: []realnode.Kind{P},
		probe: m.fromInternet("8080", "--container", "podman:web", "--tcp"),
		breakIt: `iptables -t nat -S | grep -e '^-A NETAVARK-DN-' | grep -e '--dport 8080' | grep -e '-j DNAT' | sed 's/^-A /-D /' |
while read -r r; do eval iptables -t nat "$r" || exit 1; done`,
		cause:      diagnose.NoListener,
		place:      "node",
		summaryHas: "DNAT",
		fixHas:     []string{"DNAT"},
	}}
}

// sideEffects checks what fixes must not do beyond their flow: under
// Docker, the fix printed for a deleted DOCKER accept once rewrote network
// other's egress rule; b1 must still reach the internet after it. Under
// Podman it logs the node's sockets on 8080 (conmon's reservation socket,
// the open row of moreOpen).
func (m *moreHost) sideEffects(t *testing.T) {
	ctx := context.Background()
	snapshot := filepath.Join(m.state, "iptables.rules")
	m.node.MustSh(ctx, "iptables-save > "+snapshot)
	defer m.node.MustSh(ctx, "iptables-restore < "+snapshot)
	switch m.node.Kind {
	case realnode.Podman:
		out, _ := m.node.Sh(ctx, "ss -ltnp 'sport = :8080'")
		t.Logf("node sockets on 8080:\n%s", out)
	case realnode.Docker:
		b1Egress := []string{"why", "--node", "--container", "docker:b1", "--from", "b1", "--to", realnode.RemoteAddr}
		if code, out := m.hopcheck(t, b1Egress...); code != 0 {
			t.Fatalf("b1 egress fails before anything was changed:\n%s", out)
		}
		m.node.MustSh(ctx, fmt.Sprintf(`iptables -P FORWARD DROP && iptables -S DOCKER | grep -e '-d %s/32' | sed 's/^-A /-D /' |
while read -r r; do eval iptables "$r" || exit 1; done`, m.web.IP))
		_, out := m.hopcheck(t, m.fromInternet("8080", "--container", "docker:web", "--tcp")...)
		fix := parseWhy(out).Fix
		if fix == "" {
			t.Fatalf("no fix:\n%s", out)
		}
		before, _ := m.node.Sh(ctx, "iptables -S FORWARD")
		m.node.MustSh(ctx, fix)
		after, _ := m.node.Sh(ctx, "iptables -S FORWARD")
		t.Logf("fix %q\nFORWARD before:\n%s\nFORWARD after:\n%s", fix, before, after)
		if code, out := m.hopcheck(t, b1Egress...); code != 0 {
			t.Errorf("after the fix %q, b1 (network other) no longer reaches the internet:\n%s", fix, out)
		}
	}
}

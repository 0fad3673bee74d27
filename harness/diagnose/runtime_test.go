package diagnose

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

// dockerSave is `iptables-save` of a Docker 20.10 node (docker.io, one
// container "web" at 172.17.0.2 publishing 8080->80), read off a real
// dockerd run inside a sandbox namespace.
const dockerSave = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
COMMIT
`

// dockerNode is that node as hopcheck sees it from inside with --node:
// the container web in view, the uplink eth0's far side out of view
// (its gateway answered ARP), docker-proxy listening on 0.0.0.0:8080.
// edit changes the rule set or the state before it is built.
func dockerNode(t *testing.T, save string, withWeb bool, edit func(f *fx)) *snapshot.State {
	f := newFx(t)
	node := f.ns("node").
		bridge("docker0", "172.17.0.1/16").mac("docker0", "02:42:ff:04:90:d6").
		port("vethf1b634e", "docker0", "").
		veth("eth0", "", "198.51.100.2/24").
		route("default via 198.51.100.1 dev eth0").
		sysctl("net.ipv4.ip_forward", "1").
		neighMAC("198.51.100.1", "12:88:3e:c9:6f:c5", "eth0", "REACHABLE").
		neighMAC("172.17.0.2", "02:42:ac:11:00:02", "docker0", "REACHABLE").
		listen("tcp", "0.0.0.0:8080").
		ipt(save)
	node.link("eth0").PeerOutside = "hcinet"
	if withWeb {
		node.link("vethf1b634e").Peer = "web/eth0"
		f.ns("web").veth("eth0", "node/vethf1b634e", "172.17.0.2/16").mac("eth0", "02:42:ac:11:00:02").
			route("default via 172.17.0.1 dev eth0").
			neighMAC("172.17.0.1", "02:42:ff:04:90:d6", "eth0", "REACHABLE")
	} else {
		l := node.link("vethf1b634e")
		l.PeerOutside, l.PeerOutsideWho = "/proc/4242/ns/net", "process 4242 (httpd)"
		l.LearnedMACs = []string{"02:42:ac:11:00:02"}
	}
	if edit != nil {
		edit(f)
	}
	return f.build()
}

// TestDockerNode diagnoses the breakages of a Docker node with Docker's
// own rule set: its chains, its addrtype DNAT, and a view that ends at the
// node's uplink.
func TestDockerNode(t *testing.T) {
	noMasq := strings.Replace(dockerSave, "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n", "", 1)
	var flushed []string
	for _, l := range strings.Split(dockerSave, "\n") {
		if !strings.HasPrefix(l, "-A FORWARD ") {
			flushed = append(flushed, l)
		}
	}
	userDrop := strings.Replace(dockerSave, "-A DOCKER-USER -j RETURN", "-A DOCKER-USER -j DROP\n-A DOCKER-USER -j RETURN", 1)
	loopbackOnly := strings.Replace(dockerSave, "-A DOCKER ! -i docker0 -p tcp", "-A DOCKER -d 127.0.0.1/32 ! -i docker0 -p tcp", 1)
	// CNI portmap's shape: a jump per published port into a chain of the
	// container's, here flushed.
	cniFlushed := strings.Replace(dockerSave, ":DOCKER - [0:0]\n-A PREROUTING", ":DOCKER - [0:0]\n:CNI-DN-1 - [0:0]\n-A PREROUTING", 1)
	cniFlushed = strings.Replace(cniFlushed, "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80",
		"-A DOCKER -p tcp -m multiport --dports 8080 -j CNI-DN-1", 1)
	for _, tc := range []struct {
		name    string
		save    string
		withWeb bool
		edit    func(f *fx)
		probe   Probe
		cause   string
		place   string
		fix     string
		summary string // a part of the summary
	}{{
		name: "masquerade removed", save: noMasq, withWeb: true, probe: ping("web", "203.0.113.8"),
		cause: NoReturnRoute, place: "node/eth0",
		fix:     "iptables -t nat -A POSTROUTING -s 172.17.0.0/16 -o eth0 -j MASQUERADE  # in node",
		summary: "private source 172.17.0.2 untranslated",
	}, {
		name: "FORWARD policy DROP with Docker's rules flushed", save: strings.Join(flushed, "\n"), withWeb: true, probe: ping("web", "203.0.113.8"),
		cause: NetfilterDrop, place: "node/docker0",
		fix: "iptables -t filter -I FORWARD -i docker0 -o eth0 -j ACCEPT && " +
			"iptables -t filter -I FORWARD -i eth0 -o docker0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT  # in node",
	}, {
		name: "DROP in DOCKER-USER", save: userDrop, withWeb: true, probe: ping("web", "203.0.113.8"),
		cause: NetfilterDrop, place: "node/docker0", fix: "iptables -t filter -D DOCKER-USER 1  # in node",
	}, {
		name: "ip_forward off", save: dockerSave, withWeb: true, probe: ping("web", "203.0.113.8"),
		edit:  func(f *fx) { f.ns("node").sysctl("net.ipv4.ip_forward", "0") },
		cause: ForwardingDisabled, place: "node/docker0", fix: "sysctl -w net.ipv4.ip_forward=1  # in node",
	}, {
		// The node's own connection to its published port is DNATed in
		// OUTPUT (addrtype LOCAL) to the container: docker-proxy's
		// socket on the node is not the service.
		name: "published port without a listener", save: dockerSave, withWeb: true, probe: conn("tcp", "node", "198.51.100.2:8080", ""),
		cause: NoListener, place: "web/eth0", summary: "172.17.0.2:80",
	}, {
		name: "published on 127.0.0.1 only", save: loopbackOnly, withWeb: true, probe: conn("tcp", "node", "198.51.100.2:8080", ""),
		edit:  func(f *fx) { f.ns("node").n.Listeners = nil; f.ns("node").listen("tcp", "127.0.0.1:8080") },
		cause: NoListener, place: "node/lo", summary: "published on the loopback address only",
	}, {
		name: "the container's DNAT chain flushed", save: cniFlushed, withWeb: true, probe: conn("tcp", "node", "198.51.100.2:8080", ""),
		edit:  func(f *fx) { f.ns("node").n.Listeners = nil },
		cause: NoListener, place: "node/lo", summary: "sends the port to chain CNI-DN-1, which is empty",
	}, {
		name: "the container's address removed", save: dockerSave, withWeb: true, probe: ping("web", "203.0.113.8"),
		edit: func(f *fx) {
			f.ns("web").link("eth0").Addrs = nil
			f.static["web"] = nil
		},
		cause: AddressMissing, place: "web/eth0", summary: "the node still knows it as 172.17.0.2",
		fix: "ip addr add 172.17.0.2/16 dev eth0 && ip route add default via 172.17.0.1 dev eth0  # in web",
	}, {
		// The node's neighbor entry was collected (the table held more
		// than gc_thresh1 entries): the runtime's record still says
		// what the address was.
		name: "the container's address removed, the node's neighbor entry gone", save: dockerSave, withWeb: true, probe: ping("web", "203.0.113.8"),
		edit: func(f *fx) {
			f.ns("web").link("eth0").Addrs = nil
			f.static["web"] = nil
			f.ns("node").n.Neighbors = nil
			f.ns("web").n.Recorded = []snapshot.RecordedAddr{{By: "docker inspect web", MAC: strings.ToLower(f.ns("web").link("eth0").MAC),
				Addr: netip.MustParsePrefix("172.17.0.2/16"), Gateway: netip.MustParseAddr("172.17.0.1")}}
		},
		cause: AddressMissing, place: "web/eth0", summary: "its runtime recorded it as 172.17.0.2",
		fix: "ip addr add 172.17.0.2/16 dev eth0 && ip route add default via 172.17.0.1 dev eth0  # in web",
	}, {
		// A record for another interface's MAC is not this one's.
		name: "the container's address removed, nothing remembers it", save: dockerSave, withWeb: true, probe: ping("web", "203.0.113.8"),
		edit: func(f *fx) {
			f.ns("web").link("eth0").Addrs = nil
			f.static["web"] = nil
			f.ns("node").n.Neighbors = nil
			f.ns("web").n.Recorded = []snapshot.RecordedAddr{{By: "docker inspect web", MAC: "02:00:00:00:00:99",
				Addr: netip.MustParsePrefix("172.17.0.2/16"), Gateway: netip.MustParseAddr("172.17.0.1")}}
		},
		cause: NoRoute, place: "web", summary: "web has no default route",
	}, {
		name: "a container without a network", save: dockerSave, withWeb: true, probe: ping("web", "203.0.113.8"),
		edit: func(f *fx) {
			w := f.ns("web").n
			w.Links = w.Links[:1] // lo
			f.static["web"] = nil
		},
		cause: NoRoute, place: "web", summary: "no network interface but lo",
	}, {
		name: "the node's default route removed", save: dockerSave, withWeb: true, probe: ping("web", "203.0.113.8"),
		edit:  func(f *fx) { f.static["node"] = nil },
		cause: NoRoute, place: "node/docker0", summary: "node has no default route",
		fix: "ip route add default via 198.51.100.1 dev eth0  # in node",
	}, {
		name: "the uplink's gateway does not answer", save: dockerSave, withWeb: true, probe: ping("web", "203.0.113.8"),
		edit: func(f *fx) {
			n := f.ns("node").n
			for i := range n.Neighbors {
				if n.Neighbors[i].IP.String() == "198.51.100.1" {
					n.Neighbors[i].State, n.Neighbors[i].MAC = "FAILED", ""
				}
			}
		},
		cause: ARPFailed, place: "node/eth0", summary: "FAILED",
	}, {
		// All open as far as hopcheck sees: the answer lies beyond the
		// uplink, and the finding says how to look there.
		name: "healthy in view, lost beyond", save: dockerSave, withWeb: true, probe: ping("web", "203.0.113.8"),
		cause: Unknown, place: "node/eth0", summary: "add --netns hcinet",
	}, {
		// Without the container: the published port's DNAT leads out of
		// view through the port the container's MAC was learned on.
		name: "container not given", save: dockerSave, probe: conn("tcp", "node", "198.51.100.2:8080", ""),
		cause: Unknown, place: "node/vethf1b634e", summary: "add --netns /proc/4242/ns/net",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			st := dockerNode(t, tc.save, tc.withWeb, tc.edit)
			d := Diagnose(Input{Probe: tc.probe, After: st})
			if d.Cause != tc.cause || d.Place() != tc.place || (tc.fix != "" && d.Fix != tc.fix) || !strings.Contains(d.Summary, tc.summary) {
				t.Errorf("got %s at %s\n  summary: %s\n  fix: %s\n  evidence:\n    %s\nwant %s at %s, fix %q, summary with %q",
					d.Cause, d.Place(), d.Summary, d.Fix, strings.Join(d.Evidence, "\n    "), tc.cause, tc.place, tc.fix, tc.summary)
			}
		})
	}
}

// netavarkSave is `iptables-save` of a Podman 4.3 node (netavark 1.4, one
// container at 10.88.0.6 publishing 8080->80), read off a real podman run
// inside a sandbox namespace.
const netavarkSave = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:NETAVARK_FORWARD - [0:0]
-A FORWARD -m comment --comment "netavark firewall plugin rules" -j NETAVARK_FORWARD
-A NETAVARK_FORWARD -d 10.88.0.0/16 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A NETAVARK_FORWARD -s 10.88.0.0/16 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:NETAVARK-1D8721804F16F - [0:0]
:NETAVARK-DN-1D8721804F16F - [0:0]
:NETAVARK-HOSTPORT-DNAT - [0:0]
:NETAVARK-HOSTPORT-MASQ - [0:0]
:NETAVARK-HOSTPORT-SETMARK - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j NETAVARK-HOSTPORT-DNAT
-A OUTPUT -m addrtype --dst-type LOCAL -j NETAVARK-HOSTPORT-DNAT
-A POSTROUTING -j NETAVARK-HOSTPORT-MASQ
-A POSTROUTING -s 10.88.0.0/16 -j NETAVARK-1D8721804F16F
-A NETAVARK-1D8721804F16F -d 10.88.0.0/16 -j ACCEPT
-A NETAVARK-1D8721804F16F ! -d 224.0.0.0/4 -j MASQUERADE
-A NETAVARK-DN-1D8721804F16F -s 10.88.0.0/16 -p tcp -m tcp --dport 8080 -j NETAVARK-HOSTPORT-SETMARK
-A NETAVARK-DN-1D8721804F16F -s 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j NETAVARK-HOSTPORT-SETMARK
-A NETAVARK-DN-1D8721804F16F -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.88.0.6:80
-A NETAVARK-HOSTPORT-DNAT -p tcp -m tcp --dport 8080 -m comment --comment "dnat name: podman id: 9db06fbd11f8bfc4404ce5e0180fba0dbe122e7489ab6d73643adb54f6e69213" -j NETAVARK-DN-1D8721804F16F
-A NETAVARK-HOSTPORT-MASQ -m comment --comment "netavark portfw masq mark" -m mark --mark 0x2000/0x2000 -j MASQUERADE
-A NETAVARK-HOSTPORT-SETMARK -j MARK --set-xmark 0x2000/0x2000
COMMIT
`

// TestNetavarkMarks walks a Podman node's published port and egress
// through netavark's rules: the mark set in nat PREROUTING for a
// container's own connection to a published port (hairpin) makes
// POSTROUTING masquerade it; nothing else is marked, so other traffic
// takes the subnet's MASQUERADE or none.
func TestNetavarkMarks(t *testing.T) {
	build := func() *snapshot.State {
		f := newFx(t)
		node := f.ns("node").
			bridge("podman0", "10.88.0.1/16").mac("podman0", "ca:32:17:35:4a:23").
			port("veth0", "podman0", "web/eth0").
			veth("eth0", "internet/eth0", "198.51.100.2/24").
			route("default via 198.51.100.1 dev eth0").
			sysctl("net.ipv4.ip_forward", "1").
			ipt(netavarkSave)
		_ = node
		f.ns("web").veth("eth0", "node/veth0", "10.88.0.6/16").mac("eth0", "02:42:0a:58:00:06").
			route("default via 10.88.0.1 dev eth0").listen("tcp", "0.0.0.0:80")
		f.ns("internet").veth("eth0", "node/eth0", "198.51.100.1/24").addr("lo", "203.0.113.8/32").
			listen("tcp", "0.0.0.0:80")
		return f.build()
	}
	for _, tc := range []struct {
		name  string
		probe Probe
		want  []string // the translations the walk applies, in order
	}{
		{"egress", ping("web", "203.0.113.8"), []string{"SNAT 10.88.0.6 -> 198.51.100.2"}},
		{"published port from outside", conn("tcp", "internet", "198.51.100.2:8080", ""), []string{"DNAT 198.51.100.2:8080 -> 10.88.0.6:80"}},
		{"hairpin to its own published port", conn("tcp", "web", "198.51.100.2:8080", ""),
			[]string{"DNAT 198.51.100.2:8080 -> 10.88.0.6:80", "SNAT 10.88.0.6 -> 10.88.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.probe.Outcome = ""
			w := &walker{st: build(), probe: tc.probe}
			f, _ := w.run()
			if f != nil {
				t.Fatalf("the walk stops: %s at %s: %s\n  %s", f.Cause, place(f.NS, f.If), f.Summary, strings.Join(w.trail, "\n  "))
			}
			var got []string
			for _, n := range w.nats {
				from, to := n.from.String(), n.to.String()
				if n.kind == "SNAT" {
					from, to = n.from.Addr().String(), n.to.Addr().String()
				}
				got = append(got, n.kind+" "+from+" -> "+to)
			}
			if strings.Join(got, "; ") != strings.Join(tc.want, "; ") {
				t.Errorf("translations %q, want %q\n  %s", got, tc.want, strings.Join(w.trail, "\n  "))
			}
		})
	}
}

// TestBridgedFramesThroughIPTables: with br_netfilter, frames a bridge
// forwards from port to port cross iptables FORWARD with the bridge as -i
// and -o; Docker's icc=false is such a rule. Without the sysctl they do
// not.
func TestBridgedFramesThroughIPTables(t *testing.T) {
	const save = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -i br-1 -o br-1 -j DROP
COMMIT
`
	for _, tc := range []struct {
		brnf  string
		cause string
		place string
		fix   string
	}{
		{"1", NetfilterDrop, "node/br-1", "iptables -t filter -D FORWARD 1  # in node"},
		{"0", Unknown, "a", ""},
	} {
		t.Run("bridge-nf-call-iptables="+tc.brnf, func(t *testing.T) {
			f := newFx(t)
			f.ns("node").bridge("br-1", "172.18.0.1/16").
				port("va", "br-1", "a/eth0").port("vb", "br-1", "b/eth0").
				sysctl("net.bridge.bridge-nf-call-iptables", tc.brnf).ipt(save)
			f.ns("a").veth("eth0", "node/va", "172.18.0.2/16")
			f.ns("b").veth("eth0", "node/vb", "172.18.0.3/16")
			d := Diagnose(Input{Probe: ping("a", "172.18.0.3"), After: f.build()})
			if d.Cause != tc.cause || d.Place() != tc.place || d.Fix != tc.fix {
				t.Errorf("got %s at %s, fix %q; want %s at %s, fix %q\n  %s", d.Cause, d.Place(), d.Fix, tc.cause, tc.place, tc.fix, strings.Join(d.Evidence, "\n  "))
			}
		})
	}
}

// TestHairpinWithoutMasquerade: a container's connection to its own
// published port comes back to it with its own source when the runtime's
// mark-based MASQUERADE is gone; the kernel drops it as a martian.
func TestHairpinWithoutMasquerade(t *testing.T) {
	save := strings.Replace(netavarkSave, "-A NETAVARK-HOSTPORT-MASQ -m comment --comment \"netavark portfw masq mark\" -m mark --mark 0x2000/0x2000 -j MASQUERADE\n", "", 1)
	f := newFx(t)
	f.ns("node").bridge("podman0", "10.88.0.1/16").port("veth0", "podman0", "web/eth0").
		veth("eth0", "", "198.51.100.2/24").route("default via 198.51.100.1 dev eth0").
		sysctl("net.ipv4.ip_forward", "1").ipt(save)
	f.ns("web").veth("eth0", "node/veth0", "10.88.0.6/16").route("default via 10.88.0.1 dev eth0").listen("tcp", "0.0.0.0:80")
	p := conn("tcp", "web", "198.51.100.2:8080", "")
	p.Outcome = OutcomeTimeout
	d := Diagnose(Input{Probe: p, After: f.build()})
	want := "iptables -t nat -I POSTROUTING -s 10.88.0.6/32 -d 10.88.0.6/32 -p tcp -m tcp --dport 80 -j MASQUERADE  # in node"
	if d.Cause != NoReturnRoute || d.Place() != "web/eth0" || d.Fix != want {
		t.Errorf("got %s at %s: %s\n  fix %q\nwant no-return-route at web/eth0, fix %q\n  %s", d.Cause, d.Place(), d.Summary, d.Fix, want, strings.Join(d.Evidence, "\n  "))
	}
}

// TestDeletingTheDropIsNotEnough: Docker's icc=false drops a network's
// bridged traffic by a rule, with no accept for it behind: deleting the
// rule leaves the FORWARD policy to drop it. The fix accepts it ahead, in
// DOCKER-USER.
func TestDeletingTheDropIsNotEnough(t *testing.T) {
	save := strings.Replace(dockerSave, "-A FORWARD -i docker0 -o docker0 -j ACCEPT\n",
		"-A FORWARD -i docker0 -o docker0 -j ACCEPT\n-A FORWARD -i br-1 -o br-1 -j DROP\n", 1)
	f := newFx(t)
	f.ns("node").bridge("docker0", "172.17.0.1/16").bridge("br-1", "172.18.0.1/16").
		port("va", "br-1", "a/eth0").port("vb", "br-1", "b/eth0").
		sysctl("net.bridge.bridge-nf-call-iptables", "1", "net.ipv4.ip_forward", "1").ipt(save)
	f.ns("a").veth("eth0", "node/va", "172.18.0.2/16")
	f.ns("b").veth("eth0", "node/vb", "172.18.0.3/16").listen("tcp", "0.0.0.0:80")
	p := conn("tcp", "a", "172.18.0.3:80", "")
	p.Outcome = OutcomeTimeout
	d := Diagnose(Input{Probe: p, After: f.build()})
	want := "iptables -t filter -I DOCKER-USER -i br-1 -o br-1 -j ACCEPT  # in node"
	if d.Cause != NetfilterDrop || d.Fix != want {
		t.Errorf("got %s at %s: %s\n  fix %q, want %q", d.Cause, d.Place(), d.Summary, d.Fix, want)
	}
}

package probe

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Addresses of the test topology, used only inside its namespaces.
var (
	addrA    = netip.MustParseAddr("10.77.0.1")
	addrB    = netip.MustParseAddr("10.77.0.2")
	addrB2   = netip.MustParseAddr("10.77.0.3") // a secondary address of B
	addrA6   = netip.MustParseAddr("fd00::1")
	addrB6   = netip.MustParseAddr("fd00::2")
	linkA6   = netip.MustParseAddr("fe80::a")
	linkB6   = netip.MustParseAddr("fe80::b")
	unusedIP = netip.MustParseAddr("10.77.0.9")    // on-link for A, held by nobody
	remoteIP = netip.MustParseAddr("192.0.2.1")    // the simulated internet: no route in A
	remote2  = netip.MustParseAddr("198.51.100.1") // routed by A via B, which has no route on
)

// pair is two fresh namespaces, A and B, joined by a veth pair (veth_a in
// A, veth_b in B) on 10.77.0.0/24 and fd00::/64, with lo up in both.
type pair struct {
	a, b netns.Handle
	hb   *netlink.Handle
}

// newPair builds the pair and removes it when the test ends, whatever
// happens.
func newPair(t *testing.T) *pair {
	t.Helper()
	privtest.Require(t)
	run, err := netns.NewRunID()
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{a: newNamespace(t, run, "a"), b: newNamespace(t, run, "b")}
	ha := netlinkAt(t, p.a)
	p.hb = netlinkAt(t, p.b)
	// The peer is created directly in B: it never exists in the caller's
	// namespace, not even for a moment.
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: "veth_a"},
		PeerName:      "veth_b",
		PeerNamespace: netlink.NsFd(p.b),
	}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatalf("a: add veth_a/veth_b: %v", err)
	}
	configure(t, ha, "a", "veth_a", "10.77.0.1/24", "fd00::1/64", "fe80::a/64")
	configure(t, p.hb, "b", "veth_b", "10.77.0.2/24", "10.77.0.3/24", "fd00::2/64", "fe80::b/64")
	waitOperUp(t, ha, "a", "veth_a")
	waitOperUp(t, p.hb, "b", "veth_b")
	waitSolicitedNode(t, p.a, "a", addrA6, linkA6)
	waitSolicitedNode(t, p.b, "b", addrB6, linkB6)
	return p
}

// waitOperUp waits until link's operational state is up. Until the
// kernel's link watch has handled the carrier coming up, the link
// transmits through the noop qdisc, which drops everything: a probe sent
// in that window is lost, and its retry comes a second later.
func waitOperUp(t *testing.T, h *netlink.Handle, ns, link string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		l, err := h.LinkByName(link)
		if err != nil {
			t.Fatalf("%s/%s: %v", ns, link, err)
		}
		if l.Attrs().OperState == netlink.OperUp {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s: operational state still %s", ns, link, l.Attrs().OperState)
		}
		time.Sleep(time.Millisecond)
	}
}

func newNamespace(t *testing.T, run, name string) netns.Handle {
	t.Helper()
	full := netns.Name(run, name)
	h, err := netns.Create(full)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		if err := netns.Delete(full); err != nil {
			t.Error(err)
		}
	})
	return h
}

func netlinkAt(t *testing.T, ns netns.Handle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// configure brings lo and link up, then adds the addresses to link (IPv6
// without duplicate address detection, so they are usable at once). Up
// first: IPv6 addresses added with NODAD to a link that is still down went
// unanswered by neighbour discovery for about a second after the link came
// up (seen on Linux 6.18), which made the first IPv6 probe time out.
func configure(t *testing.T, h *netlink.Handle, ns, link string, cidrs ...string) {
	t.Helper()
	l, err := h.LinkByName(link)
	if err != nil {
		t.Fatalf("%s/%s: %v", ns, link, err)
	}
	for _, name := range []string{"lo", link} {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatalf("%s/%s: %v", ns, name, err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatalf("%s/%s: set up: %v", ns, name, err)
		}
	}
	for _, c := range cidrs {
		a, err := netlink.ParseAddr(c)
		if err != nil {
			t.Fatal(err)
		}
		if a.IP.To4() == nil {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(l, a); err != nil {
			t.Fatalf("%s/%s: add address %s: %v", ns, link, c, err)
		}
	}
}

// waitSolicitedNode waits until ns has joined the solicited-node multicast
// group of each address. The kernel joins it from a work queue after the
// address is added, NODAD or not; until then it drops the neighbour
// solicitations for the address, and the first IPv6 probe waits a second
// for the retry.
func waitSolicitedNode(t *testing.T, ns netns.Handle, name string, addrs ...netip.Addr) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		var groups []byte
		// thread-self: /proc/net follows the main thread's namespace.
		err := netns.Do(ns, func() error {
			var err error
			groups, err = os.ReadFile("/proc/thread-self/net/igmp6")
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		missing := 0
		for _, a := range addrs {
			b := a.As16()
			group := fmt.Sprintf("ff0200000000000000000001ff%02x%02x%02x", b[13], b[14], b[15])
			if !strings.Contains(string(groups), group) {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: solicited-node groups of %v not joined", name, addrs)
		}
		time.Sleep(time.Millisecond)
	}
}

// routeVia adds a route to dst via gw in the namespace of h.
func routeVia(t *testing.T, h *netlink.Handle, dst string, gw netip.Addr) {
	t.Helper()
	_, n, err := net.ParseCIDR(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.RouteAdd(&netlink.Route{Dst: n, Gw: gw.AsSlice()}); err != nil {
		t.Fatalf("route %s via %s: %v", dst, gw, err)
	}
}

// sysctl writes a sysctl of ns: /proc/sys/net belongs to the namespace of
// the thread that opens it.
func sysctl(t *testing.T, ns netns.Handle, path, value string) {
	t.Helper()
	err := netns.Do(ns, func() error {
		return os.WriteFile("/proc/sys/"+path, []byte(value), 0o644)
	})
	if err != nil {
		t.Fatalf("sysctl %s=%s: %v", path, value, err)
	}
}

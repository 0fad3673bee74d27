package build_test

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/harness/build"
	"github.com/hopcheck/hopcheck/harness/plan"
	"github.com/hopcheck/hopcheck/harness/plan/plantest"
	"github.com/hopcheck/hopcheck/harness/probe"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestIPv6UsableOnReturn: Up returns only when every IPv6 address of the
// topology has passed duplicate address detection, the router's
// link-local addresses included, so that an IPv6 ping through the router
// right away is answered at once. (Until its link-local address is
// usable, a router sends no neighbor solicitation, so it cannot forward.)
// The settings that sped DAD up are back to the kernel's afterwards.
func TestIPv6UsableOnReturn(t *testing.T) {
	privtest.Require(t)
	scs, err := scenario.Load(filepath.Join("..", "..", "scenarios", "ipv6-router.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sc := scs[0]
	for i := range 3 {
		start := time.Now()
		topo := up(t, sc)
		t.Logf("build %d: up in %v", i+1, time.Since(start))
		for _, ns := range topo.Namespaces() {
			nh := nlAt(t, topo.NS(ns))
			addrs, err := nh.AddrList(nil, netlink.FAMILY_V6)
			if err != nil {
				t.Fatal(err)
			}
			lls := 0
			for _, a := range addrs {
				if a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED|unix.IFA_F_NODAD) != 0 {
					t.Errorf("build %d: %s: %s has flags %#x, want DAD done", i+1, ns, a.IPNet, a.Flags)
				}
				if a.IP.IsLinkLocalUnicast() {
					lls++
				}
			}
			if want := len(sc.Namespace(ns).Interfaces) - 1; lls != want { // all but lo
				t.Errorf("build %d: %s has %d link-local addresses, want %d", i+1, ns, lls, want)
			}
		}
		res, err := probe.Ping(context.Background(), topo.NS("left"), addr("2001:db8:2::2"), probe.PingOptions{Timeout: 700 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if res.Received != 1 {
			t.Errorf("build %d: the first IPv6 ping through the router got no reply at once: %+v", i+1, res)
		}
		// The neighbor timers are the kernel's again: the same as lo's,
		// which the build never touched.
		router := topo.NS("router")
		if got, want := readSysctl(t, router, "net.ipv6.neigh.eth1.retrans_time_ms"), readSysctl(t, router, "net.ipv6.neigh.lo.retrans_time_ms"); got != want {
			t.Errorf("build %d: router eth1 retrans_time_ms %s after the build, want the kernel's %s", i+1, got, want)
		}
		if got, want := readSysctl(t, router, "net.ipv6.conf.eth1.router_solicitation_delay"), readSysctl(t, router, "net.ipv6.conf.default.router_solicitation_delay"); got != want {
			t.Errorf("build %d: router eth1 router_solicitation_delay %s after the build, want the default %s", i+1, got, want)
		}
		if err := topo.Down(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDuplicateIPv6Address: two interfaces on one bridge with the same
// IPv6 address make the build fail with the DAD finding, at the line of
// an address that failed, naming the other holder; nothing is left.
func TestDuplicateIPv6Address(t *testing.T) {
	privtest.Require(t)
	sc := plantest.New("dup").
		NS("sw").
		Iface("sw", "br0", scenario.TypeBridge).
		Iface("sw", "p1", "", plantest.Master("br0")).
		Iface("sw", "p2", "", plantest.Master("br0")).
		NS("a").Iface("a", "eth0", "", plantest.Addrs("2001:db8::1/64", "2001:db8::a/64")).
		NS("b").Iface("b", "eth0", "", plantest.Addrs("2001:db8::1/64", "2001:db8::b/64")).
		Link("a/eth0", "sw/p1").
		Link("b/eth0", "sw/p2").
		Scenario()
	runID, err := netns.NewRunID()
	if err != nil {
		t.Fatal(err)
	}
	guard(t, func() string { return runID })
	topo, err := build.Up(context.Background(), sc, build.Options{RunID: runID})
	if err == nil {
		topo.Down(context.Background())
		t.Fatal("the build succeeded although a/eth0 and b/eth0 share 2001:db8::1 on one bridge")
	}
	t.Log(err)
	var se *build.StepError
	var dup *build.DuplicateAddressError
	if !errors.As(err, &se) || !errors.As(err, &dup) {
		t.Fatalf("error %v (%T), want a *StepError with a *DuplicateAddressError", err, err)
	}
	if se.Step.Kind != plan.AddAddress || se.Step.Addr.Addr() != addr("2001:db8::1") {
		t.Errorf("located at step %q, want the step that added 2001:db8::1", se.Step)
	}
	other := scenario.Endpoint{NS: "a", If: "eth0"}
	if dup.Endpoint == other {
		other = scenario.Endpoint{NS: "b", If: "eth0"}
	}
	if dup.Addr != addr("2001:db8::1") || !slices.Equal(dup.Others, []scenario.Endpoint{other}) {
		t.Errorf("finding %+v, want 2001:db8::1 held by %s too", dup, other)
	}
	if want := "is a duplicate (DAD failed): another interface on that segment has it (" + other.String() + " has it too"; !strings.Contains(err.Error(), want) {
		t.Errorf("message %q lacks %q", err, want)
	}
	if se.Pos.Line == 0 || !strings.HasPrefix(se.Field, "namespaces.") {
		t.Errorf("position %v field %q, want the address's interface", se.Pos, se.Field)
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

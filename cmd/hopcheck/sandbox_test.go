package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/nl"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// sandboxEnd is one end of a sandbox pair: a namespace (by its kernel
// name), the veth end inside it and that end's address.
type sandboxEnd struct {
	ns, ifName, cidr string
}

// sandboxPair makes two fresh namespaces joined by a veth pair whose peer
// is created directly in the second, with lo and both ends up and
// addressed. Both namespaces are deleted when the test ends. It returns
// their handles and netlink handles, in the order given.
func sandboxPair(t *testing.T, a, b sandboxEnd) ([2]netns.Handle, [2]*netlink.Handle) {
	t.Helper()
	var hs [2]netns.Handle
	var nls [2]*netlink.Handle
	for i, end := range []sandboxEnd{a, b} {
		h, err := netns.Create(end.ns)
		if err != nil {
			t.Fatal(err)
		}
		hs[i] = h
		t.Cleanup(func() {
			h.Close()
			if err := netns.Delete(end.ns); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		n, err := nl.HandleAt(h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Close)
		nls[i] = n
	}
	if err := nls[0].LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a.ifName}, PeerName: b.ifName,
		PeerNamespace: netlink.NsFd(hs[1])}); err != nil {
		t.Fatal(err)
	}
	for i, end := range []sandboxEnd{a, b} {
		for _, ifName := range []string{"lo", end.ifName} {
			l, err := nls[i].LinkByName(ifName)
			if err != nil {
				t.Fatal(err)
			}
			if ifName == end.ifName {
				addr, err := netlink.ParseAddr(end.cidr)
				if err != nil {
					t.Fatal(err)
				}
				if err := nls[i].AddrAdd(l, addr); err != nil {
					t.Fatal(err)
				}
			}
			if err := nls[i].LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
		}
	}
	return hs, nls
}

// tool returns the path of a program the test needs, or marks it
// unavailable (skipped locally, failed under CI=true) naming pkg, the
// Debian package that brings it.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		privtest.Unavailable(t, name+" (apt-get install "+pkg+")")
	}
	return path
}

// startTrace starts `hopcheck trace` with args and waits until it says it
// is tracing, failing the test if it exits or takes over 30 s first.
func (e *env) startTrace(args ...string) *proc {
	e.t.Helper()
	p := e.start(append([]string{"trace"}, args...)...)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.stdoutSoFar(), "tracing ") {
		if p.exited() || time.Now().After(deadline) {
			r := p.wait()
			e.t.Fatalf("trace did not start: %s%s", r.stdout, r.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

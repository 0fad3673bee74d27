package main

import (
	"context"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// TestTraceShowsNoFalseDrops runs `hopcheck trace` on two namespaces while
// iputils ping (as root: a raw socket, so the kernel frees each echo reply
// with NO_SOCKET after the socket got its copy) and a TCP exchange that
// closes with data unread (freed from the receive queue) run there. Every
// packet got where it went: the trace must show them and no drop.
func TestTraceShowsNoFalseDrops(t *testing.T) {
	privtest.Require(t)
	ping := tool(t, "ping", "iputils-ping")
	ipBin := tool(t, "ip", "iproute2")
	runID, err := netns.NewRunID()
	if err != nil {
		t.Fatal(err)
	}
	names := [2]string{netns.Name(runID, "tla"), netns.Name(runID, "tlb")}
	hs, _ := sandboxPair(t, sandboxEnd{names[0], "eth0", "10.68.0.1/24"}, sandboxEnd{names[1], "eth0", "10.68.0.2/24"})

	e := newEnv(t)
	p := e.startTrace("--netns", names[0]+","+names[1])

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ipBin, "netns", "exec", names[0], ping, "-c", "3", "-i", "0.2", "-W", "2", "10.68.0.2").CombinedOutput()
	if err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	tcpUnreadAtClose(t, hs[0], hs[1], "10.68.0.2:7070")
	time.Sleep(500 * time.Millisecond) // the trace prints every 100 ms
	p.signal(t, 2)                     // SIGINT
	r := p.wait()
	if r.code != 0 {
		t.Fatalf("trace exited %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if n := strings.Count(r.stdout, "icmp"); n < 12 {
		t.Errorf("trace shows %d ICMP packets, want the 3 echo requests and replies at both ends (12):\n%s", n, r.stdout)
	}
	if !strings.Contains(r.stdout, ":7070") {
		t.Errorf("trace does not show the TCP exchange:\n%s", r.stdout)
	}
	// (The kernel's own IPv6 chatter on the new links, MLD reports
	// discarded where nobody listens, may show real drops; those are not
	// this test's packets.)
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.Contains(line, "DROP") && (strings.Contains(line, "echo") || strings.Contains(line, " tcp ")) {
			t.Errorf("trace reports a drop of a packet that was delivered: %s\nwhole trace:\n%s", line, r.stdout)
		}
	}
}

// tcpUnreadAtClose connects from namespace a to addr in namespace b, sends
// data both ways, and closes both ends with data still unread.
func tcpUnreadAtClose(t *testing.T, a, b netns.Handle, addr string) {
	t.Helper()
	var ln net.Listener
	if err := netns.Do(b, func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var c net.Conn
	if err := netns.Do(a, func() (err error) { c, err = net.DialTimeout("tcp4", addr, 5*time.Second); return err }); err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("HOPC-unread request")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("HOPC-reply")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the request sits unread in s's queue
	s.Close()
	c.Close()
}

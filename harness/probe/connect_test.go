package probe

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/coreos/go-iptables/iptables"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"golang.org/x/sys/unix"
)

// dropInput makes B's firewall drop proto packets to port (IPv4), through
// iptables run on a thread inside B.
func dropInput(t *testing.T, ns netns.Handle, proto Proto, port uint16) {
	t.Helper()
	err := netns.Do(ns, func() error {
		ipt, err := iptables.New()
		if err != nil {
			return err
		}
		return ipt.Append("filter", "INPUT", "-p", string(proto), "--dport", strconv.Itoa(int(port)), "-j", "DROP")
	})
	if err != nil {
		privtest.Unavailable(t, "iptables in a namespace ("+err.Error()+")")
	}
}

// listen starts a listener in ns on a free port, closed when the test ends.
func listen(t *testing.T, ns netns.Handle, proto Proto) *Listener {
	t.Helper()
	l, err := Listen(context.Background(), ns, proto, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	if l.Addr().Port() == 0 {
		t.Fatalf("listener reports port 0")
	}
	return l
}

func TestConnectRoundTrip(t *testing.T) {
	p := newPair(t)
	for _, proto := range []Proto{TCP, UDP} {
		l := listen(t, p.b, proto)
		for _, tt := range []struct {
			name string
			dst  netip.Addr
			src  netip.Addr
		}{
			{"ipv4", addrB, addrA},
			// B replies from the address the client sent to, not from the
			// one its route back would pick.
			{"ipv4 secondary address", addrB2, addrA},
			{"ipv6", addrB6, addrA6},
			{"ipv6 link-local", linkB6.WithZone("veth_a"), linkA6},
		} {
			t.Run(string(proto)+" "+tt.name, func(t *testing.T) {
				dst := netip.AddrPortFrom(tt.dst, l.Addr().Port())
				res, err := Connect(context.Background(), p.a, proto, dst, 0, time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if res.Err != nil {
					t.Fatalf("probe failed: %v", res.Err)
				}
				if res.Local.Addr() != tt.src || res.Local.Port() == 0 {
					t.Errorf("local %s, want %s and a port", res.Local, tt.src)
				}
				if res.Seen != res.Local {
					t.Errorf("listener saw %s, want the client's %s (no NAT here)", res.Seen, res.Local)
				}
				if res.Tag == 0 || res.RTT <= 0 || res.Attempts < 1 || res.Proto != proto || res.Dst != dst {
					t.Errorf("result %+v", res)
				}
				if from, ok := l.Arrived(res.Tag); !ok || from != res.Local {
					t.Errorf("listener: request with tag %v arrived %v from %s, want from %s", res.Tag, ok, from, res.Local)
				}
				if !slices.Contains(l.Seen(), res.Local) {
					t.Errorf("listener's peers %v miss %s", l.Seen(), res.Local)
				}
			})
		}
	}
}

func TestConnectRefused(t *testing.T) {
	p := newPair(t)
	for _, proto := range []Proto{TCP, UDP} {
		for _, dst := range []netip.Addr{addrB, addrB6} {
			t.Run(string(proto)+" "+dst.String(), func(t *testing.T) {
				res, err := Connect(context.Background(), p.a, proto, netip.AddrPortFrom(dst, 9), 0, time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if !errors.Is(res.Err, ErrRefused) || !errors.Is(res.Err, unix.ECONNREFUSED) {
					t.Fatalf("error %v, want ECONNREFUSED classified as ErrRefused", res.Err)
				}
				// The address is known even though the probe failed.
				if !res.Local.IsValid() || res.Local.Port() == 0 {
					t.Errorf("local address %s not reported", res.Local)
				}
			})
		}
	}
}

func TestConnectFirewallDrop(t *testing.T) {
	p := newPair(t)
	for _, proto := range []Proto{TCP, UDP} {
		t.Run(string(proto), func(t *testing.T) {
			l := listen(t, p.b, proto)
			dropInput(t, p.b, proto, l.Addr().Port())
			const timeout = 600 * time.Millisecond
			start := time.Now()
			res, err := Connect(context.Background(), p.a, proto, netip.AddrPortFrom(addrB, l.Addr().Port()), 0, timeout)
			if err != nil {
				t.Fatal(err)
			}
			if elapsed := time.Since(start); elapsed > timeout+bound {
				t.Errorf("took %v with a timeout of %v", elapsed, timeout)
			}
			if !errors.Is(res.Err, ErrTimeout) {
				t.Fatalf("error %v, want ErrTimeout", res.Err)
			}
			if res.Local.Addr() != addrA || res.Local.Port() == 0 {
				t.Errorf("local %s, want %s and the bound port", res.Local, addrA)
			}
			if proto == UDP && res.Attempts != udpAttempts {
				t.Errorf("%d datagrams sent, want %d", res.Attempts, udpAttempts)
			}
			if _, ok := l.Arrived(res.Tag); ok {
				t.Error("the listener got a request the firewall should have dropped")
			}
		})
	}
}

func TestConnectNoRoute(t *testing.T) {
	p := newPair(t)
	for _, proto := range []Proto{TCP, UDP} {
		res, err := Connect(context.Background(), p.a, proto, netip.AddrPortFrom(remoteIP, 80), 0, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(res.Err, ErrUnreachable) || !errors.Is(res.Err, unix.ENETUNREACH) {
			t.Errorf("%s: error %v, want ENETUNREACH classified as ErrUnreachable", proto, res.Err)
		}
		if res.Local.IsValid() {
			t.Errorf("%s: local %s, want none without a route", proto, res.Local)
		}
	}
}

func TestCheckConnectArgs(t *testing.T) {
	good := netip.AddrPortFrom(addrB, 80)
	tests := []struct {
		proto   Proto
		dst     netip.AddrPort
		timeout time.Duration
		ok      bool
	}{
		{TCP, good, time.Second, true},
		{UDP, netip.AddrPortFrom(linkB6.WithZone("veth_a"), 53), 0, true},
		{UDP, good, MaxConnectTimeout, true},
		{"sctp", good, time.Second, false},
		{TCP, netip.AddrPort{}, time.Second, false},
		{TCP, netip.AddrPortFrom(addrB, 0), time.Second, false},
		{UDP, netip.AddrPortFrom(netip.IPv4Unspecified(), 80), time.Second, false},
		{UDP, netip.AddrPortFrom(netip.IPv6Unspecified(), 80), time.Second, false},
		{UDP, good, -time.Second, false},
		{UDP, good, MaxConnectTimeout + 1, false},
	}
	for _, tt := range tests {
		if err := checkConnectArgs(tt.proto, tt.dst, tt.timeout); (err == nil) != tt.ok {
			t.Errorf("checkConnectArgs(%q, %v, %v) = %v, want ok %v", tt.proto, tt.dst, tt.timeout, err, tt.ok)
		}
	}
}

// Close stops the listener even with a client connected that never sends
// its request, and leaves no goroutine behind; a context that ends stops
// it too.
func TestListenerClose(t *testing.T) {
	p := newPair(t)
	before := runtime.NumGoroutine()

	l, err := Listen(context.Background(), p.b, TCP, 0)
	if err != nil {
		t.Fatal(err)
	}
	// An idle client: connected from A, never sending.
	var idle int
	err = netns.Do(p.a, func() error {
		var err error
		idle, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(idle)
	if err := unix.Connect(idle, sockaddr(netip.AddrPortFrom(addrB, l.Addr().Port()), 0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(l.Seen()) == 1 }, "the idle client to be accepted")
	start := time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed >= connIOTimeout {
		t.Errorf("Close waited %v for an idle client instead of closing it", elapsed)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	l2, err := Listen(ctx, p.b, UDP, 0)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	waitFor(t, func() bool {
		res, err := Connect(context.Background(), p.a, UDP, netip.AddrPortFrom(addrB, l2.Addr().Port()), 0, 100*time.Millisecond)
		return err == nil && errors.Is(res.Err, ErrRefused)
	}, "the port to be closed after the listener's context ended")
	if err := l2.Close(); err != nil {
		t.Error(err)
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before }, "the listeners' goroutines to exit")
}

// waitFor polls cond for up to a second: long enough for a goroutine that
// has been released to finish exiting, too short to hide one that never
// does.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestConnectCancel(t *testing.T) {
	p := newPair(t)
	for _, proto := range []Proto{TCP, UDP} {
		t.Run(string(proto), func(t *testing.T) {
			l := listen(t, p.b, proto)
			dropInput(t, p.b, proto, l.Addr().Port())
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			// Without cancellation this would wait 10 s.
			res, err := Connect(ctx, p.a, proto, netip.AddrPortFrom(addrB, l.Addr().Port()), 0, 10*time.Second)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v (probe error %v), want the context's", err, res.Err)
			}
			if elapsed := time.Since(start); elapsed > bound {
				t.Errorf("returned %v after the start, context ended after 100ms", elapsed)
			}
			if !res.Local.IsValid() {
				t.Errorf("local address not reported")
			}
		})
	}
}

package probe

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/trace"
	"golang.org/x/sys/unix"
)

// bound is a generous ceiling on how long a ping may take beyond its own
// schedule: it catches a ping that does not stop, not a slow one.
const bound = 3 * time.Second

func TestPingReplies(t *testing.T) {
	p := newPair(t)
	tests := []struct {
		name string
		dst  netip.Addr
	}{
		{"ipv4", addrB},
		{"ipv4 secondary address", addrB2},
		{"ipv6", addrB6},
		// The zone is an interface of A: it resolves only inside A.
		{"ipv6 link-local with zone", linkB6.WithZone("veth_a")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := PingOptions{Count: 3, Interval: 20 * time.Millisecond, Timeout: time.Second, Tag: 0xabc}
			res, err := Ping(context.Background(), p.a, tt.dst, opt)
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent != 3 || res.Received != 3 || res.Loss() != 0 || res.SendErr != nil {
				t.Fatalf("sent %d, received %d, loss %v, send error %v; want 3, 3, 0, nil", res.Sent, res.Received, res.Loss(), res.SendErr)
			}
			if res.Tag != opt.Tag || res.Duplicates != 0 || len(res.ICMPErrors) != 0 {
				t.Errorf("tag %v, %d duplicates, ICMP errors %v", res.Tag, res.Duplicates, res.ICMPErrors)
			}
			var seqs []int
			for i, r := range res.Replies {
				if r.From != tt.dst.WithZone("") {
					t.Errorf("reply %d from %s, want %s", i, r.From, tt.dst)
				}
				if r.RTT <= 0 || r.RTT > opt.Timeout || res.RTTs[i] != r.RTT {
					t.Errorf("reply %d: RTT %v (RTTs[%d] %v) not in (0, %v]", i, r.RTT, i, res.RTTs[i], opt.Timeout)
				}
				seqs = append(seqs, r.Seq)
			}
			slices.Sort(seqs)
			if !slices.Equal(seqs, []int{1, 2, 3}) {
				t.Errorf("replies for sequence numbers %v, want 1 2 3", seqs)
			}
		})
	}
}

func TestPingNoAnswer(t *testing.T) {
	p := newPair(t)
	opt := PingOptions{Count: 2, Interval: 100 * time.Millisecond, Timeout: 400 * time.Millisecond}
	start := time.Now()
	res, err := Ping(context.Background(), p.a, unusedIP, opt)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if res.Sent != 2 || res.Received != 0 || res.Loss() != 1 {
		t.Errorf("sent %d, received %d, loss %v; want 2, 0, 1", res.Sent, res.Received, res.Loss())
	}
	if limit := opt.Interval + opt.Timeout + bound; elapsed > limit {
		t.Errorf("took %v, more than the bound %v", elapsed, limit)
	}
	// Neighbour resolution takes longer than the timeout to fail, so no
	// "host unreachable" can have arrived yet; the kernel may still refuse
	// a send once the neighbour entry is FAILED.
	if res.SendErr != nil && !errors.Is(res.SendErr, ErrUnreachable) {
		t.Errorf("send error %v is not classified unreachable", res.SendErr)
	}
}

func TestPingNoRoute(t *testing.T) {
	p := newPair(t)
	res, err := Ping(context.Background(), p.a, remoteIP, PingOptions{Count: 2, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res.SendErr, ErrUnreachable) || !errors.Is(res.SendErr, unix.ENETUNREACH) {
		t.Fatalf("send error %v, want ENETUNREACH classified as ErrUnreachable", res.SendErr)
	}
	if res.SendErr.Error() != "network is unreachable" {
		t.Errorf("send error says %q", res.SendErr)
	}
	if res.Sent != 2 || res.SendErrors != 2 || res.Received != 0 || res.Loss() != 1 {
		t.Errorf("sent %d, send errors %d, received %d, loss %v; want 2, 2, 0, 1", res.Sent, res.SendErrors, res.Received, res.Loss())
	}
}

// A router without a route on answers with an ICMP error that quotes our
// request; the ping ties it to its sequence number.
func TestPingICMPError(t *testing.T) {
	p := newPair(t)
	ha := netlinkAt(t, p.a)
	routeVia(t, ha, remote2.String()+"/32", addrB)
	sysctl(t, p.b, "net/ipv4/ip_forward", "1")

	res, err := Ping(context.Background(), p.a, remote2, PingOptions{Count: 2, Interval: 50 * time.Millisecond, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Received != 0 || res.SendErr != nil {
		t.Errorf("received %d, send error %v; want 0, nil", res.Received, res.SendErr)
	}
	if len(res.ICMPErrors) == 0 {
		t.Fatal("no ICMP error recorded")
	}
	for _, e := range res.ICMPErrors {
		if e.From != addrB || e.Type != 3 || e.Code != 0 || (e.Seq != 1 && e.Seq != 2) {
			t.Errorf("ICMP error %+v, want network unreachable (3/0) from %s for seq 1 or 2", e, addrB)
		}
		if !errors.Is(e, ErrUnreachable) {
			t.Errorf("%v is not classified unreachable", e)
		}
	}
}

// Raw sockets see every echo reply of the namespace. Two pings that even
// share an identifier must count only their own replies (told apart by
// the tag), or each would see the other's as duplicates.
func TestPingConcurrent(t *testing.T) {
	p := newPair(t)
	tags := []trace.Tag{0x1111, 0x2222, 0x3333}
	results := make([]PingResult, len(tags))
	errs := make([]error, len(tags))
	var wg sync.WaitGroup
	for i, tag := range tags {
		wg.Go(func() {
			opt := PingOptions{Count: 5, Interval: 20 * time.Millisecond, Timeout: time.Second, Tag: tag}
			results[i], errs[i] = ping(context.Background(), p.a, addrB, opt, 0x7777)
		})
	}
	wg.Wait()
	for i, res := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if res.Received != 5 || res.Duplicates != 0 {
			t.Errorf("ping %v: received %d, %d duplicates; want 5, 0", tags[i], res.Received, res.Duplicates)
		}
	}
}

func TestPingCancel(t *testing.T) {
	p := newPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	// Without cancellation this would run for 10 s.
	res, err := Ping(ctx, p.a, unusedIP, PingOptions{Count: 50, Interval: 200 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the context's", err)
	}
	if elapsed := time.Since(start); elapsed > bound {
		t.Errorf("returned %v after the start, context ended after 150ms", elapsed)
	}
	if res.Sent == 0 || res.Sent == 50 {
		t.Errorf("sent %d: want the requests sent before cancellation", res.Sent)
	}
}

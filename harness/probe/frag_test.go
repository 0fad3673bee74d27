package probe

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestPayloadFor(t *testing.T) {
	for _, tt := range []struct {
		size int
		v6   bool
		want int
	}{
		{1500, false, 1472}, // ping -M do -s 1472 fills a 1500 MTU
		{1500, true, 1452},
		{84, false, 56}, // ping(8)'s default
		{65535, false, MaxPayloadSize},
	} {
		if got := PayloadFor(tt.size, tt.v6); got != tt.want {
			t.Errorf("PayloadFor(%d, v6 %v) = %d, want %d", tt.size, tt.v6, got, tt.want)
		}
	}
}

func TestPaddedRequest(t *testing.T) {
	b := appendPadded(nil, 0xfeed, 2, 100)
	if len(b) != 100 || !isPadded(b) {
		t.Fatalf("padded request of %d bytes, isPadded %v", len(b), isPadded(b))
	}
	tag, attempt, ok := parseRequest(b)
	if !ok || tag != 0xfeed || attempt != 2 {
		t.Errorf("parseRequest = %v %d %v", tag, attempt, ok)
	}
	if small := appendPadded(nil, 0xfeed, 0, 3); len(small) != requestLen || isPadded(small) {
		t.Errorf("a size below the request's pads nothing: %d bytes", len(small))
	}
	// A request followed by something else is not ours to cut.
	other := append(appendRequest(nil, 0xfeed, 0), "xyz"...)
	if isPadded(other) {
		t.Error("a request with other bytes after it counts as padded")
	}
}

func TestClassifyTooBig(t *testing.T) {
	err := classify(unix.EMSGSIZE)
	if !errors.Is(err, ErrTooBig) || !errors.Is(err, unix.EMSGSIZE) {
		t.Errorf("EMSGSIZE classified as %v", err)
	}
	fragNeeded := ICMPError{From: netip.MustParseAddr("192.0.2.1"), Type: 3, Code: 4}
	tooBig6 := ICMPError{From: netip.MustParseAddr("2001:db8::1"), Type: 2}
	for _, e := range []ICMPError{fragNeeded, tooBig6} {
		if !errors.Is(e, ErrTooBig) {
			t.Errorf("%v is not classified too big", e)
		}
	}
}

// A request larger than the sender's own link fails at send with EMSGSIZE
// when it may not be fragmented, and gets through in fragments when it
// may.
func TestPingSizeAndDF(t *testing.T) {
	p := newPair(t)
	ha := netlinkAt(t, p.a)
	setMTU(t, ha, "veth_a", 1280)
	setMTU(t, p.hb, "veth_b", 1280)
	for _, dst := range []netip.Addr{addrB, addrB6} {
		big := PayloadFor(1400, dst.Is6())
		res, err := Ping(context.Background(), p.a, dst, PingOptions{PayloadSize: big, Frag: FragNever, Timeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(res.SendErr, ErrTooBig) || !errors.Is(res.SendErr, unix.EMSGSIZE) || res.Received != 0 {
			t.Errorf("%s: DF ping of 1400 bytes over MTU 1280: send error %v, received %d; want EMSGSIZE, 0", dst, res.SendErr, res.Received)
		}
		res, err = Ping(context.Background(), p.a, dst, PingOptions{PayloadSize: big, Frag: FragAllow, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if res.Received != 1 || res.SendErr != nil {
			t.Errorf("%s: fragmented ping: received %d, send error %v; want 1, nil", dst, res.Received, res.SendErr)
		}
		fits := PayloadFor(1280, dst.Is6())
		res, err = Ping(context.Background(), p.a, dst, PingOptions{PayloadSize: fits, Frag: FragNever, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if res.Received != 1 {
			t.Errorf("%s: DF ping of exactly the MTU: received %d, send error %v", dst, res.Received, res.SendErr)
		}
	}
}

func TestUDPSizeAndDF(t *testing.T) {
	p := newPair(t)
	ha := netlinkAt(t, p.a)
	setMTU(t, ha, "veth_a", 1280)
	setMTU(t, p.hb, "veth_b", 1280)
	l := listen(t, p.b, UDP)
	dst := netip.AddrPortFrom(addrB, l.Addr().Port())
	res, err := ConnectWith(context.Background(), p.a, UDP, dst, ConnOptions{Timeout: time.Second, Size: 1280, Frag: FragNever})
	if err != nil || res.Err != nil {
		t.Fatalf("a datagram of exactly the MTU: %v, %v", err, res.Err)
	}
	res, err = ConnectWith(context.Background(), p.a, UDP, dst, ConnOptions{Timeout: 500 * time.Millisecond, Size: 1400, Frag: FragNever})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res.Err, ErrTooBig) {
		t.Errorf("a DF datagram over the MTU: %v, want too big", res.Err)
	}
	res, err = ConnectWith(context.Background(), p.a, UDP, dst, ConnOptions{Timeout: time.Second, Size: 1400, Frag: FragAllow})
	if err != nil || res.Err != nil {
		t.Errorf("a fragmented datagram: %v, %v", err, res.Err)
	}
}

func setMTU(t *testing.T, h *netlink.Handle, link string, mtu int) {
	t.Helper()
	l, err := h.LinkByName(link)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetMTU(l, mtu); err != nil {
		t.Fatalf("%s: set mtu %d: %v", link, mtu, err)
	}
}

package nl

import (
	"errors"
	"net"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

func TestPrefix(t *testing.T) {
	tests := []struct {
		in   *net.IPNet
		want string
		ok   bool
	}{
		{&net.IPNet{IP: net.IPv4(10, 0, 0, 2).To4(), Mask: net.CIDRMask(24, 32)}, "10.0.0.2/24", true},
		{&net.IPNet{IP: net.IPv4(10, 0, 0, 2), Mask: net.CIDRMask(24, 32)}, "10.0.0.2/24", true},
		{&net.IPNet{IP: net.IPv4(10, 0, 0, 2), Mask: net.CIDRMask(120, 128)}, "10.0.0.2/24", true},
		{&net.IPNet{IP: net.ParseIP("2001:db8::1"), Mask: net.CIDRMask(64, 128)}, "2001:db8::1/64", true},
		{&net.IPNet{IP: net.ParseIP("2001:db8::1"), Mask: net.IPMask{0xff, 0x00, 0xff}}, "", false},
		{nil, "", false},
	}
	for _, tt := range tests {
		p, ok := Prefix(tt.in)
		if ok != tt.ok || (ok && p.String() != tt.want) {
			t.Errorf("Prefix(%v) = %v, %v; want %s, %v", tt.in, p, ok, tt.want, tt.ok)
		}
	}
}

func TestDump(t *testing.T) {
	calls := 0
	v, err := Dump(func() (int, error) {
		calls++
		if calls < 3 {
			return 0, netlink.ErrDumpInterrupted
		}
		return 42, nil
	})
	if v != 42 || err != nil || calls != 3 {
		t.Errorf("Dump = %d, %v after %d calls; want 42, nil after 3", v, err, calls)
	}
	calls = 0
	_, err = Dump(func() (int, error) { calls++; return 0, netlink.ErrDumpInterrupted })
	if !errors.Is(err, netlink.ErrDumpInterrupted) || calls != DumpRetries {
		t.Errorf("always interrupted: %v after %d calls; want ErrDumpInterrupted after %d", err, calls, DumpRetries)
	}
	boom := errors.New("boom")
	calls = 0
	if _, err = Dump(func() (int, error) { calls++; return 0, boom }); err != boom || calls != 1 {
		t.Errorf("other error: %v after %d calls; want boom after 1", err, calls)
	}
}

func TestHandleAt(t *testing.T) {
	privtest.Require(t)
	id, _ := netns.NewRunID()
	name := netns.Name(id, "nl")
	ns, err := netns.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close(); netns.Delete(name) })
	h, err := HandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links, err := Dump(h.LinkList)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh namespace holds only lo: the handle lists that namespace,
	// not the caller's.
	if len(links) != 1 || links[0].Attrs().Name != "lo" {
		t.Errorf("links in a fresh namespace through HandleAt: %d, want only lo", len(links))
	}
}

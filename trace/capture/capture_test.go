package capture

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/hopcheck/hopcheck/trace"
	"github.com/vishvananda/netlink"
)

// captureVethPair makes two fresh namespaces "a" and "b" joined by a veth pair
// veth_a (10.99.0.1/24) -- veth_b (10.99.0.2/24), removed when t ends.
func captureVethPair(t *testing.T) (a, b netns.Handle) {
	t.Helper()
	privtest.Require(t)
	id, err := netns.NewRunID()
	if err != nil {
		t.Fatal(err)
	}
	open := func(ns string) netns.Handle {
		name := netns.Name(id, ns)
		h, err := netns.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			h.Close()
			if err := netns.Delete(name); err != nil {
				t.Error(err)
			}
		})
		return h
	}
	a, b = open("a"), open("b")

	nla, err := netlink.NewHandleAt(a)
	if err != nil {
		t.Fatal(err)
	}
	defer nla.Close()
	nlb, err := netlink.NewHandleAt(b)
	if err != nil {
		t.Fatal(err)
	}
	defer nlb.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: "veth_a"},
		PeerName:      "veth_b",
		PeerNamespace: netlink.NsFd(int(b)),
	}
	if err := nla.LinkAdd(veth); err != nil {
		t.Fatalf("a/veth_a: add veth peer b/veth_b: %v", err)
	}
	for _, end := range []struct {
		nl   *netlink.Handle
		name string
		addr string
	}{{nla, "veth_a", "10.99.0.1/24"}, {nlb, "veth_b", "10.99.0.2/24"}} {
		link, err := end.nl.LinkByName(end.name)
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := netlink.ParseAddr(end.addr)
		if err := end.nl.AddrAdd(link, addr); err != nil {
			t.Fatalf("%s: add address %s: %v", end.name, end.addr, err)
		}
		if err := end.nl.LinkSetUp(link); err != nil {
			t.Fatalf("%s: set up: %v", end.name, err)
		}
	}
	return a, b
}

// captureSendTagged sends one UDP datagram per tag from a to b's listener and
// waits until b has received them all, so every frame has crossed both
// interfaces before the test stops the capture.
func captureSendTagged(t *testing.T, a, b netns.Handle, tags []trace.Tag) {
	t.Helper()
	var ln *net.UDPConn
	if err := netns.Do(b, func() (err error) {
		ln, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 99, 0, 2), Port: 9999})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conn *net.UDPConn
	if err := netns.Do(a, func() (err error) {
		conn, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(10, 99, 0, 2), Port: 9999})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, tag := range tags {
		if _, err := conn.Write(taggedPayload(tag)); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	if err := ln.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for range tags {
		if _, _, err := ln.ReadFromUDP(buf); err != nil {
			t.Fatalf("receive in b: %v", err)
		}
	}
}

// taggedPayload is a UDP probe's payload: the tag and some padding.
func taggedPayload(tag trace.Tag) []byte { return append(tag.Append(nil), "hopcheck"...) }

// udpDatagram returns an IPv4 packet carrying a UDP datagram with payload.
func udpDatagram(t *testing.T, src, dst netip.AddrPort, payload []byte) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readCapture returns the interface names of a pcapng file and, per
// interface, the probe tags of the UDP frames seen on it.
func readCapture(t *testing.T, path string) (names []string, tags map[string][]trace.Tag) {
	t.Helper()
	frames, ifs := readCaptureFile(t, path)
	tags = map[string][]trace.Tag{}
	for _, f := range frames {
		if len(f.data) != f.length {
			t.Errorf("frame cut to %d of %d bytes; captures must hold full frames", len(f.data), f.length)
		}
		if f.isUDP && f.tagged {
			tags[f.iface] = append(tags[f.iface], f.tag)
		}
	}
	for _, intf := range ifs {
		names = append(names, intf.Name)
	}
	return names, tags
}

func TestCapture(t *testing.T) {
	a, b := captureVethPair(t)
	path := filepath.Join(t.TempDir(), "capture.pcapng")
	c, err := Start(t.Context(), path, []Interface{
		{NS: "a", Netns: a, If: "veth_a"},
		{NS: "b", Netns: b, If: "veth_b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []trace.Tag{0xc1, 0xc2, 0xc3}
	captureSendTagged(t, a, b, want)
	stats, err := c.Stop()
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}

	for i, name := range []string{"a/veth_a", "b/veth_b"} {
		st := stats[i]
		if st.Name != name || st.Err != nil || st.Packets < uint64(len(want)) || st.Bytes == 0 {
			t.Errorf("stats[%d] = %+v, want %s with at least %d packets and no error", i, st, name, len(want))
		}
	}
	names, tags := readCapture(t, path)
	if !slices.Equal(names, []string{"a/veth_a", "b/veth_b"}) {
		t.Errorf("interface blocks %q, want [a/veth_a b/veth_b]", names)
	}
	for _, name := range names {
		if !slices.Equal(tags[name], want) {
			t.Errorf("tagged datagrams on %s: %v, want %v", name, tags[name], want)
		}
	}

	if _, err := exec.LookPath("tshark"); err != nil {
		t.Log("tshark not installed: skipping the check that Wireshark's reader accepts the file")
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tshark", "-r", path, "-Y", "udp.dstport == 9999",
		"-T", "fields", "-e", "frame.interface_name").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", path, err)
	}
	seen := map[string]int{}
	for _, line := range strings.Fields(string(out)) {
		seen[line]++
	}
	for _, name := range names {
		if seen[name] != len(want) {
			t.Errorf("tshark saw %d datagrams on %s, want %d (output %q)", seen[name], name, len(want), out)
		}
	}
}

func TestCaptureCancel(t *testing.T) {
	a, b := captureVethPair(t)
	path := filepath.Join(t.TempDir(), "capture.pcapng")
	ctx, cancel := context.WithCancel(t.Context())
	c, err := Start(ctx, path, []Interface{
		{NS: "a", Netns: a, If: "veth_a"},
		{NS: "b", Netns: b, If: "veth_b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	// Readers end on cancel; Stop still waits for them and closes the file.
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := c.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return after the context was cancelled")
	}
	names, _ := readCapture(t, path)
	if len(names) != 2 {
		t.Errorf("interface blocks %q, want 2", names)
	}
	// A second Stop is harmless and reports the same.
	if _, err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestCaptureMissingInterface(t *testing.T) {
	a, _ := captureVethPair(t)
	path := filepath.Join(t.TempDir(), "capture.pcapng")
	_, err := Start(t.Context(), path, []Interface{
		{NS: "a", Netns: a, If: "veth_a"},
		{NS: "a", Netns: a, If: "nope0"},
	})
	if err == nil || !strings.Contains(err.Error(), "a/nope0") {
		t.Fatalf("Start with a missing interface: error %v, want one naming a/nope0", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed Start left %s behind (stat: %v)", path, err)
	}
}

func TestCaptureNoInterfaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "capture.pcapng")
	if _, err := Start(t.Context(), path, nil); !errors.Is(err, ErrNoInterfaces) {
		t.Fatalf("Start(nil) error = %v, want ErrNoInterfaces", err)
	}
}

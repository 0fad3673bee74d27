package capture

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/trace"
	"github.com/vishvananda/netlink"
)

// captureModes are the two ways a capture reads: one ring per namespace
// (Linux 6.15 and later) and one per interface. Both run on any kernel.
var captureModes = []struct {
	name         string
	perNamespace bool
}{{"per-namespace", true}, {"per-interface", false}}

// capturedFrame is one packet block of a capture file.
type capturedFrame struct {
	iface         string
	data          []byte
	length        int
	outbound      bool
	at            int64
	tag           trace.Tag
	tagged, isUDP bool
}

// readCaptureFile returns every packet of a pcapng file, in file order,
// and its interfaces with their statistics.
func readCaptureFile(t *testing.T, path string) ([]capturedFrame, []pcapgo.NgInterface) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	var frames []capturedFrame
	for {
		data, ci, opts, err := r.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		intf, err := r.Interface(ci.InterfaceIndex)
		if err != nil {
			t.Fatal(err)
		}
		fr := capturedFrame{iface: intf.Name, data: slices.Clone(data), length: ci.Length, at: ci.Timestamp.UnixNano()}
		fr.outbound = opts.Flags != nil && opts.Flags.Direction == pcapgo.NgEpbFlagDirectionOutbound
		if p, err := trace.Decode(trace.Event{Layer: trace.LayerEthernet, Data: data}); err == nil && p.Proto == trace.ProtoUDP {
			fr.isUDP, fr.tag, fr.tagged = true, p.Tag, p.Tagged
		}
		frames = append(frames, fr)
	}
	var ifs []pcapgo.NgInterface
	for i := range r.NInterfaces() {
		intf, err := r.Interface(i)
		if err != nil {
			t.Fatal(err)
		}
		ifs = append(ifs, intf)
	}
	return frames, ifs
}

// setUp brings up interface name in ns.
func setUp(t *testing.T, ns netns.Handle, name string) {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(link); err != nil {
		t.Fatalf("%s: set up: %v", name, err)
	}
}

// sendUDP sends one datagram per payload from ns to dst without waiting
// for anything, and returns how many the kernel took.
func sendUDP(t *testing.T, ns netns.Handle, dst *net.UDPAddr, payloads ...[]byte) int {
	t.Helper()
	var conn *net.UDPConn
	if err := netns.Do(ns, func() (err error) {
		conn, err = net.ListenUDP("udp4", nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sent := 0
	for _, p := range payloads {
		if _, err := conn.WriteToUDP(p, dst); err == nil {
			sent++
		}
	}
	return sent
}

// statsByName indexes Stop's counts by their names.
func statsByName(stats []Stats) map[string]Stats {
	m := map[string]Stats{}
	for _, st := range stats {
		m[st.Name] = st
	}
	return m
}

// TestCaptureRingFrames: in both modes, every frame of every interface
// asked for reaches the file whole (a 60,000-byte loopback frame too),
// each interface's in the order sent, the file in time order, each frame
// with its direction; frames of an interface not asked for (b's lo, in a
// namespace whose ring sees all of them) do not.
func TestCaptureRingFrames(t *testing.T) {
	for _, mode := range captureModes {
		t.Run(mode.name, func(t *testing.T) {
			a, b := captureVethPair(t)
			setUp(t, a, "lo")
			setUp(t, b, "lo")
			path := filepath.Join(t.TempDir(), "capture.pcapng")
			c, err := startCapture(t.Context(), path, []Interface{
				{NS: "a", Netns: a, If: "veth_a"},
				{NS: "a", Netns: a, If: "lo"},
				{NS: "b", Netns: b, If: "veth_b"},
			}, captureOptions{perNamespace: mode.perNamespace})
			if err != nil {
				t.Fatal(err)
			}
			// In rounds: the kernel queues only so many datagrams while
			// it resolves b's address.
			var tags []trace.Tag
			for round := range 6 {
				var sent []trace.Tag
				for i := range 50 {
					sent = append(sent, trace.Tag(0xa000+50*round+i))
				}
				captureSendTagged(t, a, b, sent)
				tags = append(tags, sent...)
			}
			big := append(taggedPayload(0xb16), make([]byte, 60000)...)
			loopback := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9997}
			if sendUDP(t, a, loopback, big) != 1 {
				t.Fatal("the big datagram was not sent")
			}
			if sendUDP(t, b, loopback, taggedPayload(0x10b)) != 1 {
				t.Fatal("b's loopback datagram was not sent")
			}
			stats, err := c.Stop()
			if err != nil {
				t.Fatalf("Stop: %v", err)
			}
			for _, st := range stats {
				if st.Err != nil || st.Dropped != 0 || strings.HasSuffix(st.Name, "/*") {
					t.Errorf("stats %+v; want no error and nothing lost", st)
				}
			}

			frames, _ := readCaptureFile(t, path)
			seen := map[string][]trace.Tag{}
			var last int64
			for _, f := range frames {
				if f.at < last {
					t.Errorf("%s frame at %d after one at %d: not in time order", f.iface, f.at, last)
				}
				last = f.at
				if len(f.data) != f.length {
					t.Errorf("%s frame of %d bytes kept %d: not whole", f.iface, f.length, len(f.data))
				}
				if !f.tagged {
					continue
				}
				// Datagrams leave a and arrive in b; on lo each is seen
				// leaving and arriving.
				wantOut := f.iface == "a/veth_a" || f.iface == "a/lo" && len(seen["a/lo"])%2 == 0
				if f.outbound != wantOut {
					t.Errorf("%s tagged %v: outbound %v, want %v", f.iface, f.tag, f.outbound, wantOut)
				}
				seen[f.iface] = append(seen[f.iface], f.tag)
			}
			for _, name := range []string{"a/veth_a", "b/veth_b"} {
				if !slices.Equal(seen[name], tags) {
					t.Errorf("tagged datagrams on %s: %d, want the %d sent, in order", name, len(seen[name]), len(tags))
				}
			}
			if want := []trace.Tag{0xb16, 0xb16}; !slices.Equal(seen["a/lo"], want) {
				t.Errorf("tagged datagrams on a/lo: %v, want %v (the big one leaving and arriving)", seen["a/lo"], want)
			}
			for name := range seen {
				if !slices.Contains([]string{"a/veth_a", "a/lo", "b/veth_b"}, name) {
					t.Errorf("frames of %s, which was not asked for", name)
				}
			}
		})
	}
}

// TestCaptureRingOverflow: while the reader is held, a burst of 3,000
// datagrams overflows the rings. Every datagram is then either in the file
// or counted as lost: on the interface where a ring serves one, else on
// its namespace's "ns/*" entry and interface block, whose statistics say
// so; the frames kept are whole.
func TestCaptureRingOverflow(t *testing.T) {
	const burst = 3000
	for _, mode := range captureModes {
		t.Run(mode.name, func(t *testing.T) {
			a, b := captureVethPair(t)
			path := filepath.Join(t.TempDir(), "capture.pcapng")
			hold := make(chan struct{})
			c, err := startCapture(t.Context(), path, []Interface{
				{NS: "a", Netns: a, If: "veth_a"},
				{NS: "a", Netns: a, If: "lo"},
				{NS: "b", Netns: b, If: "veth_b"},
			}, captureOptions{perNamespace: mode.perNamespace, readAfter: hold})
			if err != nil {
				close(hold)
				t.Fatal(err)
			}
			// One datagram that b receives first: the veth pair carries
			// frames and a knows b's address before the burst.
			captureSendTagged(t, a, b, []trace.Tag{0xc0})
			payloads := make([][]byte, burst)
			for i := range payloads {
				payloads[i] = append(taggedPayload(trace.Tag(0xc000+i)), make([]byte, 1000)...)
			}
			// No listener: b answers with (rate-limited) port
			// unreachables, a few more frames.
			sent := sendUDP(t, a, &net.UDPAddr{IP: net.IPv4(10, 99, 0, 2), Port: 9999}, payloads...)
			close(hold)
			stats, err := c.Stop()
			if err != nil {
				t.Fatalf("Stop: %v", err)
			}
			byName := statsByName(stats)
			aLost := byName["a/veth_a"].Dropped
			if mode.perNamespace {
				aLost = byName["a/*"].Dropped
				if byName["a/veth_a"].Dropped != 0 || byName["a/lo"].Dropped != 0 {
					t.Errorf("a's ring serves two interfaces, yet its losses are counted on one: %+v", stats)
				}
			} else if _, ok := byName["a/*"]; ok {
				t.Errorf("rings per interface, yet a namespace entry: %+v", stats)
			}
			if aLost == 0 || byName["b/veth_b"].Dropped == 0 {
				t.Errorf("a burst of %d datagrams into held rings lost nothing: %+v", sent, stats)
			}

			frames, ifs := readCaptureFile(t, path)
			out := uint64(0)
			for _, f := range frames {
				if len(f.data) != f.length {
					t.Errorf("%s frame of %d bytes kept %d: not whole", f.iface, f.length, len(f.data))
				}
				if f.iface == "a/veth_a" && f.tagged {
					out++
				}
			}
			if out+aLost < uint64(sent) {
				t.Errorf("%d datagrams sent; %d in the file on a/veth_a and %d lost: some are unaccounted for", sent, out, aLost)
			}
			for _, intf := range ifs {
				st, ok := byName[intf.Name]
				if !ok {
					t.Errorf("interface block %s has no stats entry", intf.Name)
					continue
				}
				dropped := intf.Statistics.PacketsDropped
				if mode.perNamespace && strings.HasPrefix(intf.Name, "a/") && intf.Name != "a/*" {
					if dropped != pcapgo.NgNoValue64 {
						t.Errorf("%s: statistics say %d dropped; its namespace counts them, not it", intf.Name, dropped)
					}
				} else if dropped != st.Dropped {
					t.Errorf("%s: statistics say %d dropped, Stop %d", intf.Name, dropped, st.Dropped)
				}
			}
		})
	}
}

// TestCaptureInterfaceDown: an interface that goes down and up again
// (which a socket bound to it hears as ENETDOWN) is captured on after.
func TestCaptureInterfaceDown(t *testing.T) {
	for _, mode := range captureModes {
		t.Run(mode.name, func(t *testing.T) {
			a, b := captureVethPair(t)
			path := filepath.Join(t.TempDir(), "capture.pcapng")
			c, err := startCapture(t.Context(), path, []Interface{
				{NS: "a", Netns: a, If: "veth_a"},
				{NS: "b", Netns: b, If: "veth_b"},
			}, captureOptions{perNamespace: mode.perNamespace})
			if err != nil {
				t.Fatal(err)
			}
			captureSendTagged(t, a, b, []trace.Tag{0xd1})
			h, err := netlink.NewHandleAt(b)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			link, err := h.LinkByName("veth_b")
			if err != nil {
				t.Fatal(err)
			}
			if err := h.LinkSetDown(link); err != nil {
				t.Fatal(err)
			}
			setUp(t, b, "veth_b")
			captureSendTagged(t, a, b, []trace.Tag{0xd2, 0xd3})
			stats, err := c.Stop()
			if err != nil {
				t.Fatalf("Stop: %v", err)
			}
			for _, st := range stats {
				if st.Err != nil {
					t.Errorf("%s: %v; an interface going down must not end its capture", st.Name, st.Err)
				}
			}
			frames, _ := readCaptureFile(t, path)
			var got []trace.Tag
			for _, f := range frames {
				if f.iface == "b/veth_b" && f.tagged {
					got = append(got, f.tag)
				}
			}
			if want := []trace.Tag{0xd1, 0xd2, 0xd3}; !slices.Equal(got, want) {
				t.Errorf("tagged datagrams on b/veth_b: %v, want %v", got, want)
			}
		})
	}
}

// TestHaltWaitsWithFirstInterfaceDown: halt must wait for an RCU grace
// period after the rings refuse frames, whatever the state of the ring it
// quiesces through, or Stop reads the block the kernel was filling while
// a frame is still being copied into it (the frame count is raised
// before the copy). One ring per interface (kernels before 6.15) is bound
// to its interface, and a socket whose interface is down is unhooked:
// rebinding such a socket waits for nothing. Here the first interface,
// the ring halt quiesced through, is down. A grace period takes
// milliseconds; a rebind that waits for none, microseconds.
func TestHaltWaitsWithFirstInterfaceDown(t *testing.T) {
	a, b := captureVethPair(t)
	h, err := netlink.NewHandleAt(a)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	link, err := h.LinkByName("veth_a")
	if err != nil {
		t.Fatal(err)
	}
	c, err := startCapture(t.Context(), filepath.Join(t.TempDir(), "capture.pcapng"), []Interface{
		{NS: "a", Netns: a, If: "veth_a"},
		{NS: "b", Netns: b, If: "veth_b"},
	}, captureOptions{perNamespace: false})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if err := h.LinkSetDown(link); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.halt()
	if took := time.Since(start); took < 200*time.Microsecond {
		t.Errorf("halt took %v with a/veth_a down: it waited for no grace period, so frames still being written to b/veth_b's ring may be read", took)
	}
}

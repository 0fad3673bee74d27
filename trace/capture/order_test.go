package capture

import (
	"context"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/trace"
	"golang.org/x/sys/unix"
)

// TestSpoolMerge: frames that arrive out of order on each interface, some
// spilled to disk in several runs and some still in memory, come out of
// the merge in time order, ties kept in interface then arrival order.
func TestSpoolMerge(t *testing.T) {
	dir := t.TempDir()
	base := time.Unix(1700000000, 0)
	at := func(us int) time.Time { return base.Add(time.Duration(us) * time.Microsecond) }
	// Each frame's data is its time, so the check can read it back.
	spools := []*spool{newSpool(dir, 40), newSpool(dir, 1<<20), newSpool(dir, 25)}
	times := [][]int{
		{5, 3, 9, 1, 7, 2, 8, 8, 4, 6},
		{2, 4, 6},
		{10, 1, 5, 5, 0, 3},
	}
	var want []int
	for i, ts := range times {
		for _, us := range ts {
			spools[i].add([]byte(at(us).Format("05.000000")), frameInfo{at: at(us), length: 100})
			want = append(want, us)
		}
	}
	slices.Sort(want)
	if len(spools[0].runs) == 0 || len(spools[2].runs) == 0 {
		t.Fatalf("small spools did not spill: runs %d, %d", len(spools[0].runs), len(spools[2].runs))
	}
	var got []int
	var last mergedFrame
	err := mergeSpools(spools, func(f mergedFrame) error {
		us := int(time.Unix(0, f.at).Sub(base) / time.Microsecond)
		if string(f.data) != at(us).Format("05.000000") || f.info.length != 100 {
			t.Errorf("frame at +%dus carries %q, length %d", us, f.data, f.info.length)
		}
		if len(got) > 0 && f.at == last.at && f.iface < last.iface {
			t.Errorf("tie at +%dus: interface %d after %d", us, f.iface, last.iface)
		}
		got, last = append(got, us), f
		return nil
	})
	for _, sp := range spools {
		sp.close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("merged times %v, want %v", got, want)
	}
}

// TestCaptureOrderAndAnnotations: a capture across two interfaces is in
// strict time order (capinfos), the packets of an annotated probe carry
// its comment on both interfaces (a Wireshark filter on the comment finds
// exactly them), packets of other probes carry none, and a drop event
// becomes a packet of the "drops" interface whose comment gives reason,
// place and the probe.
func TestCaptureOrderAndAnnotations(t *testing.T) {
	for _, tool := range []string{"tshark", "capinfos"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian: tshark)", tool)
		}
	}
	a, b := captureVethPair(t)
	path := filepath.Join(t.TempDir(), "capture.pcapng")
	c, err := Start(t.Context(), path, []Interface{
		{NS: "a", Netns: a, If: "veth_a"},
		{NS: "b", Netns: b, If: "veth_b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	captureSendTagged(t, a, b, []trace.Tag{0xc1})
	from := time.Now()
	captureSendTagged(t, a, b, []trace.Tag{0xc2, 0xc2})
	to := time.Now()
	captureSendTagged(t, a, b, []trace.Tag{0xc3})
	var mono unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
		t.Fatal(err)
	}
	c.Annotate(Annotation{
		Probe:   trace.Probe{Tag: 0xc2, Proto: trace.ProtoUDP, SrcNS: "a"},
		From:    from,
		To:      to,
		Comment: "capture-test: udp a -> 10.99.0.2:9999",
		Drops: []trace.Event{{
			Kind: trace.KindDrop, Time: time.Duration(mono.Nano()) - time.Millisecond, NS: "b", If: "veth_b", Dir: trace.Ingress,
			Layer: trace.LayerIPv4, Data: udpDatagram(t, netip.MustParseAddrPort("10.99.0.1:40000"), netip.MustParseAddrPort("10.99.0.2:9999"), taggedPayload(0xc2)),
			Len: 44, ReasonName: "NETFILTER_DROP", Location: "nf_hook_slow+0x9c",
		}},
	})
	if _, err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "capinfos", "-o", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Strict time order:   True") {
		t.Errorf("capinfos -o %s: %v\n%s", path, err, out)
	}
	fields := func(filter string, fields ...string) []string {
		args := []string{"-r", path, "-Y", filter, "-T", "fields", "-E", "separator=|"}
		for _, f := range fields {
			args = append(args, "-e", f)
		}
		out, err := exec.CommandContext(ctx, "tshark", args...).Output()
		if err != nil {
			t.Fatalf("tshark %s: %v", strings.Join(args, " "), err)
		}
		return strings.Fields(strings.ReplaceAll(string(out), " ", "_"))
	}
	probe := fields(`frame.comment contains "udp a ->" && !(frame.comment contains "DROPPED")`, "frame.interface_name", "udp.payload")
	slices.Sort(probe)
	if len(probe) != 4 || !strings.HasPrefix(probe[0], "a/veth_a|") || !strings.HasPrefix(probe[3], "b/veth_b|") {
		t.Errorf("packets with the probe's comment: %q; want its 2 datagrams on each interface", probe)
	}
	for _, p := range probe {
		if !strings.Contains(p, "00000000000000c2") {
			t.Errorf("a packet of another probe carries the comment: %s", p)
		}
	}
	req := fields(`frame.comment == "capture-test: udp a -> 10.99.0.2:9999 (request)"`, "frame.interface_name", "frame.packet_flags_direction")
	if len(req) != 4 {
		t.Errorf("request comments with direction: %q; want 4", req)
	}
	drops := fields(`frame.comment contains "DROPPED: NETFILTER_DROP in b/veth_b at nf_hook_slow+0x9c; capture-test: udp a ->"`, "frame.interface_name", "udp.dstport")
	if !slices.Equal(drops, []string{"drops|9999"}) {
		t.Errorf("drop packets: %q; want one on the drops interface, decoded as the UDP datagram", drops)
	}
}

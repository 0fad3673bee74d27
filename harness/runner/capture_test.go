package runner

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// TestCaptureForWireshark runs a scenario whose FORWARD policy drops a
// container's ping, traced, with a capture, and reads the capture with
// Wireshark's own tools: packets in strict time order across interfaces,
// every packet of a probe commented with scenario and check (so one probe
// is one display filter away), with its direction, and the drop written as
// a packet whose comment gives the kernel's reason and where it happened.
func TestCaptureForWireshark(t *testing.T) {
	privtest.Require(t)
	for _, tool := range []string{"tshark", "capinfos"} {
		if _, err := exec.LookPath(tool); err != nil {
			privtest.Unavailable(t, tool+" (Debian: tshark)")
		}
	}
	scs, err := scenario.Load("../../scenarios/broken/forward-policy-drop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res := Run(context.Background(), scs, Options{Trace: TraceAlways, PcapDir: dir, Store: runs.Store{Dir: t.TempDir()}})
	s := res.Scenarios[0]
	if !s.Passed {
		t.Fatalf("%s failed: %+v", s.Name, s)
	}
	path := filepath.Join(dir, s.Name+".pcapng")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "capinfos", "-o", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Strict time order:   True") {
		t.Errorf("capinfos -o %s: %v\n%s", path, err, out)
	}
	tshark := func(filter string, fields ...string) []string {
		args := []string{"-r", path, "-Y", filter, "-T", "fields", "-E", "separator=|"}
		for _, f := range fields {
			args = append(args, "-e", f)
		}
		out, err := exec.CommandContext(ctx, "tshark", args...).Output()
		if err != nil {
			t.Fatalf("tshark %s: %v", strings.Join(args, " "), err)
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}

	// The first check: ping ns1 -> 10.0.0.1, request and reply, at ns1
	// and host.
	const first = "forward-policy-drop: ping ns1 -> 10.0.0.1"
	lines := tshark(`frame.comment contains "ping ns1 -> 10.0.0.1"`, "frame.interface_name", "frame.packet_flags_direction", "icmp.type", "frame.comment")
	seen := map[string]bool{}
	for _, l := range lines {
		f := strings.Split(l, "|")
		if len(f) != 4 || !strings.HasPrefix(f[3], first+" (") {
			t.Errorf("unexpected line %q", l)
			continue
		}
		seen[f[0]+" "+f[1]+" "+f[2]] = true
	}
	// Direction: 1 inbound, 2 outbound; ICMP type 8 request, 0 reply.
	for _, want := range []string{"ns1/veth_1 0x00000002 8", "ns1/veth_1 0x00000001 0", "host/veth1 0x00000001 8"} {
		if !seen[want] {
			t.Errorf("no packet %q (interface, direction, icmp type) among the first probe's: %q", want, lines)
		}
	}

	// The dropped probe: its request leaves ns1, and the kernel's drop is
	// a packet of the drops interface.
	drops := tshark(`frame.comment contains "DROPPED" && frame.comment contains "the FORWARD policy drops"`, "frame.interface_name", "frame.comment", "icmp.type")
	if len(drops) == 0 || drops[0] == "" {
		t.Fatalf("no drop packet for the dropped probe in %s", path)
	}
	f := strings.Split(drops[0], "|")
	if f[0] != "drops" || !strings.Contains(f[1], "NETFILTER_DROP") || !strings.Contains(f[1], " in host") || f[2] != "8" {
		t.Errorf("drop packet %q; want one on the drops interface naming NETFILTER_DROP in host, an echo request", drops[0])
	}
}

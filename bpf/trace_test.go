package bpf

import (
	"testing"

	"github.com/cilium/ebpf"
)

// TestTraceObject checks the committed object against what package trace
// loads from it: program and map types, and the attach points. It catches a
// stale or hand-edited object without needing root.
func TestTraceObject(t *testing.T) {
	spec, err := LoadTrace()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		typ      ebpf.ProgramType
		attachTo string
	}{
		{TraceProgTcIngress, ebpf.SchedCLS, ""},
		{TraceProgTcEgress, ebpf.SchedCLS, ""},
		{TraceProgKfreeSkbReason, ebpf.Tracing, "kfree_skb"},
		{TraceProgKfreeSkbNoreason, ebpf.RawTracepoint, "kfree_skb"},
	} {
		p := spec.Programs[tc.name]
		if p == nil {
			t.Errorf("program %s missing", tc.name)
			continue
		}
		if p.Type != tc.typ || p.AttachTo != tc.attachTo {
			t.Errorf("program %s: type %s attached to %q, want %s attached to %q",
				tc.name, p.Type, p.AttachTo, tc.typ, tc.attachTo)
		}
	}
	for name, typ := range map[string]ebpf.MapType{
		TraceMapEvents:      ebpf.RingBuf,
		TraceMapNetnsFilter: ebpf.Hash,
		TraceMapLost:        ebpf.PerCPUArray,
	} {
		m := spec.Maps[name]
		if m == nil {
			t.Errorf("map %s missing", name)
			continue
		}
		if m.Type != typ {
			t.Errorf("map %s: type %s, want %s", name, m.Type, typ)
		}
	}
	if got := spec.Maps[TraceMapNetnsFilter]; got != nil && (got.KeySize != 8 || got.ValueSize != 1) {
		t.Errorf("netns_filter: key %d value %d bytes, want 8 (netns cookie) and 1", got.KeySize, got.ValueSize)
	}
}

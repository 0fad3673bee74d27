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
		TraceMapRings:       ebpf.ArrayOfMaps,
		TraceMapNetnsFilter: ebpf.Hash,
		TraceMapLost:        ebpf.PerCPUHash,
		TraceMapLocalAddrs:  ebpf.Hash,
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
	// A namespace's entries are keyed by its cookie; netns_filter gives
	// the slot in rings of the ring buffer its tracer reads.
	for _, name := range []string{TraceMapNetnsFilter, TraceMapLost} {
		if got := spec.Maps[name]; got != nil && got.KeySize != 8 {
			t.Errorf("%s: key %d bytes, want 8 (netns cookie)", name, got.KeySize)
		}
	}
	if got := spec.Maps[TraceMapNetnsFilter]; got != nil && got.ValueSize != 4 {
		t.Errorf("%s: value %d bytes, want 4 (a slot in %s)", TraceMapNetnsFilter, got.ValueSize, TraceMapRings)
	}
	if got := spec.Maps[TraceMapRings]; got != nil && (got.InnerMap == nil || got.InnerMap.Type != ebpf.RingBuf) {
		t.Errorf("%s: inner map %v, want a ring buffer", TraceMapRings, got.InnerMap)
	}
}

package trace

import (
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// buildSpec turns hand-made types into a btf.Spec, standing in for a
// kernel's BTF of a given shape.
func buildSpec(t *testing.T, types ...btf.Type) *btf.Spec {
	t.Helper()
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := b.Spec()
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func dropReasonEnum(values ...btf.EnumValue) *btf.Enum {
	return &btf.Enum{Name: "skb_drop_reason", Size: 4, Values: values}
}

func TestDropReasons(t *testing.T) {
	// The shape of 6.x: two non-drop values, then SKB_DROP_REASON_*.
	spec := buildSpec(t, dropReasonEnum(
		btf.EnumValue{Name: "SKB_NOT_DROPPED_YET", Value: 0},
		btf.EnumValue{Name: "SKB_CONSUMED", Value: 1},
		btf.EnumValue{Name: "SKB_DROP_REASON_NOT_SPECIFIED", Value: 2},
		btf.EnumValue{Name: "SKB_DROP_REASON_NETFILTER_DROP", Value: 12},
	))
	reasons, err := loadDropReasons(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		reason uint32
		want   string
	}{
		{0, "SKB_NOT_DROPPED_YET"},
		{1, "SKB_CONSUMED"},
		{2, "NOT_SPECIFIED"},
		{12, "NETFILTER_DROP"},
		{0x10000, "UNKNOWN(65536)"},
	} {
		if got := reasons.name(tc.reason); got != tc.want {
			t.Errorf("name(%d) = %q, want %q", tc.reason, got, tc.want)
		}
	}
}

func TestDropReasonsMissing(t *testing.T) {
	// Kernels before 5.17 have no enum skb_drop_reason.
	spec := buildSpec(t, &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed})
	if _, err := loadDropReasons(spec); !errors.Is(err, btf.ErrNotFound) {
		t.Fatalf("loadDropReasons without the enum: err = %v, want btf.ErrNotFound", err)
	}
}

func TestDropReasonsFromRunningKernel(t *testing.T) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Skipf("skipped: needs kernel BTF: %v", err)
	}
	reasons, err := loadDropReasons(spec)
	if errors.Is(err, btf.ErrNotFound) {
		t.Skip("skipped: kernel has no enum skb_drop_reason (before 5.17)")
	}
	if err != nil {
		t.Fatal(err)
	}
	var netfilter bool
	for v, name := range reasons {
		if strings.HasPrefix(name, dropReasonPrefix) {
			t.Errorf("reason %d: name %q keeps the prefix", v, name)
		}
		netfilter = netfilter || name == "NETFILTER_DROP"
	}
	if !netfilter {
		t.Errorf("no NETFILTER_DROP among %d reasons", len(reasons))
	}
}

// kfreeSkbProto builds btf_trace_kfree_skb with the given parameters after
// the context pointer.
func kfreeSkbProto(params ...btf.FuncParam) *btf.Typedef {
	voidPtr := &btf.Pointer{Target: &btf.Void{}}
	all := append([]btf.FuncParam{{Type: voidPtr}}, params...)
	return &btf.Typedef{
		Name: "btf_trace_kfree_skb",
		Type: &btf.Pointer{Target: &btf.FuncProto{Return: &btf.Void{}, Params: all}},
	}
}

func TestKfreeSkbHasReason(t *testing.T) {
	skb := &btf.Pointer{Target: &btf.Struct{Name: "sk_buff"}}
	location := &btf.Pointer{Target: &btf.Void{}}
	reason := dropReasonEnum(btf.EnumValue{Name: "SKB_DROP_REASON_NOT_SPECIFIED"})
	sock := &btf.Pointer{Target: &btf.Struct{Name: "sock"}}
	u32 := &btf.Int{Name: "u32", Size: 4}

	for _, tc := range []struct {
		name  string
		types []btf.Type
		want  bool
	}{
		{"5.15: skb, location", []btf.Type{kfreeSkbProto(
			btf.FuncParam{Name: "skb", Type: skb}, btf.FuncParam{Name: "location", Type: location})}, false},
		{"5.17: skb, location, reason", []btf.Type{kfreeSkbProto(
			btf.FuncParam{Name: "skb", Type: skb}, btf.FuncParam{Name: "location", Type: location},
			btf.FuncParam{Name: "reason", Type: reason})}, true},
		{"6.11: skb, location, reason, rx_sk", []btf.Type{kfreeSkbProto(
			btf.FuncParam{Name: "skb", Type: skb}, btf.FuncParam{Name: "location", Type: location},
			btf.FuncParam{Name: "reason", Type: reason}, btf.FuncParam{Name: "rx_sk", Type: sock})}, true},
		{"third argument not the enum", []btf.Type{kfreeSkbProto(
			btf.FuncParam{Name: "skb", Type: skb}, btf.FuncParam{Name: "location", Type: location},
			btf.FuncParam{Name: "x", Type: u32})}, false},
		{"no tracepoint", []btf.Type{u32}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := kfreeSkbHasReason(buildSpec(t, tc.types...))
			if got != tc.want {
				t.Fatalf("kfreeSkbHasReason = %v (%s), want %v", got, why, tc.want)
			}
			if !got && why == "" {
				t.Errorf("missing feature without a reason")
			}
		})
	}
}

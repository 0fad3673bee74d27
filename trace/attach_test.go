package trace

import (
	"errors"
	"testing"
)

func TestParseAttachMode(t *testing.T) {
	for _, m := range []AttachMode{AttachAuto, AttachTCX, AttachClsact} {
		got, err := ParseAttachMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseAttachMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	for _, s := range []string{"", "TCX", "tc", "xdp"} {
		if _, err := ParseAttachMode(s); err == nil {
			t.Errorf("ParseAttachMode(%q) succeeded", s)
		}
	}
}

func TestAttachModeResolve(t *testing.T) {
	both := Features{HasTCX: true, HasClsact: true}
	onlyClsact := Features{HasClsact: true, Missing: map[Feature]string{FeatureTCX: "kernel has no TCX (needs Linux 6.6)"}}
	onlyTCX := Features{HasTCX: true, Missing: map[Feature]string{FeatureClsact: "no clsact"}}
	neither := Features{Missing: map[Feature]string{FeatureTCX: "no tcx", FeatureClsact: "no clsact"}}
	for _, tc := range []struct {
		name      string
		mode      AttachMode
		feat      Features
		ephemeral bool
		want      AttachMode
		wantErr   bool
	}{
		{"auto prefers tcx for namespaces that outlive the trace", AttachAuto, both, false, AttachTCX, false},
		{"auto prefers clsact for ephemeral namespaces", AttachAuto, both, true, AttachClsact, false},
		{"auto takes tcx for ephemeral namespaces without clsact", AttachAuto, onlyTCX, true, AttachTCX, false},
		{"auto falls back to clsact", AttachAuto, onlyClsact, false, AttachClsact, false},
		{"auto with neither", AttachAuto, neither, false, 0, true},
		{"forced clsact where tcx exists", AttachClsact, both, false, AttachClsact, false},
		{"forced tcx for ephemeral namespaces", AttachTCX, both, true, AttachTCX, false},
		{"forced tcx on an old kernel", AttachTCX, onlyClsact, false, 0, true},
		{"forced clsact without it", AttachClsact, neither, false, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.mode.resolve(tc.feat, tc.ephemeral)
			if tc.wantErr {
				if !errors.Is(err, ErrUnavailable) {
					t.Fatalf("resolve = %v, %v; want an error wrapping ErrUnavailable", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("resolve = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestFeaturesUsable(t *testing.T) {
	noBTF := Features{CanLoad: true, HasTCX: true,
		Missing: map[Feature]string{FeatureBTF: "kernel has no BTF (/sys/kernel/btf/vmlinux missing)"}}
	err := noBTF.usable()
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("usable without BTF = %v, want ErrUnavailable", err)
	}
	if want := "tracing off: kernel has no BTF (/sys/kernel/btf/vmlinux missing)"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if err := (Features{HasBTF: true, CanLoad: true, HasClsact: true}).usable(); err != nil {
		t.Errorf("usable with BTF, loading and clsact = %v", err)
	}
	// A Features built by hand, without reasons, still says what is missing.
	err = Features{HasBTF: true, HasTCX: true}.usable()
	if want := "tracing off: BPF program loading not available"; err == nil || err.Error() != want {
		t.Errorf("usable without loading = %v, want %q", err, want)
	}
}

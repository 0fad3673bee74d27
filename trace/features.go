package trace

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/hopcheck/hopcheck/internal/nl"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/internal/netns"
)

// Feature names a kernel capability the tracer depends on. The names are
// the ones shown to users when a feature is missing.
type Feature string

// The features ProbeFeatures looks for.
const (
	// FeatureBTF: the kernel describes its own types (/sys/kernel/btf/vmlinux),
	// which CO-RE programs and drop-reason names need.
	FeatureBTF Feature = "BTF"
	// FeatureLoad: this process may load tc and tracing programs and ring
	// buffers (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON or root).
	FeatureLoad Feature = "BPF program loading"
	// FeatureTCX: tc programs attach through BPF links (Linux 6.6).
	FeatureTCX Feature = "TCX"
	// FeatureClsact: the clsact qdisc with cls_bpf direct-action filters.
	FeatureClsact Feature = "clsact"
	// FeatureKfreeSkbReason: the skb:kfree_skb tracepoint carries the drop
	// reason (Linux 5.17).
	FeatureKfreeSkbReason Feature = "kfree_skb drop reason"
	// FeatureNetnsCookie: user space can read a namespace's cookie
	// (SO_NETNS_COOKIE, Linux 5.14). Without it the programs and the
	// Tracer know namespaces by inode number instead.
	FeatureNetnsCookie Feature = "SO_NETNS_COOKIE"
)

// allFeatures lists the features in the order String shows them.
var allFeatures = []Feature{FeatureBTF, FeatureLoad, FeatureTCX, FeatureClsact, FeatureKfreeSkbReason, FeatureNetnsCookie}

// vmlinuxBTF is where the kernel exposes its BTF.
const vmlinuxBTF = "/sys/kernel/btf/vmlinux"

// Features says what the running kernel lets the tracer do. ProbeFeatures fills it
// once; the rest of the package asks it instead of trying things itself.
type Features struct {
	HasBTF            bool
	CanLoad           bool
	HasTCX            bool
	HasClsact         bool
	KfreeSkbHasReason bool
	HasNetnsCookie    bool

	// Missing says, for each feature that is false, why, in words a user
	// can act on ("kernel has no BTF (/sys/kernel/btf/vmlinux missing)").
	Missing map[Feature]string
}

// ProbeFeatures tests the running kernel for every Feature. It needs root for the
// load and attach probes; without it they are reported missing with the
// reason. The clsact probe works in a namespace of its own, created and
// deleted here, so nothing outside it changes.
//
// It is where tracing starts, so it first lifts the process's
// RLIMIT_MEMLOCK where the kernel still charges BPF memory to it (before
// 5.11): there the default 64 KiB does not hold the ring buffer.
func ProbeFeatures() Features {
	f := Features{Missing: make(map[Feature]string)}
	miss := func(name Feature, why string) { f.Missing[name] = why }

	memlockErr := rlimit.RemoveMemlock()

	spec, err := btf.LoadKernelSpec()
	switch {
	case err == nil:
		f.HasBTF = true
	case errors.Is(err, os.ErrNotExist), errors.Is(err, ebpf.ErrNotSupported):
		miss(FeatureBTF, "kernel has no BTF ("+vmlinuxBTF+" missing)")
	default:
		miss(FeatureBTF, fmt.Sprintf("kernel BTF unreadable: %v", err))
	}

	if why := probeLoad(); why != "" {
		if memlockErr != nil {
			why += fmt.Sprintf(" (this kernel charges BPF memory to RLIMIT_MEMLOCK, and raising it failed: %v)", memlockErr)
		}
		miss(FeatureLoad, why)
	} else {
		f.CanLoad = true
	}

	if !f.CanLoad {
		miss(FeatureTCX, "cannot load BPF programs")
		miss(FeatureClsact, "cannot load BPF programs")
	} else {
		if why := probeTCX(); why != "" {
			miss(FeatureTCX, why)
		} else {
			f.HasTCX = true
		}
		if why := probeClsact(); why != "" {
			miss(FeatureClsact, why)
		} else {
			f.HasClsact = true
		}
	}

	if spec == nil {
		miss(FeatureKfreeSkbReason, "kernel has no BTF to describe the tracepoint")
	} else if ok, why := kfreeSkbHasReason(spec); ok {
		f.KfreeSkbHasReason = true
	} else {
		miss(FeatureKfreeSkbReason, why)
	}

	if why := probeNetnsCookie(); why != "" {
		miss(FeatureNetnsCookie, why)
	} else {
		f.HasNetnsCookie = true
	}
	return f
}

// String lists each feature with yes/no and, for missing ones, the reason.
func (f Features) String() string {
	var b strings.Builder
	for _, name := range allFeatures {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		if why, missing := f.Missing[name]; missing {
			fmt.Fprintf(&b, "%s: no (%s)", name, why)
		} else {
			fmt.Fprintf(&b, "%s: yes", name)
		}
	}
	return b.String()
}

// usable returns nil if tracing can run at all, or an error wrapping
// ErrUnavailable that says why not.
func (f Features) usable() error {
	switch {
	case !f.HasBTF:
		return fmt.Errorf("%w: %s", ErrUnavailable, f.why(FeatureBTF))
	case !f.CanLoad:
		return fmt.Errorf("%w: %s", ErrUnavailable, f.why(FeatureLoad))
	case !f.HasTCX && !f.HasClsact:
		return fmt.Errorf("%w: no way to attach tc programs (TCX: %s; clsact: %s)",
			ErrUnavailable, f.why(FeatureTCX), f.why(FeatureClsact))
	}
	return nil
}

// why returns the recorded reason a feature is missing.
func (f Features) why(name Feature) string {
	if why, ok := f.Missing[name]; ok {
		return why
	}
	return string(name) + " not available"
}

// probeLoad checks that every kind of object the tracer loads can be
// loaded, and returns why not if one cannot.
func probeLoad() string {
	// No probe for ebpf.Tracing: cilium/ebpf's loads an fentry program,
	// which needs ftrace direct calls that tp_btf does not; loading the
	// real programs in New is the test for tp_btf.
	for _, pt := range []ebpf.ProgramType{ebpf.SchedCLS, ebpf.RawTracepoint} {
		if err := features.HaveProgramType(pt); err != nil {
			return loadFailure(fmt.Sprintf("%s programs", pt), err)
		}
	}
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		return loadFailure("ring buffers", err)
	}
	return ""
}

func loadFailure(what string, err error) string {
	switch {
	case errors.Is(err, ebpf.ErrNotSupported):
		return "kernel cannot load " + what
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return "not permitted to load " + what + " (needs root, or CAP_BPF with CAP_NET_ADMIN and CAP_PERFMON)"
	}
	return fmt.Sprintf("loading %s fails: %v", what, err)
}

// passProgram loads the smallest tc program: return TC_ACT_UNSPEC.
func passProgram() (*ebpf.Program, error) {
	return ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:    "hopcheck_probe",
		Type:    ebpf.SchedCLS,
		License: "Dual BSD/GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, -1),
			asm.Return(),
		},
	})
}

// probeTCX attaches to an interface index that cannot exist: a kernel with
// TCX answers ENODEV, one without it fails the attach type. Nothing is
// attached anywhere.
func probeTCX() string {
	prog, err := passProgram()
	if err != nil {
		return loadFailure("tc programs", err)
	}
	defer prog.Close()

	l, err := link.AttachTCX(link.TCXOptions{
		Interface: math.MaxUint32,
		Program:   prog,
		Attach:    ebpf.AttachTCXIngress,
	})
	switch {
	case err == nil:
		l.Close()
		return "" // unexpected, but it attached: TCX is there
	case errors.Is(err, unix.ENODEV):
		return ""
	case errors.Is(err, ebpf.ErrNotSupported):
		return "kernel has no TCX (needs Linux 6.6)"
	}
	return fmt.Sprintf("TCX attach fails: %v", err)
}

// probeClsact adds a clsact qdisc and a direct-action cls_bpf filter to lo
// in an unnamed namespace made for the purpose, which the kernel frees when
// the probe closes its handle (or the process dies): nothing can be left.
func probeClsact() (why string) {
	ns, err := netns.CreateScratch()
	if err != nil {
		return fmt.Sprintf("cannot create a namespace to probe in: %v", err)
	}
	defer ns.Close()

	h, err := nl.HandleAt(ns)
	if err != nil {
		return fmt.Sprintf("netlink in the probe namespace: %v", err)
	}
	defer h.Close()

	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Sprintf("probe namespace/lo: %v", err)
	}
	if err := h.QdiscAdd(clsactQdisc(lo.Attrs().Index)); err != nil {
		return fmt.Sprintf("kernel cannot add a clsact qdisc (CONFIG_NET_SCH_INGRESS): %v", err)
	}
	prog, err := passProgram()
	if err != nil {
		return loadFailure("tc programs", err)
	}
	defer prog.Close()
	if err := h.FilterAdd(clsactFilter(lo.Attrs().Index, Ingress, prog)); err != nil {
		return fmt.Sprintf("kernel cannot add a cls_bpf filter (CONFIG_NET_CLS_BPF): %v", err)
	}
	return ""
}

// kfreeSkbHasReason reads the prototype of the skb:kfree_skb tracepoint
// from BTF: btf_trace_kfree_skb is a pointer to
// func(void *ctx, struct sk_buff *skb, void *location, enum skb_drop_reason reason, ...).
func kfreeSkbHasReason(spec *btf.Spec) (bool, string) {
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_kfree_skb", &td); err != nil {
		return false, fmt.Sprintf("kernel BTF has no skb:kfree_skb tracepoint: %v", err)
	}
	ptr, ok := btf.UnderlyingType(td.Type).(*btf.Pointer)
	if !ok {
		return false, fmt.Sprintf("btf_trace_kfree_skb is %s, not a function pointer", td.Type)
	}
	proto, ok := btf.UnderlyingType(ptr.Target).(*btf.FuncProto)
	if !ok {
		return false, fmt.Sprintf("btf_trace_kfree_skb points to %s, not a function", ptr.Target)
	}
	const reasonArg = 3 // after ctx, skb, location
	if len(proto.Params) <= reasonArg {
		return false, "skb:kfree_skb has no reason argument (needs Linux 5.17)"
	}
	if e, ok := btf.UnderlyingType(proto.Params[reasonArg].Type).(*btf.Enum); !ok || e.Name != "skb_drop_reason" {
		return false, fmt.Sprintf("skb:kfree_skb argument %d is %s, not enum skb_drop_reason",
			reasonArg, proto.Params[reasonArg].Type)
	}
	return true, ""
}

// probeNetnsCookie asks for the cookie of this process's namespace.
func probeNetnsCookie() string {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Sprintf("cannot open a socket to ask: %v", err)
	}
	defer unix.Close(fd)
	_, err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, unix.ENOPROTOOPT):
		return "kernel has no SO_NETNS_COOKIE (needs Linux 5.14); namespaces are traced by inode number"
	}
	return fmt.Sprintf("SO_NETNS_COOKIE fails: %v; namespaces are traced by inode number", err)
}

// netnsID returns the identifier the BPF programs know ns by (netns_id in
// bpf/trace.c): its cookie where the kernel tells user space a
// namespace's cookie, else its inode number, which New tells the programs
// to use instead (netns_by_inum). Before 5.12 the kernel makes a
// namespace's cookie only when something asks for it, so there the
// programs could not read one for a namespace nobody asked about.
func (f Features) netnsID(ns netns.Handle) (uint64, error) {
	if f.HasNetnsCookie {
		return netns.Cookie(ns)
	}
	return netns.Inode(ns)
}

// boolByte is b as a BPF program's __u8 flag.
func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

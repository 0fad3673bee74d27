package build

import (
	"context"
	"errors"
	"fmt"

	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// probeNS names the unnamed scratch namespace of a probe in messages.
const probeNS = "(probe)"

// Supports reports whether the running kernel can create interfaces of
// kind t, by creating one in an unnamed scratch namespace that the kernel
// frees when the probe closes it.
// The builder itself does not probe up front: it interprets the "not
// supported" answer of the real create and only then asks this question,
// because the kernel gives the same answer for a kind it lacks and for
// some settings of a kind it has. Nothing is cached; each call probes.
func Supports(ctx context.Context, t scenario.LinkType) (bool, error) {
	if t == scenario.TypeLoopback {
		return true, nil
	}
	k, ok := linkKinds[t]
	if !ok {
		return false, fmt.Errorf("unknown interface type %q", t)
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return hasKind(k.kernelKind())
}

// hasKind creates a bare link of kernel kind kind in a scratch namespace. The kernel answers EOPNOTSUPP exactly when no driver
// registers that kind; any other answer, success or a complaint about
// missing settings (a macvlan without parent), means the kind exists.
func hasKind(kind string) (bool, error) {
	// An unnamed namespace: the kernel frees it when its only handle is
	// closed, even if this process dies first.
	h, err := netns.CreateScratch()
	if err != nil {
		return false, fmt.Errorf("probe %s interfaces: %w", kind, err)
	}
	ns := &namespace{name: probeNS, kernel: probeNS, h: h}
	defer ns.close()
	if err := ns.attach(); err != nil {
		return false, fmt.Errorf("probe %s interfaces: %w", kind, err)
	}
	err = ns.nl.LinkAdd(&netlink.GenericLink{LinkAttrs: attrs("hcprobe0"), LinkType: kind})
	return !errors.Is(err, unix.EOPNOTSUPP), nil
}

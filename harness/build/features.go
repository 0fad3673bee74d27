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

// probeNS is the scenario-namespace part of the scratch namespace a probe
// uses: scenario names start with a letter, so it never collides with one,
// and netns.ParseName still recognises it for Clean.
const probeNS = "_probe"

// Supports reports whether the running kernel can create interfaces of
// kind t, by creating one in a scratch namespace that is removed again.
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
	runID, err := netns.NewRunID()
	if err != nil {
		return false, err
	}
	return hasKind(runID, k.kernelKind())
}

// hasKind creates a bare link of kernel kind kind in a scratch namespace of
// run runID. The kernel answers EOPNOTSUPP exactly when no driver
// registers that kind; any other answer, success or a complaint about
// missing settings (a macvlan without parent), means the kind exists.
func hasKind(runID, kind string) (bool, error) {
	name := netns.Name(runID, probeNS)
	h, err := netns.Create(name)
	if err != nil {
		return false, fmt.Errorf("probe %s interfaces: %w", kind, err)
	}
	ns := &namespace{name: probeNS, kernel: name, h: h}
	defer func() {
		ns.close()
		// The error is not the answer to the question; the namespace is
		// gone from /var/run/netns either way unless unmounting failed,
		// and then Clean recognises it by name.
		_ = netns.Delete(name)
	}()
	if err := ns.attach(); err != nil {
		return false, fmt.Errorf("probe %s interfaces: %w", kind, err)
	}
	err = ns.nl.LinkAdd(&netlink.GenericLink{LinkAttrs: attrs("hcprobe0"), LinkType: kind})
	return !errors.Is(err, unix.EOPNOTSUPP), nil
}

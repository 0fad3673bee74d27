package build

import (
	"github.com/hopcheck/hopcheck/harness/plan"
	"github.com/vishvananda/netlink"
)

// bridge makes a Linux bridge with the kernel's defaults (STP off, so
// ports forward as soon as they are up).
type bridge struct{}

func (bridge) kernelKind() string   { return "bridge" }
func (bridge) kernelConfig() string { return "CONFIG_BRIDGE" }

func (bridge) newLink(s plan.Step, _ resolver) (netlink.Link, error) {
	return &netlink.Bridge{LinkAttrs: attrs(s.If)}, nil
}

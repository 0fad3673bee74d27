package build

import (
	"github.com/hopcheck/hopcheck/harness/plan"
	"github.com/vishvananda/netlink"
)

// dummy makes a dummy interface, a place to hold addresses.
type dummy struct{}

func (dummy) kernelKind() string   { return "dummy" }
func (dummy) kernelConfig() string { return "CONFIG_DUMMY" }

func (dummy) newLink(s plan.Step, _ resolver) (netlink.Link, error) {
	return &netlink.Dummy{LinkAttrs: attrs(s.If)}, nil
}

package build

import (
	"fmt"

	"github.com/hopcheck/hopcheck/harness/plan"
	"github.com/vishvananda/netlink"
)

// macvlan makes a macvlan interface on its parent.
type macvlan struct{}

func (macvlan) kernelKind() string   { return "macvlan" }
func (macvlan) kernelConfig() string { return "CONFIG_MACVLAN" }

func (macvlan) newLink(s plan.Step, r resolver) (netlink.Link, error) {
	var mode netlink.MacvlanMode
	switch m := plan.MacvlanMode(s.Macvlan); m {
	case "bridge":
		mode = netlink.MACVLAN_MODE_BRIDGE
	case "vepa":
		mode = netlink.MACVLAN_MODE_VEPA
	case "private":
		mode = netlink.MACVLAN_MODE_PRIVATE
	case "passthru":
		mode = netlink.MACVLAN_MODE_PASSTHRU
	case "source":
		mode = netlink.MACVLAN_MODE_SOURCE
	default:
		return nil, fmt.Errorf("unknown macvlan mode %q", m)
	}
	parent, err := r.index(s.NS, s.Macvlan.Parent)
	if err != nil {
		return nil, err
	}
	a := attrs(s.If)
	a.ParentIndex = parent
	return &netlink.Macvlan{LinkAttrs: a, Mode: mode}, nil
}

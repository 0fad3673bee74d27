package build

import (
	"net"

	"github.com/hopcheck/hopcheck/harness/plan"
	"github.com/vishvananda/netlink"
)

// vxlan makes a VXLAN tunnel endpoint with the settings `ip link add ...
// type vxlan` would use: learning on, the scenario's port or 4789.
type vxlan struct{}

func (vxlan) kernelKind() string   { return "vxlan" }
func (vxlan) kernelConfig() string { return "CONFIG_VXLAN" }

func (vxlan) newLink(s plan.Step, r resolver) (netlink.Link, error) {
	v := s.VXLAN
	l := &netlink.Vxlan{
		LinkAttrs: attrs(s.If),
		VxlanId:   int(v.VNI),
		Port:      int(plan.VXLANPort(v)),
		// The library sends every flag; iproute2 and the kernel default
		// to learning, which the tutorials' overlays rely on.
		Learning: true,
	}
	if v.Local.IsValid() {
		l.SrcAddr = net.IP(v.Local.AsSlice())
	}
	if v.Remote.IsValid() {
		// The kernel reads IFLA_VXLAN_GROUP as the unicast remote too.
		l.Group = net.IP(v.Remote.AsSlice())
	}
	if v.Dev != "" {
		idx, err := r.index(s.NS, v.Dev)
		if err != nil {
			return nil, err
		}
		l.VtepDevIndex = idx
	}
	return l, nil
}

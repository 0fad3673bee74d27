package build

import (
	"github.com/hopcheck/hopcheck/harness/plan"
	"github.com/vishvananda/netlink"
)

// veth makes a veth pair in one request, the peer directly in its own
// namespace: it never exists in the wrong namespace, so two runs cannot
// collide on its name and nothing has to be moved afterwards.
type veth struct{}

func (veth) kernelKind() string   { return "veth" }
func (veth) kernelConfig() string { return "CONFIG_VETH" }

func (veth) newLink(s plan.Step, r resolver) (netlink.Link, error) {
	v := netlink.NewVeth(attrs(s.If))
	v.PeerName = s.Peer.If
	if s.Peer.NS != s.NS {
		h, err := r.handle(s.Peer.NS)
		if err != nil {
			return nil, err
		}
		v.PeerNamespace = netlink.NsFd(h)
	}
	return v, nil
}

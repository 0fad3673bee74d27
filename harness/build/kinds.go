package build

import (
	"github.com/hopcheck/hopcheck/harness/plan"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/vishvananda/netlink"
)

// linkKind is one kind of interface the builder can create.
type linkKind interface {
	// newLink describes the interface that step s creates, ready for
	// LinkAdd in s's namespace; r resolves the other interfaces and
	// namespaces it refers to.
	newLink(s plan.Step, r resolver) (netlink.Link, error)
	// kernelKind is the kernel's name of the kind (IFLA_INFO_KIND, the
	// "type" of `ip link add`).
	kernelKind() string
	// kernelConfig names the kernel option that provides the kind, for
	// the message when the running kernel lacks it.
	kernelConfig() string
}

// resolver finds what a new link refers to, within one build.
type resolver interface {
	// index returns the ifindex of interface ifname in scenario namespace ns.
	index(ns, ifname string) (int, error)
	// handle returns the open handle of scenario namespace ns.
	handle(ns string) (netns.Handle, error)
}

// linkKinds is the table of creatable interface kinds; it is never
// modified. lo has no entry on purpose: every namespace is born with it,
// so it is configured (addresses, up) but never created.
var linkKinds = map[scenario.LinkType]linkKind{
	scenario.TypeVeth:    veth{},
	scenario.TypeBridge:  bridge{},
	scenario.TypeVXLAN:   vxlan{},
	scenario.TypeMacvlan: macvlan{},
	scenario.TypeDummy:   dummy{},
}

// attrs returns the attributes of a new link called name, with the
// library's "unset" markers (a zero TxQLen would otherwise ask for a queue
// length of 0, which `ip link add` never does).
func attrs(name string) netlink.LinkAttrs {
	a := netlink.NewLinkAttrs()
	a.Name = name
	return a
}

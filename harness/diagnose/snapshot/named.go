package snapshot

import (
	"fmt"

	"github.com/hopcheck/hopcheck/internal/netns"
)

// Named is an Env of namespaces the caller opened itself, in the order
// given: what `hopcheck why --netns A,B` works on, with the names the
// user knows them by. It satisfies check.Env too, so the same value runs
// the probe.
type Named []NamedNS

// NamedNS is one namespace of Named.
type NamedNS struct {
	Name   string
	Handle netns.Handle
	// Exec is the argv prefix that runs a command in this namespace when
	// a user types it (netns.ExecPrefix, container.Exec): empty for the
	// namespace hopcheck runs in, "ip netns exec NAME" for a name from
	// 'ip netns list', "nsenter --net=PATH" for a path, "nsenter -t PID
	// -n" for a container. netns.Command renders a fix with it.
	Exec []string
	// Recorded are the addresses the container's runtime recorded for
	// its interfaces (container.Container.Addresses), for a container
	// given by name; Take puts them in the namespace's NSState.
	Recorded []RecordedAddr
}

// Follow takes in the namespace a user names s (an `ip netns` name, or a
// path such as /proc/PID/ns/net) under that name, unless it is one of n
// already: the namespaces a probe's path crosses beyond those given.
func (n *Named) Follow(s string, ino uint64) (string, error) {
	h, err := netns.OpenArg(s)
	if err != nil {
		return "", err
	}
	if got, err := netns.Inode(h); ino != 0 && (err != nil || got != ino) {
		h.Close()
		return "", fmt.Errorf("%s is no longer the namespace found on the path (its process is gone)", s)
	}
	for _, o := range *n {
		if o.Handle.IsOpen() && o.Handle.Equal(h) {
			h.Close()
			return "", fmt.Errorf("%s is %s, already taken part", s, o.Name)
		}
	}
	*n = append(*n, NamedNS{Name: s, Handle: h, Exec: netns.ExecPrefix(s)})
	return s, nil
}

// Enter returns how a user runs a command in the namespace called name
// (its Exec), for fixes printed as commands that work when typed.
func (n Named) Enter(name string) ([]string, bool) {
	for _, ns := range n {
		if ns.Name == name {
			return ns.Exec, true
		}
	}
	return nil, false
}

// Recorded returns the addresses a runtime recorded for the namespace
// called name (NamedNS.Recorded).
func (n Named) Recorded(name string) []RecordedAddr {
	for _, ns := range n {
		if ns.Name == name {
			return ns.Recorded
		}
	}
	return nil
}

// Namespaces returns the names, in order.
func (n Named) Namespaces() []string {
	out := make([]string, len(n))
	for i, ns := range n {
		out[i] = ns.Name
	}
	return out
}

// NS returns the handle of the namespace called name, or a closed handle.
func (n Named) NS(name string) netns.Handle {
	for _, ns := range n {
		if ns.Name == name {
			return ns.Handle
		}
	}
	return netns.Handle(-1)
}

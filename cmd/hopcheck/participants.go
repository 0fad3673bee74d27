package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/hopcheck/hopcheck/harness/container"
	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
	"github.com/hopcheck/hopcheck/internal/netns"
)

// participant is one namespace that why or trace works on, opened.
type participant struct {
	// name is what the output calls it: "node", a --netns name or path,
	// a container's name.
	name string
	// given is how the user named it, for messages: "--netns red".
	given string
	// path is how `hopcheck clean` finds it again (trace's records).
	path string
	h    netns.Handle
	// exec is its runnable form: the argv prefix that runs a command in
	// it (none for the node).
	exec []string
	// recorded are the addresses the container's runtime recorded for
	// its interfaces (none but for a container given by name).
	recorded []snapshot.RecordedAddr
}

// participantFlags are the flags that name the namespaces of why and
// trace.
type participantFlags struct {
	netns      []string
	containers []string
	node       bool
}

// empty reports whether no namespace is named besides the node.
func (f participantFlags) empty() bool { return len(f.netns) == 0 && len(f.containers) == 0 }

// containerHelp is the --container flag's help text.
const containerHelp = "also work in a running container's network namespace, called by the container's name: " +
	"`SPEC` is NAME (whichever of docker, podman, crictl knows it) or docker:NAME, podman:NAME, cri:NAME; " +
	"repeatable or comma-separated; found through the runtime's CLI, which reads DOCKER_HOST, CONTAINER_HOST, " +
	"CONTAINERS_STORAGE_CONF, CONTAINER_RUNTIME_ENDPOINT as usual"

// checkParticipantFlags refuses empty entries in the lists (",,," splits
// into four).
func checkParticipantFlags(f participantFlags) error {
	if err := checkNetnsList(f.netns); err != nil {
		return err
	}
	for i, s := range f.containers {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("--container: spec %d of %d is empty; give NAME or RUNTIME:NAME, separated by commas", i+1, len(f.containers))
		}
	}
	return nil
}

// openParticipants opens the node (with --node), every --netns namespace
// and every --container container's namespace, in that order, each
// under a name no other has. On error it closes what it opened.
func openParticipants(ctx context.Context, f participantFlags) (ps []participant, err error) {
	defer func() {
		if err != nil {
			closeParticipants(ps)
			ps = nil
		}
	}()
	if f.node {
		h, err := openNode(f.netns)
		if err != nil {
			return ps, err
		}
		ps = append(ps, participant{name: nodeName, given: "--node", path: "/proc/self/ns/net", h: h})
	}
	for _, name := range f.netns {
		h, err := openNamespace(name)
		if err != nil {
			return ps, err
		}
		ps = append(ps, participant{name: name, given: "--netns " + name, path: name, h: h, exec: netns.ExecPrefix(name)})
	}
	if len(f.containers) > 0 {
		own, err := netns.Current()
		if err != nil {
			return ps, err
		}
		defer own.Close()
		var r container.Resolver
		seen := map[string]bool{}
		for _, spec := range f.containers {
			c, h, err := r.Open(ctx, spec)
			if err != nil {
				return ps, err
			}
			if seen[c.Runtime+":"+c.ID] {
				h.Close() // the same container twice (web, docker:web)
				continue
			}
			seen[c.Runtime+":"+c.ID] = true
			if h.Equal(own) {
				h.Close()
				return ps, fmt.Errorf("--container %s: container %s uses the network namespace hopcheck runs in (host networking); observe that namespace with --node", spec, c.Spec())
			}
			ps = append(ps, participant{name: c.Name, given: "--container " + c.Spec(), path: c.NetNS, h: h, exec: c.Exec(),
				recorded: recordedAddrs(c)})
		}
	}
	return ps, checkParticipants(ps)
}

// checkParticipants refuses two participants of one name (the output
// could not tell them apart), and a container whose namespace another
// participant already is (containers of one pod share one).
func checkParticipants(ps []participant) error {
	for i, p := range ps {
		for _, q := range ps[:i] {
			if p.given == q.given {
				return fmt.Errorf("%s is given twice", p.given)
			}
			if p.name == q.name {
				return fmt.Errorf("%s and %s are both called %s, and hopcheck names each namespace once: probe them one at a time, or give one as --netns %s",
					q.given, p.given, p.name, p.path)
			}
			if strings.HasPrefix(p.given, "--container") && p.h.IsOpen() && q.h.IsOpen() && p.h.Equal(q.h) {
				return fmt.Errorf("%s shares its network namespace with %s (containers of one pod do): give only one of them", p.given, q.given)
			}
		}
	}
	return nil
}

func closeParticipants(ps []participant) {
	for _, p := range ps {
		p.h.Close()
	}
}

// participantNames lists the names, for messages.
func participantNames(ps []participant) string {
	var names []string
	for _, p := range ps {
		names = append(names, p.name)
	}
	return strings.Join(names, ", ")
}

// recordedAddrs turns what c's runtime recorded for its interfaces into
// the snapshot's form, saying who recorded it as a user would ask again.
func recordedAddrs(c container.Container) []snapshot.RecordedAddr {
	var out []snapshot.RecordedAddr
	for _, a := range c.Addresses {
		out = append(out, snapshot.RecordedAddr{By: c.Runtime + " inspect " + c.Name, MAC: a.MAC, Addr: a.Addr, Gateway: a.Gateway})
	}
	return out
}

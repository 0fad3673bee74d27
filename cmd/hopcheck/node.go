package main

import (
	"fmt"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/trace"
)

// nodeName is what --node calls the namespace hopcheck runs in: the node
// of a Docker, Podman or Kubernetes host, whose bridge, rules and routes
// the containers' packets cross.
const nodeName = "node"

// nodeHelp is the --node flag's help text.
const nodeHelp = "also observe the namespace hopcheck runs in (the host's), as \"node\": " +
	"its state is only read, the programs attached there never change a verdict and go when hopcheck exits, " +
	"and probes start there only with --from node"

// nodeAttach is the tc attach mode when the node is traced: TCX, whose
// links go with hopcheck's process even when it is killed, so nothing can
// stay attached to a host's own interfaces; clsact only when asked for by
// name.
func nodeAttach(asked trace.AttachMode) trace.AttachMode {
	if asked == trace.AttachAuto {
		return trace.AttachTCX
	}
	return asked
}

// openNode opens the namespace hopcheck runs in, for --node.
func openNode(names []string) (netns.Handle, error) {
	for _, n := range names {
		if n == nodeName {
			return netns.Handle(-1), fmt.Errorf("--netns %s: with --node, %q names the namespace hopcheck runs in; pass that namespace by path", n, nodeName)
		}
	}
	return netns.Current()
}

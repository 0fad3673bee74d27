// Command cniplugins builds the CNI reference plugins the realnode tests
// run (bridge, host-local, portmap, firewall, loopback, at the version
// realnode pins) into their cache directory, and prints that directory.
// `make cni-plugins` runs it, so that tests do not build them.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/hopcheck/hopcheck/internal/realnode"
)

func main() {
	dir, err := realnode.BuildCNIPlugins(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "cniplugins:", err)
		os.Exit(1)
	}
	fmt.Println(dir)
}

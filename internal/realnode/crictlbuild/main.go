// Command crictlbuild builds crictl (sigs.k8s.io/cri-tools, at the version
// realnode pins) into its cache directory, and prints that directory.
// `make crictl` runs it, so that tests do not build it.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/hopcheck/hopcheck/internal/realnode"
)

func main() {
	dir, err := realnode.BuildCrictl(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "crictlbuild:", err)
		os.Exit(1)
	}
	fmt.Println(dir)
}

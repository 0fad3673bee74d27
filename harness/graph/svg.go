package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ErrNoDot says that SVG needs Graphviz's dot program, which is missing.
var ErrNoDot = errors.New("graph: SVG needs Graphviz's dot program (Debian and Ubuntu: apt-get install graphviz); DOT and Mermaid need nothing")

// SVG lays out dot with Graphviz's dot program and returns the picture as
// an SVG document. It runs dot with the DOT on its standard input (no
// shell, no file).
//
// Why not a library: goccy/go-graphviz (Graphviz compiled to WebAssembly)
// compiles its module in a package init, in every run of every hopcheck
// command, caching the compiled code in a fixed directory under /tmp that
// any local user can create first; hopcheck runs as root, so it would load
// code that another user planted. It also panics at start when that
// directory is not writable.
func SVG(ctx context.Context, dot string) ([]byte, error) {
	bin, err := exec.LookPath("dot")
	if err != nil {
		return nil, ErrNoDot
	}
	cmd := exec.CommandContext(ctx, bin, "-Tsvg")
	cmd.Stdin = strings.NewReader(dot)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("graph: dot -Tsvg: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out.Bytes(), nil
}

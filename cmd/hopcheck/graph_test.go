package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/harness/graph"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// TestGraphCommand: graph needs no root, prints what harness/graph draws
// (golden-tested there), highlights a check's stated path, renders SVG
// with its built-in Graphviz, and refuses what it does not know (exit 2).
func TestGraphCommand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const file = "../../scenarios/nat-egress.yaml"
	sc, err := scenario.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if res := e.runUnprivileged("graph", file); res.code != exitOK || res.stdout != graph.DOT(sc, graph.Options{}) {
		t.Errorf("graph: %v", res)
	}
	res := e.runUnprivileged("graph", "--format", "mermaid", "--check", "2", file)
	want := graph.Mermaid(sc, graph.Options{Path: []string{"ns1/veth_1", "host/br0", "host/eth0", "internet/wan0"}})
	if res.code != exitOK || res.stdout != want || !strings.Contains(res.stdout, "class ") {
		t.Errorf("graph --format mermaid --check 2: %v\nwant:\n%s", res, want)
	}
	for _, args := range [][]string{{"-f", "png"}, {"--check", "1"}, {"--check", "nope"}} {
		res := e.runUnprivileged(append(append([]string{"graph"}, args...), file)...)
		if res.code != exitBadInput || res.stderr == "" {
			t.Errorf("graph %s: %v; want exit code 2 and a message", strings.Join(args, " "), res)
		}
	}
	if _, err := exec.LookPath("dot"); err != nil {
		privtest.Unavailable(t, "Graphviz's dot (Debian: graphviz)")
	}
	res = e.runUnprivileged("graph", "-f", "svg", "--path", "ns1/veth_1,host/veth1", "--drop", "host/veth1", file)
	if res.code != exitOK || !strings.Contains(res.stdout, "<svg") || !strings.Contains(res.stdout, `id="if:host/veth1" class="node path drop"`) {
		t.Errorf("graph -f svg: exit code %d, stderr %q, %.300s", res.code, res.stderr, res.stdout)
	}
}

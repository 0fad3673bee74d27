package graph

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func load(t *testing.T, name string) *scenario.Scenario {
	t.Helper()
	sc, err := scenario.ParseFile(filepath.Join("../../scenarios", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./harness/graph -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (rerun with -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// natPath is the request of ping ns1 -> 203.0.113.8 in nat-egress.
var natPath = Options{Path: []string{"ns1/veth_1", "host/veth1", "host/br0", "host/eth0", "internet/wan0", "internet/lo"}}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		golden, scenario string
		opts             Options
	}{
		{"nat-egress", "nat-egress", Options{}},
		{"nat-egress-path", "nat-egress", natPath},
		{"nat-egress-drop", "nat-egress", Options{Path: natPath.Path[:4], Drop: "host"}},
		{"multi-host-vxlan", "multi-host-vxlan", Options{}},
		{"veth-pair", "veth-pair", Options{Path: []string{"ns1/eth0", "ns2/eth0"}, Drop: "ns2/eth0"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			sc := load(t, tc.scenario)
			golden(t, tc.golden+".dot", []byte(DOT(sc, tc.opts)))
			golden(t, tc.golden+".mmd", []byte(Mermaid(sc, tc.opts)))
		})
	}
}

// TestEveryLibraryScenario: every scenario of the library draws every
// namespace and every veth link, and Graphviz lays it out as SVG.
func TestEveryLibraryScenario(t *testing.T) {
	files, err := filepath.Glob("../../scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatal(err)
	}
	for _, f := range files {
		sc, err := scenario.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dot := DOT(sc, Options{})
		mmd := Mermaid(sc, Options{})
		for _, ns := range sc.Namespaces {
			if !strings.Contains(dot, `"cluster_`+ns.Name+`"`) || !strings.Contains(mmd, "subgraph ns_"+mermaidID(ns.Name)) {
				t.Errorf("%s: namespace %s not drawn", f, ns.Name)
			}
		}
		for _, l := range sc.Links {
			if !strings.Contains(dot, `"`+l.A.String()+`" -- "`+l.B.String()+`"`) {
				t.Errorf("%s: link %s -- %s not drawn", f, l.A, l.B)
			}
		}
	}
}

// TestSVG: Graphviz lays out every library scenario, with a path
// highlighted, and the SVG keeps the ids and classes pages style.
func TestSVG(t *testing.T) {
	if _, err := exec.LookPath("dot"); err != nil {
		privtest.Unavailable(t, "Graphviz's dot (Debian: graphviz)")
	}
	files, err := filepath.Glob("../../scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatal(err)
	}
	for _, f := range files {
		sc, err := scenario.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		path := []string{sc.Links[0].A.String(), sc.Links[0].B.String()}
		svg, err := SVG(context.Background(), DOT(sc, Options{Path: path}))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte(`id="if:`+path[0]+`" class="node path"`)) {
			t.Errorf("%s: SVG without the highlighted path:\n%.400s", f, svg)
		}
	}
}

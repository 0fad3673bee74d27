package graph

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

// Colours of the drawing, shared by DOT and Mermaid.
const (
	colNS      = "#4a6fa5"
	colIf      = "#eef3fb"
	colBridge  = "#fdebc8"
	colTunnel  = "#efe3f7"
	colPath    = "#d62728"
	colPathBg  = "#fde0e0"
	colDrop    = "#d62728"
	colDropBg  = "#f9b3b3"
	colVXLAN   = "#8a4baf"
	colMuted   = "#666666"
	fontFamily = "Helvetica,Arial,sans-serif"
)

// DOT returns sc's topology as a Graphviz graph: one cluster per
// namespace holding its interfaces (name, kind, addresses), veth links
// between namespaces, bridge ports and macvlan parents as dashed edges
// inside them, VXLAN tunnels as dotted edges. Nodes and edges carry SVG
// ids and classes (node ids "if:ns/if"; class "path" on what opts
// highlights, "drop" where it was dropped) for pages that style them.
func DOT(sc *scenario.Scenario, opts Options) string {
	t := build(sc, opts)
	var b strings.Builder
	fmt.Fprintf(&b, "graph %s {\n", quote(t.name))
	fmt.Fprintf(&b, "  graph [rankdir=LR, fontname=%s, fontsize=12, label=%s, labelloc=t, nodesep=0.3, ranksep=0.6, bgcolor=white];\n",
		quote(fontFamily), quote(t.name))
	fmt.Fprintf(&b, "  node [shape=box, style=\"rounded,filled\", fillcolor=%s, color=%s, fontname=%s, fontsize=10];\n",
		quote(colIf), quote(colNS), quote(fontFamily))
	fmt.Fprintf(&b, "  edge [fontname=%s, fontsize=9, color=%s];\n", quote(fontFamily), quote(colMuted))
	for _, c := range t.clusters {
		fmt.Fprintf(&b, "  subgraph %s {\n", quote("cluster_"+c.name))
		var a attrs
		a.set("label", quote(c.name), "id", quote("ns:"+c.name), "style", "rounded", "color", quote(colNS), "penwidth", "1.2")
		if c.drop {
			a.set("class", "drop", "color", quote(colDrop), "penwidth", "3", "style", quote("rounded,filled"), "fillcolor", quote(colDropBg))
		}
		b.WriteString("    graph [" + a.String() + "];\n")
		if len(c.nodes) == 0 {
			// An empty cluster is not drawn; a point keeps the namespace.
			fmt.Fprintf(&b, "    %s [shape=point, style=invis, label=\"\"];\n", quote(c.name+"/"))
		}
		for _, n := range c.nodes {
			fmt.Fprintf(&b, "    %s [%s];\n", quote(n.id), nodeAttrs(n))
		}
		b.WriteString("  }\n")
	}
	for i, e := range t.edges {
		fmt.Fprintf(&b, "  %s -- %s [%s];\n", quote(e.a), quote(e.b), edgeAttrs(e, i))
	}
	b.WriteString("}\n")
	return b.String()
}

// attrs is a DOT attribute list in which a later value replaces an
// earlier one of the same name.
type attrs struct{ names, values []string }

// set sets name, value pairs.
func (a *attrs) set(kv ...string) {
	for i := 0; i+1 < len(kv); i += 2 {
		if j := slices.Index(a.names, kv[i]); j >= 0 {
			a.values[j] = kv[i+1]
			continue
		}
		a.names, a.values = append(a.names, kv[i]), append(a.values, kv[i+1])
	}
}

func (a attrs) String() string {
	s := make([]string, len(a.names))
	for i := range a.names {
		s[i] = a.names[i] + "=" + a.values[i]
	}
	return strings.Join(s, ", ")
}

func nodeAttrs(n *node) string {
	var a attrs
	a.set("label", quote(strings.Join(n.lines, "\n")), "id", quote("if:"+n.id))
	switch n.kind {
	case scenario.TypeBridge:
		a.set("fillcolor", quote(colBridge), "shape", "box3d")
	case scenario.TypeVXLAN:
		a.set("fillcolor", quote(colTunnel))
	}
	var classes []string
	if n.hl {
		classes = append(classes, "path")
		a.set("color", quote(colPath), "penwidth", "2.5", "fillcolor", quote(colPathBg))
	}
	if n.drop {
		classes = append(classes, "drop")
		a.set("color", quote(colDrop), "penwidth", "3.5", "fillcolor", quote(colDropBg), "xlabel", quote("stopped here"))
	}
	if classes != nil {
		a.set("class", quote(strings.Join(classes, " ")))
	}
	return a.String()
}

func edgeAttrs(e *edge, i int) string {
	var a attrs
	a.set("id", quote(fmt.Sprintf("edge:%d", i)))
	if e.label != "" {
		a.set("label", quote(e.label))
	}
	switch e.kind {
	case edgeVeth:
		a.set("penwidth", "1.5")
	case edgePort, edgeMacvlan:
		a.set("style", "dashed")
	case edgeVXLAN:
		a.set("style", "dotted", "penwidth", "2", "color", quote(colVXLAN), "fontcolor", quote(colVXLAN))
	case edgeForward:
		a.set("style", "bold", "constraint", "false")
	}
	if e.hl {
		a.set("class", "path", "color", quote(colPath), "fontcolor", quote(colPath), "penwidth", "3")
	}
	return a.String()
}

// quote returns s as a DOT string.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

package graph

import (
	"fmt"
	"strings"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

// Mermaid returns sc's topology as a Mermaid flowchart (GitHub and
// GitLab draw it in Markdown): namespaces as subgraphs, interfaces with
// their addresses, veth links as solid lines, bridge ports and macvlan
// parents dashed, VXLAN tunnels thick; what opts highlights is red.
func Mermaid(sc *scenario.Scenario, opts Options) string {
	t := build(sc, opts)
	ids := map[string]string{}
	used := map[string]bool{}
	id := func(key string) string {
		if v, ok := ids[key]; ok {
			return v
		}
		base := mermaidID(key)
		v := base
		for i := 2; used[v]; i++ {
			v = fmt.Sprintf("%s_%d", base, i)
		}
		ids[key], used[v] = v, true
		return v
	}
	var b strings.Builder
	b.WriteString("---\ntitle: " + t.name + "\n---\nflowchart LR\n")
	var hl, drop, bridges []string
	for _, c := range t.clusters {
		fmt.Fprintf(&b, "  subgraph %s[%s]\n", id("ns:"+c.name), mermaidText(c.name))
		if len(c.nodes) == 0 {
			fmt.Fprintf(&b, "    %s[ ]\n    style %s fill:none,stroke:none\n", id(c.name+"/"), id(c.name+"/"))
		}
		for _, n := range c.nodes {
			fmt.Fprintf(&b, "    %s[%s]\n", id(n.id), mermaidText(strings.Join(n.lines, "<br/>")))
			if n.hl {
				hl = append(hl, id(n.id))
			}
			if n.drop {
				drop = append(drop, id(n.id))
			}
			if n.kind == scenario.TypeBridge {
				bridges = append(bridges, id(n.id))
			}
		}
		b.WriteString("  end\n")
		if c.drop {
			drop = append(drop, id("ns:"+c.name))
		}
	}
	var hlEdges []string
	for i, e := range t.edges {
		arrow := "---"
		switch e.kind {
		case edgePort, edgeMacvlan:
			arrow = "-.-"
		case edgeVXLAN:
			arrow = "==="
		case edgeForward:
			arrow = "-->"
		}
		if e.label != "" {
			arrow += "|" + mermaidText(e.label) + "|"
		}
		fmt.Fprintf(&b, "  %s %s %s\n", id(e.a), arrow, id(e.b))
		if e.hl {
			hlEdges = append(hlEdges, fmt.Sprint(i))
		}
	}
	b.WriteString("  classDef bridge fill:" + colBridge + ",stroke:" + colNS + "\n")
	b.WriteString("  classDef path fill:" + colPathBg + ",stroke:" + colPath + ",stroke-width:3px\n")
	b.WriteString("  classDef drop fill:" + colDropBg + ",stroke:" + colDrop + ",stroke-width:4px\n")
	for _, c := range []struct {
		name string
		ids  []string
	}{{"bridge", bridges}, {"path", hl}, {"drop", drop}} {
		if len(c.ids) > 0 {
			fmt.Fprintf(&b, "  class %s %s\n", strings.Join(c.ids, ","), c.name)
		}
	}
	if len(hlEdges) > 0 {
		fmt.Fprintf(&b, "  linkStyle %s stroke:%s,stroke-width:3px\n", strings.Join(hlEdges, ","), colPath)
	}
	return b.String()
}

// mermaidID makes a Mermaid node id from s: letters, digits and _.
func mermaidID(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// mermaidText quotes a label; Mermaid takes HTML entities inside quotes.
func mermaidText(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, "#quot;") + `"`
}

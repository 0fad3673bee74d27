package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/graph"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/spf13/cobra"
)

type graphFlags struct {
	format string
	path   string
	check  string
	drop   string
}

func newGraphCmd() *cobra.Command {
	var f graphFlags
	cmd := &cobra.Command{
		Use:   "graph FILE",
		Short: "Draw a scenario's topology as DOT, Mermaid or SVG (no root needed)",
		Long: `graph prints the topology of the scenario in FILE: namespaces as boxes holding
their interfaces and addresses, veth links, bridges with their ports, VXLAN
tunnels and macvlan parents. --format dot is Graphviz's language, mermaid a
flowchart that GitHub and GitLab draw in Markdown, svg a picture laid out by
Graphviz's dot program, which must be installed for it (Debian and Ubuntu:
apt-get install graphviz).

--check highlights the path a check states (its path: list), --path any
list of ns/if places, and --drop marks where a packet was dropped (ns/if or
ns). It creates nothing and needs no privileges.`,
		Example: `  hopcheck graph scenarios/nat-egress.yaml > nat.dot
  hopcheck graph --format svg scenarios/nat-egress.yaml > nat.svg
  hopcheck graph --format mermaid --path ns1/veth_1,host/veth1,host/br0,host/eth0 scenarios/nat-egress.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := scenario.ParseFileContext(cmd.Context(), args[0])
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			opts := graph.Options{Drop: f.drop}
			if f.path != "" {
				opts.Path = strings.Split(f.path, ",")
			}
			if f.check != "" {
				c, err := findCheck(sc, f.check)
				if err != nil {
					return &exitError{code: exitBadInput, err: err}
				}
				for _, p := range c.Path {
					opts.Path = append(opts.Path, p.String())
				}
			}
			var out []byte
			switch f.format {
			case "dot":
				out = []byte(graph.DOT(sc, opts))
			case "mermaid":
				out = []byte(graph.Mermaid(sc, opts))
			case "svg":
				if out, err = graph.SVG(cmd.Context(), graph.DOT(sc, opts)); err != nil {
					return err
				}
			default:
				return &exitError{code: exitBadInput, err: fmt.Errorf("--format %q: want dot, mermaid or svg", f.format)}
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.format, "format", "f", "dot", "output format: dot, mermaid, svg")
	fl.StringVar(&f.path, "path", "", "highlight these places, in order: `NS/IF,NS/IF,...`")
	fl.StringVar(&f.check, "check", "", "highlight the path: of the check with this `NAME` or number (1 is the first)")
	fl.StringVar(&f.drop, "drop", "", "mark where a packet was dropped: `NS/IF` or NS")
	return cmd
}

// findCheck returns the check of sc named name, or numbered so from 1,
// which must state a path.
func findCheck(sc *scenario.Scenario, name string) (*scenario.Check, error) {
	var c *scenario.Check
	if n, err := strconv.Atoi(name); err == nil && n >= 1 && n <= len(sc.Checks) {
		c = &sc.Checks[n-1]
	}
	for i := range sc.Checks {
		if c == nil && sc.Checks[i].Name == name {
			c = &sc.Checks[i]
		}
	}
	if c == nil {
		return nil, fmt.Errorf("--check %q: %s has no such check (give its name or number, 1 to %d)", name, sc.File, len(sc.Checks))
	}
	if len(c.Path) == 0 {
		return nil, fmt.Errorf("--check %q: the check states no path: (use --path NS/IF,...)", name)
	}
	return c, nil
}

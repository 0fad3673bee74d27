// Package graph draws a scenario's topology: namespaces as boxes holding
// their interfaces and addresses, veth links, bridges with their ports,
// VXLAN tunnels and macvlan parents, and optionally one probe's path and
// drop highlighted. It writes Graphviz DOT and Mermaid (pure functions over
// the scenario, golden-tested) and renders DOT as SVG with Graphviz's dot
// program when it is installed (see SVG for why not a Go binding).
package graph

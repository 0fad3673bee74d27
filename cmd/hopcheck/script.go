package main

import (
	"fmt"

	"github.com/hopcheck/hopcheck/harness/plan"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/spf13/cobra"
)

type scriptFlags struct {
	runID    string
	runNames bool
	teardown bool
}

func newScriptCmd() *cobra.Command {
	var f scriptFlags
	cmd := &cobra.Command{
		Use:     "script FILE",
		Aliases: []string{"plan"},
		Short:   "Print the ip/iptables/sysctl commands that build a scenario (no root needed)",
		Long: `script prints the scenario in FILE as the bash script a person would type to
build it by hand, the recipe of the container networking tutorials: ip netns
add, ip link add ... type veth peer ..., ip addr add, ip route add, sysctl
and iptables inside the namespaces, one command per step, in the order the
kernel needs them. It creates nothing and needs no privileges.

Namespaces keep the scenario's names (ns1, host) unless --run-names or
--run-id asks for hopcheck's run-specific names (hc<run-id>-ns1), which
cannot collide with namespaces that already exist. Note that "host" is a
namespace of its own here too: the script never changes the namespace it
runs in. --teardown prints the commands that remove what the script
builds.`,
		Example: `  hopcheck script scenarios/nat-egress.yaml
  hopcheck script --run-names scenarios/nat-egress.yaml | sudo bash
  hopcheck script --run-id ab12cd --teardown scenarios/nat-egress.yaml | sudo bash`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := scenario.ParseFileContext(cmd.Context(), args[0])
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			p, err := plan.New(sc)
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			var nsName func(string) string
			id := f.runID
			if id == "" && f.runNames {
				if id, err = netns.NewRunID(); err != nil {
					return err
				}
			}
			if id != "" {
				if !netns.IsRunID(id) {
					return &exitError{code: exitBadInput, err: fmt.Errorf("--run-id %q: want six characters of [a-z0-9], like ab12cd", id)}
				}
				nsName = func(ns string) string { return netns.Name(id, ns) }
			}
			out := p.Script(nsName)
			if f.teardown {
				out = p.TeardownScript(nsName)
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), out)
			return err
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.runNames, "run-names", false, "name namespaces as hopcheck does for a run (hc<run-id>-<ns>), with a fresh run ID")
	fl.StringVar(&f.runID, "run-id", "", "name namespaces hc`ID`-<ns>, as hopcheck's run ID would (implies --run-names)")
	fl.BoolVar(&f.teardown, "teardown", false, "print the commands that remove what the script builds instead")
	return cmd
}

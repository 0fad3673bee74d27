package main

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/spf13/cobra"
)

func newExecCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "exec NAME NS -- CMD [ARGS...]",
		Short: "Run a command inside a namespace of a scenario that is up",
		Long: `exec runs CMD inside namespace NS of the scenario NAME that was built with
'hopcheck up'. NAME is the scenario name (or run ID) shown by 'hopcheck list';
NS is the scenario's own namespace name (ns1, host, ...).

  hopcheck exec bridge ns1 -- ip addr
  hopcheck exec bridge ns1 -- ping -c1 10.0.0.3`,
		Args: cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireRoot("exec"); err != nil {
				return err
			}
			if cmd.ArgsLenAtDash() != 2 {
				return &exitError{code: exitBadInput, err: fmt.Errorf("usage: hopcheck exec NAME NS -- CMD [ARGS...]")}
			}
			rec, err := runs.Open().Find(args[0])
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			kname, ok := rec.Namespaces[args[1]]
			if !ok {
				return &exitError{code: exitBadInput, err: fmt.Errorf("scenario %s has no namespace %q (it has %v)", rec.Scenario, args[1], rec.NamespaceNames())}
			}
			return execIn(kname, args[2:])
		},
	}
}

// execIn replaces this process with argv running inside the named
// namespace; the process then exits with the command's status.
func execIn(nsName string, argv []string) error {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return &exitError{code: 127, err: err}
	}
	ns, err := netns.Open(nsName)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	err = netns.Exec(ns, path, argv, os.Environ())
	return &exitError{code: 126, err: err}
}

// Command hopcheck builds container networks from YAML scenarios in network
// namespaces, checks them, traces every probe hop by hop, and says why a
// packet did not arrive.
//
// This package only parses flags and wires the harness, trace and multipass
// packages together.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/spf13/cobra"
)

// Exit codes, the contract CI systems rely on.
const (
	exitOK          = 0 // every check passed
	exitCheckFailed = 1 // a check failed
	exitBadInput    = 2 // bad input, a build error, or a usage error
	// exitInterrupted: `why` stopped by Ctrl-C or SIGTERM before its
	// probe was judged (128 + SIGINT, as shells report it).
	exitInterrupted = 130
)

// exitError carries an exit code out of a command without printing twice.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func main() {
	// SIGINT, SIGTERM and SIGHUP cancel the context; every command tears
	// down what it built before returning, so nothing is left behind. SIGHUP
	// is how a run learns that its terminal or its ssh session (a `multipass
	// exec` whose client was killed) went away.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	// A reader that goes away (`hopcheck run ... | head`) must not kill the
	// run before its teardown: with SIGPIPE ignored, writes fail with EPIPE,
	// the report stops, and the run still cleans up after itself.
	signal.Ignore(syscall.SIGPIPE)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			printError(ee.err)
		}
		return ee.code
	}
	printError(err)
	return exitBadInput
}

// printError prints err on stderr. Problems in scenario files start with
// their position (file:line:col:), as compilers' do, so that editors and CI
// annotations can jump to them; everything else starts with "hopcheck:".
func printError(err error) {
	if scenario.IsInputError(err) {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Fprintln(os.Stderr, "hopcheck:", err)
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "hopcheck",
		Short: "Build, check and trace container networks in network namespaces",
		Long: `hopcheck builds container networks from YAML scenarios inside Linux network
namespaces, verifies them with in-namespace pings, ARP, route and reachability
checks, traces every probe packet hop by hop with tc eBPF programs, and prints a
pass/fail report that explains failures.

Exit codes: 0 all checks passed, 1 a check failed, 2 bad input or build error.`,
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("hopcheck {{.Version}}\n")
	root.AddCommand(
		newRunCmd(),
		newValidateCmd(),
		newUpCmd(),
		newDownCmd(),
		newExecCmd(),
		newListCmd(),
		newCleanCmd(),
		newVMCmd(),
		newTraceCmd(),
		newWhyCmd(),
		newScriptCmd(),
		newGraphCmd(),
	)
	return root
}

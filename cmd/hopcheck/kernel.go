package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/report"
	"github.com/hopcheck/hopcheck/multipass/qemu"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// kernelFlags are the flags that run scenarios under another kernel in a
// throwaway qemu VM. --cpus and --memory are the VM flags'.
type kernelFlags struct {
	path    string
	accel   string
	console bool
}

func addKernelFlags(fl *pflag.FlagSet, f *kernelFlags) {
	fl.StringVar(&f.path, "kernel", "", "run under the kernel at `PATH` in a throwaway qemu VM: a linux-image-*.deb, or a vmlinuz-REL with its modules beside it as dpkg -x lays them out")
	fl.StringVar(&f.accel, "accel", "auto", "qemu accelerator for --kernel: auto (KVM when /dev/kvm can be used), kvm, tcg")
	fl.BoolVar(&f.console, "console", false, "with --kernel, show the guest's kernel console on stderr")
}

// runUnderKernel runs the same `hopcheck run` under the kernel of
// --kernel: the guest prints the report, and its exit code becomes ours.
// A guest that panics, stops or hangs is an error (exit code 2) that says
// so, never a failed check.
func runUnderKernel(cmd *cobra.Command, f runFlags, paths []string) error {
	var accel qemu.Accel
	switch f.kernel.accel {
	case "auto":
	case "kvm", "tcg":
		accel = qemu.Accel(f.kernel.accel)
	default:
		return &exitError{code: exitBadInput, err: fmt.Errorf("--accel %q: want auto, kvm or tcg", f.kernel.accel)}
	}
	mem, err := sizeMiB(f.vm.spec.Memory)
	if err != nil {
		return &exitError{code: exitBadInput, err: fmt.Errorf("--memory: %w", err)}
	}
	if f.vm.name != "" {
		return &exitError{code: exitBadInput, err: fmt.Errorf("--kernel and --vm: choose one")}
	}
	if f.keep {
		return &exitError{code: exitBadInput, err: fmt.Errorf("--keep: the --kernel VM is thrown away after the run")}
	}
	buildDir, err := os.MkdirTemp("", "hopcheck-guest-")
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	defer os.RemoveAll(buildDir)
	env := []string{"NO_COLOR=1"}
	if report.ColorEnabled(os.Stdout) {
		env = []string{"TERM=linux"}
	}
	opts := qemu.RunOptions{
		Kernel:    f.kernel.path,
		Paths:     paths,
		JSONPath:  f.json,
		JUnitPath: f.junit,
		PcapDir:   f.pcap,
		Args:      guestRunFlags(f),
		Env:       env,
		Binary: func(ctx context.Context) (string, error) {
			return guestBinary(ctx, "amd64", buildDir, cmd.ErrOrStderr())
		},
		Stdout:    cmd.OutOrStdout(),
		Stderr:    cmd.ErrOrStderr(),
		Log:       cmd.ErrOrStderr(),
		Accel:     accel,
		CPUs:      f.vm.spec.CPUs,
		MemoryMiB: mem,
	}
	if f.kernel.console {
		opts.Console = cmd.ErrOrStderr()
	}
	code, err := qemu.Run(cmd.Context(), opts)
	switch {
	case code < 0:
		return &exitError{code: exitBadInput, err: err}
	case err != nil:
		fmt.Fprintln(cmd.ErrOrStderr(), "hopcheck:", err)
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// guestRunFlags are the run flags a guest's `hopcheck run` gets from this
// one (the reports' paths are the backend's).
func guestRunFlags(f runFlags) []string {
	var args []string
	if f.parallel > 0 {
		args = append(args, fmt.Sprintf("--parallel=%d", f.parallel))
	}
	if f.verbose {
		args = append(args, "--verbose")
	}
	if f.shard != "" {
		args = append(args, "--shard="+f.shard)
	}
	return append(args, "--trace="+f.traceMode, "--tc-attach="+f.tcAttach)
}

// sizeMiB parses a size such as 2G or 1536M (K, M, G; no suffix: bytes)
// into MiB.
func sizeMiB(s string) (int, error) {
	mult := int64(1)
	num := strings.TrimSuffix(strings.ToUpper(s), "B")
	switch {
	case strings.HasSuffix(num, "G"):
		mult, num = 1<<30, strings.TrimSuffix(num, "G")
	case strings.HasSuffix(num, "M"):
		mult, num = 1<<20, strings.TrimSuffix(num, "M")
	case strings.HasSuffix(num, "K"):
		mult, num = 1<<10, strings.TrimSuffix(num, "K")
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n*mult < 256<<20 {
		return 0, fmt.Errorf("%q: want a size of at least 256M, such as 2G or 1536M", s)
	}
	return int(n * mult >> 20), nil
}

package main

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/hopcheck/hopcheck/multipass/vm"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// vmFlags are the flags that run scenarios in a Multipass VM.
type vmFlags struct {
	name   string
	keepVM bool
	spec   vm.Spec
}

func addVMFlags(fl *pflag.FlagSet, f *vmFlags) {
	fl.StringVar(&f.name, "vm", "", "run inside the Multipass VM `NAME` (launched when missing)")
	fl.BoolVar(&f.keepVM, "keep-vm", false, "keep a VM this run launched (default: delete it, so every run starts from a fresh kernel; a VM that already existed is never deleted)")
	addSpecFlags(fl, &f.spec)
}

func addSpecFlags(fl *pflag.FlagSet, s *vm.Spec) {
	fl.StringVar(&s.Image, "image", vm.DefaultImage, "Ubuntu image for a new VM (22.04 runs kernel 5.15, 24.04 runs 6.8)")
	fl.IntVar(&s.CPUs, "cpus", vm.DefaultCPUs, "CPUs of a new VM")
	fl.StringVar(&s.Memory, "memory", vm.DefaultMemory, "memory of a new VM")
	fl.StringVar(&s.Disk, "disk", vm.DefaultDisk, "disk of a new VM")
}

// runInVM runs the same `hopcheck run` inside a Multipass VM: the guest
// prints the report, and its exit code becomes ours.
func runInVM(cmd *cobra.Command, f runFlags, paths []string) error {
	spec := f.vm.spec
	spec.Name = f.vm.name
	args := guestRunFlags(f)
	if f.keep {
		// Topologies left up in the guest; useful with --keep-vm.
		args = append(args, "--keep")
	}
	// A hopcheck cross-compiled for the guest lives only as long as the
	// run: a fixed name in the shared temporary directory would be left
	// behind and raced for by concurrent runs.
	buildDir, err := os.MkdirTemp("", "hopcheck-guest-")
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	defer os.RemoveAll(buildDir)
	b := &vm.Backend{Log: cmd.ErrOrStderr()}
	code, err := b.Run(cmd.Context(), vm.RunOptions{
		Spec:      spec,
		KeepVM:    f.vm.keepVM,
		Paths:     paths,
		JSONPath:  f.json,
		JUnitPath: f.junit,
		PcapDir:   f.pcap,
		Args:      args,
		Binary: func(ctx context.Context, goarch string) (string, error) {
			return guestBinary(ctx, goarch, buildDir, cmd.ErrOrStderr())
		},
		Stdout: cmd.OutOrStdout(),
		Stderr: cmd.ErrOrStderr(),
	})
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

// guestBinary returns a hopcheck for linux/goarch: this executable when it
// fits (same architecture, statically linked), else one cross-compiled
// into dir from the source tree this command runs in, which log is told
// about because it takes a while.
func guestBinary(ctx context.Context, goarch, dir string, log io.Writer) (string, error) {
	self, err := os.Executable()
	if err == nil && goarch == runtime.GOARCH && isStatic(self) {
		return self, nil
	}
	src, err := moduleRoot()
	if err != nil {
		return "", fmt.Errorf("the VM is %s and this hopcheck cannot run there (%s/%s or not static); "+
			"cross-compiling needs the source tree: %w", goarch, runtime.GOOS, runtime.GOARCH, err)
	}
	fmt.Fprintf(log, "hopcheck: building hopcheck for linux/%s from %s (this executable cannot run in the VM)\n", goarch, src)
	out := filepath.Join(dir, "hopcheck-linux-"+goarch)
	if err := vm.BuildBinary(ctx, src, goarch, out); err != nil {
		return "", err
	}
	return out, nil
}

// isStatic reports whether the ELF file at path has no program interpreter,
// i.e. runs without a dynamic loader in the guest.
func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// moduleRoot finds hopcheck's source tree above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/hopcheck/hopcheck\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no hopcheck go.mod above the working directory")
		}
		dir = parent
	}
}

func newVMCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vm",
		Short: "Manage the Multipass VM that 'run --vm' uses",
		Long: `vm launches, enters and deletes the disposable Ubuntu VM in which
'hopcheck run --vm NAME' runs scenarios. It needs the multipass CLI.`,
	}
	var spec vm.Spec
	up := &cobra.Command{
		Use:   "up [NAME]",
		Short: "Launch the VM (or start it) with what hopcheck needs",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec.Name = vmName(args)
			b := &vm.Backend{Log: cmd.ErrOrStderr()}
			inst, err := b.Up(cmd.Context(), spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is %s (%s, %v)\n", inst.Name, inst.State, inst.ImageRelease, inst.IPv4)
			return nil
		},
	}
	addSpecFlags(up.Flags(), &spec)
	shell := &cobra.Command{
		Use:   "shell [NAME]",
		Short: "Open a shell in the VM",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return (&vm.Backend{Log: cmd.ErrOrStderr()}).Shell(cmd.Context(), vmName(args))
		},
	}
	down := &cobra.Command{
		Use:   "down [NAME]",
		Short: "Delete and purge the VM",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return (&vm.Backend{Log: cmd.ErrOrStderr()}).Down(cmd.Context(), vmName(args))
		},
	}
	cmd.AddCommand(up, shell, down)
	return cmd
}

func vmName(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return vm.DefaultName
}

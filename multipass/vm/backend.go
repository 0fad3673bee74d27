package vm

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/hopcheck/hopcheck/multipass"
)

// Defaults of a VM the backend launches.
const (
	DefaultName   = "hopcheck"
	DefaultImage  = "24.04"
	DefaultCPUs   = 2
	DefaultMemory = "2G"
	DefaultDisk   = "10G"
)

// Spec names a VM and says how to launch it when it does not exist. Zero
// fields take the defaults above. The sizes of a VM that exists already are
// left as they are.
type Spec struct {
	Name   string
	Image  string
	CPUs   int
	Memory string
	Disk   string
}

func (s Spec) withDefaults() Spec {
	if s.Name == "" {
		s.Name = DefaultName
	}
	if s.Image == "" {
		s.Image = DefaultImage
	}
	if s.CPUs == 0 {
		s.CPUs = DefaultCPUs
	}
	if s.Memory == "" {
		s.Memory = DefaultMemory
	}
	if s.Disk == "" {
		s.Disk = DefaultDisk
	}
	return s
}

// Backend runs hopcheck in Multipass VMs. The zero value uses multipass from
// PATH with the client's default timeouts and reports no progress.
type Backend struct {
	// Client runs multipass; nil means a zero multipass.Client.
	Client *multipass.Client
	// Log receives one line per slow step (launching, starting, copying,
	// deleting), so that a person knows what the minutes are spent on.
	Log io.Writer
}

func (b *Backend) client() *multipass.Client {
	if b.Client == nil {
		return &multipass.Client{}
	}
	return b.Client
}

func (b *Backend) logf(format string, args ...any) {
	if b.Log != nil {
		fmt.Fprintf(b.Log, "hopcheck: "+format+"\n", args...)
	}
}

// Up makes sure the VM of spec exists and runs, launching or starting it as
// needed, and returns what multipass reports about it.
func (b *Backend) Up(ctx context.Context, spec Spec) (multipass.Instance, error) {
	in, _, err := b.ensure(ctx, spec.withDefaults())
	return in, err
}

// Shell opens an interactive shell in the VM on the caller's terminal.
func (b *Backend) Shell(ctx context.Context, name string) error {
	if name == "" {
		name = DefaultName
	}
	if err := b.client().Shell(ctx, name); err != nil {
		return fmt.Errorf("vm %s: %w", name, err)
	}
	return nil
}

// Down deletes and purges the VM. A VM that does not exist is an error
// matching multipass.ErrNotFound, so that a caller can ignore it knowingly.
func (b *Backend) Down(ctx context.Context, name string) error {
	if name == "" {
		name = DefaultName
	}
	b.logf("deleting VM %s", name)
	if err := b.client().Delete(ctx, name); err != nil {
		return fmt.Errorf("vm %s: %w", name, err)
	}
	return nil
}

// ensure makes the VM exist and run, and reports whether it launched it.
func (b *Backend) ensure(ctx context.Context, spec Spec) (multipass.Instance, bool, error) {
	c := b.client()
	in, err := c.Info(ctx, spec.Name)
	switch {
	case errors.Is(err, multipass.ErrNotFound):
		b.logf("launching VM %s (Ubuntu %s, %d CPUs, %s memory, %s disk); the first launch downloads the image and installs packages, which takes minutes",
			spec.Name, spec.Image, spec.CPUs, spec.Memory, spec.Disk)
		err := c.Launch(ctx, multipass.LaunchOptions{
			Name: spec.Name, Image: spec.Image, CPUs: spec.CPUs, Memory: spec.Memory, Disk: spec.Disk,
			CloudInit: CloudInit(),
		})
		if err != nil {
			return multipass.Instance{}, true, fmt.Errorf("vm %s: launch: %w", spec.Name, err)
		}
		in, err = c.Info(ctx, spec.Name)
		if err != nil {
			return multipass.Instance{}, true, fmt.Errorf("vm %s: %w", spec.Name, err)
		}
		return in, true, nil
	case err != nil:
		return multipass.Instance{}, false, fmt.Errorf("vm %s: %w", spec.Name, err)
	}
	switch in.State {
	case multipass.StateRunning:
		return in, false, nil
	case multipass.StateDeleted:
		return in, false, fmt.Errorf("vm %s is deleted but not purged: run `multipass recover %s` to use it or `multipass purge` to free the name", spec.Name, spec.Name)
	}
	b.logf("starting VM %s (%s)", spec.Name, in.State)
	if err := c.Start(ctx, spec.Name); err != nil {
		return in, false, fmt.Errorf("vm %s: start: %w", spec.Name, err)
	}
	if in, err = c.Info(ctx, spec.Name); err != nil {
		return in, false, fmt.Errorf("vm %s: %w", spec.Name, err)
	}
	return in, false, nil
}

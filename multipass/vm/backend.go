package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

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
	// deleting), multipass's own progress while it launches, and a line
	// every Heartbeat while a launch or a start goes on, so that a person
	// knows what the minutes are spent on.
	Log io.Writer
	// Heartbeat is how often a long wait says it is still waiting; 0 means
	// DefaultHeartbeat.
	Heartbeat time.Duration
}

// DefaultHeartbeat is how often a launch or start that takes long says so.
const DefaultHeartbeat = 30 * time.Second

// startPoll is how often the backend asks about a VM that is starting.
const startPoll = time.Second

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

// waiting runs do and, while it runs, logs every Heartbeat that what is
// still going on. The ticker's goroutine ends before waiting returns. Log
// is written by that goroutine and by do (multipass's progress), so the
// writes are serialised.
func (b *Backend) waiting(ctx context.Context, what string, do func(log io.Writer) error) error {
	if b.Log == nil {
		return do(nil)
	}
	every := b.Heartbeat
	if every <= 0 {
		every = DefaultHeartbeat
	}
	var mu sync.Mutex
	log := &syncWriter{mu: &mu, w: b.Log}
	stop := make(chan struct{})
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				fmt.Fprintf(log, "hopcheck: still %s (%s so far)\n", what, now.Sub(start).Round(time.Second))
			}
		}
	}()
	err := do(log)
	close(stop)
	<-done
	return err
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// prefixWriter puts "hopcheck: multipass: " before each line of
// multipass's progress, which comes in whole lines.
type prefixWriter struct{ w io.Writer }

func (p prefixWriter) Write(b []byte) (int, error) {
	if p.w == nil {
		return len(b), nil
	}
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			io.WriteString(p.w, "hopcheck: multipass: "+line)
		}
	}
	return len(b), nil
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
		return b.launch(ctx, spec)
	case err != nil:
		return multipass.Instance{}, false, fmt.Errorf("vm %s: %w", spec.Name, err)
	}
	switch in.State {
	case multipass.StateRunning:
		return in, false, nil
	case multipass.StateDeleted:
		// A deleted instance keeps its name until it is purged
		// (canonical/multipass#189, #499): hopcheck neither recovers nor
		// purges what may be the user's.
		return in, false, fmt.Errorf("vm %s: %w: `multipass recover %s` brings it back, `multipass delete --purge %s` frees the name",
			spec.Name, multipass.ErrDeleted, spec.Name, spec.Name)
	case multipass.StateStarting, multipass.StateRestarting:
		// Another launch or start is under way (or a launch whose wait
		// timed out): wait for it rather than start it twice.
		b.logf("waiting for VM %s (%s)", spec.Name, in.State)
		err := b.waiting(ctx, "waiting for VM "+spec.Name, func(io.Writer) error {
			in, err = b.waitRunning(ctx, spec.Name)
			return err
		})
		return in, false, err
	}
	// Stopped, Suspended (start resumes it, canonical/multipass#763), and
	// anything else multipass may know how to start.
	b.logf("starting VM %s (%s)", spec.Name, in.State)
	err = b.waiting(ctx, "starting VM "+spec.Name, func(io.Writer) error { return c.Start(ctx, spec.Name) })
	if err != nil {
		return in, false, fmt.Errorf("vm %s: start: %w", spec.Name, err)
	}
	if in, err = c.Info(ctx, spec.Name); err != nil {
		return in, false, fmt.Errorf("vm %s: %w", spec.Name, err)
	}
	return in, false, nil
}

// launch launches the VM of spec with hopcheck's cloud-init, passing
// multipass's progress on to Log.
func (b *Backend) launch(ctx context.Context, spec Spec) (multipass.Instance, bool, error) {
	c := b.client()
	b.logf("launching VM %s (Ubuntu %s, %d CPUs, %s memory, %s disk); the first launch downloads the image and installs packages, which takes minutes",
		spec.Name, spec.Image, spec.CPUs, spec.Memory, spec.Disk)
	err := b.waiting(ctx, "launching VM "+spec.Name, func(log io.Writer) error {
		return c.Launch(ctx, multipass.LaunchOptions{
			Name: spec.Name, Image: spec.Image, CPUs: spec.CPUs, Memory: spec.Memory, Disk: spec.Disk,
			CloudInit: CloudInit(),
			Progress:  prefixWriter{w: log},
		})
	})
	if errors.Is(err, multipass.ErrTimeout) {
		// The instance stays, with cloud-init perhaps still at work in it
		// (canonical/multipass#2574, #4395).
		return multipass.Instance{}, true, fmt.Errorf("vm %s: launch: %w (the VM may still be initialising: `multipass info %s` shows it, `hopcheck vm down %s` removes it)",
			spec.Name, err, spec.Name, spec.Name)
	}
	if err != nil {
		return multipass.Instance{}, true, fmt.Errorf("vm %s: launch: %w", spec.Name, err)
	}
	in, err := c.Info(ctx, spec.Name)
	if err != nil {
		return multipass.Instance{}, true, fmt.Errorf("vm %s: %w", spec.Name, err)
	}
	return in, true, nil
}

// waitRunning asks about the VM until it is no longer starting, bounded by
// the client's timeout, and returns it running.
func (b *Backend) waitRunning(ctx context.Context, name string) (multipass.Instance, error) {
	c := b.client()
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = multipass.DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		in, err := c.Info(ctx, name)
		if err != nil {
			return in, fmt.Errorf("vm %s: %w", name, err)
		}
		switch in.State {
		case multipass.StateRunning:
			return in, nil
		case multipass.StateStarting, multipass.StateRestarting:
		default:
			return in, fmt.Errorf("vm %s is %s, not running, after starting", name, in.State)
		}
		select {
		case <-ctx.Done():
			return in, fmt.Errorf("vm %s is still %s: %w", name, in.State, ctx.Err())
		case <-time.After(startPoll):
		}
	}
}

package build

import "sync"

// Phases of a topology's life that Options.Progress reports.
const (
	PhaseBuild    = "building"
	PhaseTeardown = "tearing down"
)

// progress reports steps done to an Options.Progress callback, serialised:
// namespaces are created and deleted by several goroutines at once.
type progress struct {
	mu    sync.Mutex
	fn    func(phase string, done, total int)
	phase string
	done  int
	total int
}

// newProgress returns a progress for total steps of phase; nil when fn is.
func newProgress(fn func(phase string, done, total int), phase string, total int) *progress {
	if fn == nil {
		return nil
	}
	return &progress{fn: fn, phase: phase, total: total}
}

// step counts one step done and reports it. A nil progress does nothing.
func (p *progress) step() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.fn(p.phase, p.done, p.total)
}

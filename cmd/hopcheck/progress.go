package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/harness/build"
)

// progressMinSteps is the size below which a topology's build or teardown
// shows no progress line: small ones are done before a person could read
// it.
const progressMinSteps = 200

// progressEvery is how often the progress line is redrawn at most.
const progressEvery = 100 * time.Millisecond

// progressLine draws one line on a terminal saying how far the build or
// teardown of a large topology has come ("building bench-1000: 1834/4006
// steps"), redrawn in place and erased when it is done. It is for stderr
// on a terminal only: piped output never gets one (see newProgressLine).
type progressLine struct {
	w   io.Writer
	now func() time.Time

	mu    sync.Mutex
	last  time.Time
	shown bool
}

// newProgressLine returns a progress line on stderr when stderr is a
// terminal, nil otherwise.
func newProgressLine() *progressLine {
	if _, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS); err != nil {
		return nil
	}
	return &progressLine{w: os.Stderr, now: time.Now}
}

// update is a build.Options.Progress (with the scenario's name): it
// redraws the line at most every progressEvery, and erases it when a
// phase is done.
func (p *progressLine) update(scenario, phase string, done, total int) {
	if p == nil || total < progressMinSteps {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if done >= total {
		if p.shown {
			fmt.Fprint(p.w, "\r\x1b[K")
			p.shown = false
		}
		return
	}
	now := p.now()
	if p.shown && now.Sub(p.last) < progressEvery {
		return
	}
	p.last = now
	unit := "steps"
	if phase != build.PhaseBuild {
		unit = "namespaces"
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s %s: %d/%d %s", phase, scenario, done, total, unit)
	p.shown = true
}

// callback returns p.update as a callback, or nil for a nil p, so that
// callers pass nothing when there is no terminal.
func (p *progressLine) callback() func(scenario, phase string, done, total int) {
	if p == nil {
		return nil
	}
	return p.update
}

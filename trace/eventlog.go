package trace

import (
	"cmp"
	"math"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// Take returns the events read so far, in time order, and forgets them,
// so a long-running trace (hopcheck trace) does not grow without bound.
func (t *Tracer) Take() []Event {
	t.mu.Lock()
	l := t.log
	t.log = eventLog{}
	t.mu.Unlock()
	evs := l.between(0, math.MaxInt64)
	sortByTime(evs)
	return evs
}

// Events returns a copy of every event read so far, in time order.
func (t *Tracer) Events() []Event {
	return t.EventsBetween(0, math.MaxInt64)
}

// EventsBetween returns the events with from <= Time <= to, in time order.
// Take from and to with Now around a probe.
func (t *Tracer) EventsBetween(from, to time.Duration) []Event {
	t.mu.Lock()
	evs := t.log.between(from, to)
	t.mu.Unlock()
	sortByTime(evs)
	return evs
}

// logBlock is how many events one block of an eventLog holds.
const logBlock = 1024

// eventLog holds the events read, in blocks of logBlock. It grows by whole
// blocks so that adding an event never copies the ones before it: at the
// tens of thousands of events per second of a TCP stream, regrowing one
// slice (clearing a bigger array, copying every event into it, while the
// GC waits to preempt the copy) was most of what the reader cost, and took
// its CPU from the traffic being traced.
type eventLog struct {
	blocks [][]Event
}

func (l *eventLog) add(ev Event) {
	if n := len(l.blocks); n == 0 || len(l.blocks[n-1]) == logBlock {
		l.blocks = append(l.blocks, make([]Event, 0, logBlock))
	}
	last := &l.blocks[len(l.blocks)-1]
	*last = append(*last, ev)
}

// between returns a copy of the events with from <= Time <= to, in the
// order they were added.
func (l *eventLog) between(from, to time.Duration) []Event {
	in := func(ev *Event) bool { return ev.Time >= from && ev.Time <= to }
	// Counted first, so the copy is made once, at its size.
	n := 0
	for _, b := range l.blocks {
		for i := range b {
			if in(&b[i]) {
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	evs := make([]Event, 0, n)
	for _, b := range l.blocks {
		for i := range b {
			if in(&b[i]) {
				evs = append(evs, b[i])
			}
		}
	}
	return evs
}

// sortByTime orders events by kernel time. Records from different CPUs
// reach the ring buffer slightly out of order.
func sortByTime(evs []Event) {
	slices.SortStableFunc(evs, func(a, b Event) int { return cmp.Compare(a.Time, b.Time) })
}

// Now returns the current time on the clock events are stamped with
// (CLOCK_MONOTONIC, which bpf_ktime_get_ns reads), to mark a probe's window.
func (t *Tracer) Now() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		// CLOCK_MONOTONIC cannot fail on Linux; a zero would only widen
		// a window, never lose events.
		return 0
	}
	return time.Duration(ts.Nano())
}

package trace

import (
	"context"
	"errors"
	"time"
)

// flushWait is one Flush request: its number and when it was made.
type flushWait struct {
	req uint64
	at  time.Duration
}

// serveFlush marks Flush requests up to req as served.
func (t *Tracer) serveFlush(req uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.markServedLocked(req)
}

func (t *Tracer) markServedLocked(req uint64) {
	for len(t.flushWaits) > 0 && t.flushWaits[0].req <= req {
		t.flushWaits = t.flushWaits[1:]
	}
	if req > t.flushServed {
		t.flushServed = req
		close(t.flushCh)
		t.flushCh = make(chan struct{})
	}
}

// flushGuard is how much later than a Flush request an event must be
// stamped to prove that the reader has read everything before the
// request. Records sit in the ring in the order they were reserved, and a
// program stamps its event right after reserving it, so only the moment
// between the two can reorder them.
const flushGuard = time.Millisecond

// passed notes that the reader has read an event stamped at.
func (t *Tracer) passed(at time.Duration) {
	t.mu.Lock()
	t.serveBeforeLocked(at)
	t.mu.Unlock()
}

// serveBeforeLocked serves the Flush requests made well before an event
// stamped at, which the reader has just read: everything reserved before
// them has been read too. It lets Flush finish while traffic never lets
// the ring run empty. Called with mu held.
func (t *Tracer) serveBeforeLocked(at time.Duration) {
	var req uint64
	for len(t.flushWaits) > 0 && t.flushWaits[0].at+flushGuard < at {
		req = t.flushWaits[0].req
		t.flushWaits = t.flushWaits[1:]
	}
	if req > 0 {
		t.markServedLocked(req)
	}
}

// Flush waits until every event produced before the call has been read, so
// that Events includes them. Call it after a probe completes and before
// correlating its events.
func (t *Tracer) Flush(ctx context.Context) error {
	t.mu.Lock()
	switch {
	case t.closed:
		t.mu.Unlock()
		return ErrClosed
	case !t.started:
		t.mu.Unlock()
		return errors.New("flush: tracer not started")
	}
	t.flushReq++
	want := t.flushReq
	t.flushWaits = append(t.flushWaits, flushWait{req: want, at: t.Now()})
	ch := t.flushCh
	// Signalled under mu: the reader reads flushReq under mu too, so every
	// request it counts has been signalled.
	if err := t.rd.Flush(); err != nil {
		// The reader was closed (Start's context ended) and is exiting;
		// wait for it below to report why it stopped.
		ch = nil
	}
	t.mu.Unlock()

	for {
		select {
		case <-ch:
			t.mu.Lock()
			served := t.flushServed >= want
			ch = t.flushCh
			t.mu.Unlock()
			if served {
				return nil
			}
		case <-t.readerDone:
			t.mu.Lock()
			defer t.mu.Unlock()
			if t.readErr != nil {
				return t.readErr
			}
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

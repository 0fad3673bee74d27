package trace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"
)

// pollInterval is how long the reader sleeps at most. The programs submit
// most events without waking it (see submit in bpf/trace.c), so this is
// the delay before an event reaches Take when nothing else wakes the
// reader: short beside the 100 ms a live trace prints at, long enough that
// an idle reader costs nothing worth measuring.
const pollInterval = 25 * time.Millisecond

// Start starts reading events. The reader stops at Close or when ctx is
// done; Events keeps what was read.
func (t *Tracer) Start(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return ErrClosed
	case t.started:
		return errors.New("tracer already started")
	}
	t.started = true
	t.readerDone = make(chan struct{})
	// Closing the reader is what interrupts a blocked read.
	t.cancelWG.Add(1)
	t.stopCancel = context.AfterFunc(ctx, func() {
		defer t.cancelWG.Done()
		_ = t.rd.Close()
	})
	go t.read()
	return nil
}

// read is the reader goroutine: it decodes records until the ring-buffer
// reader is closed, and serves Flush requests.
//
// The programs wake it only when a burst has filled part of the ring, so
// it also wakes itself: every read has a deadline at most pollEvery away,
// and when the deadline passes ReadInto returns what is in the ring, woken
// or not, before it reports ErrDeadlineExceeded.
//
// Flush signals the reader (ringbuf.Reader.Flush), which makes ReadInto
// return ErrFlushed once it has drained the ring. That drain may have
// started before later Flush calls were signalled, so the reader notes the
// requests signalled so far and drains once more without blocking (a
// deadline of now); when that drain ends (ErrDeadlineExceeded), every
// record produced before those requests has been handled, and they are
// served. None of this depends on the programs' wakeups: a drain reads
// every committed record.
func (t *Tracer) read() {
	defer close(t.readerDone)
	var (
		rec     ringbuf.Record
		pending uint64 // requests to serve at the end of the next drain
	)
	t.rd.SetDeadline(time.Now().Add(t.pollEvery))
	for {
		err := t.rd.ReadInto(&rec)
		switch {
		case err == nil:
			t.record(rec.RawSample)
		case errors.Is(err, ringbuf.ErrFlushed):
			t.mu.Lock()
			pending = t.flushReq
			t.mu.Unlock()
			t.rd.SetDeadline(time.Now())
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The ring was drained after the deadline passed: serve the
			// requests noted before it, then sleep until the next poll.
			t.serveFlush(pending)
			t.rd.SetDeadline(time.Now().Add(t.pollEvery))
		case errors.Is(err, ringbuf.ErrClosed):
			return
		default:
			t.mu.Lock()
			t.readErr = fmt.Errorf("read ring buffer: %w", err)
			t.mu.Unlock()
			return
		}
	}
}

// record decodes one record and keeps it if its namespace is traced.
func (t *Tracer) record(raw []byte) {
	ev, location, err := parseRecord(raw)
	if err != nil {
		// Only a mismatched object makes one; count it as lost rather
		// than stop reading.
		t.mu.Lock()
		t.malformed++
		t.mu.Unlock()
		return
	}

	t.mu.Lock()
	n := t.byCookie[ev.Netns]
	t.mu.Unlock()
	if n == nil || ev.Time < t.made {
		// A namespace this tracer does not know (any more), or an event
		// a previous Tracer left in the ring.
		t.passed(ev.Time)
		return
	}
	ev.NS = n.name

	if ev.Ifindex != 0 {
		ifc, ok := t.ifaceByIndex(n, ev.Ifindex)
		if ok {
			ev.If = ifc.name
			if ev.Kind == KindPacket && !ifc.ethernet {
				ev.Layer = layerFromVersion(ev.Data)
			}
		}
	}

	if ev.Kind == KindDrop {
		if p := t.programs; p.hasReason {
			ev.ReasonName = p.reasons.name(ev.Reason)
		}
		ev.Location = t.programs.syms.Name(location)
		if pkt, err := Decode(ev); err == nil && FreedAfterDelivery(&ev, &pkt) {
			t.passed(ev.Time)
			return
		}
	}

	t.mu.Lock()
	t.log.add(ev)
	t.serveBeforeLocked(ev.Time)
	t.mu.Unlock()
}

// ifaceByIndex resolves an interface index in n, asking the kernel for
// interfaces not seen at attach time (drops on interfaces without tc
// programs, interfaces created later).
func (t *Tracer) ifaceByIndex(n *namespace, ifindex uint32) (iface, bool) {
	t.mu.Lock()
	ifc, ok := n.ifs[ifindex]
	t.mu.Unlock()
	if ok {
		return ifc, true
	}
	l, err := n.nl.LinkByIndex(int(ifindex))
	if err != nil {
		return iface{}, false
	}
	ifc = ifaceOf(l)
	t.mu.Lock()
	n.ifs[ifindex] = ifc
	t.mu.Unlock()
	return ifc, true
}

// layerFromVersion reads the IP version of a packet that starts at its IP
// header (tc on an interface without a link-layer header).
func layerFromVersion(data []byte) Layer {
	if len(data) > 0 && data[0]>>4 == 6 {
		return LayerIPv6
	}
	return LayerIPv4
}

// Lost returns how many events were lost: those of this Tracer's
// namespaces that did not fit in its ring buffer (counted by the programs,
// on every CPU) and any record that did not decode.
func (t *Tracer) Lost() (uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, ErrClosed
	}
	sum := t.malformed
	for _, n := range t.namespaces {
		lost, err := t.programs.lostIn(n)
		if err != nil {
			return 0, err
		}
		sum += lost
	}
	return sum, nil
}

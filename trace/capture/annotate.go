package capture

import (
	"slices"
	"strings"
	"time"

	"github.com/hopcheck/hopcheck/trace"
)

// Annotation names the packets of one probe in a capture, so that a
// Wireshark user can filter them (frame.comment contains "ping ns1"). The
// capture finds them as Correlate does: by the probe's tag (ICMP, UDP) or
// by its SYN's sequence number (TCP), which NAT keeps, within the time
// window.
type Annotation struct {
	// Probe identifies the probe's packets; its Start and End are not used.
	Probe trace.Probe
	// From and To bound the probe in wall-clock time.
	From, To time.Time
	// Comment is written on each packet of the probe, followed by
	// " (request)" or " (reply)".
	Comment string
	// Drops are the tracer's drop events (Kind trace.KindDrop) while the probe
	// ran. Each becomes a packet of the capture's "drops" interface at the
	// time it happened, its comment naming the reason and location, and
	// the probe's Comment when the dropped packet was the probe's.
	Drops []trace.Event
}

// annotationSlack widens each annotation's window: frame timestamps and
// the caller's clock readings are taken at slightly different moments.
const annotationSlack = 5 * time.Millisecond

// annotator matches frames to annotations while the capture is merged in
// time order. Matchers learn from earlier packets (a TCP probe is found by
// its SYN), which is why they see the frames in time order.
type annotator struct {
	anns []Annotation
	// lo and hi are each annotation's window with its slack, in Unix
	// nanoseconds: every frame is tested against every window, so the test
	// must be cheap.
	lo, hi   []int64
	matchers []*trace.Matcher
	// first is the first annotation whose window may still hold a frame:
	// frames come in time order, and annotations are sorted by start.
	first int
}

func newAnnotator(anns []Annotation) *annotator {
	anns = slices.Clone(anns)
	slices.SortStableFunc(anns, func(x, y Annotation) int { return x.From.Compare(y.From) })
	a := &annotator{anns: anns, matchers: make([]*trace.Matcher, len(anns)),
		lo: make([]int64, len(anns)), hi: make([]int64, len(anns))}
	for i, an := range anns {
		a.lo[i] = an.From.Add(-annotationSlack).UnixNano()
		a.hi[i] = an.To.Add(annotationSlack).UnixNano()
		a.matchers[i] = trace.NewMatcher(an.Probe)
	}
	return a
}

// comment returns the comment of a packet seen at ns, leaving its
// interface (out) or not, at time at; "" when it is no probe's.
func (a *annotator) comment(at time.Time, ns string, out bool, pkt *trace.Packet) string {
	t := at.UnixNano()
	for a.first < len(a.anns) && a.hi[a.first] < t {
		a.first++
	}
	for i := a.first; i < len(a.anns) && a.lo[i] <= t; i++ {
		an := a.anns[i]
		if t > a.hi[i] {
			continue
		}
		switch a.matchers[i].Match(ns, dirOf(out), pkt) {
		case trace.LegRequest:
			return an.Comment + " (request)"
		case trace.LegReply:
			return an.Comment + " (reply)"
		}
	}
	return ""
}

// dropComment describes a drop event, with the comment of the probe
// whose packet it was, if any.
func (a *annotator) dropComment(at time.Time, e trace.Event) string {
	d := trace.Drop{NS: e.NS, If: e.If, Reason: e.ReasonName, Location: e.Location}
	var b strings.Builder
	b.WriteString("DROPPED: ")
	reason := d.Reason
	if reason == "" {
		reason = trace.NoReason
	}
	b.WriteString(reason)
	where := d.NS
	if d.If != "" {
		where += "/" + d.If
	}
	b.WriteString(" in " + where)
	if d.Location != "" {
		b.WriteString(" at " + d.Location)
	}
	if pkt, err := trace.Decode(e); err == nil {
		out := e.Dir == trace.Egress
		if c := a.comment(at, e.NS, out, &pkt); c != "" {
			b.WriteString("; " + c)
		}
	}
	return b.String()
}

func dirOf(out bool) trace.Direction {
	if out {
		return trace.Egress
	}
	return trace.Ingress
}

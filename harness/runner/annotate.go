package runner

import (
	"time"

	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/trace"
	"github.com/hopcheck/hopcheck/trace/capture"
)

// annotate names probe p's packets in capt (nil: no capture) with the
// scenario and check, "nat-egress: ping ns1 -> 203.0.113.8", so that
// Wireshark's filter frame.comment contains "ping ns1" finds them, and
// hands it the tracer's drops among events, which the capture writes as
// packets with their reason and location.
func annotate(capt *capture.Capture, sc *scenario.Scenario, c *scenario.Check, p trace.Probe, from, to time.Time, events []trace.Event) {
	if capt == nil {
		return
	}
	var drops []trace.Event
	for _, e := range events {
		if e.Kind == trace.KindDrop {
			drops = append(drops, e)
		}
	}
	capt.Annotate(capture.Annotation{Probe: p, From: from, To: to, Comment: sc.Name + ": " + c.Name, Drops: drops})
}

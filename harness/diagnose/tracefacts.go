package diagnose

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/trace"
)

// What the trace alone says: the kernel's drop reason, unanswered
// neighbor requests, and the evidence lines that summarise a trace.

// fromTrace reads a cause from the trace alone: the kernel's drop reason
// where it names one, else a neighbor resolution nobody answered. dst is
// the request's destination after DNAT, to tell a missing destination
// from a missing gateway.
func fromTrace(t *trace.Trace, p Probe, dst netip.Addr) *finding {
	if t == nil {
		return nil
	}
	if d := t.Drop; d != nil {
		f := &finding{NS: d.NS, If: d.If, Summary: "the kernel dropped the probe: " + d.String()}
		switch d.Reason {
		case "NETFILTER_DROP":
			f.Cause = NetfilterDrop
		case "IP_RPFILTER":
			f.Cause = RPFilter
		case "IP_INNOROUTES", "IP_OUTNOROUTES":
			f.Cause = NoRoute
			if d.Reply {
				f.Cause = NoReturnRoute
			}
		case "OTHERHOST":
			// A frame to a MAC the receiver does not have: a neighbor
			// entry upstream holds the wrong one.
			f.Cause = WrongMAC
			f.Summary = "the kernel dropped the probe as addressed to another host's MAC: " + d.String()
		case "NO_SOCKET":
			if p.Proto == "tcp" || p.Proto == "udp" {
				f.Cause = NoListener
			}
		case "PKT_TOO_BIG":
			f.Cause = MTU
		case "NEIGH_FAILED":
			// The packet waited for a neighbor that never answered.
			f.Cause = ARPFailed
		case "NEIGH_CREATEFAIL":
			// No entry could be made to resolve the next hop: the
			// table all namespaces share is at gc_thresh3. Nothing
			// the scenario configures explains it, and the remedy is
			// a sysctl of the machine's root namespace, which hopcheck
			// never changes, so it is advice rather than a fix.
			f.Cause = NeighborTableFull
			f.Summary = "the kernel could not create a neighbor entry for the next hop: its neighbor table, shared by every namespace of the machine, is full (" + d.String() + "); " +
				"fewer neighbors at once, or a larger net." + neighFamily(p) + ".neigh.default.gc_thresh3 (1024 by default) set in the machine's root namespace, make room"
		}
		if f.Cause != "" {
			return f
		}
	}
	for _, e := range t.ICMPErrors {
		if tooBigError(e) {
			return &finding{NS: e.NS, If: e.If, Cause: MTU,
				Summary: fmt.Sprintf("%s answered the probe with %s", e.From, e.Text())}
		}
	}
	for _, a := range probeARP(t, p) {
		if a.Answered {
			continue
		}
		f := &finding{NS: a.NS, If: a.If, Cause: ARPFailed,
			Summary: fmt.Sprintf("%s/%s asked for %s and got no answer", a.NS, a.If, a.Target)}
		if a.Target == dst || a.Target == p.Dst.Addr() {
			f.Cause = AddressMissing
		}
		return f
	}
	return nil
}

// traceEvidence summarises a trace in a few lines: where the request and
// the reply went, the drop, the unanswered neighbor requests and the ICMP
// errors.
func traceEvidence(t *trace.Trace, p Probe) []string {
	if t == nil {
		return nil
	}
	var ev []string
	if len(t.Request) == 0 {
		ev = append(ev, "trace: the request was not seen on any interface")
	} else {
		last := t.Request[len(t.Request)-1]
		ev = append(ev, fmt.Sprintf("trace: request crossed %s; last seen at %s %s", hopPath(t.Request), last.Point(), last.Dir))
	}
	if len(t.Reply) == 0 {
		if len(t.Request) > 0 {
			ev = append(ev, "trace: no reply was seen")
		}
	} else {
		last := t.Reply[len(t.Reply)-1]
		ev = append(ev, fmt.Sprintf("trace: reply crossed %s; last seen at %s %s", hopPath(t.Reply), last.Point(), last.Dir))
	}
	for _, x := range t.Translations {
		ev = append(ev, "trace: "+x.String())
	}
	for _, a := range probeARP(t, p) {
		if !a.Answered {
			ev = append(ev, fmt.Sprintf("trace: who-has %s tell %s at %s/%s: no reply (%s)", a.Target, a.Sender, a.NS, a.If, plural(uint64(a.Requests), "request")))
		}
	}
	for _, e := range t.ICMPErrors {
		ev = append(ev, "trace: "+e.String())
	}
	if t.Drop != nil {
		ev = append(ev, "trace: "+t.Drop.String())
	}
	return ev
}

// probeARP returns the neighbor resolutions of t that can concern the
// probe: of its address family, and not duplicate address detection
// (sent from the unspecified address, about the sender's own new
// address), which the kernel does for every IPv6 interface that comes up.
func probeARP(t *trace.Trace, p Probe) []trace.ARPExchange {
	var out []trace.ARPExchange
	is4 := p.Dst.Addr().Unmap().Is4()
	for _, a := range t.ARP {
		if a.Sender.IsUnspecified() || !a.Sender.IsValid() || a.Target.Unmap().Is4() != is4 {
			continue
		}
		out = append(out, a)
	}
	return out
}

// layer2 are the causes that leave a sender's neighbor requests
// unanswered: an unanswered ARP in the trace is what each of them looks
// like from the sender.
var layer2 = []string{LinkDown, NotBridged, ARPFailed, AddressMissing, VXLANMismatch}

// agree reports whether the trace's reading tf is consistent with the
// state's finding f: the same cause at the same place, or an unanswered
// neighbor request where the state finds a layer-2 cause.
func agree(f, tf *finding) bool {
	if tf.Cause == f.Cause && (tf.NS == f.NS || tf.Cause == WrongMAC) {
		// A wrong MAC is dropped where the frame lands, not where the
		// entry is.
		return true
	}
	return (tf.Cause == ARPFailed || tf.Cause == AddressMissing) && slices.Contains(layer2, f.Cause)
}

// hopPath lists the interfaces of hops, each once in a row.
func hopPath(hops []trace.Hop) string {
	var s []string
	for _, h := range hops {
		if p := h.Point(); len(s) == 0 || s[len(s)-1] != p {
			s = append(s, p)
		}
	}
	return strings.Join(s, " -> ")
}

// tooBigError reports whether e says a probe packet was too big for a
// link: ICMP fragmentation needed, ICMPv6 packet too big.
func tooBigError(e trace.ICMPError) bool {
	switch e.Proto {
	case trace.ProtoICMP:
		return e.Type == 3 && e.Code == 4
	case trace.ProtoICMPv6:
		return e.Type == 2
	}
	return false
}

// plural formats n with its noun: "1 packet", "3 packets".
func plural(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatUint(n, 10) + " " + noun + "s"
}

// neighFamily is the sysctl family ("ipv4" or "ipv6") of p's neighbor
// table.
func neighFamily(p Probe) string {
	if p.Dst.Addr().Unmap().Is4() {
		return "ipv4"
	}
	return "ipv6"
}

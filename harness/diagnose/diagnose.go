package diagnose

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/trace"
)

// Outcome is how a probe failed, as the prober saw it.
type Outcome string

// The outcomes of a failed probe.
const (
	// OutcomeTimeout: no answer in time.
	OutcomeTimeout Outcome = "timeout"
	// OutcomeRefused: a TCP reset or ICMP port unreachable came back.
	OutcomeRefused Outcome = "refused"
	// OutcomeUnreachable: the sender had no route (ENETUNREACH) or an
	// ICMP network/host unreachable came back.
	OutcomeUnreachable Outcome = "unreachable"
	// OutcomeFiltered: a firewall refused the probe (EPERM at the sender,
	// ICMP administratively prohibited).
	OutcomeFiltered Outcome = "filtered"
	// OutcomeTooBig: the probe was larger than an MTU on the way and may
	// not be fragmented (EMSGSIZE at send, ICMP fragmentation needed or
	// ICMPv6 packet too big).
	OutcomeTooBig Outcome = "too-big"
	// OutcomeError: anything else.
	OutcomeError Outcome = "error"
)

// Probe is the probe that failed.
type Probe struct {
	// Proto is "icmp", "tcp" or "udp".
	Proto string
	// From is the scenario namespace the probe was sent from.
	From string
	// Src is the source address and port the prober bound, when known
	// (tcp and udp); the walk picks the source as the kernel does when it
	// is not.
	Src netip.AddrPort
	// Dst is the destination as probed (port 0 for icmp).
	Dst netip.AddrPort
	// ListenNS and ListenPort are where the harness served a listener
	// during the probe (a check's `listen:`); it is gone by the time the
	// snapshot is taken, so the walk counts it as listening.
	ListenNS   string
	ListenPort uint16
	Outcome    Outcome
	// Size is the size of the request's IP packet in bytes, 0 when not
	// known (then no MTU is compared with it).
	Size int
	// DF is set when the request may not be fragmented: DF on IPv4, no
	// fragmentation by the sender on IPv6 (routers never fragment IPv6).
	DF bool
}

// Input is everything a diagnosis rests on.
type Input struct {
	// Scenario is the topology as written: which ports belong to which
	// bridge, the veth pairs, the routes. Nil for namespaces hopcheck did
	// not build; the snapshot alone is used then.
	Scenario *scenario.Scenario
	Probe    Probe
	// Trace is the probe's trace; nil when tracing was off.
	Trace *trace.Trace
	// Before holds the iptables counters taken just before the probe
	// (snapshot.TakeCounters); nil when they were not taken. After is the full
	// snapshot taken after the probe failed (snapshot.Take).
	Before, After *snapshot.State
}

// Diagnosis says why a probe failed.
type Diagnosis struct {
	// Cause is one of Causes.
	Cause string `json:"cause"`
	// NS and If are where it happened, in the scenario's names; If may be
	// empty.
	NS string `json:"ns"`
	If string `json:"if,omitempty"`
	// Summary is one sentence a person understands.
	Summary string `json:"summary"`
	// Evidence are the facts the diagnosis rests on, one per line.
	Evidence []string `json:"evidence,omitempty"`
	// Fix is a command that would repair it, written "COMMAND  # in NS",
	// or "" when none is known.
	Fix string `json:"fix,omitempty"`
	// FromStateOnly is set when there was no trace: the diagnosis rests on
	// the namespaces' state alone.
	FromStateOnly bool `json:"from_state_only"`
	// Beyond names the namespace the probe's path left the snapshot
	// into, as a user names it (an `ip netns` name or /proc/PID/ns/net),
	// when it is one hopcheck could follow; "" otherwise. Explain follows
	// it when its Env can take namespaces in (Follower).
	Beyond string `json:"beyond,omitempty"`
	// beyondIno is Beyond's inode when it was read (0 otherwise).
	beyondIno uint64
}

// Place returns "ns/if", or "ns" when If is empty.
func (d *Diagnosis) Place() string {
	if d.If == "" {
		return d.NS
	}
	return d.NS + "/" + d.If
}

// Diagnose says why in.Probe failed. It walks the probe's request, and
// then its reply, through in.After as the kernel would and names the first
// thing that stops it; the trace confirms and locates it, or supplies the
// cause when the walk finds the way open. It never returns nil: when
// nothing explains the failure the cause is Unknown, with the evidence
// gathered on the way.
func Diagnose(in Input) *Diagnosis {
	d := &Diagnosis{FromStateOnly: in.Trace == nil}
	if in.After == nil {
		d.Cause, d.NS = Unknown, in.Probe.From
		d.Summary = "no snapshot of the namespaces was taken, so the failure cannot be explained"
		d.Evidence = traceEvidence(in.Trace, in.Probe)
		return d
	}
	w := &walker{
		sc:     in.Scenario,
		st:     in.After,
		probe:  in.Probe,
		moved:  snapshot.Delta(in.Before, in.After),
		before: in.Before,
	}
	f, finalDst := w.run()
	tf := fromTrace(in.Trace, in.Probe, finalDst)

	var ev []string
	if f != nil && f.Cause == Unknown && tf != nil && tf.Cause != Unknown {
		// The state could not tell (the path left the view, say); the
		// trace saw the cause.
		ev = append(ev, f.Summary)
		ev = append(ev, f.Evidence...)
		f = nil
	}
	switch {
	case f != nil:
		if tf != nil && f.If == "" && tf.Cause == f.Cause && tf.NS == f.NS {
			f.If = tf.If
		}
		ev = append(ev, f.Evidence...)
		if tf != nil && !agree(f, tf) && !w.namedUpstream(f, tf) {
			ev = append(ev, fmt.Sprintf("the trace and the state disagree: the trace points at %s at %s (%s)", tf.Cause, place(tf.NS, tf.If), tf.Summary))
		}
	case tf != nil:
		f = tf
		ev = append(ev, "the namespaces' state shows an open way; the cause is read from the trace")
	default:
		f = &finding{Cause: Unknown, NS: in.Probe.From, Summary: w.unknownSummary()}
	}
	ev = append(ev, traceEvidence(in.Trace, in.Probe)...)
	for _, m := range w.moved {
		if line := m.String(); !slices.Contains(ev, line) && m.Drops() {
			ev = append(ev, line)
		}
	}
	if f.Cause == Unknown {
		ev = append(ev, w.trail...)
	}
	d.Cause, d.NS, d.If, d.Summary, d.Fix = f.Cause, f.NS, f.If, f.Summary, f.Fix
	if name := unsafeNameIn(in.After, d.Fix); name != "" {
		ev = append(ev, fmt.Sprintf("no fix is printed: it would name %q, which holds characters a shell interprets", name))
		d.Fix = ""
	}
	for _, x := range w.exits {
		if x.veth && x.peerNS != "" && x.who != snapshot.HomeNS {
			d.Beyond, d.beyondIno = x.peerNS, x.peerIno
			break
		}
	}
	d.Evidence = dedupe(ev)
	return d
}

// namedUpstream reports whether the state's finding f names a namespace
// the request crossed before it died where the trace tf saw it die, for
// the same cause: a fix at the mistake (a route missing in a table
// upstream) rather than where the packet was dropped.
func (w *walker) namedUpstream(f, tf *finding) bool {
	if f.Cause != tf.Cause || (f.Cause != NoRoute && f.Cause != NoReturnRoute) {
		return false
	}
	for _, c := range append(w.request, w.reply...) {
		if c.ns == f.NS {
			return true
		}
	}
	return false
}

// unknownSummary says what is known when nothing explains the failure.
func (w *walker) unknownSummary() string {
	s := fmt.Sprintf("the namespaces' state shows an open way from %s to %s and back", w.probe.From, w.probe.Dst.Addr())
	if w.probe.Outcome != "" {
		s += fmt.Sprintf(", yet the probe failed (%s)", w.probe.Outcome)
	}
	return s
}

// fixIn writes a fix as a command to run inside a namespace.
func fixIn(ns, cmd string) string { return cmd + fixMarker + ns }

func place(ns, ifname string) string {
	if ifname == "" {
		return ns
	}
	return ns + "/" + ifname
}

func parsePort(s string) (uint16, error) {
	s, _, _ = strings.Cut(s, "-")
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

func itoa(i int) string { return strconv.Itoa(i) }

// dedupe drops repeated lines, keeping the first of each.
func dedupe(lines []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lines {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

package diagnose

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

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
	// (TakeCounters); nil when they were not taken. After is the full
	// snapshot taken after the probe failed (Take).
	Before, After *State
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
		moved:  Delta(in.Before, in.After),
		before: in.Before,
	}
	var (
		f        *finding
		finalDst = in.Probe.Dst.Addr()
	)
	if in.Probe.Dst.Addr().Unmap().Is4() {
		f, finalDst = w.run()
	} else {
		w.note("the walk through the namespaces' state covers IPv4 only; %s is diagnosed from the trace", in.Probe.Dst.Addr())
	}
	tf := fromTrace(in.Trace, in.Probe, finalDst)

	var ev []string
	switch {
	case f != nil:
		if tf != nil && f.If == "" && tf.Cause == f.Cause && tf.NS == f.NS {
			f.If = tf.If
		}
		ev = append(ev, f.Evidence...)
		if tf != nil && !agree(f, tf) {
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
		if line := m.String(); !containsLine(ev, line) && m.Drops() {
			ev = append(ev, line)
		}
	}
	if f.Cause == Unknown {
		ev = append(ev, w.trail...)
	}
	d.Cause, d.NS, d.If, d.Summary, d.Fix = f.Cause, f.NS, f.If, f.Summary, f.Fix
	d.Evidence = dedupe(ev)
	return d
}

// run walks the request and the reply. It returns the first finding, and
// the request's destination after any DNAT.
func (w *walker) run() (*finding, netip.Addr) {
	pr := w.probe
	p := packet{Dst: pr.Dst.Addr().Unmap(), DPort: pr.Dst.Port(), Proto: pr.Proto}
	if a := pr.Src.Addr(); a.IsValid() && !a.IsUnspecified() {
		p.Src = a.Unmap()
	}
	p.SPort = pr.Src.Port()
	if p.Proto == "" {
		p.Proto = "icmp"
	}
	req := w.leg(pr.From, p)
	if req.f != nil {
		// The walk stopped before it knew the packet as delivered; the
		// destination is the one probed, or the last DNAT's.
		dst := p.Dst
		for _, n := range w.nats {
			if n.kind == "DNAT" {
				dst = n.to.Addr()
			}
		}
		return req.f, dst
	}
	if p.Proto == "tcp" || p.Proto == "udp" {
		if f := w.listener(req.at, req.p); f != nil {
			return f, req.p.Dst
		}
	}
	reply := packet{Src: req.p.Dst, Dst: req.p.Src, SPort: req.p.DPort, DPort: req.p.SPort, Proto: req.p.Proto, Reply: true}
	rep := w.leg(req.at.ns, reply)
	if rep.f != nil {
		return rep.f, req.p.Dst
	}
	if rep.at.ns != pr.From {
		return &finding{
			Cause: NoReturnRoute, NS: req.at.ns, If: req.at.ifname,
			Summary: fmt.Sprintf("the reply from %s to %s is delivered to %s, not to %s that sent the probe (%s is also an address of %s)",
				req.p.Dst, rep.p.Dst, rep.at.ns, pr.From, rep.p.Dst, rep.at.ns),
			Evidence: w.trail,
		}, req.p.Dst
	}
	return nil, req.p.Dst
}

// listener checks that something listens where a tcp or udp request was
// delivered: the harness's own listener of the check, or a socket in the
// snapshot.
func (w *walker) listener(at endpoint, p packet) *finding {
	if w.probe.ListenNS == at.ns && w.probe.ListenPort == p.DPort {
		w.note("%s: the check's listener serves %s port %d", at.ns, p.Proto, p.DPort)
		return nil
	}
	ns := w.st.NS(at.ns)
	var socks []string
	for _, l := range ns.Listeners {
		if l.Proto != p.Proto {
			continue
		}
		socks = append(socks, l.Addr.String())
		if l.Addr.Port() == p.DPort && (l.Addr.Addr().IsUnspecified() || l.Addr.Addr().Unmap() == p.Dst) {
			w.note("%s: %s listens on %s", at.ns, p.Proto, l.Addr)
			return nil
		}
	}
	if w.probe.ListenNS == at.ns {
		socks = append(socks, fmt.Sprintf("the check's listener on port %d", w.probe.ListenPort))
	}
	if len(socks) == 0 {
		socks = []string{"none"}
	}
	f := &finding{
		Cause: NoListener, NS: at.ns, If: at.ifname,
		Summary: fmt.Sprintf("the %s request reaches %s (%s) on %s, but nothing listens on %s port %d there",
			p.Proto, at.ns, netip.AddrPortFrom(p.Dst, p.DPort), at.ifname, p.Proto, p.DPort),
		Evidence: []string{fmt.Sprintf("%s: %s sockets listening: %s", at.ns, p.Proto, strings.Join(socks, ", "))},
	}
	for _, n := range w.nats {
		if n.kind != "DNAT" {
			continue
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s: DNAT %s -> %s sent the request there", n.ns, n.from, n.to))
		if w.probe.ListenNS == at.ns && w.probe.ListenPort != 0 && n.to.Port() == p.DPort {
			if v := w.dnatRule(n); v != nil {
				spec := strings.Replace(v.Spec, v.Opts["--to-destination"], netip.AddrPortFrom(n.to.Addr(), w.probe.ListenPort).String(), 1)
				f.Fix = fixIn(n.ns, fmt.Sprintf("iptables -t nat -R %s %d %s", v.Chain, v.Rule, spec))
			}
		}
	}
	if w.probe.ListenNS != "" && w.probe.ListenNS != at.ns {
		f.Evidence = append(f.Evidence, fmt.Sprintf("the check's listener was in %s, port %d, not in %s", w.probe.ListenNS, w.probe.ListenPort, at.ns))
	}
	return f
}

// dnatRule finds the nat rule that made translation n.
func (w *walker) dnatRule(n natRecord) *verdict {
	ns := w.st.NS(n.ns)
	t := ns.Table("nat")
	if t == nil {
		return nil
	}
	for _, chain := range []string{"PREROUTING", "OUTPUT"} {
		c := t.Chain(chain)
		if c == nil {
			continue
		}
		for i, r := range c.Rules {
			pr := parseRule(r.Spec)
			if pr.target != "DNAT" {
				continue
			}
			a, port, ok := natTo(pr.opts["--to-destination"])
			if ok && (!a.IsValid() || a == n.to.Addr()) && (port == 0 || port == n.to.Port()) {
				return &verdict{Target: "DNAT", Table: "nat", Chain: chain, Rule: i + 1, Spec: r.Spec, Opts: pr.opts}
			}
		}
	}
	return nil
}

// unknownSummary says what is known when nothing explains the failure.
func (w *walker) unknownSummary() string {
	s := fmt.Sprintf("the namespaces' state shows an open way from %s to %s and back", w.probe.From, w.probe.Dst.Addr())
	if w.probe.Outcome != "" {
		s += fmt.Sprintf(", yet the probe failed (%s)", w.probe.Outcome)
	}
	return s
}

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
		case "NO_SOCKET":
			if p.Proto == "tcp" || p.Proto == "udp" {
				f.Cause = NoListener
			}
		}
		if f.Cause != "" {
			return f
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
var layer2 = []string{LinkDown, NotBridged, ARPFailed, AddressMissing}

// agree reports whether the trace's reading tf is consistent with the
// state's finding f: the same cause at the same place, or an unanswered
// neighbor request where the state finds a layer-2 cause.
func agree(f, tf *finding) bool {
	if tf.Cause == f.Cause && tf.NS == f.NS {
		return true
	}
	return (tf.Cause == ARPFailed || tf.Cause == AddressMissing) && contains(layer2, f.Cause)
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

// fixIn writes a fix as a command to run inside a namespace.
func fixIn(ns, cmd string) string { return cmd + "  # in " + ns }

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

func containsLine(lines []string, l string) bool { return contains(lines, l) }

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

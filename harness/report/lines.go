package report

import (
	"fmt"
	"github.com/hopcheck/hopcheck/trace"
	"strconv"
	"strings"
)

// style is how the text report colours a line; the JUnit report ignores it.
type style uint8

const (
	stylePlain style = iota
	styleDim
	styleBold
	styleRed
	styleGreen
)

// line is one line of a check's explanation, before indentation and colour.
type line struct {
	indent int // extra indentation, in columns
	text   string
	style  style
}

// blockOptions choose what checkBlock includes beyond the error.
type blockOptions struct {
	details bool // the check's measurements (verbose)
	trace   bool // hops, translations, ARP, drop, diagnosis
}

// checkBlock returns the lines under a check: the error, then (with
// o.trace) the hop list with a reply marker, translations, ARP lines, the
// drop as the last trace line, and the diagnosis. Text and JUnit render the
// same lines, so a CI failure message reads like the terminal.
func checkBlock(c Check, o blockOptions) []line {
	var out []line
	if c.Error != "" {
		out = append(out, multiline("error: ", c.Error, styleRed)...)
	}
	if o.details && len(c.Details) > 0 {
		kv := make([]string, len(c.Details))
		for i, d := range c.Details {
			kv[i] = d.Key + "=" + d.Value
		}
		out = append(out, line{text: "details: " + strings.Join(kv, " "), style: styleDim})
	}
	if !o.trace {
		return out
	}
	if c.TraceNote != "" {
		out = append(out, line{text: "trace: " + c.TraceNote, style: styleDim})
	}
	out = append(out, hopLines(c.Hops)...)
	for _, t := range c.Translations {
		out = append(out, line{text: t, style: styleDim})
	}
	for _, a := range c.ARP {
		out = append(out, line{text: "arp: " + a, style: styleDim})
	}
	if c.Drop != nil {
		out = append(out, line{text: dropText(*c.Drop), style: styleBold})
	}
	if c.Diagnosis != nil {
		out = append(out, diagnosisLines(*c.Diagnosis)...)
	}
	return out
}

// multiline splits a possibly multi-line message (iptables' own output, for
// one) into a first line with prefix and the rest indented under it.
func multiline(prefix, msg string, st style) []line {
	parts := strings.Split(strings.TrimRight(msg, "\n"), "\n")
	out := []line{{text: prefix + parts[0], style: st}}
	for _, p := range parts[1:] {
		out = append(out, line{indent: len(prefix), text: p, style: st})
	}
	return out
}

// hopLines lays hops out in aligned columns: ns/if, direction, time, then
// the addresses. A "reply:" line separates the request's hops from the
// reply's, so a missing reply leg is visible at a glance.
func hopLines(hops []Hop) []line {
	if len(hops) == 0 {
		return nil
	}
	var wPlace, wDir, wTime int
	for _, h := range hops {
		wPlace = max(wPlace, len(place(h.NS, h.If)))
		wDir = max(wDir, len(h.Dir))
		wTime = max(wTime, len(hopTime(h.TUS)))
	}
	out := make([]line, 0, len(hops)+1)
	inReply := false
	for _, h := range hops {
		if h.Leg == LegReply && !inReply {
			inReply = true
			out = append(out, line{text: "reply:", style: styleDim})
		}
		text := fmt.Sprintf("%-*s  %-*s  %-*s  %s -> %s %s",
			wPlace, place(h.NS, h.If), wDir, h.Dir, wTime, hopTime(h.TUS), h.Src, h.Dst, h.Proto)
		out = append(out, line{text: strings.TrimRight(text, " "), style: styleDim})
	}
	return out
}

// hopTime reads "+12us". Hops before the first request hop (the ARP
// request that held the probe back) have negative times: "-40us".
func hopTime(us int64) string {
	sign := "+"
	if us < 0 {
		sign = ""
	}
	return sign + strconv.FormatInt(us, 10) + "us"
}

// place names an interface as ns/if, or just ns when there is none.
func place(ns, ifname string) string {
	if ifname == "" || ns == "" {
		return ns + ifname
	}
	return ns + "/" + ifname
}

// dropText reads "dropped in host at nf_hook_slow: NETFILTER_DROP".
func dropText(d Drop) string {
	s := "dropped in " + place(d.NS, d.If)
	if d.Location != "" {
		s += " at " + d.Location
	}
	if d.Reason == "" {
		return s + ": " + trace.NoReason
	}
	return s + ": " + d.Reason
}

// diagnosisLines reads "cause: CODE at ns/if: sentence", the evidence
// indented under it, then "fix: command".
func diagnosisLines(d Diagnosis) []line {
	head := "cause: " + d.Cause
	if p := place(d.NS, d.If); p != "" {
		head += " at " + p
	}
	if d.Summary != "" {
		head += ": " + d.Summary
	}
	out := []line{{text: head, style: styleBold}}
	if d.FromStateOnly {
		out = append(out, line{indent: 2, text: "(from namespace state only: the probe was not traced)", style: styleDim})
	}
	for _, e := range d.Evidence {
		out = append(out, line{indent: 2, text: e, style: styleDim})
	}
	if d.Fix != "" {
		out = append(out, line{text: "fix: " + d.Fix})
	}
	return out
}

// figures is the key-figures column of a check's line: its summary, and
// what an `expect: fail` check requires, so a PASS that means "isolated" is
// not read as "reachable".
func figures(c Check) string {
	if c.Expect != "fail" {
		return c.Summary
	}
	mark := "[expect fail]"
	if c.Cause != "" {
		mark = "[expect fail: " + c.Cause + "]"
	}
	if c.Summary == "" {
		return mark
	}
	return c.Summary + " " + mark
}

// scenarioErrorCheck turns a scenario's own error into the check it is
// reported as: "build" when no check ran, "teardown" after them.
func scenarioErrorCheck(s Scenario) Check {
	name := "teardown"
	switch {
	case s.InputError:
		name = "validate"
	case s.BuildError:
		name = "build"
	case len(s.Checks) == 0:
		// Interrupted or otherwise stopped before the first check.
		name = "setup"
	}
	return Check{Name: name, Kind: name, Error: s.Error}
}

// counts tallies a run for its summary.
type counts struct {
	scenariosPassed, scenariosFailed, buildErrors int
	invalidFiles                                  int
	checksPassed, checksFailed                    int
	incompleteTraces                              int
}

func countRun(r Run) counts {
	var n counts
	for _, s := range r.Scenarios {
		switch {
		case s.Passed:
			n.scenariosPassed++
		case s.InputError:
			n.invalidFiles++
		case s.BuildError:
			n.buildErrors++
		default:
			n.scenariosFailed++
		}
		for _, c := range s.Checks {
			if c.Passed {
				n.checksPassed++
			} else {
				n.checksFailed++
			}
			if c.TraceIncomplete {
				n.incompleteTraces++
			}
		}
	}
	return n
}

// summaryLines are the run's totals, one "label  value" per line.
func summaryLines(r Run) []string {
	n := countRun(r)
	scen := fmt.Sprintf("%d passed, %d failed", n.scenariosPassed, n.scenariosFailed)
	if n.buildErrors > 0 {
		scen += fmt.Sprintf(", %d not built", n.buildErrors)
	}
	if n.invalidFiles > 0 {
		scen += fmt.Sprintf(", %d invalid", n.invalidFiles)
	}
	out := []string{
		"scenarios  " + scen,
		fmt.Sprintf("checks     %d passed, %d failed", n.checksPassed, n.checksFailed),
		"duration   " + formatMS(r.DurationMS),
		"tracing    " + tracingText(r.Tracing),
	}
	if r.LostEvents > 0 {
		out = append(out, fmt.Sprintf("lost       %d trace events (hops may be missing)", r.LostEvents))
	}
	if r.CaptureLost > 0 {
		out = append(out, fmt.Sprintf("capture    %d frames lost from the --pcap files (hopcheck's socket queues were full)", r.CaptureLost))
	}
	if n.incompleteTraces > 0 {
		out = append(out, incompleteText(n.incompleteTraces))
	}
	if r.Shard != "" {
		out = append(out, "shard      "+r.Shard)
	}
	return out
}

// incompleteText is the summary line for checks whose traces could not be
// completed.
func incompleteText(n int) string {
	checks := "checks"
	if n == 1 {
		checks = "check"
	}
	return fmt.Sprintf("incomplete %d %s traced incompletely: a tracing problem, not a failure (their path/snat/dnat assertions were not judged)", n, checks)
}

// tracingText reads "on (tcx)" or "off: no BTF".
func tracingText(t Tracing) string {
	if t.Enabled {
		if t.Mode == "" {
			return "on"
		}
		return "on (" + t.Mode + ")"
	}
	if t.Reason == "" {
		return "off"
	}
	return "off: " + t.Reason
}

// formatMS prints a duration for people: "0.42ms", "120ms", "1.23s".
func formatMS(ms float64) string {
	switch {
	case ms < 1:
		return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
	case ms < 1000:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	}
	return strconv.FormatFloat(ms/1000, 'f', 2, 64) + "s"
}

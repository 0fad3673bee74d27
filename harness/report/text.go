package report

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// TextOptions choose what the text report shows.
type TextOptions struct {
	// Color turns on ANSI colours: green PASS, red FAIL, dim details. Set it
	// from ColorEnabled.
	Color bool
	// Verbose adds each scenario's start and end, every check's
	// measurements, and the trace under passing checks too.
	Verbose bool
	// TraceAlways shows the trace under every check, not only failed ones
	// (`--trace always`).
	TraceAlways bool
}

// Column layout of a check line: "PASS  bridge  ping ns1 -> 10.0.0.3  figures".
const (
	statusWidth = 4
	gap         = "  "
	// blockIndent puts the lines under a check beneath its scenario column.
	blockIndent = statusWidth + len(gap)
	// maxNameWidth keeps one long check name from pushing every other
	// check's figures far to the right; longer names just overflow.
	maxNameWidth = 40
)

// Text writes the report for people as the run goes: one line per check as
// it finishes, the explanation under failures, and a summary at the end.
//
// Its methods are safe for concurrent use, so parallel scenarios cannot
// interleave within a check's lines. The first write error stops all later
// output and is returned by Err.
type Text struct {
	opts TextOptions

	mu sync.Mutex
	w  io.Writer
	// Column widths grow as names are announced, so checks line up with
	// every scenario and check the renderer has been told about so far.
	scenarioWidth int
	checkWidth    int
	err           error
}

// NewText returns a Text writing to w.
func NewText(w io.Writer, opts TextOptions) *Text {
	return &Text{w: w, opts: opts}
}

// Plan tells t every scenario the run will report, before the first one
// starts, so that the columns are wide enough for all their names from the
// first line on. The scenarios' checks need only their names. Calling it is
// optional: without it, columns widen as scenarios start.
func (t *Text) Plan(scenarios []Scenario) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range scenarios {
		t.widen(s.Name, s.Checks)
	}
}

// ScenarioStart announces a scenario that starts running. s may list its
// checks with only their names set, to widen the columns for them as Plan
// does. With Verbose it prints a RUN line.
func (t *Text) ScenarioStart(s Scenario) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.widen(s.Name, s.Checks)
	if !t.opts.Verbose {
		return
	}
	what := s.File
	if s.Description != "" {
		what += ": " + s.Description
	}
	t.write(t.row("RUN", styleDim, s.Name, "", what))
}

// CheckDone prints one line for a finished check of the named scenario and,
// when it failed (or with Verbose or TraceAlways), the lines that explain it.
func (t *Text) CheckDone(scenarioName string, c Check) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.widen(scenarioName, []Check{c})
	t.check(scenarioName, c)
}

// ScenarioDone prints a scenario's own error (a build or teardown failure)
// as a failed "build" or "teardown" line, and with Verbose a DONE line.
func (t *Text) ScenarioDone(s Scenario) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.Error != "" {
		t.check(s.Name, scenarioErrorCheck(s))
	}
	if !t.opts.Verbose {
		return
	}
	passed := 0
	for _, c := range s.Checks {
		if c.Passed {
			passed++
		}
	}
	done := fmt.Sprintf("%d/%d checks passed in %s", passed, len(s.Checks), formatMS(s.DurationMS))
	if s.LostEvents > 0 {
		done += fmt.Sprintf(", %d trace events lost", s.LostEvents)
	}
	t.write(t.row("DONE", styleDim, s.Name, "", done))
}

// Summary prints the run's totals and PASS or FAIL.
func (t *Text) Summary(r Run) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := []line{{}}
	for _, s := range summaryLines(r) {
		lines = append(lines, line{text: s})
	}
	if r.Passed {
		lines = append(lines, line{text: "PASS", style: styleGreen})
	} else {
		lines = append(lines, line{text: "FAIL", style: styleRed})
	}
	t.write(lines...)
}

// Err returns the first error writing to the underlying writer.
func (t *Text) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// widen grows the columns for a scenario name and check names.
func (t *Text) widen(scenario string, checks []Check) {
	t.scenarioWidth = max(t.scenarioWidth, len(scenario))
	for _, c := range checks {
		t.checkWidth = min(max(t.checkWidth, len(c.Name)), maxNameWidth)
	}
}

// check prints a check's line and, where wanted, its explanation.
func (t *Text) check(scenario string, c Check) {
	status, st := "PASS", styleGreen
	if !c.Passed {
		status, st = "FAIL", styleRed
	}
	lines := []line{t.row(status, st, scenario, c.Name, figures(c))}
	if !c.Passed || t.opts.Verbose || t.opts.TraceAlways {
		for _, l := range checkBlock(c, blockOptions{details: t.opts.Verbose, trace: true}) {
			l.indent += blockIndent
			lines = append(lines, l)
		}
	} else if c.Diagnosis != nil {
		// A probe that failed as expected: why it failed, in one line.
		l := diagnosisLines(*c.Diagnosis)[0]
		l.indent, l.style = blockIndent, styleDim
		lines = append(lines, l)
	}
	t.write(lines...)
}

// row lays out one status line. Only the status word is coloured, so the
// padding is computed on plain text and the columns stay aligned.
func (t *Text) row(status string, st style, scenario, name, rest string) line {
	var b strings.Builder
	b.WriteString(t.paint(st, status))
	b.WriteString(strings.Repeat(" ", statusWidth-len(status)))
	b.WriteString(gap)
	fmt.Fprintf(&b, "%-*s", t.scenarioWidth, scenario)
	if name != "" {
		b.WriteString(gap)
		fmt.Fprintf(&b, "%-*s", t.checkWidth, name)
	}
	if rest != "" {
		b.WriteString(gap)
		b.WriteString(rest)
	}
	return line{text: strings.TrimRight(b.String(), " "), style: stylePlain}
}

// write prints lines in one Write call, so that even a writer shared with
// other output gets each check's lines together.
func (t *Text) write(lines ...line) {
	if t.err != nil {
		return
	}
	var b strings.Builder
	for _, l := range lines {
		if l.text == "" {
			b.WriteByte('\n')
			continue
		}
		b.WriteString(strings.Repeat(" ", l.indent))
		b.WriteString(t.paint(l.style, l.text))
		b.WriteByte('\n')
	}
	_, t.err = io.WriteString(t.w, b.String())
}

// paint wraps s in the ANSI colour of st when colour is on.
func (t *Text) paint(st style, s string) string {
	if !t.opts.Color {
		return s
	}
	var sgr string
	switch st {
	case styleDim:
		sgr = "\x1b[2m"
	case styleBold:
		sgr = "\x1b[1m"
	case styleRed:
		sgr = "\x1b[31m"
	case styleGreen:
		sgr = "\x1b[32m"
	default:
		return s
	}
	return sgr + s + "\x1b[0m"
}

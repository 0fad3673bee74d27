package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The JUnit shape is the common subset that Jenkins, GitLab and the GitHub
// test reporters read (the junit.xsd family): testsuites > testsuite >
// properties?, testcase*, system-out?; testcase > failure | error; counts and
// times as attributes, times in seconds.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  *junitCDATA     `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	// SystemOut holds the diagnosis of a probe that failed as expected.
	SystemOut *junitCDATA `xml:"system-out,omitempty"`
}

// junitProblem is a <failure> (a check that did not hold) or an <error> (a
// scenario that could not be built or torn down).
type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",cdata"`
}

// junitCDATA is element text kept as CDATA, so that multi-line output stays
// readable in the file instead of becoming &#xA; escapes.
type junitCDATA struct {
	Text string `xml:",cdata"`
}

// WriteJUnit writes r as JUnit XML: one testsuite per scenario, one testcase
// per check (classname "hopcheck.<scenario>"). A failed check is a <failure>
// whose type is the diagnosis' cause code (or the check kind) and whose body
// holds the error, hops, drop and diagnosis as the text report shows them.
// A scenario that failed to build is one <error> testcase named "build"; one
// whose teardown failed gets an extra "teardown" testcase.
func WriteJUnit(w io.Writer, r Run) error {
	doc := junitSuites{Name: "hopcheck", Time: seconds(r.DurationMS)}
	for _, s := range r.Scenarios {
		suite := junitScenario(s, r.Tracing)
		doc.Tests += suite.Tests
		doc.Failures += suite.Failures
		doc.Errors += suite.Errors
		doc.Suites = append(doc.Suites, suite)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write JUnit report: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write JUnit report: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write JUnit report: %w", err)
	}
	return nil
}

func junitScenario(s Scenario, tracing Tracing) junitSuite {
	suite := junitSuite{
		Name:       s.Name,
		Time:       seconds(s.DurationMS),
		Properties: []junitProperty{{Name: "file", Value: s.File}},
	}
	if s.Description != "" {
		suite.Properties = append(suite.Properties, junitProperty{Name: "description", Value: s.Description})
	}
	if !s.InputError {
		suite.Properties = append(suite.Properties, junitProperty{Name: "tracing", Value: tracingText(tracing)})
	}

	classname := "hopcheck." + s.Name
	passed := 0
	for _, c := range s.Checks {
		tc := junitCase{Classname: classname, Name: c.Name, Time: seconds(c.DurationMS)}
		if c.Passed {
			passed++
			if c.Diagnosis != nil {
				tc.SystemOut = &junitCDATA{Text: xmlSafe(blockText(diagnosisLines(*c.Diagnosis)))}
			}
		} else {
			suite.Failures++
			kind := c.Kind
			if c.Diagnosis != nil && c.Diagnosis.Cause != "" {
				kind = c.Diagnosis.Cause
			}
			tc.Failure = &junitProblem{
				Message: failureMessage(c),
				Type:    kind,
				Body:    xmlSafe(blockText(checkBlock(c, blockOptions{details: true, trace: true}))),
			}
		}
		suite.Cases = append(suite.Cases, tc)
	}
	if s.Error != "" {
		ec := scenarioErrorCheck(s)
		suite.Errors++
		suite.Cases = append(suite.Cases, junitCase{
			Classname: classname,
			Name:      ec.Name,
			Time:      seconds(0),
			Error:     &junitProblem{Message: firstLine(s.Error), Type: ec.Kind, Body: xmlSafe(s.Error)},
		})
	}
	suite.Tests = len(suite.Cases)

	checks := fmt.Sprintf("checks     %d passed, %d failed", passed, len(s.Checks)-passed)
	switch {
	case s.InputError:
		checks = "checks     none ran: the scenario file is invalid"
	case s.BuildError:
		checks = "checks     none ran: the scenario was not built"
	}
	out := []string{
		checks,
		"duration   " + formatMS(s.DurationMS),
		"tracing    " + tracingText(tracing),
	}
	if s.InputError {
		out = out[:1]
	}
	if s.LostEvents > 0 {
		out = append(out, fmt.Sprintf("lost       %d trace events (hops may be missing)", s.LostEvents))
	}
	suite.SystemOut = &junitCDATA{Text: xmlSafe(strings.Join(out, "\n"))}
	return suite
}

// failureMessage is a one-line message for CI listings: the error's first
// line, else the check's figures.
func failureMessage(c Check) string {
	if c.Error != "" {
		return firstLine(c.Error)
	}
	if f := figures(c); f != "" {
		return f
	}
	return "check failed"
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return first
}

// blockText renders lines without colour, for XML bodies.
func blockText(lines []line) string {
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(strings.Repeat(" ", l.indent))
		b.WriteString(l.text)
	}
	return b.String()
}

// seconds formats milliseconds as JUnit wants them: seconds, 3 decimals.
func seconds(ms float64) string {
	return strconv.FormatFloat(ms/1000, 'f', 3, 64)
}

// xmlSafe replaces what XML 1.0 cannot hold (control characters other than
// tab and newlines, invalid UTF-8, U+FFFE and U+FFFF) with U+FFFD.
// encoding/xml does this for attributes and escaped text, but not for CDATA,
// and one stray byte from a command's output would make the whole report
// unreadable to a CI system.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r >= 0xD800 && r <= 0xDFFF, r == 0xFFFE, r == 0xFFFF:
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}

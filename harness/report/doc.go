// Package report renders the results of a hopcheck run: a streaming text
// report for people (one line per check as it finishes, with the probe's hops,
// drop and diagnosis under a failure), and JSON and JUnit XML files for
// programs and CI systems.
//
// The model (Run, Scenario, Check and what they hold) is plain data with JSON
// tags: the runner fills it from check results, traces and diagnoses, and the
// VM backend reads a guest's JSON report back into it. Rendering is pure: no
// function here touches the kernel, except ColorEnabled, which asks whether a
// file is a terminal.
package report

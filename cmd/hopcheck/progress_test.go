package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/harness/build"
)

func TestProgressLine(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(0, 0)
	p := &progressLine{w: &out, now: func() time.Time { return now }}

	p.update("small", build.PhaseBuild, 1, progressMinSteps-1) // too small to show
	if out.Len() != 0 {
		t.Fatalf("a small topology drew %q", out.String())
	}
	p.update("big", build.PhaseBuild, 1, 1000)
	p.update("big", build.PhaseBuild, 2, 1000) // within progressEvery: not redrawn
	now = now.Add(progressEvery)
	p.update("big", build.PhaseBuild, 300, 1000)
	p.update("big", build.PhaseBuild, 1000, 1000) // done: erased
	now = now.Add(progressEvery)
	p.update("big", build.PhaseTeardown, 10, 1001)

	want := "\r\x1b[Kbuilding big: 1/1000 steps" +
		"\r\x1b[Kbuilding big: 300/1000 steps" +
		"\r\x1b[K" +
		"\r\x1b[Ktearing down big: 10/1001 namespaces"
	if got := out.String(); got != want {
		t.Errorf("drew %q\nwant %q", got, want)
	}
	var none *progressLine
	if none.callback() != nil {
		t.Error("no terminal: a callback")
	}
	none.update("big", build.PhaseBuild, 1, 1000) // must not panic
	if strings.Contains(out.String(), "\n") {
		t.Error("the progress line ended a line")
	}
}

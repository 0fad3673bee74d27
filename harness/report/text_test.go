package report

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestTextConcurrent has scenarios report checks from many goroutines at
// once, as parallel scenarios do, and checks that each failed check's
// explanation stays under its own line.
func TestTextConcurrent(t *testing.T) {
	const scenarios, checks = 8, 25
	var b bytes.Buffer
	tx := NewText(&b, TextOptions{})
	var wg sync.WaitGroup
	for s := range scenarios {
		wg.Go(func() {
			name := fmt.Sprintf("s%d", s)
			tx.ScenarioStart(Scenario{Name: name})
			for c := range checks {
				tx.CheckDone(name, Check{
					Name:  fmt.Sprintf("check %d/%d", s, c),
					Error: fmt.Sprintf("error of %d/%d", s, c),
					Hops:  []Hop{{NS: name, If: "eth0", Dir: "egress", Src: "10.0.0.1", Dst: "10.0.0.2", Proto: "icmp", Leg: LegRequest}},
				})
			}
			tx.ScenarioDone(Scenario{Name: name})
		})
	}
	wg.Wait()
	if err := tx.Err(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != scenarios*checks*3 {
		t.Fatalf("%d lines, want %d (check line, error, hop per check)", len(lines), scenarios*checks*3)
	}
	for i := 0; i < len(lines); i += 3 {
		var s, c int
		if _, err := fmt.Sscanf(lines[i][strings.Index(lines[i], "check "):], "check %d/%d", &s, &c); err != nil {
			t.Fatalf("line %d %q is not a check line: %v", i, lines[i], err)
		}
		if want := fmt.Sprintf("error: error of %d/%d", s, c); strings.TrimSpace(lines[i+1]) != want {
			t.Errorf("line %d under check %d/%d is %q, want %q", i+1, s, c, lines[i+1], want)
		}
		if want := fmt.Sprintf("s%d/eth0", s); !strings.HasPrefix(strings.TrimSpace(lines[i+2]), want) {
			t.Errorf("line %d under check %d/%d is %q, want its hop", i+2, s, c, lines[i+2])
		}
	}
}

// failingWriter accepts n writes, then fails every one.
type failingWriter struct {
	n      int
	writes int
}

var errDiskFull = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.writes > w.n {
		return 0, errDiskFull
	}
	return len(p), nil
}

func TestTextStopsAtFirstWriteError(t *testing.T) {
	w := &failingWriter{n: 1}
	tx := NewText(w, TextOptions{})
	tx.CheckDone("s", Check{Name: "a", Passed: true})
	if err := tx.Err(); err != nil {
		t.Fatalf("after a good write: %v", err)
	}
	tx.CheckDone("s", Check{Name: "b", Passed: true})
	tx.CheckDone("s", Check{Name: "c", Passed: true})
	tx.Summary(Run{})
	if err := tx.Err(); !errors.Is(err, errDiskFull) {
		t.Errorf("Err() = %v, want %v", err, errDiskFull)
	}
	if w.writes != 2 {
		t.Errorf("%d writes, want 2: output must stop at the first error", w.writes)
	}
}

func TestTextWhatIsShown(t *testing.T) {
	failed := Check{Name: "ping a -> b", Passed: false, Error: "no reply", Summary: "0/1 replies",
		Details: details("sent", "1"),
		Hops:    []Hop{{NS: "a", If: "eth0", Dir: "egress", Src: "10.0.0.1", Dst: "10.0.0.2", Proto: "icmp", Leg: LegRequest}}}
	passed := failed
	passed.Passed, passed.Error = true, ""
	tests := []struct {
		name      string
		opts      TextOptions
		check     Check
		want, not []string
	}{
		{"failed shows error and hops", TextOptions{}, failed, []string{"FAIL", "error: no reply", "a/eth0  egress"}, []string{"details:", "\x1b["}},
		{"passed shows one line", TextOptions{}, passed, []string{"PASS", "0/1 replies"}, []string{"a/eth0", "details:"}},
		{"trace always shows hops of a pass", TextOptions{TraceAlways: true}, passed, []string{"a/eth0  egress"}, []string{"details:"}},
		{"verbose shows details and hops", TextOptions{Verbose: true}, passed, []string{"details: sent=1", "a/eth0  egress"}, nil},
		{"colour marks FAIL red", TextOptions{Color: true}, failed, []string{"\x1b[31mFAIL\x1b[0m", "\x1b[2ma/eth0"}, nil},
		{"colour marks PASS green", TextOptions{Color: true}, passed, []string{"\x1b[32mPASS\x1b[0m"}, []string{"\x1b[31m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			NewText(&b, tt.opts).CheckDone("s", tt.check)
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
			for _, n := range tt.not {
				if strings.Contains(b.String(), n) {
					t.Errorf("output has %q:\n%s", n, b.String())
				}
			}
		})
	}
}

func TestTextColumns(t *testing.T) {
	long := strings.Repeat("x", maxNameWidth+10)
	var b bytes.Buffer
	tx := NewText(&b, TextOptions{})
	tx.Plan([]Scenario{{Name: "short"}, {Name: "a-longer-name", Checks: []Check{{Name: "ping a -> 10.0.0.2"}}}})
	tx.CheckDone("short", Check{Name: "ping", Passed: true, Summary: "FIG1"})
	tx.CheckDone("a-longer-name", Check{Name: "ping a -> 10.0.0.2", Passed: true, Summary: "FIG2"})
	tx.CheckDone("short", Check{Name: long, Passed: true, Summary: "FIG3"})
	tx.CheckDone("short", Check{Name: "ping", Passed: true, Summary: "FIG4"})
	lines := strings.Split(b.String(), "\n")
	col := strings.Index(lines[0], "FIG1")
	if got := strings.Index(lines[1], "FIG2"); got != col {
		t.Errorf("figures at column %d and %d, want aligned:\n%s", col, got, b.String())
	}
	// A name over the cap overflows instead of widening every later line.
	if got := strings.Index(lines[3], "FIG4"); got != len("PASS  a-longer-name  ")+maxNameWidth+len(gap) {
		t.Errorf("after an over-long name, figures at column %d:\n%s", got, b.String())
	}
	if !strings.Contains(lines[2], long+gap+"FIG3") {
		t.Errorf("over-long name not followed by its figures: %q", lines[2])
	}
}

func TestScenarioDoneErrors(t *testing.T) {
	tests := []struct {
		name string
		s    Scenario
		want string
	}{
		{"build", Scenario{Name: "s", BuildError: true, Error: "no such link"}, "FAIL  s  build\n      error: no such link\n"},
		{"teardown", Scenario{Name: "s", Error: "busy", Checks: []Check{{Name: "c", Passed: true}}}, "FAIL  s  teardown\n      error: busy\n"},
		{"no error prints nothing", Scenario{Name: "s", Passed: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			NewText(&b, TextOptions{}).ScenarioDone(tt.s)
			if b.String() != tt.want {
				t.Errorf("got %q, want %q", b.String(), tt.want)
			}
		})
	}
}

func TestFigures(t *testing.T) {
	tests := []struct {
		c    Check
		want string
	}{
		{Check{Expect: "success", Summary: "1/1 replies"}, "1/1 replies"},
		{Check{Summary: "1/1 replies"}, "1/1 replies"},
		{Check{Expect: "fail", Summary: "0/1 replies"}, "0/1 replies [expect fail]"},
		{Check{Expect: "fail", Cause: "no-route", Summary: "0/1 replies"}, "0/1 replies [expect fail: no-route]"},
		{Check{Expect: "fail"}, "[expect fail]"},
	}
	for _, tt := range tests {
		if got := figures(tt.c); got != tt.want {
			t.Errorf("figures(%+v) = %q, want %q", tt.c, got, tt.want)
		}
	}
}

func TestLineTexts(t *testing.T) {
	tests := []struct{ got, want string }{
		{dropText(Drop{NS: "host", Reason: "NETFILTER_DROP", Location: "nf_hook_slow"}), "dropped in host at nf_hook_slow: NETFILTER_DROP"},
		{dropText(Drop{NS: "host", If: "eth0", Reason: "NO_SOCKET"}), "dropped in host/eth0: NO_SOCKET"},
		{diagnosisLines(Diagnosis{Cause: "unknown", Summary: "no idea"})[0].text, "cause: unknown: no idea"},
		{diagnosisLines(Diagnosis{Cause: "link-down", NS: "ns1", If: "eth0", Summary: "eth0 is down"})[0].text, "cause: link-down at ns1/eth0: eth0 is down"},
		{tracingText(Tracing{Enabled: true}), "on"},
		{tracingText(Tracing{}), "off"},
		{tracingText(Tracing{Reason: "--trace off"}), "off: --trace off"},
		{hopTime(0), "+0us"},
		{hopTime(1052), "+1052us"},
		{hopTime(-40), "-40us"},
		{formatMS(0.42), "0.42ms"},
		{formatMS(120.4), "120ms"},
		{formatMS(1234), "1.23s"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestSummaryCounts(t *testing.T) {
	got := summaryLines(buildErrorRun())
	want := []string{
		"scenarios  1 passed, 0 failed, 1 not built",
		"checks     2 passed, 0 failed",
		"duration   1.26s",
		"tracing    on (tcx)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

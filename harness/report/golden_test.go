package report

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// renderText drives a Text the way the runner does: the plan of every
// scenario's names, then for each scenario its start, its checks as they
// finish and its end, then the run's summary.
func renderText(t *testing.T, r Run, opts TextOptions) []byte {
	t.Helper()
	var b bytes.Buffer
	tx := NewText(&b, opts)
	// The runner knows every scenario and check name once it has parsed
	// the files, before any result.
	var plan []Scenario
	for _, s := range r.Scenarios {
		named := Scenario{Name: s.Name, File: s.File, Description: s.Description}
		for _, c := range s.Checks {
			named.Checks = append(named.Checks, Check{Name: c.Name})
		}
		plan = append(plan, named)
	}
	tx.Plan(plan)
	for i, s := range r.Scenarios {
		tx.ScenarioStart(plan[i])
		for _, c := range s.Checks {
			tx.CheckDone(s.Name, c)
		}
		tx.ScenarioDone(s)
	}
	tx.Summary(r)
	if err := tx.Err(); err != nil {
		t.Fatalf("text report: %v", err)
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	text := func(opts TextOptions) func(*testing.T, Run) []byte {
		return func(t *testing.T, r Run) []byte { return renderText(t, r, opts) }
	}
	write := func(f func(*bytes.Buffer, Run) error) func(*testing.T, Run) []byte {
		return func(t *testing.T, r Run) []byte {
			var b bytes.Buffer
			if err := f(&b, r); err != nil {
				t.Fatal(err)
			}
			return b.Bytes()
		}
	}
	jsonOut := write(func(b *bytes.Buffer, r Run) error { return WriteJSON(b, r) })
	junitOut := write(func(b *bytes.Buffer, r Run) error { return WriteJUnit(b, r) })

	htmlOut := write(func(b *bytes.Buffer, r Run) error {
		return WriteHTML(b, r, HTMLOptions{Picture: func(sc string, path []string, drop string) ([]byte, error) {
			if sc == "veth-pair" {
				return nil, errors.New("dot not installed")
			}
			return []byte(fmt.Sprintf("<?xml version=\"1.0\"?>\n<svg class=\"fake\" data-scenario=%q data-path=%q data-drop=%q></svg>\n", sc, strings.Join(path, " "), drop)), nil
		}})
	})

	tests := []struct {
		golden string
		run    Run
		render func(*testing.T, Run) []byte
	}{
		{"text-all-pass", allPassRun(), text(TextOptions{})},
		{"text-all-pass-color", allPassRun(), text(TextOptions{Color: true})},
		{"text-all-pass-verbose", allPassRun(), text(TextOptions{Verbose: true})},
		{"text-all-pass-trace-always", allPassRun(), text(TextOptions{TraceAlways: true})},
		{"text-failed", failedRun(), text(TextOptions{})},
		{"text-failed-color", failedRun(), text(TextOptions{Color: true})},
		{"text-build-error", buildErrorRun(), text(TextOptions{})},
		{"text-tracing-off", tracingOffRun(), text(TextOptions{})},
		{"text-invalid-file", invalidFileRun(), text(TextOptions{})},
		{"json-invalid-file", invalidFileRun(), jsonOut},
		{"junit-invalid-file", invalidFileRun(), junitOut},
		{"html-failed", failedRun(), htmlOut},
		{"html-invalid-file", invalidFileRun(), htmlOut},
		{"json-all-pass", allPassRun(), jsonOut},
		{"json-failed", failedRun(), jsonOut},
		{"json-build-error", buildErrorRun(), jsonOut},
		{"json-tracing-off", tracingOffRun(), jsonOut},
		{"junit-all-pass", allPassRun(), junitOut},
		{"junit-failed", failedRun(), junitOut},
		{"junit-build-error", buildErrorRun(), junitOut},
		{"junit-tracing-off", tracingOffRun(), junitOut},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got := tt.render(t, tt.run)
			path := filepath.Join("testdata", tt.golden+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./harness/report -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (rerun with -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, got, want)
			}
		})
	}
}

package report

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestJSONRoundTrip(t *testing.T) {
	runs := map[string]Run{
		"all pass":    allPassRun(),
		"failed":      failedRun(),
		"build error": buildErrorRun(),
		"tracing off": tracingOffRun(),
		"empty":       {},
	}
	for name, r := range runs {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteJSON(&b, r); err != nil {
				t.Fatal(err)
			}
			got, err := ReadJSON(&b)
			if err != nil {
				t.Fatal(err)
			}
			// What comes back is the run with its lists made non-nil.
			if want := withEmptyLists(r); !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the run\ngot  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestWriteJSONLeavesRunUnchanged(t *testing.T) {
	r := Run{Scenarios: []Scenario{{Name: "s", Checks: []Check{{Name: "c"}}}}}
	if err := WriteJSON(&bytes.Buffer{}, r); err != nil {
		t.Fatal(err)
	}
	if r.Scenarios[0].Checks[0].Details != nil {
		t.Error("WriteJSON changed the caller's check")
	}
}

// TestJSONRequiredKeys checks the keys the issues promise to consumers of
// the JSON report, at every level.
func TestJSONRequiredKeys(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, failedRun()); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	requireKeys(t, "run", doc, "passed", "scenarios", "duration_ms", "tracing", "lost_events")
	scenarios := doc["scenarios"].([]any)
	if len(scenarios) != 2 {
		t.Fatalf("%d scenarios, want 2", len(scenarios))
	}
	var sawHops, sawDrop, sawDiagnosis bool
	for _, s := range scenarios {
		s := s.(map[string]any)
		requireKeys(t, "scenario", s, "name", "file", "passed", "duration_ms", "checks", "lost_events")
		for _, c := range s["checks"].([]any) {
			c := c.(map[string]any)
			requireKeys(t, "check", c, "name", "kind", "expect", "passed", "duration_ms", "error", "details")
			if _, ok := c["details"].(map[string]any); !ok {
				t.Errorf("check %v: details is %T, want an object", c["name"], c["details"])
			}
			if hops, ok := c["hops"].([]any); ok {
				sawHops = true
				for _, h := range hops {
					requireKeys(t, "hop", h.(map[string]any), "ns", "if", "dir", "t_us", "src", "dst", "proto", "leg")
				}
			}
			if d, ok := c["drop"].(map[string]any); ok {
				sawDrop = true
				requireKeys(t, "drop", d, "ns", "reason", "location")
			}
			if d, ok := c["diagnosis"].(map[string]any); ok {
				sawDiagnosis = true
				requireKeys(t, "diagnosis", d, "cause", "ns", "if", "summary", "evidence", "fix", "from_state_only")
			}
		}
	}
	if !sawHops || !sawDrop || !sawDiagnosis {
		t.Errorf("fixture lacks hops (%v), drop (%v) or diagnosis (%v)", sawHops, sawDrop, sawDiagnosis)
	}
	if !strings.Contains(b.String(), `"ping ns1 -> 203.0.113.8"`) {
		t.Error(`"->" is escaped in the JSON report; it should stay readable`)
	}
}

func requireKeys(t *testing.T, what string, obj map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := obj[k]; !ok {
			t.Errorf("%s lacks key %q: %v", what, k, obj)
		}
	}
}

func TestReadJSONErrors(t *testing.T) {
	for _, in := range []string{``, `{`, `{"passed": "yes"}`, `{"scenarios":[{"checks":[{"details":[1]}]}]}`} {
		if _, err := ReadJSON(strings.NewReader(in)); err == nil {
			t.Errorf("ReadJSON(%q) succeeded, want an error", in)
		}
	}
}

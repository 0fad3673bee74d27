package report

import (
	"encoding/json"
	"fmt"
	"io"
)

// WriteJSON writes r as indented JSON. Keys come in the order of the model's
// fields, so two reports diff cleanly, and "scenarios", "checks" and
// "details" are always present (empty rather than null), so a consumer can
// index them without checking.
func WriteJSON(w io.Writer, r Run) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Check names and hops are full of "->"; escaping '>' as \u003e would
	// make the file unreadable for no gain, since it is never embedded in
	// HTML.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(withEmptyLists(r)); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

// ReadJSON reads a report written by WriteJSON, such as the one a VM guest's
// run leaves for the host to print.
func ReadJSON(rd io.Reader) (Run, error) {
	var r Run
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return Run{}, fmt.Errorf("read JSON report: %w", err)
	}
	return r, nil
}

// withEmptyLists returns a copy of r whose required lists are non-nil. It
// copies the slices it changes, so the caller's Run is left as it was.
func withEmptyLists(r Run) Run {
	scenarios := make([]Scenario, len(r.Scenarios))
	for i, s := range r.Scenarios {
		checks := make([]Check, len(s.Checks))
		for j, c := range s.Checks {
			if c.Details == nil {
				c.Details = Details{}
			}
			checks[j] = c
		}
		s.Checks = checks
		scenarios[i] = s
	}
	r.Scenarios = scenarios
	return r
}

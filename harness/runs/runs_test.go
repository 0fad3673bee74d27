package runs

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestStoreRoundTrip(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	now := time.Now().UTC().Truncate(time.Second)
	a := &Record{RunID: "aaaaaa", Scenario: "bridge", PID: os.Getpid(), Namespaces: map[string]string{"ns1": "hcaaaaaa-ns1", "host": "hcaaaaaa-host"}, Created: now}
	b := &Record{RunID: "bbbbbb", Scenario: "bridge", Kept: true, PID: 0, Created: now.Add(time.Second)}
	c := &Record{RunID: "cccccc", Scenario: "nat", Kept: true, Created: now.Add(2 * time.Second)}
	for _, r := range []*Record{c, a, b} {
		if err := s.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(s.Dir+"/junk.json", []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	recs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0].RunID != "aaaaaa" || recs[2].RunID != "cccccc" {
		t.Fatalf("List() = %v, want a, b, c oldest first and the junk file skipped", recs)
	}
	if got := recs[0].NamespaceNames(); len(got) != 2 || got[0] != "host" || got[1] != "ns1" {
		t.Errorf("NamespaceNames() = %v", got)
	}
	tests := []struct {
		name, want string
		err        error
	}{
		{"bridge", "bbbbbb", nil}, // a is not kept: a running `run`, not a topology that is up
		{"aaaaaa", "aaaaaa", nil},
		{"nat", "cccccc", nil},
		{"nope", "", ErrNotFound},
	}
	for _, tt := range tests {
		r, err := s.Find(tt.name)
		if !errors.Is(err, tt.err) || (err == nil && r.RunID != tt.want) {
			t.Errorf("Find(%q) = %v, %v; want %s, %v", tt.name, r, err, tt.want, tt.err)
		}
	}
	if err := s.Remove("bbbbbb"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("bbbbbb"); err != nil {
		t.Errorf("removing a missing record: %v", err)
	}
	if r, _ := s.Find("bridge"); r != nil {
		t.Errorf("Find after Remove = %v", r)
	}
}

func TestAlive(t *testing.T) {
	tests := []struct {
		r    Record
		want bool
	}{
		{Record{PID: os.Getpid()}, true},
		{Record{PID: 0}, false},
		{Record{PID: 0, Kept: true}, true},
		{Record{PID: 1 << 22}, false}, // above pid_max's ceiling: never a live process
	}
	for _, tt := range tests {
		if got := tt.r.Alive(); got != tt.want {
			t.Errorf("%+v.Alive() = %v, want %v", tt.r, got, tt.want)
		}
	}
}

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

func TestParseStatStart(t *testing.T) {
	tests := []struct {
		line string
		want uint64
		ok   bool
	}{
		{"1234 (hopcheck) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 8 0 98765 1000 10", 98765, true},
		{"1234 (a b) c)) R 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 8 0 42 1000 10", 42, true},
		{"1234 (x) S 1 2", 0, false},
		{"garbage", 0, false},
	}
	for _, tt := range tests {
		got, err := parseStatStart(tt.line)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseStatStart(%q) = %d, %v; want %d, ok %v", tt.line, got, err, tt.want, tt.ok)
		}
	}
}

// A record whose PID now belongs to another process (started at another
// time) is not alive: that process did not make the run.
func TestAliveReusedPID(t *testing.T) {
	start, err := processStart(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if !(&Record{PID: os.Getpid(), PIDStart: start}).Alive() {
		t.Error("this process's own record is not alive")
	}
	if (&Record{PID: os.Getpid(), PIDStart: start + 1}).Alive() {
		t.Error("a record of an earlier process with this PID counts as alive")
	}
	r, err := New("s", "s.yaml", []string{"a"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.PIDStart != start || !r.Alive() {
		t.Errorf("New: PIDStart %d (want %d), alive %v", r.PIDStart, start, r.Alive())
	}
}

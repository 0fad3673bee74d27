// Package runs keeps the record of hopcheck runs on this machine: which
// namespaces each run made, which process owns it, and whether the user
// asked to keep it (`hopcheck up`). `list`, `down`, `exec` and `clean` read
// it; `clean` uses it to tell what a killed run left from what a live run or
// a kept topology still uses.
package runs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hopcheck/hopcheck/internal/netns"
)

// DefaultDir is where records live: /run is a tmpfs, so records vanish on
// reboot together with the namespaces they describe.
const DefaultDir = "/run/hopcheck"

// DirEnv overrides DefaultDir (tests, unusual systems).
const DirEnv = "HOPCHECK_STATE_DIR"

// ErrNotFound is returned when no record has the requested name.
var ErrNotFound = errors.New("no such run")

// Record describes one run's kernel objects.
type Record struct {
	RunID    string `json:"run_id"`
	Scenario string `json:"scenario"`
	File     string `json:"file"`
	// PID owns the run while it is in progress. Kept records outlive it.
	PID int `json:"pid"`
	// PIDStart is when PID started, in clock ticks since boot (field 22 of
	// /proc/PID/stat), so that another process that reuses the PID later
	// is not taken for the owner. 0 when unknown.
	PIDStart uint64 `json:"pid_start,omitempty"`
	// Kept is true for topologies left up on purpose (`hopcheck up`,
	// `run --keep`); clean never removes them, `down` does.
	Kept bool `json:"kept"`
	// Namespaces maps each scenario namespace to its kernel name.
	Namespaces map[string]string `json:"namespaces"`
	Created    time.Time         `json:"created"`
}

// New returns the record of a new run of scenario (read from file) by this
// process, with a fresh run ID and the kernel names its namespaces will
// have. Save it before the first namespace exists.
func New(scenario, file string, namespaces []string, kept bool) (*Record, error) {
	runID, err := netns.NewRunID()
	if err != nil {
		return nil, err
	}
	pid := os.Getpid()
	start, _ := processStart(pid)
	r := &Record{RunID: runID, Scenario: scenario, File: file, PID: pid, PIDStart: start, Kept: kept,
		Namespaces: make(map[string]string, len(namespaces)), Created: time.Now().UTC()}
	for _, n := range namespaces {
		r.Namespaces[n] = netns.Name(runID, n)
	}
	return r, nil
}

// NamespaceNames returns the scenario namespace names, sorted.
func (r *Record) NamespaceNames() []string {
	out := make([]string, 0, len(r.Namespaces))
	for n := range r.Namespaces {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Store reads and writes records in one directory.
type Store struct {
	Dir string
}

// Open returns the store in $HOPCHECK_STATE_DIR or DefaultDir.
func Open() Store {
	if d := os.Getenv(DirEnv); d != "" {
		return Store{Dir: d}
	}
	return Store{Dir: DefaultDir}
}

func (s Store) path(runID string) string { return filepath.Join(s.Dir, runID+".json") }

// Save writes r atomically (write then rename), so a reader never sees half
// a record.
func (s Store) Save(r *Record) error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("runs: encode %s: %w", r.RunID, err)
	}
	tmp, err := os.CreateTemp(s.Dir, ".tmp-"+r.RunID+"-*")
	if err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("runs: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("runs: write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), s.path(r.RunID)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("runs: %w", err)
	}
	return nil
}

// Remove deletes the record of runID; a missing record is not an error.
func (s Store) Remove(runID string) error {
	if err := os.Remove(s.path(runID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("runs: %w", err)
	}
	return nil
}

// RemoveIfGone deletes r's record when none of its namespaces exists any
// more, and reports whether it did. A record whose namespaces remain (a
// teardown that failed half way) is kept, so that `hopcheck clean` can
// still find them.
func (s Store) RemoveIfGone(r *Record) (bool, error) {
	for _, k := range r.Namespaces {
		if netns.Exists(k) {
			return false, nil
		}
	}
	return true, s.Remove(r.RunID)
}

// List returns every readable record, oldest first. Unreadable files are
// skipped: a record being written is renamed into place whole.
func (s Store) List() ([]*Record, error) {
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	var out []*Record
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.Dir, e.Name()))
		if err != nil {
			continue
		}
		var r Record
		if json.Unmarshal(b, &r) != nil || r.RunID == "" {
			continue
		}
		out = append(out, &r)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].RunID < out[j].RunID
	})
	return out, nil
}

// Find returns the kept record whose scenario name or run ID is name. When
// several kept runs have that scenario name, the newest wins.
func (s Store) Find(name string) (*Record, error) {
	recs, err := s.List()
	if err != nil {
		return nil, err
	}
	var found *Record
	for _, r := range recs {
		if r.RunID == name || (r.Kept && r.Scenario == name) {
			found = r
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%q: %w (see `hopcheck list`)", name, ErrNotFound)
	}
	return found, nil
}

// Alive reports whether r still belongs to someone: kept on purpose, or
// owned by a process that is still running (the same process, not a later
// one that reused its PID).
func (r *Record) Alive() bool {
	if r.Kept {
		return true
	}
	if !processAlive(r.PID) {
		return false
	}
	if r.PIDStart == 0 {
		return true
	}
	start, err := processStart(r.PID)
	return err != nil || start == r.PIDStart
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// processStart reads when pid started, in clock ticks since boot.
func processStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatStart(string(b))
}

// parseStatStart takes starttime (field 22) from a /proc/PID/stat line. The
// command name (field 2) is in parentheses and may hold spaces and
// parentheses itself, so fields are counted from the last ")".
func parseStatStart(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("runs: malformed /proc stat line")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return 0, errors.New("runs: short /proc stat line")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// Package runs keeps the record of hopcheck runs on this machine: which
// namespaces each run made, which process owns it, and whether the user
// asked to keep it (`hopcheck up`). `list`, `down`, `exec` and `clean` read
// it; `clean` uses it to tell what a killed run left from what a live run or
// a kept topology still uses.
package runs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/safefile"
	"golang.org/x/sys/unix"
)

// DefaultDir is where records live: /run is a tmpfs, so records vanish on
// reboot together with the namespaces they describe.
const DefaultDir = "/run/hopcheck"

// DirEnv overrides DefaultDir (tests, unusual systems).
const DirEnv = "HOPCHECK_STATE_DIR"

// ErrNotFound is returned when no record has the requested name.
var ErrNotFound = errors.New("no such run")

// ErrBadRecord is returned for a record file that hopcheck did not write
// as it stands: a name or content not of the form hopcheck gives, or a
// namespace name other than hc<run>-<ns> of its own run.
var ErrBadRecord = errors.New("not a valid run record")

// maxRecordSize bounds a record file; a record of a thousand namespaces is
// well under 100 KiB.
const maxRecordSize = 1 << 20

// lockName is the lock file in the state directory that serialises clean.
const lockName = ".lock"

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
	// Keep says the run means to leave its topology up (`hopcheck up`,
	// `run --keep`) once it is built.
	Keep bool `json:"keep,omitempty"`
	// Kept is true for topologies left up on purpose, set by MarkKept once
	// the build completed; clean never removes them, `down` does. A run
	// killed mid-build is not kept, so clean removes what it made.
	Kept bool `json:"kept"`
	// Namespaces maps each scenario namespace to its kernel name.
	Namespaces map[string]string `json:"namespaces"`
	Created    time.Time         `json:"created"`
}

// New returns the record of a new run of scenario (read from file) by this
// process, with a fresh run ID and the kernel names its namespaces will
// have. Save it before the first namespace exists. keep says the run will
// leave its topology up; the record says it is kept only after MarkKept,
// called once the build completed.
func New(scenario, file string, namespaces []string, keep bool) (*Record, error) {
	runID, err := netns.NewRunID()
	if err != nil {
		return nil, err
	}
	pid := os.Getpid()
	start, _ := processStart(pid)
	r := &Record{RunID: runID, Scenario: scenario, File: file, PID: pid, PIDStart: start, Keep: keep,
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

// Validate checks that r is a record hopcheck could have written: a run
// ID of the form NewRunID gives, and every namespace named hc<run>-<ns>
// after its own run and scenario namespace, so that nothing but the run's
// own entries of the netns run directory can ever be deleted through it.
func (r *Record) Validate() error {
	if !netns.IsRunID(r.RunID) {
		return fmt.Errorf("%w: run ID %q", ErrBadRecord, r.RunID)
	}
	for ns, k := range r.Namespaces {
		id, n, ok := netns.ParseName(k)
		if !ok || id != r.RunID || n != ns || netns.Name(r.RunID, ns) != k {
			return fmt.Errorf("%w: run %s names namespace %q as %q, not %q", ErrBadRecord, r.RunID, ns, k, netns.Name(r.RunID, ns))
		}
	}
	return nil
}

// checkDir checks that the state directory can be trusted: a directory
// owned by root or this user that nobody else may write. Records in a
// directory others can write could name anything for root to delete.
func (s Store) checkDir() error {
	if err := safefile.CheckDir(s.Dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return fmt.Errorf("runs: refusing the state directory: %w (it must belong to root or you and be writable by nobody else: chmod go-w, or set %s)", err, DirEnv)
	}
	return nil
}

// MarkKept records that r's build completed and its topology stays up.
func (s Store) MarkKept(r *Record) error {
	r.Kept = true
	return s.Save(r)
}

// Save writes r atomically (write then rename), so a reader never sees half
// a record.
func (s Store) Save(r *Record) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	if err := s.checkDir(); err != nil {
		return err
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
	if !netns.IsRunID(runID) {
		return fmt.Errorf("runs: remove: %w: run ID %q", ErrBadRecord, runID)
	}
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

// List returns every valid record, oldest first. Files that are not valid
// records are skipped (Scan says why): a record being written is renamed
// into place whole, so a reader never sees half of one.
func (s Store) List() ([]*Record, error) {
	recs, _, err := s.Scan()
	return recs, err
}

// Scan returns every valid record, oldest first, and why each other file
// in the directory that looks like a record was skipped. It refuses a
// state directory others may write. Every file is opened without
// following symbolic links and without blocking (a FIFO planted there
// never hangs it), and is read only if it is a regular file that root or
// this user owns and nobody else may write, named <run-id>.json after the
// run it holds, with namespaces named after that run.
func (s Store) Scan() (recs []*Record, skipped []error, err error) {
	if err := s.checkDir(); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("runs: %w", err)
	}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(s.Dir, e.Name())
		r, err := readRecord(path, id)
		if err != nil {
			skipped = append(skipped, err)
			continue
		}
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool {
		if !recs[i].Created.Equal(recs[j].Created) {
			return recs[i].Created.Before(recs[j].Created)
		}
		return recs[i].RunID < recs[j].RunID
	})
	return recs, skipped, nil
}

// readRecord reads and checks the record file path, named after run id.
func readRecord(path, id string) (*Record, error) {
	if !netns.IsRunID(id) {
		return nil, fmt.Errorf("runs: %s: %w: the name is not <run-id>.json", path, ErrBadRecord)
	}
	b, err := safefile.Read(context.Background(), path, safefile.ReadOptions{MaxSize: maxRecordSize, NoFollow: true, Trusted: true})
	if err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("runs: %s: %w: %v", path, ErrBadRecord, err)
	}
	if r.RunID != id {
		return nil, fmt.Errorf("runs: %s: %w: it holds run %q", path, ErrBadRecord, r.RunID)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("runs: %s: %w", path, err)
	}
	return &r, nil
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

// Down removes a run's namespaces and then its record (`hopcheck down`).
// Only the run's own hc<run>-<ns> entries of the netns run directory are
// deleted; a record that names anything else is refused whole.
func (s Store) Down(r *Record) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	var errs []error
	for _, ns := range r.NamespaceNames() {
		if _, err := netns.DeleteOwn(r.Namespaces[ns]); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, s.Remove(r.RunID))
	}
	return errors.Join(errs...)
}

// Clean removes what runs recorded here left behind: the namespaces of
// every run whose owner is gone and that was not kept, and then their
// records. It never touches a namespace of a run it has no record of (one
// using another state directory may be live), a kept topology, or a run
// still in progress. Cleans are serialised by a lock in the state
// directory, an entry that was created but never mounted is removed, and
// removed lists only what this call removed. Records that are not valid
// are left alone and returned in skipped.
func (s Store) Clean(ctx context.Context) (removed []string, skipped []error, err error) {
	if err := s.checkDir(); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	recs, skipped, err := s.Scan()
	if err != nil {
		return nil, skipped, err
	}
	dead := map[string]*Record{}
	for _, r := range recs {
		if !r.Alive() {
			dead[r.RunID] = r
		}
	}
	if len(dead) == 0 {
		return nil, skipped, nil
	}
	names, err := netns.List()
	if err != nil {
		return nil, skipped, err
	}
	var errs []error
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		id, ns, ok := netns.ParseName(name)
		if r := dead[id]; !ok || r == nil || r.Namespaces[ns] != name {
			continue
		}
		gone, err := netns.DeleteOwn(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if gone {
			removed = append(removed, name)
		}
	}
	for _, r := range recs {
		if dead[r.RunID] == nil {
			continue
		}
		// A namespace that could not be deleted keeps its record, so that
		// the next clean tries again.
		if _, err := s.RemoveIfGone(r); err != nil {
			errs = append(errs, err)
		}
	}
	return removed, skipped, errors.Join(errs...)
}

// lock takes the state directory's clean lock, waiting while another
// process holds it, until ctx is done. The lock file is opened without
// following links or blocking, and must be a regular file.
func (s Store) lock(ctx context.Context) (unlock func(), err error) {
	path := filepath.Join(s.Dir, lockName)
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("runs: lock %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("runs: lock %s: not a regular file", path)
	}
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Close(fd) }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			unix.Close(fd)
			return nil, fmt.Errorf("runs: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			unix.Close(fd)
			return nil, fmt.Errorf("runs: lock %s: %w", path, context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
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

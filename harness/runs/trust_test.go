package runs

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/hopcheck/hopcheck/internal/safefile"
	"golang.org/x/sys/unix"
)

// plant writes a record file by hand, as someone with write access to the
// state directory could.
func plant(t *testing.T, dir, name string, r any, mode os.FileMode) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// TestScanRefusesPlantedFiles plants what a hostile user of a shared state
// directory could: a FIFO and a symbolic link named like records, a record
// whose run ID is not its file name's, one naming a path outside the netns
// run directory, one anybody may write. Scan returns only the honest
// record, at once, and says why it skipped each other.
func TestScanRefusesPlantedFiles(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	good, err := New("good", "good.yaml", []string{"ns1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(good); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(s.Dir, "fifofi.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(s.path(good.RunID), filepath.Join(s.Dir, "linkli.json")); err != nil {
		t.Fatal(err)
	}
	plant(t, s.Dir, "other1.json", Record{RunID: good.RunID, Namespaces: map[string]string{"ns1": good.Namespaces["ns1"]}}, 0o600)
	plant(t, s.Dir, "escape.json", Record{RunID: "escape", Namespaces: map[string]string{"x": "../../tmp/x"}}, 0o600)
	plant(t, s.Dir, "stolen.json", Record{RunID: "stolen", Namespaces: map[string]string{"x": "hcaaaaaa-x"}}, 0o600)
	plant(t, s.Dir, "worldw.json", Record{RunID: "worldw"}, 0o666)
	plant(t, s.Dir, "Not-An-ID.json", Record{RunID: "Not-An-ID"}, 0o600)

	done := make(chan struct{})
	var (
		recs    []*Record
		skipped []error
	)
	go func() {
		defer close(done)
		recs, skipped, err = s.Scan()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Scan blocked on a planted file")
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].RunID != good.RunID {
		t.Errorf("Scan returned %v; want only run %s", recs, good.RunID)
	}
	var why []string
	for _, e := range skipped {
		why = append(why, e.Error())
	}
	want := map[string]string{
		"Not-An-ID.json": "the name is not <run-id>.json",
		"escape.json":    `names namespace "x" as "../../tmp/x"`,
		"fifofi.json":    "not a regular file (it is a FIFO)",
		"linkli.json":    "is a symbolic link",
		"other1.json":    "it holds run",
		"stolen.json":    `names namespace "x" as "hcaaaaaa-x"`,
		"worldw.json":    "writable by group or others",
	}
	if len(why) != len(want) {
		t.Errorf("skipped:\n%s\nwant one reason for each of %v", strings.Join(why, "\n"), want)
	}
	for file, reason := range want {
		found := false
		for _, w := range why {
			found = found || strings.Contains(w, "/"+file+":") && strings.Contains(w, reason)
		}
		if !found {
			t.Errorf("no reason %q for skipping %s in:\n%s", reason, file, strings.Join(why, "\n"))
		}
	}
}

// TestUntrustedStateDirectory: a state directory that others may write is
// refused whole, for reading and for writing.
func TestUntrustedStateDirectory(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	if err := os.Chmod(s.Dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(); !errors.Is(err, safefile.ErrUntrusted) {
		t.Errorf("List in a world-writable directory = %v, want ErrUntrusted", err)
	}
	r, _ := New("s", "s.yaml", []string{"a"}, false)
	if err := s.Save(r); !errors.Is(err, safefile.ErrUntrusted) {
		t.Errorf("Save in a world-writable directory = %v, want ErrUntrusted", err)
	}
	if _, _, err := s.Clean(context.Background()); !errors.Is(err, safefile.ErrUntrusted) {
		t.Errorf("Clean in a world-writable directory = %v, want ErrUntrusted", err)
	}
}

// TestDownRefusesForeignNames: a record naming anything but its own
// hc<run>-<ns> namespaces is refused whole by Down and by Save.
func TestDownRefusesForeignNames(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Record{
		{RunID: "abcdef", Namespaces: map[string]string{"a": "../../../../" + victim}},
		{RunID: "abcdef", Namespaces: map[string]string{"a": "hcother-a"}},
		{RunID: "abcdef", Namespaces: map[string]string{"b": "hcabcdef-a"}},
		{RunID: "../x", Namespaces: map[string]string{}},
	} {
		if err := s.Down(r); !errors.Is(err, ErrBadRecord) {
			t.Errorf("Down(%+v) = %v, want ErrBadRecord", r, err)
		}
		if err := s.Save(r); !errors.Is(err, ErrBadRecord) {
			t.Errorf("Save(%+v) = %v, want ErrBadRecord", r, err)
		}
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("victim: %v", err)
	}
}

// deadRecord returns a record of a run whose owner is gone: this process's
// PID with another start time, as a later process reusing the PID has.
func deadRecord(t *testing.T, keep bool, namespaces ...string) *Record {
	t.Helper()
	r, err := New("s", "s.yaml", namespaces, keep)
	if err != nil {
		t.Fatal(err)
	}
	r.PIDStart++
	return r
}

// TestCleanUnfinishedKeptRunAndHalfCreated: an `up` killed mid-build
// (keep asked, never marked kept) is cleanable, and so is a namespace
// entry created but never mounted; a kept run is not touched. Several
// cleans at once each report only what they removed: every namespace
// exactly once in all.
func TestCleanUnfinishedKeptRunAndHalfCreated(t *testing.T) {
	privtest.Require(t)
	s := Store{Dir: t.TempDir()}
	unfinished := deadRecord(t, true, "a", "b")
	kept := deadRecord(t, true, "k")
	for _, r := range []*Record{unfinished, kept} {
		if err := s.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkKept(kept); err != nil {
		t.Fatal(err)
	}
	made := []string{unfinished.Namespaces["a"], kept.Namespaces["k"]}
	for _, n := range made {
		h, err := netns.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
		t.Cleanup(func() { netns.Delete(n) })
	}
	// b: created, killed before the mount.
	half := filepath.Join(netns.RunDir, unfinished.Namespaces["b"])
	if err := os.WriteFile(half, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(half) })

	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		all []string
	)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			removed, skipped, err := s.Clean(context.Background())
			if err != nil || len(skipped) > 0 {
				t.Errorf("Clean: %v (skipped %v)", err, skipped)
			}
			mu.Lock()
			defer mu.Unlock()
			all = append(all, removed...)
		}()
	}
	wg.Wait()
	sort.Strings(all)
	want := []string{unfinished.Namespaces["a"], unfinished.Namespaces["b"]}
	if strings.Join(all, " ") != strings.Join(want, " ") {
		t.Errorf("cleans removed %v in all; want %v, each once", all, want)
	}
	if !netns.Exists(kept.Namespaces["k"]) {
		t.Errorf("clean removed the kept topology's %s", kept.Namespaces["k"])
	}
	recs, err := s.List()
	if err != nil || len(recs) != 1 || recs[0].RunID != kept.RunID {
		t.Errorf("records after clean = %v, %v; want only the kept run", recs, err)
	}
}

package runs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/safefile"
)

// attachDir is the subdirectory of the state directory that holds the
// records of live traces attached with clsact.
const attachDir = "attached"

// Attached records what a live trace (`hopcheck trace --tc-attach
// clsact`) attaches to namespaces hopcheck did not make. clsact filters,
// unlike TCX links, outlive a killed process, and those namespaces are not
// deleted by clean, so clean removes the filters instead, once the trace's
// process is gone.
type Attached struct {
	PID      int    `json:"pid"`
	PIDStart uint64 `json:"pid_start,omitempty"`
	// Namespaces are the traced namespaces, saved before anything is
	// attached, so that a trace killed while attaching is covered.
	Namespaces []AttachedNS `json:"namespaces"`
	Created    time.Time    `json:"created"`
}

// AttachedNS is one traced namespace.
type AttachedNS struct {
	// Name is the namespace as the user gave it: an entry of the netns
	// run directory or a path. Inode identifies it, so that clean never
	// touches another namespace that took the name since.
	Name  string `json:"name"`
	Inode uint64 `json:"inode"`
	// Label is what the trace called the namespace ("node", a
	// container's name), for messages; "" in records of older versions.
	Label string `json:"label,omitempty"`
	// OwnQdiscs lists the interfaces whose clsact qdisc the trace added
	// (it removes them with its filters when they hold nothing else).
	OwnQdiscs []string `json:"own_qdiscs,omitempty"`
}

// NewAttached returns the record of this process's trace.
func NewAttached() *Attached {
	pid := os.Getpid()
	start, _ := processStart(pid)
	return &Attached{PID: pid, PIDStart: start, Created: time.Now().UTC()}
}

func (s Store) attachedPath(pid int) string {
	return filepath.Join(s.Dir, attachDir, strconv.Itoa(pid)+".json")
}

// SaveAttached writes a's record, replacing an earlier one of its process.
func (s Store) SaveAttached(a *Attached) error {
	if err := os.MkdirAll(filepath.Join(s.Dir, attachDir), 0o755); err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	if err := s.checkDir(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return fmt.Errorf("runs: encode trace record: %w", err)
	}
	if err := safefile.WriteFile(s.attachedPath(a.PID), b, 0o644); err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	return nil
}

// RemoveAttached deletes a's record; a missing record is not an error.
func (s Store) RemoveAttached(a *Attached) error {
	if err := os.Remove(s.attachedPath(a.PID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("runs: %w", err)
	}
	return nil
}

// alive reports whether a's process still runs (not another that reused
// its PID).
func (a *Attached) alive() bool {
	r := Record{PID: a.PID, PIDStart: a.PIDStart}
	return r.Alive()
}

// Detacher removes what hopcheck attached to one namespace: its filters
// on every interface, and the clsact qdiscs of ownQdiscs that hold nothing
// else.
type Detacher func(ns netns.Handle, ownQdiscs []string) error

// CleanAttached removes what the live traces whose processes are gone
// attached, with detach, and then their records. It returns the
// namespaces it cleaned. A namespace that is gone, or whose name now
// names another namespace, needs nothing; a record that is not valid is
// skipped. It runs under the state directory's clean lock.
func (s Store) CleanAttached(ctx context.Context, detach Detacher) (cleaned []string, skipped []error, err error) {
	dir := filepath.Join(s.Dir, attachDir)
	if err := s.checkDir(); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("runs: %w", err)
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	var errs []error
	for _, e := range ents {
		stem, ok := strings.CutSuffix(e.Name(), ".json")
		pid, perr := strconv.Atoi(stem)
		if !ok || perr != nil || pid <= 0 {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := safefile.Read(ctx, path, safefile.ReadOptions{MaxSize: maxRecordSize, NoFollow: true, Trusted: true})
		if err != nil {
			skipped = append(skipped, fmt.Errorf("runs: %w", err))
			continue
		}
		var a Attached
		if err := json.Unmarshal(b, &a); err != nil || a.PID != pid {
			skipped = append(skipped, fmt.Errorf("runs: %s: %w", path, ErrBadRecord))
			continue
		}
		if a.alive() {
			continue
		}
		failed := false
		for _, n := range a.Namespaces {
			done, err := detachFrom(n, detach)
			if err != nil {
				errs = append(errs, err)
				failed = true
			} else if done {
				cleaned = append(cleaned, n.describe())
			}
		}
		if !failed {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("runs: %w", err))
			}
		}
	}
	return cleaned, skipped, errors.Join(errs...)
}

// describe names n for a person: its label with the path it was opened
// by, or the path alone.
func (n AttachedNS) describe() string {
	switch {
	case n.Name == "/proc/self/ns/net":
		return "the namespace hopcheck runs in (--node)"
	case n.Label != "" && n.Label != n.Name:
		return n.Label + " (" + n.Name + ")"
	}
	return n.Name
}

// detachFrom runs detach in the recorded namespace if it still exists
// under its name; done says whether it did.
func detachFrom(n AttachedNS, detach Detacher) (done bool, err error) {
	var h netns.Handle
	if strings.ContainsRune(n.Name, '/') {
		h, err = netns.OpenPath(n.Name)
	} else {
		h, err = netns.Open(n.Name)
	}
	if err != nil {
		return false, nil // gone: its interfaces and filters went with it
	}
	defer h.Close()
	if ino, err := netns.Inode(h); err != nil || ino != n.Inode {
		return false, nil // the name now names another namespace
	}
	if err := detach(h, n.OwnQdiscs); err != nil {
		return false, fmt.Errorf("%s: %w", n.Name, err)
	}
	return true, nil
}

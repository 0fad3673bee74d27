package netns_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		name, run, ns string
		ok            bool
	}{
		{"hcab12cd-ns1", "ab12cd", "ns1", true},
		{"hcab12cd-host", "ab12cd", "host", true},
		{"hcab12cd-my-ns", "ab12cd", "my-ns", true},
		{"hc-ns1", "", "", false},
		{"hcAB-ns1", "", "", false},
		{"hcab12cd-", "", "", false},
		{"cni-1234", "", "", false},
		{"", "", "", false},
		{"hcab12cd-../../etc", "", "", false},
		{"hcab12cd-a/b", "", "", false},
	}
	for _, tt := range tests {
		run, ns, ok := netns.ParseName(tt.name)
		if run != tt.run || ns != tt.ns || ok != tt.ok {
			t.Errorf("ParseName(%q) = %q, %q, %v; want %q, %q, %v", tt.name, run, ns, ok, tt.run, tt.ns, tt.ok)
		}
	}
	id, err := netns.NewRunID()
	if err != nil {
		t.Fatal(err)
	}
	if run, ns, ok := netns.ParseName(netns.Name(id, "ns1")); !ok || run != id || ns != "ns1" {
		t.Errorf("round trip of run id %q failed: %q %q %v", id, run, ns, ok)
	}
}

func TestCreateDoDelete(t *testing.T) {
	privtest.Require(t)
	id, _ := netns.NewRunID()
	name := netns.Name(id, "t")
	h, err := netns.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		if err := netns.Delete(name); err != nil {
			t.Error(err)
		}
		if netns.Exists(name) {
			t.Errorf("%s still exists after Delete", name)
		}
	})
	root, err := netns.Current()
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if h.Equal(root) {
		t.Fatal("new namespace is the caller's namespace")
	}
	var links []netlink.Link
	if err := netns.Do(h, func() error {
		var err error
		links, err = netlink.LinkList()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Attrs().Name != "lo" {
		t.Errorf("a fresh namespace should hold only lo, got %d links", len(links))
	}
	after, _ := netns.Current()
	defer after.Close()
	if !after.Equal(root) {
		t.Error("Do left the calling thread in another namespace")
	}
	c1, err := netns.Cookie(h)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := netns.Cookie(root)
	if c1 == 0 || c1 == c2 {
		t.Errorf("cookies: new %d, root %d; want distinct and non-zero", c1, c2)
	}
	names, err := netns.List()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range names {
		found = found || n == name
	}
	if !found {
		t.Errorf("List() = %v, want it to include %s", names, name)
	}
}

// A panic inside Do is raised again in the caller, after the thread went
// back to its namespace, so the caller's recover sees it.
func TestDoPanics(t *testing.T) {
	privtest.Require(t)
	id, _ := netns.NewRunID()
	name := netns.Name(id, "p")
	h, err := netns.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); netns.Delete(name) })
	got := func() (p any) {
		defer func() { p = recover() }()
		netns.Do(h, func() error { panic("inside") })
		return nil
	}()
	if got != "inside" {
		t.Fatalf("recovered %v, want the panic from inside Do", got)
	}
	// The process still works in its own namespace afterwards.
	if err := netns.Do(h, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
}

// TestDeleteHalfCreated plants what SIGKILL between creating a namespace's
// entry and mounting the namespace on it leaves: an empty, unmounted file
// in RunDir. Delete removes it instead of failing with "invalid argument".
func TestDeleteHalfCreated(t *testing.T) {
	privtest.Require(t)
	id, _ := netns.NewRunID()
	name := netns.Name(id, "half")
	path := filepath.Join(netns.RunDir, name)
	if err := os.MkdirAll(netns.RunDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	removed, err := netns.DeleteOwn(name)
	if err != nil || !removed {
		t.Fatalf("DeleteOwn(half-created) = %v, %v; want removed", removed, err)
	}
	if netns.Exists(name) {
		t.Errorf("%s still exists", name)
	}
	// Gone already: not an error, and not counted as removed again.
	if removed, err := netns.DeleteOwn(name); err != nil || removed {
		t.Errorf("DeleteOwn(gone) = %v, %v; want false, nil", removed, err)
	}
}

// TestDeleteConcurrently deletes one namespace from several goroutines at
// once, as concurrent cleans do: exactly one removes it, none fails.
func TestDeleteConcurrently(t *testing.T) {
	privtest.Require(t)
	id, _ := netns.NewRunID()
	name := netns.Name(id, "c")
	h, err := netns.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	t.Cleanup(func() { netns.Delete(name) })
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		removed int
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := netns.DeleteOwn(name)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				removed++
			}
		}()
	}
	wg.Wait()
	if removed != 1 || netns.Exists(name) {
		t.Errorf("removed %d times, exists %v; want once and gone", removed, netns.Exists(name))
	}
}

// TestNamesStayInRunDir: names that would climb out of RunDir, or name
// RunDir itself, are refused by every function that takes a name.
func TestNamesStayInRunDir(t *testing.T) {
	for _, name := range []string{"", ".", "..", "../../tmp/x", "a/b"} {
		if err := netns.Delete(name); !errors.Is(err, netns.ErrBadName) {
			t.Errorf("Delete(%q) = %v, want ErrBadName", name, err)
		}
		if _, err := netns.Open(name); !errors.Is(err, netns.ErrBadName) {
			t.Errorf("Open(%q) = %v, want ErrBadName", name, err)
		}
	}
	if _, err := netns.DeleteOwn("cni-1234"); !errors.Is(err, netns.ErrBadName) {
		t.Errorf("DeleteOwn of a name hopcheck did not make = %v, want ErrBadName", err)
	}
}

// TestOpenPathOnlyNetns: a path that is not a network namespace is refused
// when it is opened, a FIFO without waiting for a writer.
func TestOpenPathOnlyNetns(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/etc/passwd", dir, fifo, "/dev/null", "/proc/self/ns/uts"} {
		done := make(chan error, 1)
		go func() {
			h, err := netns.OpenPath(p)
			if err == nil {
				h.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, netns.ErrNotNetns) {
				t.Errorf("OpenPath(%s) = %v, want ErrNotNetns", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("OpenPath(%s) blocked", p)
		}
	}
	h, err := netns.OpenPath("/proc/self/ns/net")
	if err != nil {
		t.Fatalf("OpenPath(/proc/self/ns/net): %v", err)
	}
	h.Close()
}

package netns_test

import (
	"testing"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
	"github.com/vishvananda/netlink"
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

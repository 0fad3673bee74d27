package scenario

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

// libraryDir is the scenario library, relative to this package.
const libraryDir = "../../scenarios"

// safeRanges are the only addresses a library scenario may use: private
// ranges for containers, the documentation ranges for the simulated
// internet, loopback and link-local. Everything stays inside namespaces
// anyway; this keeps a scenario from even naming a real public host.
var safeRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("fd00::/8"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("::1/128"),
}

func safe(a netip.Addr) bool {
	if !a.IsValid() {
		return true
	}
	for _, p := range safeRanges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// TestLibrary loads the whole library and holds each scenario to the rules
// of the library: it says what it is, it checks something positive and
// states at least one isolation, it uses only safe addresses and only
// interface types this project's kernels have.
func TestLibrary(t *testing.T) {
	ss, err := Load(libraryDir)
	if err != nil {
		t.Fatalf("the library must load:\n%v", err)
	}
	byName := map[string]*Scenario{}
	for _, s := range ss {
		byName[s.Name] = s
	}
	for _, name := range []string{"single-container", "veth-pair", "bridge", "nat-egress", "dnat-ingress", "multi-host-l2", "multi-host-vxlan"} {
		if byName[name] == nil {
			t.Errorf("library scenario %s is missing", name)
		}
	}
	for _, s := range ss {
		t.Run(s.Name, func(t *testing.T) {
			if s.Description == "" {
				t.Error("no description")
			}
			// The top-level library states isolations next to what works;
			// scenarios/broken/ holds failures by design.
			if filepath.Dir(s.File) == filepath.Clean(libraryDir) {
				if want := strings.TrimSuffix(filepath.Base(s.File), filepath.Ext(s.File)); s.Name != want {
					t.Errorf("name %q differs from its file name %q", s.Name, want)
				}
				var pos, neg int
				for _, c := range s.Checks {
					if c.Expect == ExpectFail {
						neg++
					} else {
						pos++
					}
				}
				if pos == 0 || neg == 0 {
					t.Errorf("%d positive and %d expect: fail checks; want at least one of each", pos, neg)
				}
			}
			for _, ns := range s.Namespaces {
				for _, i := range ns.Interfaces {
					if i.Type == TypeDummy {
						t.Errorf("%s/%s is a dummy interface; the kernels hopcheck runs on may lack them (use lo addresses)", ns.Name, i.Name)
					}
					for _, a := range i.Addresses {
						if !safe(a.Addr()) {
							t.Errorf("%s/%s has address %s outside the private and documentation ranges", ns.Name, i.Name, a)
						}
					}
					if v := i.VXLAN; v != nil && (!safe(v.Remote) || !safe(v.Local)) {
						t.Errorf("%s/%s: vxlan endpoints %s, %s outside the safe ranges", ns.Name, i.Name, v.Local, v.Remote)
					}
				}
				for _, r := range ns.Routes {
					if !safe(r.Via) || (r.Dst.Bits() > 0 && !safe(r.Dst.Addr())) {
						t.Errorf("%s: route %q outside the safe ranges", ns.Name, r.Raw)
					}
				}
			}
			for _, c := range s.Checks {
				var targets []netip.Addr
				switch {
				case c.Ping != nil:
					targets = append(targets, c.Ping.To.Addr)
				case c.Conn != nil:
					targets = append(targets, c.Conn.To.Addr())
				case c.Route != nil:
					targets = append(targets, c.Route.To, c.Route.Via)
				case c.ARP != nil:
					targets = append(targets, c.ARP.IP)
				}
				for _, a := range targets {
					if !safe(a) {
						t.Errorf("check %q names %s, outside the safe ranges", c.Name, a)
					}
				}
			}
		})
	}
}

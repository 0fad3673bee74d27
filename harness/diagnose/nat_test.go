package diagnose

import (
	"net/netip"
	"testing"
)

func TestNATTo(t *testing.T) {
	for _, tc := range []struct {
		in   string
		addr string
		port uint16
		ok   bool
	}{
		{"10.0.0.2", "10.0.0.2", 0, true},
		{"10.0.0.2:8080", "10.0.0.2", 8080, true},
		{"10.0.0.2-10.0.0.9:80-90", "10.0.0.2", 80, true},
		{":8080", "", 8080, true},
		{"nope", "", 0, false},
	} {
		a, p, ok := natTo(tc.in)
		if ok != tc.ok || p != tc.port || (tc.addr != "" && a != netip.MustParseAddr(tc.addr)) {
			t.Errorf("natTo(%q) = %v, %d, %v", tc.in, a, p, ok)
		}
	}
}

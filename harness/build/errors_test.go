package build

import (
	"testing"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

func TestIPTablesMessage(t *testing.T) {
	for _, tc := range []struct {
		text   string
		status int
		want   string
	}{
		{"running [/usr/sbin/iptables -t filter -A INPUT -j NOSUCHTARGET --wait]: exit status 2: iptables v1.8.9 (nf_tables): Chain 'NOSUCHTARGET' does not exist\nTry `iptables -h' or 'iptables --help' for more information.\n",
			2, "iptables v1.8.9 (nf_tables): Chain 'NOSUCHTARGET' does not exist"},
		{"running [/usr/sbin/iptables -t filter -P MINE DROP --wait]: exit status 1: iptables: Bad built-in chain name.\n",
			1, "iptables: Bad built-in chain name."},
		{"running [/usr/sbin/iptables -t filter -A X -m comment --comment a]: exit status b]: exit status 4: \n\n  real reason\n",
			4, "real reason"},
		{"running [/usr/sbin/iptables -N X]: exit status 3: ", 3, "iptables failed with exit status 3"},
		{"something else entirely", 1, "something else entirely"},
	} {
		if got := iptablesMessage(tc.text, tc.status); got != tc.want {
			t.Errorf("iptablesMessage(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

// TestKindTable: every creatable type of the format has a kind, and each
// kind names the kernel option to enable.
func TestKindTable(t *testing.T) {
	for typ, k := range linkKinds {
		if k.kernelKind() != string(typ) {
			t.Errorf("%s: kernel kind %q", typ, k.kernelKind())
		}
		if k.kernelConfig() == "" {
			t.Errorf("%s: no kernel option", typ)
		}
	}
	for _, typ := range []string{"veth", "bridge", "dummy", "vxlan", "macvlan"} {
		if _, ok := linkKinds[scenario.LinkType(typ)]; !ok {
			t.Errorf("no kind for %s", typ)
		}
	}
}

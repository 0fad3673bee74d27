package plan

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/harness/plan/plantest"
	"github.com/hopcheck/hopcheck/harness/scenario"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func runName(ns string) string { return "hcrun042-" + ns }

// TestGolden compares the rendered plans with testdata/*.golden; run with
// -update to rewrite them after an intended change.
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sc     *scenario.Scenario
		nsName func(string) string
	}{
		{"nat-egress", natEgress(), nil},
		{"overlay", overlay(), nil},
		{"nat-egress-run", natEgress(), runName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.sc)
			if err != nil {
				t.Fatal(err)
			}
			got := p.Script(tc.nsName) + "\n# teardown\n" + p.TeardownScript(tc.nsName)
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("plan differs from %s (run go test -update if intended):\n%s", golden, got)
			}
		})
	}
}

// TestScriptIsBash checks that the rendered recipe is a bash script bash
// can parse (bash -n executes nothing).
func TestScriptIsBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to parse the script with")
	}
	for _, sc := range []*scenario.Scenario{natEgress(), overlay()} {
		p, err := New(sc)
		if err != nil {
			t.Fatal(err)
		}
		for _, script := range []string{p.Script(runName), p.TeardownScript(runName)} {
			cmd := exec.Command(bash, "-n")
			cmd.Stdin = strings.NewReader(script)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: bash -n: %v\n%s\n%s", sc.Name, err, out, script)
			}
		}
	}
}

// TestOrder checks the ordering rules on every fixture, independent of
// the golden text: each rule is a property of the step list.
func TestOrder(t *testing.T) {
	for _, sc := range []*scenario.Scenario{natEgress(), overlay()} {
		t.Run(sc.Name, func(t *testing.T) {
			p, err := New(sc)
			if err != nil {
				t.Fatal(err)
			}
			checkOrder(t, sc, p.Steps)
		})
	}
}

func checkOrder(t *testing.T, sc *scenario.Scenario, steps []Step) {
	t.Helper()
	nsMade := map[string]int{}
	ifMade := map[scenario.Endpoint]int{}
	firstLink, firstAddr := len(steps), map[string]int{}
	up := map[scenario.Endpoint]int{}
	var onLinkSeen map[string]bool
	written := map[string][]string{}
	for i, s := range steps {
		if _, ok := nsMade[s.NS]; !ok && s.Kind != CreateNamespace {
			t.Errorf("step %d (%s) acts in %s before it exists", i, s, s.NS)
		}
		here := scenario.Endpoint{NS: s.NS, If: s.If}
		switch s.Kind {
		case CreateNamespace:
			nsMade[s.NS] = i
			ifMade[scenario.Endpoint{NS: s.NS, If: "lo"}] = i
		case CreateLink:
			firstLink = min(firstLink, i)
			if _, dup := ifMade[here]; dup {
				t.Errorf("step %d creates %s twice", i, here)
			}
			ifMade[here] = i
			if s.Type == scenario.TypeVeth {
				if _, ok := nsMade[s.Peer.NS]; !ok {
					t.Errorf("step %d puts a peer in %s before it exists", i, s.Peer.NS)
				}
				ifMade[s.Peer] = i
			}
			lower := ""
			if s.VXLAN != nil {
				lower = s.VXLAN.Dev
			}
			if s.Macvlan != nil {
				lower = s.Macvlan.Parent
			}
			if _, ok := ifMade[scenario.Endpoint{NS: s.NS, If: lower}]; lower != "" && !ok {
				t.Errorf("step %d creates %s before its lower interface %s", i, here, lower)
			}
		case SetSysctl:
			if s.If == "" && i > firstLink {
				t.Errorf("step %d: namespace-wide sysctl %s after the first link", i, s.Sysctl.Key)
			}
			if a, ok := firstAddr[s.NS]; ok && a < i {
				t.Errorf("step %d: sysctl %s after the addresses of %s", i, s.Sysctl.Key, s.NS)
			}
		case SetMaster:
			if _, ok := ifMade[scenario.Endpoint{NS: s.NS, If: s.Master}]; !ok {
				t.Errorf("step %d enslaves %s to %s before the bridge exists", i, here, s.Master)
			}
		case AddAddress:
			if _, ok := firstAddr[s.NS]; !ok {
				firstAddr[s.NS] = i
			}
		case SetUp:
			up[here] = i
			ifc := sc.Interface(here)
			if l := lowerOf(ifc); l != "" {
				if _, ok := up[scenario.Endpoint{NS: s.NS, If: l}]; !ok {
					t.Errorf("step %d brings %s up before its lower interface %s", i, here, l)
				}
			}
		case AddRoute:
			if onLinkSeen == nil {
				onLinkSeen = map[string]bool{}
			}
			if s.Route.Via.IsValid() {
				onLinkSeen[s.NS] = true
			} else if onLinkSeen[s.NS] {
				t.Errorf("step %d: on-link route %q after a gateway route of %s", i, s.Route.Raw, s.NS)
			}
			for _, ifc := range sc.Namespace(s.NS).Interfaces {
				if _, ok := up[scenario.Endpoint{NS: s.NS, If: ifc.Name}]; ifc.Up && !ok {
					t.Errorf("step %d: route %q before %s/%s is up", i, s.Route.Raw, s.NS, ifc.Name)
				}
			}
		case RunIPTables:
			written[s.NS] = append(written[s.NS], s.IPTables.Raw)
		}
		if s.If != "" && s.Kind != CreateLink && s.Kind != SetSysctl {
			if _, ok := ifMade[here]; !ok {
				t.Errorf("step %d (%s) acts on %s before it exists", i, s, here)
			}
		}
	}
	for _, ns := range sc.Namespaces {
		var want []string
		for _, c := range ns.IPTables {
			want = append(want, c.Raw)
		}
		if !slices.Equal(written[ns.Name], want) {
			t.Errorf("%s: iptables order %q, want as written %q", ns.Name, written[ns.Name], want)
		}
		for _, ifc := range ns.Interfaces {
			e := scenario.Endpoint{NS: ns.Name, If: ifc.Name}
			if _, ok := ifMade[e]; !ok {
				t.Errorf("%s is never created", e)
			}
			if _, ok := up[e]; ok != ifc.Up {
				t.Errorf("%s: brought up = %v, want %v", e, ok, ifc.Up)
			}
		}
	}
}

// TestRoutesOnLinkFirst pins the route order directly: gateway routes
// written before the on-link route that makes their gateway reachable.
func TestRoutesOnLinkFirst(t *testing.T) {
	sc := plantest.New("routes").
		NS("ns1").NS("ns2").
		Iface("ns1", "eth0", "", plantest.Addrs("10.0.0.2/24")).
		Iface("ns1", "eth1", "").
		Link("ns1/eth0", "ns2/a").
		Link("ns1/eth1", "ns2/b").
		Route("ns1", "default via 192.0.2.1").
		Route("ns1", "198.51.100.0/24 via 10.0.0.1").
		Route("ns1", "192.0.2.0/24 dev eth1").
		Route("ns1", "203.0.113.0/24 dev eth1 src 10.0.0.2").
		Scenario()
	p, err := New(sc)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range p.Steps {
		if s.Kind == AddRoute {
			got = append(got, s.Route.Raw)
		}
	}
	want := []string{"192.0.2.0/24 dev eth1", "203.0.113.0/24 dev eth1 src 10.0.0.2", "default via 192.0.2.1", "198.51.100.0/24 via 10.0.0.1"}
	if !slices.Equal(got, want) {
		t.Errorf("routes in order %q, want %q", got, want)
	}
}

// TestErrors covers what the planner refuses, each with the position and
// field of the scenario text to fix.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(b *plantest.Builder)
		want  string
	}{
		{"vxlan dev missing", func(b *plantest.Builder) {
			b.NS("ns1").Iface("ns1", "vx0", scenario.TypeVXLAN, plantest.VXLAN(1, "", "192.0.2.2", "eth9", 0))
		}, `scenarios/t.yaml:2:7: namespaces.ns1.interfaces.vx0: vxlan vx0 sits on "eth9", which namespace ns1 does not have`},
		{"macvlan cycle", func(b *plantest.Builder) {
			b.NS("ns1").
				Iface("ns1", "m1", scenario.TypeMacvlan, plantest.Macvlan("m2", "")).
				Iface("ns1", "m2", scenario.TypeMacvlan, plantest.Macvlan("m1", ""))
		}, "scenarios/t.yaml:2:7: namespaces.ns1.interfaces.m1: macvlan m1 sits on m2, which cannot be created first (a dependency cycle)\n" +
			"scenarios/t.yaml:3:7: namespaces.ns1.interfaces.m2: macvlan m2 sits on m1, which cannot be created first (a dependency cycle)"},
		{"global sysctl", func(b *plantest.Builder) {
			b.NS("ns1").Sysctl("ns1", "kernel.core_pattern", "x")
		}, `scenarios/t.yaml:2:7: namespaces.ns1.sysctls.kernel.core_pattern: sysctl "kernel.core_pattern" is not in the per-namespace net.* tree`},
		{"sysctl escaping net", func(b *plantest.Builder) {
			b.NS("ns1").Sysctl("ns1", "net.//.kernel.core_pattern", "x")
		}, `scenarios/t.yaml:2:7: namespaces.ns1.sysctls.net.//.kernel.core_pattern: sysctl "net.//.kernel.core_pattern" has an empty or invalid component`},
		{"sysctl of a missing interface", func(b *plantest.Builder) {
			b.NS("ns1").Sysctl("ns1", "net.ipv4.conf.eth0.rp_filter", "1")
		}, `scenarios/t.yaml:2:7: namespaces.ns1.sysctls.net.ipv4.conf.eth0.rp_filter: sysctl net.ipv4.conf.eth0.rp_filter names interface "eth0", which namespace ns1 does not have`},
		{"veth without link", func(b *plantest.Builder) {
			b.NS("ns1").Iface("ns1", "v0", scenario.TypeVeth)
		}, `scenarios/t.yaml:2:7: namespaces.ns1.interfaces.v0: veth v0 is not an end of any link`},
		{"master not a bridge", func(b *plantest.Builder) {
			b.NS("ns1").
				Iface("ns1", "mv", scenario.TypeMacvlan, plantest.Macvlan("lo", "private")).
				Iface("ns1", "vx", scenario.TypeVXLAN, plantest.VXLAN(7, "", "", "", 0), plantest.Master("mv"))
		}, `scenarios/t.yaml:3:7: namespaces.ns1.interfaces.vx: master "mv" is not a bridge in namespace ns1`},
		{"unknown type", func(b *plantest.Builder) {
			b.NS("ns1").Iface("ns1", "x0", "ipvlan")
		}, `scenarios/t.yaml:2:7: namespaces.ns1.interfaces.x0: interface x0 has unknown type "ipvlan"`},
		{"loopback not lo", func(b *plantest.Builder) {
			b.NS("ns1").Iface("ns1", "lo2", scenario.TypeLoopback)
		}, `scenarios/t.yaml:2:7: namespaces.ns1.interfaces.lo2: type loopback is only for lo`},
		{"iptables delete", func(b *plantest.Builder) {
			b.NS("ns1").IPTables("ns1", "-D INPUT 1", "-D", "INPUT", "1")
		}, `scenarios/t.yaml:2:9: namespaces.ns1.iptables[0]: iptables command "-D" is not one of -A, -I, -N, -P`},
		{"route dev missing", func(b *plantest.Builder) {
			b.NS("ns1").Route("ns1", "10.9.0.0/16 dev eth3")
		}, `scenarios/t.yaml:2:9: namespaces.ns1.routes[0]: dev "eth3" does not exist in namespace ns1`},
		{"neighbor dev missing", func(b *plantest.Builder) {
			b.NS("ns1").Neighbor("ns1", "10.0.0.9", "02:00:00:00:00:09", "eth3")
		}, `scenarios/t.yaml:2:9: namespaces.ns1.neighbors[0]: dev "eth3" does not exist in namespace ns1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := plantest.New("t")
			tc.build(b)
			_, err := New(b.Scenario())
			if err == nil {
				t.Fatalf("New succeeded, want %s", tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("error\n got: %s\nwant: %s", got, tc.want)
			}
			if !scenario.IsInputError(err) {
				t.Errorf("error %T is not a scenario input error", err)
			}
			var list scenario.ErrorList
			if !errors.As(err, &list) {
				t.Errorf("error %T is not a scenario.ErrorList", err)
			}
		})
	}
}

func TestStepString(t *testing.T) {
	sc := natEgress()
	p, err := New(sc)
	if err != nil {
		t.Fatal(err)
	}
	find := func(k Kind, field string) Step {
		for _, s := range p.Steps {
			if s.Kind == k && s.Field == field {
				return s
			}
		}
		t.Fatalf("no %s step for %s", k, field)
		return Step{}
	}
	for _, tc := range []struct {
		step Step
		want string
	}{
		{find(CreateNamespace, "namespaces.ns1"), "create namespace"},
		{find(CreateLink, "links[0]"), "create veth pair ns1/veth_1 <-> host/veth1"},
		{find(CreateLink, "namespaces.host.interfaces.br0"), "create bridge interface br0"},
		{find(SetMaster, "namespaces.host.interfaces.veth1"), "set master br0"},
		{find(AddAddress, "namespaces.ns1.interfaces.veth_1"), "add address 10.0.0.2/24"},
		{find(SetUp, "namespaces.ns1.interfaces.veth_1"), "set veth_1 up"},
		{find(AddRoute, "namespaces.ns2.routes[0]"), "add route default via 10.0.0.1"},
		{find(SetSysctl, "namespaces.host.sysctls.net.ipv4.ip_forward"), "set sysctl net.ipv4.ip_forward=1"},
		{find(RunIPTables, "namespaces.host.iptables[1]"), "iptables -A FORWARD -i br0 -o eth0 -j ACCEPT"},
	} {
		if got := tc.step.String(); got != tc.want {
			t.Errorf("%s %s: String() = %q, want %q", tc.step.Kind, tc.step.Field, got, tc.want)
		}
	}
}

// TestWhere: steps point at the scenario text to fix. A veth end that only
// links name has no line of its own, so its steps point at the link; the
// implicit lo points at its namespace.
func TestWhere(t *testing.T) {
	sc := overlay()
	p, err := New(sc)
	if err != nil {
		t.Fatal(err)
	}
	want := map[scenario.Endpoint]string{
		{NS: "router", If: "r1"}:  "links[0]",
		{NS: "node1", If: "eth0"}: "namespaces.node1.interfaces.eth0",
		{NS: "c1", If: "lo"}:      "namespaces.c1",
		{NS: "node1", If: "cbr0"}: "namespaces.node1.interfaces.cbr0",
		{NS: "c1", If: "b"}:       "links[2]",
	}
	seen := map[scenario.Endpoint]bool{}
	for _, s := range p.Steps {
		e := scenario.Endpoint{NS: s.NS, If: s.If}
		if w, ok := want[e]; ok && s.Kind == SetUp {
			seen[e] = true
			if s.Field != w {
				t.Errorf("%s up: field %s, want %s", e, s.Field, w)
			}
		}
	}
	if len(seen) != len(want) {
		t.Errorf("saw SetUp steps for %v, want all of %v", seen, want)
	}
}

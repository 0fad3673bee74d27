package build

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/harness/plan"
	"github.com/hopcheck/hopcheck/harness/plan/plantest"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"golang.org/x/sys/unix"
)

func TestJudgeDAD(t *testing.T) {
	a := netip.MustParseAddr
	ll, global, other := a("fe80::1"), a("2001:db8::1"), a("2001:db8::2")
	ifs := []ifDAD{
		{name: "lo", ready: true, addrs: []addrDAD{{a("::1"), unix.IFA_F_PERMANENT}}},
		{name: "done", ready: true, wantsLL: true, addrs: []addrDAD{{ll, unix.IFA_F_PERMANENT}, {global, unix.IFA_F_PERMANENT}}},
		{name: "busy", ready: true, wantsLL: true, addrs: []addrDAD{{ll, unix.IFA_F_TENTATIVE}, {global, unix.IFA_F_PERMANENT}}},
		{name: "dup", ready: true, wantsLL: true, addrs: []addrDAD{{ll, 0}, {other, unix.IFA_F_TENTATIVE | unix.IFA_F_DADFAILED}}},
		{name: "nocarrier", ready: false, wantsLL: true, addrs: []addrDAD{{global, unix.IFA_F_TENTATIVE}}},
		{name: "fresh", ready: true, wantsLL: true, addrs: []addrDAD{{other, 0}}},
		{name: "dummy", ready: true, addrs: []addrDAD{{other, 0}}},
	}
	st := judgeDAD(ifs)
	if want := []addrOn{{"busy", ll}}; !slices.Equal(st.tentative, want) {
		t.Errorf("tentative %v, want %v", st.tentative, want)
	}
	if want := []addrOn{{"dup", other}}; !slices.Equal(st.failed, want) {
		t.Errorf("failed %v, want %v (dadfailed counts as failed, not tentative)", st.failed, want)
	}
	if want := []string{"fresh"}; !slices.Equal(st.noLL, want) {
		t.Errorf("without link-local %v, want %v", st.noLL, want)
	}

	for _, tc := range []struct {
		name      string
		st        dadState
		graceOver bool
		want      bool
	}{
		{"nothing", dadState{}, false, true},
		{"tentative", dadState{tentative: []addrOn{{"x", ll}}}, true, false},
		{"failed", dadState{failed: []addrOn{{"x", ll}}}, true, false},
		{"link-local missing, in grace", dadState{noLL: []string{"x"}}, false, false},
		{"link-local missing, grace over", dadState{noLL: []string{"x"}}, true, true},
	} {
		if got := tc.st.settled(tc.graceOver); got != tc.want {
			t.Errorf("%s: settled = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestDuplicateErrors(t *testing.T) {
	sc := plantest.New("dup").
		NS("sw").Iface("sw", "br0", scenario.TypeBridge).
		Iface("sw", "p1", "", plantest.Master("br0")).
		Iface("sw", "p2", "", plantest.Master("br0")).
		Iface("sw", "p3", "", plantest.Master("br0")).
		NS("a").Iface("a", "eth0", "", plantest.Addrs("2001:db8::1/64")).
		NS("b").Iface("b", "eth0", "", plantest.Addrs("2001:db8::1/64")).
		NS("c").Iface("c", "eth0", "", plantest.Addrs("2001:db8::1/128", "2001:db8::c/64")).
		Link("a/eth0", "sw/p1").Link("b/eth0", "sw/p2").Link("c/eth0", "sw/p3").
		Scenario()
	p, err := plan.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	dupAddr, ll := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fe80::2")
	ep := func(ns string) scenario.Endpoint { return scenario.Endpoint{NS: ns, If: "eth0"} }

	// All three hold it; each failed. Reported once, from the first in
	// scenario order, naming the other two.
	err = duplicateErrors(p, map[scenario.Endpoint][]netip.Addr{ep("c"): {dupAddr}, ep("b"): {dupAddr}, ep("a"): {dupAddr}})
	var se *StepError
	var d *DuplicateAddressError
	if !errors.As(err, &se) || !errors.As(err, &d) {
		t.Fatalf("%v (%T), want a *StepError with a *DuplicateAddressError", err, err)
	}
	if d.Endpoint != ep("a") || !slices.Equal(d.Others, []scenario.Endpoint{ep("b"), ep("c")}) {
		t.Errorf("finding %+v, want a/eth0 with b/eth0 and c/eth0", d)
	}
	if se.Step.Kind != plan.AddAddress || se.Step.NS != "a" || se.Field != "namespaces.a.interfaces.eth0" || se.Pos != sc.Interface(ep("a")).Pos {
		t.Errorf("located at %v %s %q, want a/eth0's add-address step", se.Pos, se.Field, se.Step)
	}
	want := "dup.yaml:7:7: namespaces.a.interfaces.eth0: add address 2001:db8::1/64: a/eth0: address 2001:db8::1 is a duplicate (DAD failed): another interface on that segment has it (b/eth0 and c/eth0 have it too in this scenario)"
	if !strings.HasSuffix(err.Error(), want) {
		t.Errorf("message\n%s\nwant it to end\n%s", err, want)
	}

	// A link-local address the scenario does not name: the interface's
	// up step, no other holder.
	err = duplicateErrors(p, map[scenario.Endpoint][]netip.Addr{ep("b"): {ll}})
	if !errors.As(err, &se) || !errors.As(err, &d) || se.Step.Kind != plan.SetUp || len(d.Others) != 0 {
		t.Fatalf("link-local duplicate: %v, want a set-up StepError without other holders", err)
	}
	if want := "b/eth0: address fe80::2 is a duplicate (DAD failed): another interface on that segment has it"; !strings.HasSuffix(err.Error(), want) {
		t.Errorf("message %q, want it to end %q", err, want)
	}

	// Two different duplicates: both reported.
	err = duplicateErrors(p, map[scenario.Endpoint][]netip.Addr{ep("b"): {ll}, ep("c"): {dupAddr}})
	if n := strings.Count(err.Error(), "is a duplicate"); n != 2 {
		t.Errorf("two duplicates reported %d times: %v", n, err)
	}
}

package check

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/harness/probe"
	"github.com/hopcheck/hopcheck/harness/scenario"
)

func TestStateMatches(t *testing.T) {
	const (
		none       = netlink.NUD_NONE
		incomplete = netlink.NUD_INCOMPLETE
		reachable  = netlink.NUD_REACHABLE
		stale      = netlink.NUD_STALE
		delay      = netlink.NUD_DELAY
		probeSt    = netlink.NUD_PROBE
		failedSt   = netlink.NUD_FAILED
		noarp      = netlink.NUD_NOARP
		permanent  = netlink.NUD_PERMANENT
	)
	tests := []struct {
		want string
		nud  int
		ok   bool
	}{
		{"reachable", reachable, true},
		{"reachable", delay, true},
		{"reachable", probeSt, true},
		{"reachable", stale, false},
		{"reachable", permanent, false},
		{"reachable", incomplete, false},
		{"stale", stale, true},
		{"stale", reachable, false},
		{"stale", delay, false},
		{"permanent", permanent, true},
		{"permanent", noarp | permanent, true},
		{"permanent", reachable, false},
		{"any", reachable, true},
		{"any", stale, true},
		{"any", delay, true},
		{"any", permanent, true},
		{"any", noarp, true},
		{"any", incomplete, false},
		{"any", failedSt, false},
		{"any", none, false},
		{"", stale, true},
		{"bogus", reachable, false},
	}
	for _, tt := range tests {
		if got := stateMatches(tt.want, tt.nud); got != tt.ok {
			t.Errorf("stateMatches(%q, %s) = %v, want %v", tt.want, stateName(tt.nud), got, tt.ok)
		}
	}
}

func TestStateName(t *testing.T) {
	tests := map[int]string{
		0:                     "NONE",
		netlink.NUD_REACHABLE: "REACHABLE",
		netlink.NUD_FAILED:    "FAILED",
		netlink.NUD_NOARP | netlink.NUD_PERMANENT:      "NOARP,PERMANENT",
		netlink.NUD_INCOMPLETE | netlink.NUD_REACHABLE: "INCOMPLETE,REACHABLE",
	}
	for nud, want := range tests {
		if got := stateName(nud); got != want {
			t.Errorf("stateName(%#x) = %q, want %q", nud, got, want)
		}
	}
}

func TestARPResult(t *testing.T) {
	ip := netip.MustParseAddr("10.0.0.1")
	macA, _ := net.ParseMAC("02:00:00:00:00:0a")
	macB, _ := net.ParseMAC("02:00:00:00:00:0b")
	reach := neighView{IP: ip, MAC: macA, Dev: "eth0", State: netlink.NUD_REACHABLE}
	staleB := neighView{IP: ip, MAC: macB, Dev: "eth1", State: netlink.NUD_STALE}
	incomplete := neighView{IP: ip, Dev: "eth0", State: netlink.NUD_INCOMPLETE}
	tests := []struct {
		name    string
		state   string
		want    net.HardwareAddr
		entries []neighView
		passed  bool
		errHas  string
	}{
		{"no entry", "any", nil, nil, false, "has no neighbor entry for 10.0.0.1"},
		{"any entry", "any", nil, []neighView{reach}, true, ""},
		{"mac matches", "reachable", macA, []neighView{reach}, true, ""},
		{"mac differs", "any", macB, []neighView{reach}, false, "expected lladdr 02:00:00:00:00:0b, got 02:00:00:00:00:0a"},
		{"state differs", "stale", macA, []neighView{reach}, false, "expected state stale, got REACHABLE"},
		{"second entry matches", "stale", macB, []neighView{reach, staleB}, true, ""},
		{"incomplete", "any", nil, []neighView{incomplete}, false, "INCOMPLETE with no lladdr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := arpResult(&scenario.ARPCheck{In: "ns1", IP: ip, State: tt.state}, tt.want, tt.entries)
			if r.Passed != tt.passed || r.Reached != tt.passed {
				t.Errorf("Passed/Reached = %v/%v, want %v", r.Passed, r.Reached, tt.passed)
			}
			if !strings.Contains(r.Error, tt.errHas) || (tt.errHas == "" && r.Error != "") {
				t.Errorf("Error = %q, want %q", r.Error, tt.errHas)
			}
		})
	}
}

func TestCompareRoute(t *testing.T) {
	gw := netip.MustParseAddr("10.0.0.1")
	other := netip.MustParseAddr("10.0.0.254")
	src := netip.MustParseAddr("10.0.0.2")
	got := routeView{Type: "unicast", Via: other, Dev: "eth1", Src: src}
	tests := []struct {
		name string
		rc   scenario.RouteCheck
		want string
	}{
		{"nothing asked", scenario.RouteCheck{}, ""},
		{"all match", scenario.RouteCheck{Via: other, Dev: "eth1", Src: src}, ""},
		{"wrong via", scenario.RouteCheck{Via: gw}, "expected via 10.0.0.1, got via 10.0.0.254 dev eth1 src 10.0.0.2"},
		{"wrong dev and src", scenario.RouteCheck{Dev: "eth0", Src: gw}, "expected dev eth0 src 10.0.0.1, got via 10.0.0.254 dev eth1 src 10.0.0.2"},
		{"via on a connected route", scenario.RouteCheck{Via: gw}, ""},
	}
	for _, tt := range tests {
		g := got
		if tt.name == "via on a connected route" {
			g = routeView{Type: "unicast", Dev: "eth0"}
			tt.want = "expected via 10.0.0.1, got dev eth0 (directly connected, no gateway)"
		}
		if d := compareRoute(&tt.rc, g); d != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, d, tt.want)
		}
	}
	if s := (routeView{Type: "local", Dev: "lo", Src: src}).describe(src); s != "local 10.0.0.2 dev lo src 10.0.0.2" {
		t.Errorf("describe local = %q", s)
	}
}

func TestNoRouteReason(t *testing.T) {
	for _, errno := range []unix.Errno{unix.ENETUNREACH, unix.EHOSTUNREACH, unix.EACCES, unix.EINVAL} {
		if _, ok := noRouteReason(fmt.Errorf("route get: %w", errno)); !ok {
			t.Errorf("%v not taken as no route", errno)
		}
	}
	for _, err := range []error{nil, unix.EPERM, errors.New("boom")} {
		if _, ok := noRouteReason(err); ok {
			t.Errorf("%v taken as no route", err)
		}
	}
}

func TestCompareLink(t *testing.T) {
	up, down := true, false
	br0, none := "br0", ""
	got := linkView{Name: "veth1", Up: true, Master: "br0", MTU: 1500,
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64")}}
	tests := []struct {
		name string
		lc   scenario.LinkCheck
		want string
	}{
		{"exists only", scenario.LinkCheck{}, ""},
		{"all match", scenario.LinkCheck{Up: &up, Master: &br0, MTU: 1500,
			Addresses: []netip.Prefix{netip.MustParsePrefix("fd00::2/64")}}, ""},
		{"down wanted", scenario.LinkCheck{Up: &down}, "expected down, got up"},
		{"no master wanted", scenario.LinkCheck{Master: &none}, "expected master none, got br0"},
		{"mtu", scenario.LinkCheck{MTU: 9000}, "expected mtu 9000, got 1500"},
		{"address prefix length counts", scenario.LinkCheck{Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/16")}}, "missing address 10.0.0.2/16"},
	}
	for _, tt := range tests {
		if d := strings.Join(compareLink(&tt.lc, got), "; "); d != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, d, tt.want)
		}
	}
}

func TestSysctlPath(t *testing.T) {
	tests := map[string]string{
		"net.ipv4.ip_forward":              "/proc/sys/net/ipv4/ip_forward",
		"net.ipv4.conf.eth0/100.rp_filter": "/proc/sys/net/ipv4/conf/eth0.100/rp_filter",
		"net.ipv4.ping_group_range":        "/proc/sys/net/ipv4/ping_group_range",
		"net.ipv6.conf.all.disable_ipv6":   "/proc/sys/net/ipv6/conf/all/disable_ipv6",
	}
	for key, want := range tests {
		got, err := sysctlPath(key)
		if err != nil || got != want {
			t.Errorf("sysctlPath(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
	for _, bad := range []string{"", "net..ipv4", "net/../../etc/passwd", "net.ipv4.conf.//.x", "net.ipv4."} {
		if _, err := sysctlPath(bad); !errors.Is(err, ErrBadSysctlKey) {
			t.Errorf("sysctlPath(%q) error = %v, want ErrBadSysctlKey", bad, err)
		}
	}
	if got := normaliseSysctl("0\t2147483647\n"); got != "0 2147483647" {
		t.Errorf("normaliseSysctl = %q", got)
	}
}

func TestFormat(t *testing.T) {
	if got := formatMS(51234 * time.Nanosecond); got != "0.051" {
		t.Errorf("formatMS = %q", got)
	}
	if got := formatMS(1500 * time.Millisecond); got != "1500.000" {
		t.Errorf("formatMS = %q", got)
	}
	for f, want := range map[float64]string{0: "0%", 1: "100%", 1.0 / 3: "33.3%", 0.5: "50%", 0.0001: "0%"} {
		if got := formatPercent(f); got != want {
			t.Errorf("formatPercent(%v) = %q, want %q", f, got, want)
		}
	}
	lo, avg, hi := rttStats([]time.Duration{3, 1, 2})
	if lo != 1 || avg != 2 || hi != 3 {
		t.Errorf("rttStats = %v %v %v", lo, avg, hi)
	}
	if lo, avg, hi := rttStats(nil); lo != 0 || avg != 0 || hi != 0 {
		t.Errorf("rttStats(nil) = %v %v %v", lo, avg, hi)
	}
	got := countedList([]string{"a", "b", "a", "a"})
	if got != "a (x3); b" {
		t.Errorf("countedList = %q", got)
	}
}

func TestNewTag(t *testing.T) {
	a, err := newTag()
	if err != nil {
		t.Fatal(err)
	}
	b, err := newTag()
	if err != nil {
		t.Fatal(err)
	}
	if a == 0 || a == b {
		t.Errorf("tags %v and %v: want two different non-zero tags", a, b)
	}
}

func TestPingResult(t *testing.T) {
	dst := netip.MustParseAddr("10.0.0.3")
	router := netip.MustParseAddr("10.0.0.1")
	ms := time.Millisecond
	tests := []struct {
		name    string
		maxLoss float64
		res     probe.PingResult
		passed  bool
		reached bool
		summary string
		errHas  string
		details map[string]string
	}{
		{
			name:    "all replies",
			res:     probe.PingResult{Dst: dst, Sent: 3, Received: 3, RTTs: []time.Duration{ms, 2 * ms, 3 * ms}},
			passed:  true,
			reached: true,
			summary: "3/3 replies from 10.0.0.3, 0% loss, rtt min/avg/max 1.000/2.000/3.000 ms",
			details: map[string]string{"sent": "3", "received": "3", "loss": "0%", "rtt_avg_ms": "2.000"},
		},
		{
			name:    "loss within max_loss",
			maxLoss: 1.0 / 3,
			res:     probe.PingResult{Dst: dst, Sent: 3, Received: 2, RTTs: []time.Duration{ms, ms}},
			passed:  true,
			reached: true,
			summary: "2/3 replies from 10.0.0.3, 33.3% loss, rtt min/avg/max 1.000/1.000/1.000 ms: 1 without reply within 1s",
		},
		{
			name:    "loss over max_loss",
			res:     probe.PingResult{Dst: dst, Sent: 2, Received: 1, RTTs: []time.Duration{ms}},
			reached: true,
			errHas:  "lost 50% of its pings to 10.0.0.3, more than the allowed 0%",
		},
		{
			name: "host unreachable",
			res: probe.PingResult{Dst: dst, Sent: 2, ICMPErrors: []probe.ICMPError{
				{From: router, Seq: 1, Type: 3, Code: 1}, {From: router, Seq: 2, Type: 3, Code: 1}}},
			summary: "0/2 replies from 10.0.0.3: destination host unreachable from 10.0.0.1 (x2)",
			errHas:  "ns1 got no reply from 10.0.0.3 (destination host unreachable from 10.0.0.1 (x2))",
			details: map[string]string{"icmp_errors": "destination host unreachable from 10.0.0.1 (x2)", "loss": "100%"},
		},
		{
			name:    "send error",
			res:     probe.PingResult{Dst: dst, Sent: 1, SendErrors: 1, SendErr: unix.ENETUNREACH},
			summary: "0/1 replies from 10.0.0.3: send: network is unreachable",
			details: map[string]string{"send_error": "network is unreachable"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc := &scenario.PingCheck{From: "ns1", Count: tt.res.Sent, MaxLoss: tt.maxLoss}
			r := pingResult(pc, dst, tt.res)
			if r.Passed != tt.passed || r.Reached != tt.reached {
				t.Errorf("Passed/Reached = %v/%v, want %v/%v", r.Passed, r.Reached, tt.passed, tt.reached)
			}
			if tt.summary != "" && r.Summary != tt.summary {
				t.Errorf("Summary = %q, want %q", r.Summary, tt.summary)
			}
			if !strings.Contains(r.Error, tt.errHas) || (tt.passed && r.Error != "") {
				t.Errorf("Error = %q, want %q", r.Error, tt.errHas)
			}
			have := map[string]string{}
			for _, d := range r.Details {
				have[d.Key] = d.Value
			}
			for k, v := range tt.details {
				if have[k] != v {
					t.Errorf("detail %s = %q, want %q", k, have[k], v)
				}
			}
		})
	}
}

package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/nl"
)

// arpKind checks a namespace's neighbor table (ARP for IPv4, NDP for IPv6)
// for an entry for an IP, optionally on one device, with a given MAC and
// state. Checks run in order, so the table holds what earlier probes
// resolved.
type arpKind struct{}

// neighView is one neighbor entry in scenario terms.
type neighView struct {
	IP    netip.Addr
	MAC   net.HardwareAddr
	Dev   string
	State int // NUD_* bits
}

// The neighbor states a scenario can ask for.
const (
	stateAny       = "any"
	stateReachable = "reachable"
	stateStale     = "stale"
	statePermanent = "permanent"
)

func (arpKind) Run(ctx context.Context, env Env, c *scenario.Check) Result {
	ac := c.ARP
	if ac == nil {
		return failed(errors.New("arp check without arp settings"))
	}
	if err := ctx.Err(); err != nil {
		return failed(err)
	}
	want := ac.MAC
	if ac.MACOf.NS != "" {
		mac, err := ifaceMAC(env, ac.MACOf)
		if err != nil {
			return failed(fmt.Errorf("arp mac: %w", err))
		}
		want = mac
	}
	var (
		entries []neighView
		noDev   bool
	)
	err := withHandle(env, ac.In, func(h *netlink.Handle) error {
		idx := 0
		if ac.Dev != "" {
			l, err := h.LinkByName(ac.Dev)
			if isNotFound(err) {
				noDev = true
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s/%s: find interface: %w", ac.In, ac.Dev, err)
			}
			idx = l.Attrs().Index
		}
		family := netlink.FAMILY_V4
		if ac.IP.Is6() {
			family = netlink.FAMILY_V6
		}
		ns, err := nl.Dump(func() ([]netlink.Neigh, error) { return h.NeighList(idx, family) })
		if err != nil {
			return fmt.Errorf("%s: list neighbors: %w", ac.In, err)
		}
		for _, n := range ns {
			if addrOf(n.IP) != ac.IP {
				continue
			}
			entries = append(entries, neighView{
				IP:    ac.IP,
				MAC:   n.HardwareAddr,
				Dev:   linkName(h, n.LinkIndex),
				State: n.State,
			})
		}
		return nil
	})
	if err != nil {
		return failed(err)
	}
	if noDev {
		return Result{
			Summary: fmt.Sprintf("no interface %s in %s", ac.Dev, ac.In),
			Error:   fmt.Sprintf("%s: no interface %s, so no neighbor entry on it", ac.In, ac.Dev),
		}
	}
	return arpResult(ac, want, entries)
}

// arpResult judges the entries found for ac.IP against the wanted MAC (nil:
// any) and ac.State. It prefers an entry that matches, else reports the
// first one.
func arpResult(ac *scenario.ARPCheck, want net.HardwareAddr, entries []neighView) Result {
	where := ac.In
	if ac.Dev != "" {
		where += "/" + ac.Dev
	}
	if len(entries) == 0 {
		return Result{
			Summary: fmt.Sprintf("no neighbor entry for %s", ac.IP),
			Error:   fmt.Sprintf("%s has no neighbor entry for %s (nothing resolved it)", where, ac.IP),
			Details: []Detail{{"entry", "none"}},
		}
	}
	for _, e := range entries {
		if neighDiff(e, want, ac.State) == "" {
			return Result{Passed: true, Reached: true, Summary: e.describe(), Details: e.details()}
		}
	}
	e := entries[0]
	return Result{
		Summary: e.describe(),
		Error:   fmt.Sprintf("%s: neighbor %s: %s", where, ac.IP, neighDiff(e, want, ac.State)),
		Details: e.details(),
	}
}

// neighDiff returns "" when e has MAC want (nil: any) and a state that
// counts as state, else what differs.
func neighDiff(e neighView, want net.HardwareAddr, state string) string {
	var diff []string
	if len(e.MAC) == 0 {
		diff = append(diff, fmt.Sprintf("the entry is %s with no lladdr (resolution did not succeed)", stateName(e.State)))
	} else if want != nil && !bytes.Equal(e.MAC, want) {
		diff = append(diff, fmt.Sprintf("expected lladdr %s, got %s", want, e.MAC))
	}
	if len(e.MAC) != 0 && !stateMatches(state, e.State) {
		diff = append(diff, fmt.Sprintf("expected state %s, got %s", state, stateName(e.State)))
	}
	return strings.Join(diff, "; ")
}

// stateMatches maps a scenario state to the kernel's NUD states:
//
//   - reachable: REACHABLE, and also DELAY and PROBE: the entry was
//     reachable and is in use, being re-confirmed right now (a probe sent a
//     moment ago moves a STALE entry to DELAY).
//   - stale: STALE only.
//   - permanent: PERMANENT (static entries, `ip neigh add`).
//   - any (or empty): any state with a usable lladdr, that is everything
//     except NONE, INCOMPLETE and FAILED.
//
// The caller checks that the entry has a lladdr at all.
func stateMatches(state string, nud int) bool {
	switch state {
	case stateReachable:
		return nud&(netlink.NUD_REACHABLE|netlink.NUD_DELAY|netlink.NUD_PROBE) != 0
	case stateStale:
		return nud&netlink.NUD_STALE != 0
	case statePermanent:
		return nud&netlink.NUD_PERMANENT != 0
	case stateAny, "":
		return nud != netlink.NUD_NONE && nud&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0
	}
	return false
}

// stateName formats NUD_* bits as `ip neigh` does ("REACHABLE",
// "NOARP,PERMANENT"); 0 is "NONE".
func stateName(nud int) string {
	// iproute2's words for the NUD_* bits, in bit order.
	names := [...]struct {
		bit  int
		name string
	}{
		{netlink.NUD_INCOMPLETE, "INCOMPLETE"},
		{netlink.NUD_REACHABLE, "REACHABLE"},
		{netlink.NUD_STALE, "STALE"},
		{netlink.NUD_DELAY, "DELAY"},
		{netlink.NUD_PROBE, "PROBE"},
		{netlink.NUD_FAILED, "FAILED"},
		{netlink.NUD_NOARP, "NOARP"},
		{netlink.NUD_PERMANENT, "PERMANENT"},
	}
	var set []string
	for _, n := range names {
		if nud&n.bit != 0 {
			set = append(set, n.name)
		}
	}
	if len(set) == 0 {
		return "NONE"
	}
	return strings.Join(set, ",")
}

// describe is the one-line summary in `ip neigh` order:
// "10.0.0.1 dev veth_1 lladdr aa:bb:cc:dd:ee:ff REACHABLE".
func (e neighView) describe() string {
	s := e.IP.String()
	if e.Dev != "" {
		s += " dev " + e.Dev
	}
	if len(e.MAC) != 0 {
		s += " lladdr " + e.MAC.String()
	}
	return s + " " + stateName(e.State)
}

func (e neighView) details() []Detail {
	return []Detail{
		{"ip", e.IP.String()},
		{"dev", e.Dev},
		{"mac", e.MAC.String()},
		{"state", stateName(e.State)},
	}
}

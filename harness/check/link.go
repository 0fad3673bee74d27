package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

// linkKind checks that an interface exists in a namespace with the stated
// admin state, bridge master, MTU and addresses. Unset fields are not
// compared; listed addresses must all be present, others may be too.
type linkKind struct{}

// linkView is what the kernel says about an interface, in scenario terms.
type linkView struct {
	Name   string
	Up     bool   // the admin up flag (IFF_UP), what `ip link set up` sets
	Oper   string // operational state, for the report only
	Master string // "" when not a port of anything
	MTU    int
	Addrs  []netip.Prefix
}

func (linkKind) Run(ctx context.Context, env Env, c *scenario.Check) Result {
	lc := c.Link
	if lc == nil {
		return failed(errors.New("link check without link settings"))
	}
	if err := ctx.Err(); err != nil {
		return failed(err)
	}
	var (
		got     linkView
		missing bool
	)
	err := withHandle(env, lc.In, func(h *netlink.Handle) error {
		l, err := h.LinkByName(lc.Name)
		if isNotFound(err) {
			missing = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s/%s: find interface: %w", lc.In, lc.Name, err)
		}
		a := l.Attrs()
		got = linkView{
			Name:   a.Name,
			Up:     a.Flags&net.FlagUp != 0,
			Oper:   a.OperState.String(),
			Master: linkName(h, a.MasterIndex),
			MTU:    a.MTU,
		}
		if got.Addrs, err = linkAddrs(h, l, netlink.FAMILY_ALL); err != nil {
			return fmt.Errorf("%s/%s: list addresses: %w", lc.In, lc.Name, err)
		}
		return nil
	})
	if err != nil {
		return failed(err)
	}
	if missing {
		return Result{
			Summary: fmt.Sprintf("no interface %s in %s", lc.Name, lc.In),
			Error:   fmt.Sprintf("%s has no interface %s", lc.In, lc.Name),
			Details: []Detail{{"exists", "false"}},
		}
	}
	r := Result{Summary: got.describe(), Details: got.details()}
	if diff := compareLink(lc, got); len(diff) > 0 {
		r.Error = fmt.Sprintf("%s/%s: %s", lc.In, lc.Name, strings.Join(diff, "; "))
		return r
	}
	r.Passed, r.Reached = true, true
	return r
}

// compareLink lists how got differs from what lc states, one phrase each
// ("expected up, got down", "missing address 10.0.0.5/24").
func compareLink(lc *scenario.LinkCheck, got linkView) []string {
	var diff []string
	if lc.Up != nil && *lc.Up != got.Up {
		diff = append(diff, fmt.Sprintf("expected %s, got %s", upDown(*lc.Up), upDown(got.Up)))
	}
	if lc.Master != nil && *lc.Master != got.Master {
		diff = append(diff, fmt.Sprintf("expected master %s, got %s", orNone(*lc.Master), orNone(got.Master)))
	}
	if lc.MTU != 0 && lc.MTU != got.MTU {
		diff = append(diff, fmt.Sprintf("expected mtu %d, got %d", lc.MTU, got.MTU))
	}
	for _, want := range lc.Addresses {
		if !hasPrefix(got.Addrs, want) {
			diff = append(diff, "missing address "+want.String())
		}
	}
	return diff
}

func hasPrefix(ps []netip.Prefix, p netip.Prefix) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// describe is the one-line summary, in `ip -br addr` order:
// "veth_1 up (oper up) mtu 1500 master br0 10.0.0.2/24".
func (v linkView) describe() string {
	parts := []string{v.Name, upDown(v.Up), "(oper " + v.Oper + ")", "mtu " + strconv.Itoa(v.MTU)}
	if v.Master != "" {
		parts = append(parts, "master "+v.Master)
	}
	for _, a := range v.Addrs {
		parts = append(parts, a.String())
	}
	return strings.Join(parts, " ")
}

func (v linkView) details() []Detail {
	addrs := make([]string, len(v.Addrs))
	for i, a := range v.Addrs {
		addrs[i] = a.String()
	}
	return []Detail{
		{"exists", "true"},
		{"up", strconv.FormatBool(v.Up)},
		{"oper", v.Oper},
		{"master", v.Master},
		{"mtu", strconv.Itoa(v.MTU)},
		{"addresses", strings.Join(addrs, " ")},
	}
}

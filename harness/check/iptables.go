package check

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/coreos/go-iptables/iptables"

	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
)

// iptablesKind checks that a rule exists in a namespace's iptables (IPv4)
// and, when asked, that its packet counter matches a condition.
//
// Existence is asked of iptables itself (`iptables -C`), which compares the
// rule after its own parsing, so any spelling iptables accepts works. The
// counter comes from `iptables -v -S CHAIN`; the rule's line there is found
// by canonicalRule, and the counters of identical rules are added up.
//
// A packets condition presupposes the rule: when the rule is missing, the
// counter cannot be judged and the check fails whatever its expect, so
// that a typo in an `expect: fail` check ("this rule never matched") does
// not pass silently. Without a packets condition, a missing rule is simply
// the thing not happening.
type iptablesKind struct{}

func (iptablesKind) Run(ctx context.Context, env Env, c *scenario.Check) Result {
	ic := c.IPTables
	if ic == nil {
		return failed(errors.New("iptables check without iptables settings"))
	}
	if err := ctx.Err(); err != nil {
		return failed(err)
	}
	table := ic.Table
	if table == "" {
		table = "filter"
	}
	where := fmt.Sprintf("%s: %s/%s", ic.In, table, ic.Chain)
	spec, err := scenario.SplitArgs(ic.Rule)
	if err != nil {
		return failed(fmt.Errorf("%s: rule %q: %w", where, ic.Rule, err))
	}
	ns, err := nsOf(env, ic.In)
	if err != nil {
		return failed(err)
	}
	ipt, err := iptables.New()
	if err != nil {
		return failed(fmt.Errorf("%s: find iptables: %w", where, err))
	}
	var (
		exists bool
		lines  []string
	)
	// iptables is a child process; it inherits the namespace of the locked
	// thread that forks it, which is why both calls run inside Do.
	err = netns.Do(ns, func() error {
		var err error
		if exists, err = ipt.Exists(table, ic.Chain, spec...); err != nil {
			return fmt.Errorf("iptables -t %s -C %s %s: %w", table, ic.Chain, ic.Rule, err)
		}
		if !exists || ic.Packets == nil {
			return nil
		}
		if lines, err = ipt.ListWithCounters(table, ic.Chain); err != nil {
			return fmt.Errorf("iptables -t %s -v -S %s: %w", table, ic.Chain, err)
		}
		return nil
	})
	if err != nil {
		return failed(fmt.Errorf("%s: %w", ic.In, err))
	}
	details := []Detail{{"table", table}, {"chain", ic.Chain}, {"rule", ic.Rule}}
	if !exists {
		r := Result{
			Summary: fmt.Sprintf("rule not in %s/%s", table, ic.Chain),
			Error:   fmt.Sprintf("%s has no rule %q", where, ic.Rule),
			Details: append(details, Detail{"exists", "false"}),
		}
		if ic.Packets != nil {
			r.Err = fmt.Errorf("%s has no rule %q, so its packet counter (%s) cannot be checked", where, ic.Rule, ic.Packets)
		}
		return r
	}
	details = append(details, Detail{"exists", "true"})
	if ic.Packets == nil {
		return Result{
			Passed:  true,
			Reached: true,
			Summary: fmt.Sprintf("rule present in %s/%s", table, ic.Chain),
			Details: details,
		}
	}
	pkts, bytes, found, err := ruleCounters(lines, ic.Chain, spec)
	if err != nil {
		return failed(fmt.Errorf("%s: %w", where, err))
	}
	if !found {
		return failed(fmt.Errorf("%s: iptables -C finds rule %q, but no line of `iptables -v -S %s` matches it, so its counter is unknown; write the rule as `iptables -S` prints it",
			where, ic.Rule, ic.Chain))
	}
	details = append(details,
		Detail{"packets", strconv.FormatUint(pkts, 10)},
		Detail{"bytes", strconv.FormatUint(bytes, 10)})
	r := Result{
		Summary: fmt.Sprintf("rule present in %s/%s, %d packets", table, ic.Chain, pkts),
		Details: details,
	}
	if !ic.Packets.Match(pkts) {
		r.Error = fmt.Sprintf("%s: rule %q: expected packets %s, got %d", where, ic.Rule, ic.Packets, pkts)
		return r
	}
	r.Passed, r.Reached = true, true
	return r
}

// ruleCounters finds the lines of `iptables -v -S chain` output that are
// the rule spec and returns their added counters. found is false when no
// line matches.
func ruleCounters(lines []string, chain string, spec []string) (pkts, bytes uint64, found bool, err error) {
	want := canonicalRule(spec)
	for _, line := range lines {
		r, ok, err := parseListedRule(line, chain)
		if err != nil {
			return 0, 0, false, err
		}
		if !ok || !slices.Equal(canonicalRule(r.Spec), want) {
			continue
		}
		if !r.HasCounters {
			return 0, 0, false, fmt.Errorf("iptables printed %q without counters", line)
		}
		pkts += r.Packets
		bytes += r.Bytes
		found = true
	}
	return pkts, bytes, found, nil
}

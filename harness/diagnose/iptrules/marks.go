package iptrules

import (
	"slices"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
)

// The packet mark: -m mark reads it, MARK (and CONNMARK --restore-mark)
// change it.

// markMatch matches -m mark --mark VALUE[/MASK] against the packet's mark.
// An unknown mark may match.
func markMatch(mark *netfilter.Mark, val string) netfilter.Match {
	v, m, ok := markValue(val)
	if mark == nil || !mark.Known || !ok {
		return netfilter.MayMatch
	}
	return boolMatch(mark.Value&m == v)
}

// markValue parses VALUE[/MASK] (hex or decimal); the mask defaults to
// all bits.
func markValue(val string) (v, mask uint32, ok bool) {
	vs, ms, hasMask := strings.Cut(val, "/")
	a, err := strconv.ParseUint(vs, 0, 32)
	if err != nil {
		return 0, 0, false
	}
	mask = 0xffffffff
	if hasMask {
		b, err := strconv.ParseUint(ms, 0, 32)
		if err != nil {
			return 0, 0, false
		}
		mask = uint32(b)
	}
	return uint32(a), mask, true
}

// setMark applies a MARK target's options to mark: --set-xmark V/M
// (iptables-save writes every form so) clears M and xors V; --set-mark,
// --and-mark, --or-mark and --xor-mark as iptables-extensions(8) says.
// An unknown mark stays unknown unless every bit is set.
func setMark(mark *netfilter.Mark, opts map[string]string) {
	if mark == nil {
		return
	}
	for opt, val := range opts {
		switch opt {
		case "--set-xmark", "--set-mark", "--and-mark", "--or-mark", "--xor-mark":
		default:
			continue
		}
		v, m, ok := markValue(val)
		if !ok {
			mark.Forget()
			continue
		}
		switch opt {
		case "--set-xmark":
			mark.Value = mark.Value&^m ^ v
		case "--set-mark":
			mark.Value = mark.Value&^m | v
		case "--and-mark":
			mark.Value &= v
		case "--or-mark":
			mark.Value |= v
		case "--xor-mark":
			mark.Value ^= v
		}
		if (opt == "--set-xmark" || opt == "--set-mark") && m == 0xffffffff {
			mark.Known = true
		}
	}
}

// chainSetsMark reports whether chain of t, or a chain it jumps to, has
// a rule that changes the packet mark: MARK, or CONNMARK --restore-mark.
func chainSetsMark(t *Table, chain string, depth int) bool {
	c := t.Chain(chain)
	if c == nil || depth > netfilter.MaxChainDepth {
		return false
	}
	for _, r := range c.Rules {
		if pr := Parse(r.Spec); ruleSetsMark(t, pr, depth) {
			return true
		}
	}
	return false
}

// ruleSetsMark reports whether rule pr of t may change the packet mark,
// itself or in the chain it jumps to.
func ruleSetsMark(t *Table, pr Parsed, depth int) bool {
	switch pr.Target {
	case "MARK":
		return true
	case "CONNMARK":
		_, ok := pr.Opts["--restore-mark"]
		return ok
	}
	return chainSetsMark(t, pr.Target, depth+1)
}

// SetsMarks reports whether a rule of ts may set a packet mark (MARK,
// --set-mark, --set-xmark): an evaluation that does not follow the mark
// through every hook cannot then take the mark as 0.
func SetsMarks(ts []Table) bool {
	return anySpec(ts, func(spec string) bool {
		return strings.Contains(spec, "MARK") || strings.Contains(spec, "--set-mark") || strings.Contains(spec, "--set-xmark")
	})
}

// anySpec reports whether a rule of ts has a spec for which f holds.
func anySpec(ts []Table, f func(spec string) bool) bool {
	for _, t := range ts {
		for _, c := range t.Chains {
			if slices.ContainsFunc(c.Rules, func(r Rule) bool { return f(r.Spec) }) {
				return true
			}
		}
	}
	return false
}

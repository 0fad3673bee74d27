package runner

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/trace"
)

// traceAssertions checks a probe check's trace assertions (path, snat,
// dnat) against the trace of its own packets, and returns one sentence per
// assertion that does not hold.
func traceAssertions(c *scenario.Check, tr *trace.Trace) []string {
	if len(c.Path) == 0 && !c.SNAT.IsValid() && !c.DNAT.IsValid() {
		return nil
	}
	var out []string
	if len(c.Path) > 0 {
		want := make([]string, len(c.Path))
		for i, ep := range c.Path {
			want[i] = ep.String()
		}
		if ok, missing := tr.PathContains(want); !ok {
			out = append(out, fmt.Sprintf("path: the request did not cross %s in the order %s (it crossed %s)",
				missing, strings.Join(want, " -> "), hopList(tr.Request)))
		}
	}
	if c.SNAT.IsValid() && !translated(tr, trace.SNAT, c.SNAT) {
		out = append(out, fmt.Sprintf("snat: no hop shows the source translated to %s (%s)", c.SNAT, translationList(tr)))
	}
	if c.DNAT.IsValid() && !translated(tr, trace.DNAT, c.DNAT) {
		out = append(out, fmt.Sprintf("dnat: no hop shows the destination translated to %s (%s)", c.DNAT, translationList(tr)))
	}
	return out
}

func translated(tr *trace.Trace, kind trace.NATKind, to netip.Addr) bool {
	for _, t := range tr.Translations {
		if t.Kind == kind && t.To.Addr() == to {
			return true
		}
	}
	return false
}

func translationList(tr *trace.Trace) string {
	if len(tr.Translations) == 0 {
		return "the trace shows no translation"
	}
	s := make([]string, len(tr.Translations))
	for i, t := range tr.Translations {
		s[i] = t.String()
	}
	return "seen: " + strings.Join(s, "; ")
}

func hopList(hops []trace.Hop) string {
	if len(hops) == 0 {
		return "no traced interface"
	}
	var s []string
	for _, h := range hops {
		ep := h.NS + "/" + h.If
		if len(s) == 0 || s[len(s)-1] != ep {
			s = append(s, ep)
		}
	}
	return strings.Join(s, " -> ")
}

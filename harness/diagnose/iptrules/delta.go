package iptrules

import "github.com/hopcheck/hopcheck/harness/diagnose/netfilter"

// Delta returns the counters of namespace ns that moved from the tables
// before to the tables after (of one family: v6 for ip6tables), in the
// order of after: built-in chains' policies and rules. Rules are matched
// by position and spec, so a rule set changed between the two yields
// nothing for the changed rules.
func Delta(ns string, v6 bool, before, after []Table) []netfilter.Moved {
	var out []netfilter.Moved
	for _, at := range after {
		bt := Find(before, at.Name)
		for _, ac := range at.Chains {
			bc := bt.Chain(ac.Name)
			if bc == nil {
				continue
			}
			if ac.Policy != "" && ac.Packets > bc.Packets {
				out = append(out, netfilter.Moved{NS: ns, IPv6: v6, Table: at.Name, Chain: ac.Name, Target: ac.Policy, Packets: ac.Packets - bc.Packets})
			}
			for i, ar := range ac.Rules {
				if i >= len(bc.Rules) || bc.Rules[i].Spec != ar.Spec || ar.Packets <= bc.Rules[i].Packets {
					continue
				}
				out = append(out, netfilter.Moved{NS: ns, IPv6: v6, Table: at.Name, Chain: ac.Name, Rule: i + 1, Spec: ar.Spec,
					Target: ar.Target(), Packets: ar.Packets - bc.Rules[i].Packets})
			}
		}
	}
	return out
}

package netfilter

import "fmt"

// Moved is a counter that moved between two snapshots: an iptables
// rule's, or (Rule 0) a built-in chain's policy; or an nft rule's.
type Moved struct {
	NS string `json:"ns"`
	// IPv6 is set for an ip6tables counter.
	IPv6 bool `json:"ipv6,omitempty"`
	// Family is the nft table's family for an nftables rule's counter,
	// "" for iptables; Handle is then the rule's handle.
	Family string `json:"family,omitempty"`
	Handle uint64 `json:"handle,omitempty"`
	Table  string `json:"table"`
	Chain  string `json:"chain"`
	// Rule is the rule's position in its chain, from 1; 0 for the policy.
	Rule int `json:"rule"`
	// Spec is the rule as iptables-save prints it; empty for the policy.
	Spec string `json:"spec,omitempty"`
	// Target is the rule's target, or the chain's policy.
	Target  string `json:"target"`
	Packets uint64 `json:"packets"`
}

// Drops reports whether the counter is of a rule or policy that drops.
func (m Moved) Drops() bool { return m.Target == "DROP" || m.Target == "REJECT" }

// String formats m as an evidence line: "host: filter/FORWARD policy DROP:
// 3 packets during the probe" or "host: filter/FORWARD rule 2 `-i br0 -j
// DROP`: 1 packet during the probe".
func (m Moved) String() string {
	packets := fmt.Sprintf("%d packets", m.Packets)
	if m.Packets == 1 {
		packets = "1 packet"
	}
	if m.Family != "" {
		return fmt.Sprintf("%s: nft %s %s/%s handle %d `%s`: %s during the probe", m.NS, m.Family, m.Table, m.Chain, m.Handle, m.Spec, packets)
	}
	what := "policy " + m.Target
	if m.Rule > 0 {
		what = fmt.Sprintf("rule %d `%s`", m.Rule, m.Spec)
	}
	table := m.Table
	if m.IPv6 {
		table = "ip6 " + table
	}
	return fmt.Sprintf("%s: %s/%s %s: %s during the probe", m.NS, table, m.Chain, what, packets)
}

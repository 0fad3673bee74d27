package netfilter

import (
	"fmt"
	"strings"
)

// MaxChainDepth bounds jumps between chains (iptables and nft refuse
// loops; a malformed snapshot must not recurse for ever).
const MaxChainDepth = 16

// Match is whether a rule matches a packet, as far as the rule can be
// read.
type Match int

const (
	// NoMatch: the rule does not match the packet.
	NoMatch Match = iota
	// Matches: the rule matches the packet.
	Matches
	// MayMatch: the rule uses a match the evaluator does not model, and
	// the rest of it does not exclude the packet.
	MayMatch
)

// Verdict is what a chain (or a hook's tables) decided for a packet. An
// nft chain's decision is written in iptables' words (DROP, DNAT with
// --to-destination), so that the walk explains both alike.
type Verdict struct {
	// Target is ACCEPT, DROP, REJECT, QUEUE, or for nat a translation
	// target (DNAT, SNAT, MASQUERADE, REDIRECT); "" when a user chain fell
	// through.
	Target string
	Table  string
	Chain  string
	// IPv6 is set for an ip6tables table.
	IPv6 bool
	// Rule is the deciding rule's position from 1, 0 for the policy.
	Rule int
	Spec string
	// Opts are the target's options, as iptables writes them
	// (--to-destination 10.0.0.2:80).
	Opts map[string]string
	// Moved is the deciding counter's movement during the probe, when it
	// moved.
	Moved *Moved
	// Maybe lists rules that may have matched before the decision, which
	// makes the decision uncertain.
	Maybe []string
	// NFT locates the decision in a native nftables chain; nil for
	// iptables.
	NFT *NFTPlace
}

// Drops reports whether v drops the packet.
func (v Verdict) Drops() bool { return v.Target == "DROP" || v.Target == "REJECT" }

// Describe names the decision: "the DROP policy of filter/FORWARD",
// "rule 2 of filter/FORWARD `-i br0 -j DROP`", or an NFTPlace.
func (v Verdict) Describe() string {
	if v.NFT != nil {
		return v.NFT.String()
	}
	table := v.Table
	if v.IPv6 {
		table = "ip6 " + table
	}
	if v.Rule == 0 {
		return fmt.Sprintf("the %s policy of %s/%s", v.Target, table, v.Chain)
	}
	return fmt.Sprintf("rule %d of %s/%s `%s`", v.Rule, table, v.Chain, v.Spec)
}

// NFTPlace locates an nft rule (or, Handle 0, a base chain's policy).
type NFTPlace struct {
	Family, Table, Chain string
	Handle               uint64
	Text                 string
	// Shadowed is set for a dropping rule whose deletion would not let
	// the packet through: a later rule of the same base chain's walk
	// drops it too (firewalld rejects each zone pair's leftovers and
	// then everything's), so the fix is an accept inserted before it.
	Shadowed bool
}

// String names the place as evidence: "nft: table inet filter chain
// forward handle 7: ip daddr 10.88.0.0/16 drop", or for a policy "nft:
// the drop policy of table inet filter chain forward".
func (p NFTPlace) String() string {
	if p.Handle == 0 {
		return fmt.Sprintf("nft: the %s policy of table %s %s chain %s", strings.ToLower(p.Text), p.Family, p.Table, p.Chain)
	}
	return fmt.Sprintf("nft: table %s %s chain %s handle %d: %s", p.Family, p.Table, p.Chain, p.Handle, p.Text)
}

package diagnose

import (
	"fmt"
	"strings"

	"github.com/google/nftables/expr"
)

// The nftables part of a snapshot: every table of a namespace, read
// through netlink (nftread.go), as plain data the evaluator (nfteval.go)
// walks.

// NFTTable is one nftables table with its chains and sets.
type NFTTable struct {
	// Family is "ip", "ip6", "inet", "arp", "bridge" or "netdev".
	Family string `json:"family"`
	Name   string `json:"name"`
	// IPTablesNFT is set for a table iptables-nft made (an iptables table
	// name in family ip or ip6 whose base chains carry iptables' names, or
	// whose rules use xtables compat expressions): iptables-save already
	// shows it, so it is evaluated from there and not twice.
	IPTablesNFT bool       `json:"iptables_nft,omitempty"`
	Chains      []NFTChain `json:"chains,omitempty"`
	Sets        []NFTSet   `json:"sets,omitempty"`
}

// NFTChain is one chain. A base chain has a Hook; a regular chain, which
// only jumps and gotos reach, has none.
type NFTChain struct {
	Name string `json:"name"`
	// Hook is "prerouting", "input", "forward", "output", "postrouting"
	// ("ingress", "egress" for netdev); "" for a regular chain.
	Hook     string `json:"hook,omitempty"`
	Priority int32  `json:"priority,omitempty"`
	// Type is "filter", "nat" or "route".
	Type string `json:"type,omitempty"`
	// Policy is "accept" or "drop" for a base chain.
	Policy string    `json:"policy,omitempty"`
	Rules  []NFTRule `json:"rules,omitempty"`
}

// NFTRule is one rule: its expressions as the kernel holds them, and as
// text for evidence.
type NFTRule struct {
	Handle uint64 `json:"handle"`
	// Text is the rule in nft syntax, as far as render can write it.
	Text string `json:"text"`
	// Counter is set when the rule has a counter; Packets and Bytes are
	// its values.
	Counter bool       `json:"counter,omitempty"`
	Packets uint64     `json:"packets,omitempty"`
	Bytes   uint64     `json:"bytes,omitempty"`
	Exprs   []expr.Any `json:"-"`
}

// NFTSet is a named or anonymous set, map or verdict map.
type NFTSet struct {
	Name      string `json:"name"`
	ID        uint32 `json:"id,omitempty"`
	Anonymous bool   `json:"anonymous,omitempty"`
	Interval  bool   `json:"interval,omitempty"`
	// IsMap is set for a map or verdict map.
	IsMap         bool      `json:"map,omitempty"`
	Concatenation bool      `json:"concat,omitempty"`
	Elems         []NFTElem `json:"elems,omitempty"`
}

// NFTElem is one element. In an interval set an element opens an interval
// that the next element with IntervalEnd closes (exclusive); a
// concatenated interval holds its inclusive end in KeyEnd.
type NFTElem struct {
	Key         []byte        `json:"key"`
	KeyEnd      []byte        `json:"key_end,omitempty"`
	IntervalEnd bool          `json:"interval_end,omitempty"`
	Val         []byte        `json:"val,omitempty"`
	Verdict     *expr.Verdict `json:"verdict,omitempty"`
}

// Chain returns the chain called name, or nil.
func (t *NFTTable) Chain(name string) *NFTChain {
	if t == nil {
		return nil
	}
	for i := range t.Chains {
		if t.Chains[i].Name == name {
			return &t.Chains[i]
		}
	}
	return nil
}

// Set returns the set called name (or, for an anonymous set the rule
// names by id, with that id), or nil.
func (t *NFTTable) Set(name string, id uint32) *NFTSet {
	for i := range t.Sets {
		if s := &t.Sets[i]; s.Name == name && name != "" {
			return s
		}
	}
	for i := range t.Sets {
		if s := &t.Sets[i]; name == "" && s.ID == id {
			return s
		}
	}
	return nil
}

// forFamily reports whether the table's chains see packets of the IP
// family: ip for IPv4, ip6 for IPv6, inet for both.
func (t *NFTTable) forFamily(v6 bool) bool {
	switch t.Family {
	case "inet":
		return true
	case "ip":
		return !v6
	case "ip6":
		return v6
	}
	return false
}

// nftPlace locates an nft rule (or, Handle 0, a base chain's policy).
type nftPlace struct {
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
func (p nftPlace) String() string {
	if p.Handle == 0 {
		return fmt.Sprintf("nft: the %s policy of table %s %s chain %s", strings.ToLower(p.Text), p.Family, p.Table, p.Chain)
	}
	return fmt.Sprintf("nft: table %s %s chain %s handle %d: %s", p.Family, p.Table, p.Chain, p.Handle, p.Text)
}

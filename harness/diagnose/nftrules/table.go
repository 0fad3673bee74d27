package nftrules

import "github.com/google/nftables/expr"

// A namespace's nftables ruleset: every table, read through netlink
// (read.go), as plain data the evaluator (eval.go) walks.

// Table is one nftables table with its chains and sets.
type Table struct {
	// Family is "ip", "ip6", "inet", "arp", "bridge" or "netdev".
	Family string `json:"family"`
	Name   string `json:"name"`
	// IPTablesNFT is set for a table iptables-nft made (an iptables table
	// name in family ip or ip6 whose base chains carry iptables' names, or
	// whose rules use xtables compat expressions): iptables-save already
	// shows it, so it is evaluated from there and not twice.
	IPTablesNFT bool    `json:"iptables_nft,omitempty"`
	Chains      []Chain `json:"chains,omitempty"`
	Sets        []Set   `json:"sets,omitempty"`
}

// Chain is one chain. A base chain has a Hook; a regular chain, which
// only jumps and gotos reach, has none.
type Chain struct {
	Name string `json:"name"`
	// Hook is "prerouting", "input", "forward", "output", "postrouting"
	// ("ingress", "egress" for netdev); "" for a regular chain.
	Hook     string `json:"hook,omitempty"`
	Priority int32  `json:"priority,omitempty"`
	// Type is "filter", "nat" or "route".
	Type string `json:"type,omitempty"`
	// Policy is "accept" or "drop" for a base chain.
	Policy string `json:"policy,omitempty"`
	Rules  []Rule `json:"rules,omitempty"`
}

// Rule is one rule: its expressions as the kernel holds them, and as
// text for evidence.
type Rule struct {
	Handle uint64 `json:"handle"`
	// Text is the rule in nft syntax, as far as the rendering can write
	// it (render.go).
	Text string `json:"text"`
	// Counter is set when the rule has a counter; Packets and Bytes are
	// its values.
	Counter bool       `json:"counter,omitempty"`
	Packets uint64     `json:"packets,omitempty"`
	Bytes   uint64     `json:"bytes,omitempty"`
	Exprs   []expr.Any `json:"-"`
}

// Set is a named or anonymous set, map or verdict map.
type Set struct {
	Name      string `json:"name"`
	ID        uint32 `json:"id,omitempty"`
	Anonymous bool   `json:"anonymous,omitempty"`
	Interval  bool   `json:"interval,omitempty"`
	// IsMap is set for a map or verdict map.
	IsMap         bool   `json:"map,omitempty"`
	Concatenation bool   `json:"concat,omitempty"`
	Elems         []Elem `json:"elems,omitempty"`
}

// Elem is one element. In an interval set an element opens an interval
// that the next element with IntervalEnd closes (exclusive); a
// concatenated interval holds its inclusive end in KeyEnd.
type Elem struct {
	Key         []byte        `json:"key"`
	KeyEnd      []byte        `json:"key_end,omitempty"`
	IntervalEnd bool          `json:"interval_end,omitempty"`
	Val         []byte        `json:"val,omitempty"`
	Verdict     *expr.Verdict `json:"verdict,omitempty"`
}

// chain returns the chain called name, or nil.
func (t *Table) chain(name string) *Chain {
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

// set returns the set called name (or, for an anonymous set the rule
// names by id, with that id), or nil.
func (t *Table) set(name string, id uint32) *Set {
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

// Sees reports whether the table's chains see packets of the IP family
// v6 gives: ip IPv4, ip6 IPv6, inet both.
func (t *Table) Sees(v6 bool) bool {
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

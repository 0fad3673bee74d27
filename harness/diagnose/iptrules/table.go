package iptrules

import (
	"slices"
	"strings"
)

// Table is one iptables table.
type Table struct {
	Name   string  `json:"name"`
	Chains []Chain `json:"chains"`
}

// Chain is one chain with its rules, in order.
type Chain struct {
	Name string `json:"name"`
	// Policy is ACCEPT or DROP for a built-in chain, "" for a user chain.
	// Packets and Bytes are the policy's counters.
	Policy  string `json:"policy,omitempty"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	Rules   []Rule `json:"rules,omitempty"`
}

// Rule is one rule, as `iptables-save` prints it after "-A CHAIN".
type Rule struct {
	Spec    string `json:"spec"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// Target returns the rule's -j (or -g) target, or "" when it has none.
func (r Rule) Target() string {
	w := strings.Fields(r.Spec)
	for i := 0; i+1 < len(w); i++ {
		if w[i] == "-j" || w[i] == "--jump" || w[i] == "-g" || w[i] == "--goto" {
			return w[i+1]
		}
	}
	return ""
}

// Chain returns the chain called name, or nil.
func (t *Table) Chain(name string) *Chain {
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

// Find returns the table of ts called name, or nil.
func Find(ts []Table, name string) *Table {
	for i := range ts {
		if ts[i].Name == name {
			return &ts[i]
		}
	}
	return nil
}

// filterTables are the tables that can drop a packet, in the order of
// their hook priorities (raw -300, mangle -150, filter 0, security 50).
var filterTables = [...]string{"raw", "mangle", "filter", "security"}

// hookChains says which built-in chains exist in which table.
var hookChains = map[string][]string{
	"raw":      {"PREROUTING", "OUTPUT"},
	"mangle":   {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"filter":   {"INPUT", "FORWARD", "OUTPUT"},
	"security": {"INPUT", "FORWARD", "OUTPUT"},
}

// AtHook returns the tables of ts that iptables registers at hook
// (PREROUTING, INPUT, FORWARD, OUTPUT, POSTROUTING): with nat the nat
// table, else the filtering tables (raw, mangle, filter, security) that
// have a built-in chain there, in the order of their priorities.
func AtHook(ts []Table, hook string, nat bool) []*Table {
	var out []*Table
	names := filterTables[:]
	if nat {
		names = []string{"nat"}
	}
	for _, tn := range names {
		t := Find(ts, tn)
		if t == nil || !nat && !slices.Contains(hookChains[tn], hook) {
			continue
		}
		out = append(out, t)
	}
	return out
}

// Priority is the hook priority of iptables table at hook (nat's depends
// on the hook: dstnat -100 at PREROUTING and OUTPUT, srcnat 100
// elsewhere), to order it among nft's base chains.
func Priority(table, hook string) int32 {
	switch table {
	case "raw":
		return -300
	case "mangle":
		return -150
	case "security":
		return 50
	case "nat":
		if hook == "PREROUTING" || hook == "OUTPUT" {
			return -100
		}
		return 100
	}
	return 0
}

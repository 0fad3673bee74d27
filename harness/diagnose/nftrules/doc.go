// Package nftrules reads a namespace's nftables ruleset and says what it
// does to a packet.
//
// Read lists every table, chain (hook, priority, type, policy), rule (its
// expressions, with counters) and set or map (with elements) through
// netlink with github.com/google/nftables, in the namespace's own socket,
// and marks the tables iptables-nft made, which iptables-save already
// shows. Each rule is also written back in nft syntax (Rule.Text) for
// evidence.
//
// Table.Eval runs a packet through a base chain on a model of the
// kernel's registers over the packet's headers as bytes: meta, payload,
// cmp, bitwise, range, set, map and verdict-map lookups (intervals,
// concatenations), ct state and status, fib ... type, immediate, jump,
// goto, return, and the nat, masquerade, redirect, reject and queue
// statements. Its verdict is written as iptables writes its own
// (netfilter.Verdict), so the diagnosis explains and fixes both alike. A
// comparison on a value the evaluation does not know, or an expression
// it does not model, makes the rule a "may match" in the verdict's notes,
// never a silent match or miss. Which base chains run at a hook, and in
// which order among iptables' tables, is the caller's.
package nftrules

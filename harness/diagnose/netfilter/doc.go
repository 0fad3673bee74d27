// Package netfilter holds what the rule evaluators (iptrules for iptables,
// nftrules for nftables) and the diagnosis that orders them share about
// one netfilter hook: the packet as the hook sees it (Packet, with its
// Mark), whether a rule matches it (Match), what a chain decides for it
// (Verdict, located in an nft chain by NFTPlace), the counters that moved
// during a probe (Moved), and what matching asks of the namespace the
// hook is in (Namespace).
//
// It is plain data and holds no evaluation of its own, so that both
// evaluators can speak of one packet and one verdict without importing
// each other or the diagnosis.
package netfilter

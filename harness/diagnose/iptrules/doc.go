// Package iptrules reads iptables rules as iptables-save prints them and
// says what they do to a packet: whether a rule matches it, and what a
// table's chain decides for it, jumps, marks and counters included.
//
// It is pure: ParseSave turns iptables-save's output into Tables (the
// diagnosis runs the command inside the namespace), and Eval walks a
// built-in chain for a netfilter.Packet as the kernel would, as far as
// the rules' options are modelled. An option it does not model makes a
// rule a netfilter.MayMatch, never a silent match or miss. Which tables a
// hook runs, and in which order among nft's chains, is the caller's:
// AtHook and Priority say what iptables registers there.
package iptrules

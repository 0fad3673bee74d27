// Package snapshot holds the networking state of a set of network
// namespaces as plain data, reads it from the kernel, and answers the
// route lookups the kernel would make on it.
//
// Take (and TakeCounters, its netfilter part alone) is the kernel-facing
// layer: links with their veth peers, vxlan settings and bridge FDB,
// addresses, routes of every table and policy rules of both families
// (netlink), neighbors, listening sockets (sock_diag), the sysctls a
// diagnosis reads (/proc/sys, inside the namespace), iptables and
// ip6tables with counters (`iptables-save -c`, started inside the
// namespace) and nftables (nftrules.Read). A veth whose peer lives in a
// namespace outside the set is named as a user would name that
// namespace: an `ip netns` name, or /proc/PID/ns/net. Named is a set of
// namespaces the caller opened itself; Follow takes in one more.
//
// A State is plain data, built by hand in tests and shown in JSON. Its
// queries are pure: Lookup follows a namespace's policy rules and tables
// as fib_rules_lookup does, RouteGet is `ip route get`, SourceFor picks
// a source address as the kernel does, Delta says which netfilter
// counters moved between two snapshots.
package snapshot

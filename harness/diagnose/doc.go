// Package diagnose says why a probe failed: one cause code, the ns/if where
// it happened, a sentence, the evidence it rests on and a command that
// would fix it.
//
// It is a pure core with a thin shell. Package snapshot (the shell) reads
// the state of a topology's namespaces into a snapshot.State: links,
// routes, neighbors, sysctls, iptables and nftables with counters and
// listening sockets. Diagnose (the core) walks the probe's packet through
// that State as the kernel would, namespace by namespace: route lookup,
// netfilter hooks with the counters that moved during the probe, NAT,
// reverse-path filtering, forwarding, link and bridge state, neighbor
// resolution, listeners, and then the reply's way back. The probe's
// trace, when there is one, confirms and locates what the walk finds: the
// last hop seen and the kernel's drop reason. Diagnose never touches the
// kernel, so every rule is unit tested with hand-built States and Traces;
// Explain takes the snapshot and diagnoses it, following the path into
// namespaces it leaves into.
//
// What one netfilter rule does to a packet is said by the iptrules
// (iptables) and nftrules (nftables) packages, in the words of package
// netfilter; the walk orders their chains at each hook, carries the
// packet's mark between them, and explains and fixes what they drop.
//
// Names in a diagnosis are the scenario's (ns1/veth_1), never the kernel's
// run-specific namespace names. A suggested fix is a command to run inside
// a namespace, written as "COMMAND  # in NS".
package diagnose

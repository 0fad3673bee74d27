// Package check runs the checks of a scenario (ping, tcp, udp, arp, route,
// link, iptables, sysctl) against a built topology and says, for each, what
// was observed and whether that is what the scenario expects.
//
// Each kind is one type behind the small Kind interface, listed in one
// table; adding a kind is adding a file and a line in that table. Run looks
// the kind up, times it, and applies the check's `expect`: a check with
// `expect: fail` passes when the thing it describes does not happen.
//
// Kernel state is read through netlink handles opened inside the scenario's
// namespaces, iptables through coreos/go-iptables run on a thread inside the
// namespace (internal/netns.Do), and sysctls from /proc/sys on such a
// thread. Probes (ping, tcp, udp) are sent by harness/probe; each probe
// check gets a fresh random trace.Tag so the tracer can find its packets.
//
// What a check compares (rule normalisation, neighbor states, expect
// inversion, the figures in a Result's details) is pure code, tested
// without root; the kernel-facing part is thin and covered by privileged
// tests against real namespaces.
package check

// Package plan turns a validated scenario into the ordered list of steps
// that builds it: namespaces, links, addresses, routes, sysctls, neighbors
// and iptables commands, each in an order the kernel accepts.
//
// Planning is pure: it reads a *scenario.Scenario and returns plain data,
// touching no kernel state, so the ordering rules are unit tested without
// root. The builder (package harness/build) executes the steps through
// netlink; (*Plan).Script renders the same steps as the shell recipe of
// ip/iptables/sysctl commands that the container networking tutorials use,
// for `hopcheck plan`, for debugging, and as the baseline of the benchmark.
package plan

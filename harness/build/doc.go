// Package build makes a scenario's topology in real network namespaces and
// tears it down again, leaving nothing behind.
//
// Up executes the steps of package plan: namespaces are created under
// run-specific names (netns.Name), links, addresses, routes and neighbors
// are made through netlink handles bound to each namespace, sysctls are
// written to /proc/sys from a thread inside the namespace, and iptables
// commands run through coreos/go-iptables on such a thread. Everything made
// is recorded as it is made; a failed build removes what it made and
// reports a *StepError naming the scenario line and object. The caller's
// own (root) namespace is never changed.
//
// Each interface kind is one small type behind the linkKind interface,
// registered in one table (kinds.go); adding a kind is adding a file.
package build

package plan

import (
	"fmt"
	"strings"
)

// SysctlPath returns the file under /proc/sys that holds the dotted sysctl
// key, following sysctl(8): a "/" inside a component stands for a "." in
// that component, so an interface name with a dot can be written
// (net.ipv4.conf.eth0/100.rp_filter is /proc/sys/net/ipv4/conf/eth0.100/rp_filter).
//
// Only keys of the net.* tree are accepted. They are the ones the kernel
// keeps per network namespace; any other key (kernel.*, vm.*) is global and
// writing it from inside a namespace would change the host. A component
// that would walk out of the tree ("..") is rejected for the same reason.
func SysctlPath(key string) (string, error) {
	parts := strings.Split(key, ".")
	if len(parts) < 2 || parts[0] != "net" {
		return "", fmt.Errorf("sysctl %q is not in the per-namespace net.* tree", key)
	}
	for i, p := range parts {
		p = strings.ReplaceAll(p, "/", ".")
		if p == "" || p == "." || p == ".." || strings.ContainsRune(p, 0) {
			return "", fmt.Errorf("sysctl %q has an empty or invalid component", key)
		}
		parts[i] = p
	}
	return "/proc/sys/" + strings.Join(parts, "/"), nil
}

// sysctlInterface reports the interface a sysctl key is scoped to
// (net.ipv4.conf.eth0.rp_filter is scoped to eth0), and false for keys that
// apply to the whole namespace, including the "all" and "default"
// pseudo-interfaces, which are set before any interface exists so that
// interfaces created afterwards inherit them.
func sysctlInterface(key string) (string, bool) {
	parts := strings.Split(key, ".")
	if len(parts) < 5 || parts[0] != "net" {
		return "", false
	}
	switch parts[1] + "." + parts[2] {
	case "ipv4.conf", "ipv6.conf", "ipv4.neigh", "ipv6.neigh", "mpls.conf":
	default:
		return "", false
	}
	switch parts[3] {
	case "all", "default":
		return "", false
	}
	return strings.ReplaceAll(parts[3], "/", "."), true
}

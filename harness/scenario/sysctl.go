package scenario

import (
	"fmt"
	"strings"
)

// checkSysctlKey returns why key is not a sysctl hopcheck may set, or "".
// Only the net.* tree is per network namespace; anything else would change
// the machine. Keys are dotted; a '/' stands for a '.' inside one component
// (net.ipv4.conf.eth0/100.rp_filter), as with sysctl(8).
func checkSysctlKey(key string) string {
	if !strings.HasPrefix(key, "net.") {
		return fmt.Sprintf("sysctl %q is outside net.*; hopcheck sets sysctls inside network namespaces, where only net.* is per namespace", key)
	}
	for _, part := range strings.Split(key, ".") {
		ok := part != "" && allOf(part, func(c byte) bool {
			return isLowerAlnum(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '-' || c == '/'
		})
		// A component of only slashes would become "." or ".." in the
		// /proc/sys path.
		if !ok || strings.Trim(part, "/") == "" {
			return fmt.Sprintf("sysctl %q is not a dotted key like net.ipv4.ip_forward", key)
		}
	}
	return ""
}

// sysctlInterface returns the interface that a per-interface sysctl key
// names (net.ipv4.conf.IF.*, net.ipv6.neigh.IF.* ...), or "" when the key is
// not per interface or names all or default.
func sysctlInterface(key string) string {
	parts := strings.Split(key, ".")
	if len(parts) < 5 || (parts[1] != "ipv4" && parts[1] != "ipv6") || (parts[2] != "conf" && parts[2] != "neigh") {
		return ""
	}
	if name := strings.ReplaceAll(parts[3], "/", "."); name != "all" && name != "default" {
		return name
	}
	return ""
}

// checkSysctls checks that per-interface sysctls name interfaces of the
// namespace: the builder sets them once the interface exists.
func (p *parser) checkSysctls(ns *nsSource) {
	for i, s := range ns.ns.Sysctls {
		name := sysctlInterface(s.Key)
		if name == "" || ns.ns.Interface(name) != nil {
			continue
		}
		p.errorf(ns.sysctlNodes[i], ns.field+".sysctls", "sysctl %s: no interface %q in namespace %s%s", s.Key, name, ns.ns.Name, didYouMean(name, ifNames(ns.ns)))
	}
}

// checkSysctlValue returns why v cannot be written to a sysctl, or "". The
// builder writes the value to /proc/sys as one line; a newline or another
// control character would end it early or write a second value, so only
// printable text, spaces and tabs are accepted.
func checkSysctlValue(key, v string) string {
	for _, c := range v {
		if c == '\t' {
			continue
		}
		if c < ' ' || c == 0x7f {
			return fmt.Sprintf("sysctl %s: the value %q holds a control character (%U); write it on one line, words separated by spaces", key, v, c)
		}
	}
	return ""
}

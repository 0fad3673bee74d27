package diagnose

import (
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/iptrules"
	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
	"github.com/hopcheck/hopcheck/internal/netns"
)

// A fix is written "COMMAND  # in NS" (fixIn): NS is a name of the
// diagnosis, which a user outside hopcheck's scenario cannot type. For
// namespaces hopcheck did not build (why --netns, --container, --node),
// RunnableFix turns it into a command line that works when typed.

// fixMarker separates a fix's command from the namespace it runs in.
const fixMarker = "  # in "

// SplitFix splits a fix into its command and the namespace it runs in;
// ns is "" when the fix names none.
func SplitFix(fix string) (cmd, ns string) {
	if i := strings.LastIndex(fix, fixMarker); i >= 0 {
		return fix[:i], fix[i+len(fixMarker):]
	}
	return fix, ""
}

// RunnableFix rewrites fix to run in its namespace from a shell in the
// namespace hopcheck runs in. enter returns the argv prefix that runs a
// command in a namespace (NamedNS.Exec: "ip netns exec red", "nsenter
// --net=/proc/42/ns/net"; empty for hopcheck's own namespace), ok false
// when it does not know the namespace: then the fix is returned as it is.
// A fix of several commands joined by && runs in one shell (netns.Command).
func RunnableFix(fix string, enter func(ns string) ([]string, bool)) string {
	cmd, ns := SplitFix(fix)
	if ns == "" {
		return fix
	}
	prefix, ok := enter(ns)
	if !ok {
		return fix
	}
	return netns.Command(prefix, cmd)
}

// shellSafe reports whether a name taken from the kernel (an interface,
// a chain, an nft table) may stand in a printed command as it is: only
// letters, digits and "_.@+=-". Interface and chain names may hold almost
// anything, and a namespace's owner chooses them: `$(reboot)` is a valid
// interface name.
func shellSafe(name string) bool {
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_.@+=-", c)) {
			return false
		}
	}
	return true
}

// unsafeNameIn returns a name of the snapshot that is not shellSafe and
// that fix mentions, or "": a fix holding one is not printed, since typing
// it would let whoever named the interface run commands as root.
func unsafeNameIn(st *snapshot.State, fix string) string {
	if st == nil || fix == "" {
		return ""
	}
	check := func(name string) bool { return name != "" && !shellSafe(name) && strings.Contains(fix, name) }
	for _, n := range st.Namespaces {
		for _, l := range n.Links {
			if check(l.Name) {
				return l.Name
			}
		}
		for _, ts := range [][]iptrules.Table{n.IPTables, n.IP6Tables} {
			for _, t := range ts {
				for _, c := range t.Chains {
					if check(c.Name) {
						return c.Name
					}
				}
			}
		}
		for _, t := range n.NFT {
			if check(t.Name) {
				return t.Name
			}
			for _, c := range t.Chains {
				if check(c.Name) {
					return c.Name
				}
			}
		}
	}
	return ""
}

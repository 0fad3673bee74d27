package diagnose

import (
	"strings"

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

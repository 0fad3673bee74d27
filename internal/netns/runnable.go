package netns

import (
	"strconv"
	"strings"
)

// The runnable form of a namespace: the argv prefix a user types to run a
// command inside it, so that a fix hopcheck prints ("iptables ...  # in
// ns1") can be printed as a command that works as typed. These are pure
// and need no namespace.

// ExecPrefix returns the prefix that runs a command in the namespace that
// --netns names as s: "ip netns exec NAME" for a name from 'ip netns
// list', "nsenter --net=PATH" for a path (anything holding a '/').
func ExecPrefix(s string) []string {
	if strings.ContainsRune(s, '/') {
		return []string{"nsenter", "--net=" + s}
	}
	return []string{"ip", "netns", "exec", s}
}

// ExecPID returns the prefix that runs a command in the network namespace
// of process pid ("nsenter -t PID -n"), with the caller's own mount
// namespace, so the host's ip and iptables are the ones that run. It is
// only as lasting as the process: a restarted container has another PID.
func ExecPID(pid int) []string {
	return []string{"nsenter", "-t", strconv.Itoa(pid), "-n"}
}

// Command renders cmd, a shell command line, to run under prefix: prefix
// shell-quoted, then cmd as it is. A cmd that is more than one simple
// command (";", "&&", "|", redirections ...) runs under "sh -c" so that
// all of it runs in the namespace. An empty prefix (the namespace
// hopcheck runs in) returns cmd unchanged.
func Command(prefix []string, cmd string) string {
	if len(prefix) == 0 {
		return cmd
	}
	if strings.ContainsAny(cmd, ";&|<>()`$\n") {
		return ShellJoin(prefix) + " sh -c " + ShellQuote(cmd)
	}
	return ShellJoin(prefix) + " " + cmd
}

// ShellJoin quotes each word for sh where needed and joins them with
// spaces.
func ShellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = ShellQuote(a)
	}
	return strings.Join(q, " ")
}

// ShellQuote returns s as one sh word: unchanged when it holds only
// characters the shell never interprets, else single-quoted.
func ShellQuote(s string) string {
	if s == "" {
		return "''"
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("@%+=:,./_-", c)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

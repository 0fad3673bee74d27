package scenario

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits on names. Interface names are bounded by the kernel (IFNAMSIZ is 16
// bytes with the terminating NUL); namespace names by the same limit so that
// a namespace name can also serve as an interface name prefix; scenario
// names so that reports stay readable.
const (
	MaxScenarioName  = 32
	MaxNamespaceName = 15
	MaxIfName        = 15
)

// checkScenarioName returns why s is not a valid scenario name, or "".
func checkScenarioName(s string) string {
	switch {
	case s == "":
		return "the scenario name is empty"
	case len(s) > MaxScenarioName:
		return fmt.Sprintf("scenario name %q is %d characters; at most %d are allowed", s, len(s), MaxScenarioName)
	case !isLowerAlnum(s[0]) || !allOf(s, func(c byte) bool { return isLowerAlnum(c) || c == '-' }):
		return fmt.Sprintf("scenario name %q must match [a-z0-9][a-z0-9-]*", s)
	}
	return ""
}

// checkNamespaceName returns why s is not a valid namespace name, or "".
func checkNamespaceName(s string) string {
	switch {
	case s == "":
		return "the namespace name is empty"
	case len(s) > MaxNamespaceName:
		return fmt.Sprintf("namespace name %q is %d characters; at most %d are allowed", s, len(s), MaxNamespaceName)
	case !(s[0] >= 'a' && s[0] <= 'z') || !allOf(s, func(c byte) bool { return isLowerAlnum(c) || c == '-' || c == '_' }):
		return fmt.Sprintf("namespace name %q must match [a-z][a-z0-9-_]*", s)
	}
	return ""
}

// checkIfName returns why s is not a valid interface name, or "". The kernel
// accepts more than this (dev_valid_name refuses only '/', ':', whitespace,
// "." and ".."), but '%' would be expanded as a name template and anything
// outside letters, digits and "_.-" is asking for trouble in iptables rules
// and sysctl paths.
func checkIfName(s string) string {
	switch {
	case s == "":
		return "the interface name is empty"
	case len(s) > MaxIfName:
		return fmt.Sprintf("interface name %q is %d characters; Linux allows at most %d (IFNAMSIZ)", s, len(s), MaxIfName)
	case s == "." || s == "..":
		return fmt.Sprintf("interface name %q is not allowed", s)
	case !allOf(s, func(c byte) bool {
		return isLowerAlnum(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-'
	}):
		return fmt.Sprintf("interface name %q may hold only letters, digits, '_', '.' and '-'", s)
	}
	return ""
}

func isLowerAlnum(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') }

func allOf(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// parseEndpoint parses "ns/if".
func parseEndpoint(s string) (Endpoint, error) {
	ns, ifname, ok := strings.Cut(s, "/")
	if !ok || ns == "" || ifname == "" || strings.Contains(ifname, "/") {
		return Endpoint{}, fmt.Errorf("%q is not NS/IF (a namespace and an interface, like ns1/eth0)", s)
	}
	if msg := checkNamespaceName(ns); msg != "" {
		return Endpoint{}, fmt.Errorf("%s", msg)
	}
	if msg := checkIfName(ifname); msg != "" {
		return Endpoint{}, fmt.Errorf("%s", msg)
	}
	return Endpoint{NS: ns, If: ifname}, nil
}

// didYouMean suggests the candidate closest to s, as
// ` (did you mean "x"?)`, or returns "" when none is close enough to be a
// plausible typo.
func didYouMean(s string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 {
		return ""
	}
	// Allow about one edit per two characters of the longer word: "adress"
	// is three edits from "addresses", "nmae" two from "name".
	// A suggestion that shares no character position ("c" for "a") helps
	// nobody.
	longest := max(len(s), len(best))
	if bestD == 0 || (bestD <= max(1, longest/2) && bestD < longest) {
		return " (did you mean " + strconv.Quote(best) + "?)"
	}
	return ""
}

// editDistance is the Damerau-Levenshtein distance (optimal string
// alignment): insertions, deletions, substitutions and adjacent swaps each
// cost one, so "nmae" is one edit from "name".
func editDistance(a, b string) int {
	// Three rows suffice: the swap looks back two rows.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

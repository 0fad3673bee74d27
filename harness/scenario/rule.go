package scenario

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Rule is one policy routing rule in `ip rule add` syntax.
type Rule struct {
	// Raw is the rule as written.
	Raw string
	Pos Pos
	// V6 is set for an IPv6 rule: from or to is IPv6, or the rule starts
	// with -6. Other rules are IPv4, as `ip rule add` makes them.
	V6 bool
	// Not inverts the selector (`not`).
	Not bool
	// From and To are the source and destination prefixes; invalid for
	// all.
	From, To netip.Prefix
	// IIf and OIf are the input and output interfaces, or "". Locally
	// generated packets come in on lo.
	IIf, OIf string
	// HasMark is set when the rule matches a firewall mark: packets whose
	// mark ANDed with Mask is Mark.
	HasMark bool
	Mark    uint32
	Mask    uint32
	// Priority is the rule's preference, or -1 when the kernel numbers it
	// (one below the lowest priority above 0, as `ip rule add` does).
	Priority int64
	// Table is the table the rule looks up; 0 is main.
	Table int
}

// Table numbers with names in iproute2's rt_tables.
const (
	tableDefault = 253
	tableLocal   = 255
)

// tableNames are the table names every iproute2 knows.
var tableNames = map[string]int{"main": tableMain, "default": tableDefault, "local": tableLocal}

// parseTable parses a table as `ip route` and `ip rule` take it: main,
// default, local, or a number from 1 to 4294967295. Main is 0.
func parseTable(val string) (int, error) {
	n, ok := tableNames[val]
	if !ok {
		u, err := strconv.ParseUint(val, 10, 32)
		if err != nil || u == 0 {
			return 0, fmt.Errorf("table %q is not main, default, local or a number from 1 to %d", val, uint32(tableMax))
		}
		n = int(u)
	}
	if n == tableMain {
		return 0, nil
	}
	return n, nil
}

// ruleWords are the selectors and actions of a rule, with their synonyms.
var ruleWords = map[string]string{
	"from": "from", "to": "to", "iif": "iif", "dev": "iif", "oif": "oif",
	"fwmark": "fwmark", "priority": "priority", "pref": "priority",
	"preference": "priority", "prio": "priority", "order": "priority",
	"table": "table", "lookup": "table",
}

// ParseRule parses a policy routing rule in `ip rule add` syntax:
//
//	[-4|-6] [not] [from PREFIX|all] [to PREFIX|all] [iif IF] [oif IF]
//	        [fwmark MARK[/MASK]] [priority N] [table N|NAME]
//
// pref, preference, prio and order are priority; lookup is table; dev is
// iif. A bare address is a host prefix. Without table the rule looks up
// main, as with ip rule. The result's Pos is left for the caller to set.
func ParseRule(raw string) (Rule, error) {
	r := Rule{Raw: raw, Priority: -1}
	fail := func(format string, args ...any) (Rule, error) {
		return Rule{}, fmt.Errorf("rule %q: %s", raw, fmt.Sprintf(format, args...))
	}
	words := strings.Fields(raw)
	if len(words) == 0 {
		return fail("empty rule; write for example: from 10.1.0.0/24 table 100")
	}
	family := ""
	if words[0] == "-4" || words[0] == "-6" {
		family, words = words[0], words[1:]
	}
	if len(words) > 0 && words[0] == "not" {
		r.Not, words = true, words[1:]
	}
	seen := map[string]bool{}
	for i := 0; i < len(words); i += 2 {
		opt, ok := ruleWords[words[i]]
		if !ok {
			return fail("unknown word %q; a rule takes from PREFIX, to PREFIX, iif IF, oif IF, fwmark N[/M], priority N, table N", words[i])
		}
		if seen[opt] {
			return fail("%s is given twice", opt)
		}
		seen[opt] = true
		if i+1 >= len(words) {
			return fail("%s needs a value", words[i])
		}
		val := words[i+1]
		switch opt {
		case "from", "to":
			pfx, err := rulePrefix(val)
			if err != nil {
				return fail("%s %v", opt, err)
			}
			if opt == "from" {
				r.From = pfx
			} else {
				r.To = pfx
			}
		case "iif", "oif":
			if msg := checkIfName(val); msg != "" {
				return fail("%s", msg)
			}
			if opt == "iif" {
				r.IIf = val
			} else {
				r.OIf = val
			}
		case "fwmark":
			mark, mask, err := parseMark(val)
			if err != nil {
				return fail("%v", err)
			}
			r.HasMark, r.Mark, r.Mask = true, mark, mask
		case "priority":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return fail("priority %q is not a number from 0 to %d", val, uint32(tableMax))
			}
			r.Priority = int64(n)
		case "table":
			t, err := parseTable(val)
			if err != nil {
				return fail("%v", err)
			}
			r.Table = t
		}
	}
	fams := map[bool]bool{}
	for _, p := range []netip.Prefix{r.From, r.To} {
		if p.IsValid() {
			fams[p.Addr().Is6()] = true
		}
	}
	switch {
	case len(fams) == 2:
		return fail("from and to are of different IP families")
	case family == "-4" && fams[true], family == "-6" && fams[false]:
		return fail("%s does not match the family of its addresses", family)
	}
	r.V6 = family == "-6" || fams[true]
	return r, nil
}

// rulePrefix parses a rule's from or to: all, a prefix without host bits,
// or an address (a host prefix).
func rulePrefix(val string) (netip.Prefix, error) {
	if val == "all" {
		return netip.Prefix{}, nil
	}
	if strings.Contains(val, "/") {
		pfx, err := netip.ParsePrefix(val)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a prefix like 10.1.0.0/24 (or all)", val)
		}
		if pfx != pfx.Masked() {
			return netip.Prefix{}, fmt.Errorf("%s has host bits set (did you mean %s?)", pfx, pfx.Masked())
		}
		if pfx.Bits() == 0 {
			return netip.Prefix{}, nil
		}
		return pfx, nil
	}
	a, err := netip.ParseAddr(val)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is neither all, a prefix nor an address", val)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parseMark parses fwmark MARK[/MASK], each decimal or 0x hexadecimal. A
// mark without mask compares all bits, as the kernel does for a mark
// other than 0 (and fwmark 0 then matches unmarked packets only).
func parseMark(val string) (mark, mask uint32, err error) {
	m, k, hasMask := strings.Cut(val, "/")
	mark64, err := strconv.ParseUint(m, 0, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("fwmark %q is not a number (decimal or 0x hexadecimal), optionally /MASK", val)
	}
	mask64 := uint64(0xffffffff)
	if hasMask {
		if mask64, err = strconv.ParseUint(k, 0, 32); err != nil {
			return 0, 0, fmt.Errorf("fwmark %q: mask %q is not a number", val, k)
		}
	}
	return uint32(mark64), uint32(mask64), nil
}

// String formats r as `ip rule` would be told it, normalised: the family
// flag for IPv6, then the selectors, the priority and the table.
func (r Rule) String() string {
	var w []string
	if r.V6 {
		w = append(w, "-6")
	}
	if r.Not {
		w = append(w, "not")
	}
	if r.From.IsValid() {
		w = append(w, "from", r.From.String())
	}
	if r.To.IsValid() {
		w = append(w, "to", r.To.String())
	}
	if r.IIf != "" {
		w = append(w, "iif", r.IIf)
	}
	if r.OIf != "" {
		w = append(w, "oif", r.OIf)
	}
	if r.HasMark {
		w = append(w, "fwmark", fmt.Sprintf("0x%x/0x%x", r.Mark, r.Mask))
	}
	if r.Priority >= 0 {
		w = append(w, "priority", strconv.FormatInt(r.Priority, 10))
	}
	w = append(w, "table", TableName(r.Table))
	return strings.Join(w, " ")
}

// TableName names a table as ip does: main for 0 and 254, default, local,
// else the number.
func TableName(t int) string {
	switch t {
	case 0, tableMain:
		return "main"
	case tableDefault:
		return "default"
	case tableLocal:
		return "local"
	}
	return strconv.Itoa(t)
}

// checkRules refuses a rule the kernel would refuse as existing: the same
// rule, priority included, written twice. Interface names are not checked
// against the namespace: a rule naming the wrong interface is a realistic
// mistake (the kernel accepts it, and it never matches).
func (p *parser) checkRules(ns *nsSource) {
	added := map[string]Pos{}
	for i, r := range ns.ns.Rules {
		if r.Priority < 0 {
			continue // the kernel gives each its own priority
		}
		k := r.String()
		if first, dup := added[k]; dup {
			p.errorAt(r.Pos, ns.ruleFields[i], "rule %q: the same rule is already added at line %d", r.Raw, first.Line)
			continue
		}
		added[k] = r.Pos
	}
}

package scenario

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Tables are the iptables tables a scenario may use, in iptables' order.
var tables = []string{"filter", "nat", "mangle", "raw", "security"}

// builtinChains are the chains each table starts with.
var builtinChains = map[string][]string{
	"filter":   {"INPUT", "FORWARD", "OUTPUT"},
	"nat":      {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"mangle":   {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"raw":      {"PREROUTING", "OUTPUT"},
	"security": {"INPUT", "FORWARD", "OUTPUT"},
}

// standardTargets are the verdicts iptables knows without an extension.
var standardTargets = []string{"ACCEPT", "DROP", "RETURN", "QUEUE"}

// extensionTargets are the IPv4 targets of iptables-extensions(8).
var extensionTargets = []string{
	"AUDIT", "CHECKSUM", "CLASSIFY", "CLUSTERIP", "CONNMARK", "CONNSECMARK",
	"CT", "DNAT", "DSCP", "ECN", "HMARK", "IDLETIMER", "LED", "LOG", "MARK",
	"MASQUERADE", "NETMAP", "NFLOG", "NFQUEUE", "NOTRACK", "RATEEST",
	"REDIRECT", "REJECT", "SECMARK", "SET", "SNAT", "SYNPROXY", "TCPMSS",
	"TCPOPTSTRIP", "TEE", "TOS", "TPROXY", "TRACE", "TTL", "ULOG",
}

// natTargetChains are the built-in nat chains where each address-rewriting
// target works; the kernel refuses them elsewhere.
var natTargetChains = map[string][]string{
	"MASQUERADE": {"POSTROUTING", "INPUT"},
	"SNAT":       {"POSTROUTING", "INPUT"},
	"DNAT":       {"PREROUTING", "OUTPUT"},
	"REDIRECT":   {"PREROUTING", "OUTPUT"},
	"NETMAP":     {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
}

// freeTextOptions take a value that may look like an option ("-j" as a log
// prefix); the word after them is never read as an option.
var freeTextOptions = []string{"--comment", "--log-prefix", "--nflog-prefix"}

// maxChainName is the longest chain name iptables accepts
// (XT_EXTENSION_MAXNAMELEN - 1).
const maxChainName = 28

// ErrUnterminatedQuote is returned by SplitArgs for a quote that is never
// closed.
var ErrUnterminatedQuote = errors.New("unterminated quote")

// SplitArgs splits s into arguments the way a POSIX shell would, without
// any expansion: words are separated by blanks, '...' keeps its text as is,
// "..." keeps its text except that a backslash escapes $ ` " \ and newline,
// and a backslash outside quotes escapes the next character. So
// `-m comment --comment "a b"` gives four words, the last `a b`.
func SplitArgs(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			if i+1 >= len(s) {
				return nil, errors.New("a backslash ends the text; it has nothing to escape")
			}
			i++
			if s[i] != '\n' {
				cur.WriteByte(s[i])
			}
		case c == '\'':
			inWord = true
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("%w: ' at offset %d", ErrUnterminatedQuote, i)
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case c == '"':
			inWord = true
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) && strings.IndexByte("$`\"\\\n", s[j+1]) >= 0 {
					j++
					if s[j] != '\n' {
						cur.WriteByte(s[j])
					}
					continue
				}
				cur.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("%w: \" at offset %d", ErrUnterminatedQuote, i)
			}
			i = j
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// ParseIPTables parses one iptables command:
//
//	[-t TABLE] -A|-I CHAIN RULESPEC...   append or insert a rule
//	[-t TABLE] -N CHAIN                  create a chain
//	[-t TABLE] -P CHAIN TARGET           set a built-in chain's policy
//
// Long forms (--table, --append, --insert, --new-chain, --policy) work too,
// and -t may come anywhere, as iptables allows. It checks what one command
// alone can show; whether a chain or jump target exists depends on the
// commands before it and is checked when the namespace is validated. The
// result's Pos is left for the caller to set.
func ParseIPTables(raw string) (IPTablesCommand, error) {
	fail := func(format string, args ...any) (IPTablesCommand, error) {
		return IPTablesCommand{}, fmt.Errorf("iptables %q: %s", raw, fmt.Sprintf(format, args...))
	}
	words, err := SplitArgs(raw)
	if err != nil {
		return fail("%v", err)
	}
	if len(words) > 0 && (words[0] == "iptables" || words[0] == "sudo") {
		return fail("write only the arguments, without a leading %q", words[0])
	}
	for i, w := range words {
		if i > 0 && contains(freeTextOptions, words[i-1]) {
			continue
		}
		if isModprobe(w) {
			return fail("%s is not allowed: it makes iptables run a program of your choice as root to load modules", w)
		}
	}
	cmd := IPTablesCommand{Raw: raw, Table: "filter"}
	var rest []string
	tableSet := false
	for i := 0; i < len(words); i++ {
		w := words[i]
		if i > 0 && contains(freeTextOptions, words[i-1]) {
			rest = append(rest, w)
			continue
		}
		table, isTable := "", false
		switch {
		case w == "-t" || w == "--table":
			if i+1 >= len(words) {
				return fail("%s needs a table name", w)
			}
			table, isTable = words[i+1], true
			i++
		case strings.HasPrefix(w, "--table="):
			table, isTable = strings.TrimPrefix(w, "--table="), true
		case strings.HasPrefix(w, "-t") && len(w) > 2 && !strings.HasPrefix(w, "--"):
			table, isTable = w[2:], true
		}
		if !isTable {
			rest = append(rest, w)
			continue
		}
		if tableSet {
			return fail("the table is given twice")
		}
		if !contains(tables, table) {
			return fail("unknown table %q%s; one of %s", table, didYouMean(table, tables), strings.Join(tables, ", "))
		}
		cmd.Table, tableSet = table, true
	}
	if len(rest) == 0 {
		return fail("no command; write -A, -I, -N or -P and a chain")
	}
	switch rest[0] {
	case "-A", "--append":
		cmd.Op = "-A"
	case "-I", "--insert":
		cmd.Op = "-I"
	case "-N", "--new-chain":
		cmd.Op = "-N"
	case "-P", "--policy":
		cmd.Op = "-P"
	case "-D", "--delete", "-R", "--replace", "-F", "--flush", "-X", "--delete-chain",
		"-Z", "--zero", "-E", "--rename-chain", "-L", "--list", "-S", "--list-rules", "-C", "--check":
		return fail("%s is not supported: a scenario builds its rule set with -A, -I, -N and -P", rest[0])
	default:
		return fail("expected -A, -I, -N or -P first, found %q", rest[0])
	}
	if len(rest) < 2 || strings.HasPrefix(rest[1], "-") || rest[1] == "" {
		return fail("%s needs a chain name", cmd.Op)
	}
	cmd.Chain, cmd.Args = rest[1], rest[2:]
	builtin := contains(builtinChains[cmd.Table], cmd.Chain)

	switch cmd.Op {
	case "-N":
		switch {
		case len(cmd.Args) > 0:
			return fail("-N takes only a chain name, found %q after it", strings.Join(cmd.Args, " "))
		case builtin:
			return fail("%s is a built-in chain of table %s", cmd.Chain, cmd.Table)
		case len(cmd.Chain) > maxChainName:
			return fail("chain name %q is longer than %d characters", cmd.Chain, maxChainName)
		case contains(standardTargets, cmd.Chain) || strings.HasPrefix(cmd.Chain, "!"):
			return fail("%q cannot be a chain name", cmd.Chain)
		}
	case "-P":
		switch {
		case !builtin:
			return fail("a policy is set on built-in chains only; %s has no built-in chain %s", cmd.Table, cmd.Chain)
		case len(cmd.Args) != 1 || (cmd.Args[0] != "ACCEPT" && cmd.Args[0] != "DROP"):
			return fail("-P %s takes one target, ACCEPT or DROP", cmd.Chain)
		case cmd.Table == "nat" && cmd.Args[0] == "DROP":
			return fail("the nat table is not for filtering; iptables refuses a DROP policy there")
		}
	case "-A", "-I":
		spec := cmd.Args
		if cmd.Op == "-I" && len(spec) > 0 && allOf(spec[0], func(c byte) bool { return c >= '0' && c <= '9' }) {
			if n, err := strconv.Atoi(spec[0]); err != nil || n < 1 {
				return fail("rule number %q must be 1 or more", spec[0])
			}
			spec = spec[1:]
		}
		if msg := checkRuleSpec(cmd.Table, cmd.Chain, builtin, spec); msg != "" {
			return fail("%s", msg)
		}
	}
	return cmd, nil
}

// checkRuleSpec checks the options of a rule that iptables would refuse
// whatever came before: interface options on the wrong built-in chain, and
// targets in the wrong table or chain.
func checkRuleSpec(table, chain string, builtin bool, spec []string) string {
	for i := 0; i < len(spec); i++ {
		w := spec[i]
		if i > 0 && contains(freeTextOptions, spec[i-1]) {
			continue
		}
		switch w {
		case "-i", "--in-interface", "-o", "--out-interface", "-j", "--jump", "-g", "--goto":
		default:
			continue
		}
		if i+1 >= len(spec) || spec[i+1] == "" {
			return fmt.Sprintf("%s needs a value", w)
		}
		val := spec[i+1]
		switch w {
		case "-i", "--in-interface":
			if builtin && (chain == "OUTPUT" || chain == "POSTROUTING") {
				return fmt.Sprintf("%s cannot be used in %s: packets there have no input interface", w, chain)
			}
		case "-o", "--out-interface":
			if builtin && (chain == "PREROUTING" || chain == "INPUT") {
				return fmt.Sprintf("%s cannot be used in %s: packets there have no output interface yet", w, chain)
			}
		case "-j", "--jump":
			if val == "DROP" && table == "nat" {
				return "the nat table is not for filtering; iptables refuses -j DROP there (use the filter table)"
			}
			if hooks, ok := natTargetChains[val]; ok {
				if table != "nat" {
					return fmt.Sprintf("target %s works only in the nat table (add -t nat)", val)
				}
				if builtin && !contains(hooks, chain) {
					return fmt.Sprintf("target %s works only in %s, not in %s", val, strings.Join(hooks, " or "), chain)
				}
			}
		}
	}
	return ""
}

// isModprobe reports whether iptables would read w as its --modprobe
// option, which names a program iptables runs as root: --modprobe, any
// abbreviation getopt accepts (--mo, --mod ...), with or without =VALUE,
// and the short form -M, alone or in a group of flags (-vM).
func isModprobe(w string) bool {
	if name, ok := strings.CutPrefix(w, "--"); ok {
		name, _, _ = strings.Cut(name, "=")
		return len(name) >= 2 && strings.HasPrefix("modprobe", name)
	}
	if len(w) < 2 || w[0] != '-' {
		return false
	}
	// Short options: flags without a value may be grouped; the first
	// option that takes a value ends the group (its value follows).
	for _, c := range w[1:] {
		switch {
		case c == 'M':
			return true
		case strings.ContainsRune("Vbvnx46", c):
			continue
		default:
			return false
		}
	}
	return false
}

// ruleTargets returns the jump (-j) and goto (-g) targets of a rule spec.
func ruleTargets(spec []string) (jumps, gotos []string) {
	for i := 0; i+1 < len(spec); i++ {
		if i > 0 && contains(freeTextOptions, spec[i-1]) {
			continue
		}
		switch spec[i] {
		case "-j", "--jump":
			jumps = append(jumps, spec[i+1])
		case "-g", "--goto":
			gotos = append(gotos, spec[i+1])
		}
	}
	return jumps, gotos
}

// iptables reads a namespace's iptables commands and checks them in order
// against the chains that exist at each point: a rule's chain and jump
// targets must be built in or created by an earlier -N in the same table.
func (p *parser) iptables(src *nsSource, n *yaml.Node, field string) {
	items, _ := p.items(n, field)
	created := map[string][]string{} // table -> chains made by -N
	rules := map[string]int{}        // table/chain -> rules so far
	for i, it := range items {
		f := fmt.Sprintf("%s[%d]", field, i)
		raw, ok := p.str(it, f)
		if !ok {
			continue
		}
		cmd, err := ParseIPTables(raw)
		if err != nil {
			p.errorf(it, f, "%v", err)
			continue
		}
		cmd.Pos = p.pos(it)
		if msg := checkChains(cmd, created, rules); msg != "" {
			p.errorf(it, f, "iptables %q: %s", raw, msg)
			continue
		}
		src.ns.IPTables = append(src.ns.IPTables, cmd)
	}
}

// checkChains checks cmd against the chains made so far and records what
// it makes.
func checkChains(cmd IPTablesCommand, created map[string][]string, rules map[string]int) string {
	builtin := builtinChains[cmd.Table]
	exists := func(chain string) bool { return contains(builtin, chain) || contains(created[cmd.Table], chain) }
	if cmd.Op == "-N" {
		if contains(created[cmd.Table], cmd.Chain) {
			return fmt.Sprintf("chain %s already exists in table %s", cmd.Chain, cmd.Table)
		}
		created[cmd.Table] = append(created[cmd.Table], cmd.Chain)
		return ""
	}
	if !exists(cmd.Chain) {
		var in []string
		for _, t := range tables {
			if contains(builtinChains[t], cmd.Chain) {
				in = append(in, t)
			}
		}
		if len(in) > 0 {
			return fmt.Sprintf("table %s has no chain %s; it is built into %s (add -t %s)", cmd.Table, cmd.Chain, strings.Join(in, ", "), in[0])
		}
		return fmt.Sprintf("table %s has no chain %s; create it first with -N %s", cmd.Table, cmd.Chain, cmd.Chain)
	}
	if cmd.Op == "-P" {
		return ""
	}
	key := cmd.Table + "/" + cmd.Chain
	spec := cmd.Args
	if cmd.Op == "-I" && len(spec) > 0 && allOf(spec[0], func(c byte) bool { return c >= '0' && c <= '9' }) {
		if n, _ := strconv.Atoi(spec[0]); n > rules[key]+1 {
			return fmt.Sprintf("rule number %d is past the end of %s, which has %d %s at this point", n, cmd.Chain, rules[key], plural(rules[key], "rule", "rules"))
		}
		spec = spec[1:]
	}
	jumps, gotos := ruleTargets(spec)
	for _, j := range jumps {
		if contains(standardTargets, j) || contains(extensionTargets, j) || contains(created[cmd.Table], j) {
			continue
		}
		known := append(append(append([]string{}, standardTargets...), extensionTargets...), created[cmd.Table]...)
		return fmt.Sprintf("target %q is neither a known target nor a chain made earlier with -N in table %s%s", j, cmd.Table, didYouMean(j, known))
	}
	for _, g := range gotos {
		if !contains(created[cmd.Table], g) {
			return fmt.Sprintf("goto target %q is not a chain made earlier with -N in table %s", g, cmd.Table)
		}
	}
	rules[key]++
	return ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

package iptrules

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// ParseSave parses the output of `iptables-save -c`: tables
// ("*filter"), chains with policy and policy counters (":FORWARD DROP
// [3:252]", a user chain has "-" for policy), and rules with counters
// ("[5:420] -A FORWARD -i br0 -j ACCEPT"). Comments and COMMIT lines are
// skipped. A rule before its table or chain, or a malformed counter, is an
// error naming the line.
func ParseSave(out string) ([]Table, error) {
	var tables []Table
	var cur *Table
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		fail := func(format string, args ...any) ([]Table, error) {
			return nil, fmt.Errorf("iptables-save line %d %q: %s", n, line, fmt.Sprintf(format, args...))
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#") || line == "COMMIT":
		case strings.HasPrefix(line, "*"):
			tables = append(tables, Table{Name: line[1:]})
			cur = &tables[len(tables)-1]
		case strings.HasPrefix(line, ":"):
			if cur == nil {
				return fail("chain before any table")
			}
			f := strings.Fields(line[1:])
			if len(f) < 2 {
				return fail("expected \":CHAIN POLICY [packets:bytes]\"")
			}
			ch := Chain{Name: f[0]}
			if f[1] != "-" {
				ch.Policy = f[1]
			}
			if len(f) > 2 {
				p, b, err := parseCounters(f[2])
				if err != nil {
					return fail("%v", err)
				}
				ch.Packets, ch.Bytes = p, b
			}
			cur.Chains = append(cur.Chains, ch)
		default:
			if cur == nil {
				return fail("rule before any table")
			}
			var r Rule
			if strings.HasPrefix(line, "[") {
				end := strings.IndexByte(line, ']')
				if end < 0 {
					return fail("unterminated counter")
				}
				p, b, err := parseCounters(line[:end+1])
				if err != nil {
					return fail("%v", err)
				}
				r.Packets, r.Bytes = p, b
				line = strings.TrimSpace(line[end+1:])
			}
			rest, ok := strings.CutPrefix(line, "-A ")
			chain, spec, _ := strings.Cut(rest, " ")
			if !ok || chain == "" {
				return fail("expected \"[packets:bytes] -A CHAIN RULE\"")
			}
			r.Spec = strings.TrimSpace(spec)
			ch := cur.Chain(chain)
			if ch == nil {
				return fail("rule for chain %s, which the table does not declare", chain)
			}
			ch.Rules = append(ch.Rules, r)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read iptables-save output: %w", err)
	}
	return tables, nil
}

// parseCounters parses "[packets:bytes]".
func parseCounters(s string) (packets, bytes uint64, err error) {
	in, open := strings.CutPrefix(s, "[")
	in, closed := strings.CutSuffix(in, "]")
	if !open || !closed {
		return 0, 0, fmt.Errorf("counter %q is not [packets:bytes]", s)
	}
	ps, bs, ok := strings.Cut(in, ":")
	if !ok {
		return 0, 0, fmt.Errorf("counter %q is not [packets:bytes]", s)
	}
	if packets, err = strconv.ParseUint(ps, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("counter %q: packets: %w", s, err)
	}
	if bytes, err = strconv.ParseUint(bs, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("counter %q: bytes: %w", s, err)
	}
	return packets, bytes, nil
}

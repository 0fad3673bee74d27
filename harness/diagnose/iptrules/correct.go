package iptrules

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/netfilter"
)

// Reading and rewriting a rule's options, for the fixes a diagnosis
// offers: a rule meant for a packet that misses it on an option or two.

// Correct returns r with the address, interface and port options that p
// does not match set to p's values, and those options as written. ok is
// false when another option does not match, or a negated one does not.
//
// A mismatched interface counts only when no interface of the namespace
// (links, its interfaces' names) matches what the rule names (a typo, a
// renamed link): a rule written for another live interface serves that
// interface's traffic (another bridge's containers), and rewriting it
// would cut them off.
func (r Parsed) Correct(p netfilter.Packet, links []string) (fixed Parsed, missed []string, ok bool) {
	out := append([]string(nil), r.words...)
	live := func(pattern string) bool {
		return slices.ContainsFunc(links, func(l string) bool { return ifMatch(l, pattern) })
	}
	neg := false
	for i := 0; i < len(out); i++ {
		opt := out[i]
		if opt == "!" {
			neg = true
			continue
		}
		if opt == "-j" || opt == "--jump" || opt == "-g" || opt == "--goto" {
			break
		}
		if i+1 >= len(out) {
			break
		}
		val := out[i+1]
		var good bool
		var repl string
		switch opt {
		case "-s", "--source":
			good, repl = addrIn(p.Src, val), hostPrefix(p.Src)
		case "-d", "--destination":
			good, repl = addrIn(p.Dst, val), hostPrefix(p.Dst)
		case "-i", "--in-interface":
			good, repl = ifMatch(p.In, val), p.In
			if !good && live(val) {
				return Parsed{}, nil, false
			}
		case "-o", "--out-interface":
			good, repl = ifMatch(p.Out, val), p.Out
			if !good && live(val) {
				return Parsed{}, nil, false
			}
		case "--dport", "--destination-port":
			good, repl = portIn(p.DPort, val), fmt.Sprint(p.DPort)
		case "--sport", "--source-port":
			good, repl = portIn(p.SPort, val), fmt.Sprint(p.SPort)
		default:
			m := Parsed{words: []string{opt, val}}.Match(p, nil)
			if strings.HasPrefix(opt, "-") && !strings.HasPrefix(val, "-") {
				i++
			}
			if m == netfilter.NoMatch && !neg {
				return Parsed{}, nil, false
			}
			neg = false
			continue
		}
		i++
		if neg {
			if good {
				return Parsed{}, nil, false
			}
			neg = false
			continue
		}
		if !good {
			if repl == "" || repl == "0" {
				return Parsed{}, nil, false
			}
			missed = append(missed, opt+" "+val)
			out[i] = repl
		}
	}
	fixed = r
	fixed.words = out
	return fixed, missed, true
}

// String writes the rule's words back as a spec, quoting those with
// blanks.
func (r Parsed) String() string {
	out := make([]string, len(r.words))
	for i, w := range r.words {
		if strings.ContainsAny(w, " \t\"'") {
			w = strconv.Quote(w)
		}
		out[i] = w
	}
	return strings.Join(out, " ")
}

// Option returns the value of option opt ("-d") when the rule has it
// and does not negate it.
func (r Parsed) Option(opt string) (string, bool) {
	for i := 0; i+1 < len(r.words); i++ {
		if r.words[i] == opt && (i == 0 || r.words[i-1] != "!") {
			return r.words[i+1], true
		}
	}
	return "", false
}

// NamesDPort reports whether the rule names port as its destination
// port (--dport, or a --dports list).
func (r Parsed) NamesDPort(port uint16) bool {
	for i := 0; i+1 < len(r.words); i++ {
		switch r.words[i] {
		case "--dport", "--destination-port":
			if portIn(port, r.words[i+1]) {
				return true
			}
		case "--dports", "--destination-ports":
			if portList(port, r.words[i+1]) {
				return true
			}
		}
	}
	return false
}

// hostPrefix writes a as iptables-save does: 10.0.0.2/32.
func hostPrefix(a netip.Addr) string { return netip.PrefixFrom(a, a.BitLen()).String() }

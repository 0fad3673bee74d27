package nftrules

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/internal/netns"
)

// Reading nftables through netlink (github.com/google/nftables), in the
// namespace the handle names: the connection opens its socket there, so
// no thread switches namespace here.

// Read reads every table of ns with its chains, rules (with counters)
// and sets (with elements). Tables iptables-nft made are marked
// (Table.IPTablesNFT).
func Read(ns netns.Handle) ([]Table, error) {
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	tables, err := c.ListTables()
	if err != nil {
		return nil, fmt.Errorf("nftables: list tables: %w", err)
	}
	chains, err := c.ListChains()
	if err != nil {
		return nil, fmt.Errorf("nftables: list chains: %w", err)
	}
	var out []Table
	for _, t := range tables {
		nt := Table{Family: familyName(t.Family), Name: t.Name}
		sets, err := c.GetSets(t)
		if err != nil {
			return out, fmt.Errorf("nftables: sets of table %s %s: %w", nt.Family, t.Name, err)
		}
		for _, s := range sets {
			ns := Set{Name: s.Name, ID: s.ID, Anonymous: s.Anonymous, Interval: s.Interval, IsMap: s.IsMap, Concatenation: s.Concatenation}
			elems, err := c.GetSetElements(s)
			if err != nil {
				return out, fmt.Errorf("nftables: elements of set %s in table %s %s: %w", s.Name, nt.Family, t.Name, err)
			}
			for _, e := range elems {
				el := Elem{Key: e.Key, KeyEnd: e.KeyEnd, IntervalEnd: e.IntervalEnd, Val: e.Val, Verdict: e.VerdictData}
				if el.Verdict == nil && s.IsMap && isVerdictMap(s) {
					// The library leaves a verdict map's data undecoded.
					el.Verdict, el.Val = decodeVerdict(e.Val), nil
				}
				ns.Elems = append(ns.Elems, el)
			}
			nt.Sets = append(nt.Sets, ns)
		}
		for _, ch := range chains {
			if ch.Table == nil || ch.Table.Name != t.Name || ch.Table.Family != t.Family {
				continue
			}
			nc := chainOf(ch, t.Family)
			rules, err := c.GetRules(t, ch)
			if err != nil {
				return out, fmt.Errorf("nftables: rules of chain %s in table %s %s: %w", ch.Name, nt.Family, t.Name, err)
			}
			for _, r := range rules {
				nc.Rules = append(nc.Rules, NewRule(r.Handle, r.Exprs))
			}
			nt.Chains = append(nt.Chains, nc)
		}
		nt.IPTablesNFT = madeByIPTables(&nt)
		out = append(out, nt)
	}
	return out, nil
}

// isVerdictMap reports whether s maps to verdicts. google/nftables v0.3.0
// records a verdict data type as the set's key type (it writes KeyType
// where it means DataType), so both are looked at.
func isVerdictMap(s *nftables.Set) bool {
	return s.DataType.Name == nftables.TypeVerdict.Name || s.KeyType.Name == nftables.TypeVerdict.Name
}

// decodeVerdict decodes the attributes of an NFTA_DATA_VERDICT: the code
// (NFTA_VERDICT_CODE, big endian) and, for jump and goto, the chain
// (NFTA_VERDICT_CHAIN). It returns nil when b holds no code.
func decodeVerdict(b []byte) *expr.Verdict {
	var v *expr.Verdict
	chain := ""
	for len(b) >= 4 {
		n := int(binary.LittleEndian.Uint16(b))
		typ := binary.LittleEndian.Uint16(b[2:]) & 0x3fff
		if n < 4 || n > len(b) {
			break
		}
		data := b[4:n]
		switch {
		case typ == unix.NFTA_VERDICT_CODE && len(data) == 4:
			v = &expr.Verdict{Kind: expr.VerdictKind(int32(binary.BigEndian.Uint32(data)))}
		case typ == unix.NFTA_VERDICT_CHAIN:
			chain = strings.TrimRight(string(data), "\x00")
		}
		b = b[min((n+3)&^3, len(b)):]
	}
	if v != nil {
		v.Chain = chain
	}
	return v
}

// NewRule makes a rule of its handle and expressions, with its counter
// and its text: what Read makes of a rule the kernel lists, and how a
// ruleset is built by hand.
func NewRule(handle uint64, exprs []expr.Any) Rule {
	r := Rule{Handle: handle, Exprs: exprs}
	for _, e := range exprs {
		if c, ok := e.(*expr.Counter); ok {
			r.Counter, r.Packets, r.Bytes = true, c.Packets, c.Bytes
		}
	}
	r.Text = renderRule(exprs)
	return r
}

func chainOf(ch *nftables.Chain, fam nftables.TableFamily) Chain {
	out := Chain{Name: ch.Name, Type: string(ch.Type)}
	if ch.Hooknum != nil {
		out.Hook = hookName(uint32(*ch.Hooknum), fam)
		if ch.Priority != nil {
			out.Priority = int32(*ch.Priority)
		}
		out.Policy = "accept"
		if ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop {
			out.Policy = "drop"
		}
	}
	return out
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyARP:
		return "arp"
	case nftables.TableFamilyBridge:
		return "bridge"
	case nftables.TableFamilyNetdev:
		return "netdev"
	}
	return fmt.Sprintf("family%d", f)
}

func hookName(h uint32, fam nftables.TableFamily) string {
	if fam == nftables.TableFamilyNetdev {
		switch h {
		case unix.NF_NETDEV_INGRESS:
			return "ingress"
		case unix.NF_NETDEV_EGRESS:
			return "egress"
		}
		return fmt.Sprintf("hook%d", h)
	}
	names := []string{"prerouting", "input", "forward", "output", "postrouting"}
	if int(h) < len(names) {
		return names[h]
	}
	if fam == nftables.TableFamilyINet && h == nfInetIngress {
		return "ingress"
	}
	return fmt.Sprintf("hook%d", h)
}

// nfInetIngress is NF_INET_INGRESS, the inet family's ingress hook.
const nfInetIngress = 5

// iptablesChains are the built-in chain names of iptables.
var iptablesChains = []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}

// iptablesTables are the names of iptables' tables.
var iptablesTables = []string{"raw", "mangle", "filter", "security", "nat"}

// madeByIPTables reports whether t is a table iptables-nft made: it has
// an iptables table name in family ip or ip6, and its rules carry xtables
// compat expressions or its base chains all have iptables' built-in names
// (nft users write them in lower case; iptables-nft always in upper).
func madeByIPTables(t *Table) bool {
	if t.Family != "ip" && t.Family != "ip6" || !slices.Contains(iptablesTables, t.Name) {
		return false
	}
	base := true
	for _, c := range t.Chains {
		for _, r := range c.Rules {
			for _, e := range r.Exprs {
				switch e.(type) {
				case *expr.Match, *expr.Target:
					return true
				}
			}
		}
		if c.Hook != "" && !slices.Contains(iptablesChains, c.Name) {
			base = false
		}
	}
	return base
}

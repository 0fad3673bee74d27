package plan

import (
	"strconv"
	"strings"

	"github.com/hopcheck/hopcheck/harness/scenario"
)

// Argv returns the command that performs s the way the tutorials do it:
// one ip, sysctl or iptables process per step. nsName maps a scenario
// namespace to the kernel's name for it (netns.Name for a run); nil keeps
// the scenario's names.
func (s Step) Argv(nsName func(string) string) []string {
	if nsName == nil {
		nsName = func(ns string) string { return ns }
	}
	ns := nsName(s.NS)
	ip := func(args ...string) []string { return append([]string{"ip", "-n", ns}, args...) }
	set := func(args ...string) []string { return ip(append([]string{"link", "set", "dev", s.If}, args...)...) }
	switch s.Kind {
	case CreateNamespace:
		return []string{"ip", "netns", "add", ns}
	case CreateLink:
		return ip(linkAddArgs(s, nsName)...)
	case SetMAC:
		return set("address", s.MAC.String())
	case SetMTU:
		return set("mtu", strconv.Itoa(s.MTU))
	case SetMaster:
		return set("master", s.Master)
	case SetUp:
		return set("up")
	case AddAddress:
		return ip("addr", "add", s.Addr.String(), "dev", s.If)
	case SetSysctl:
		return []string{"ip", "netns", "exec", ns, "sysctl", "-q", "-w", s.Sysctl.Key + "=" + s.Sysctl.Value}
	case AddNeighbor:
		n := s.Neighbor
		return ip("neigh", "add", n.IP.String(), "lladdr", n.MAC.String(), "dev", n.Dev, "nud", "permanent")
	case AddRoute:
		return append([]string{"ip", "-n", ns}, routeArgs(s.Route)...)
	case AddRule:
		return append([]string{"ip", "-n", ns}, ruleArgs(s.Rule)...)
	case RunIPTables:
		c := s.IPTables
		argv := []string{"ip", "netns", "exec", ns, "iptables"}
		if c.Table != "" && c.Table != "filter" {
			argv = append(argv, "-t", c.Table)
		}
		argv = append(argv, c.Op, c.Chain)
		return append(argv, c.Args...)
	case RunNFT:
		// nft reads a whole ruleset from one argument as from a file.
		return []string{"ip", "netns", "exec", ns, "nft", s.NFT}
	}
	return nil
}

// linkAddArgs returns the `link add` arguments that make s's interface.
func linkAddArgs(s Step, nsName func(string) string) []string {
	args := []string{"link", "add"}
	switch s.Type {
	case scenario.TypeVeth:
		args = append(args, s.If, "type", "veth", "peer", "name", s.Peer.If)
		if s.Peer.NS != s.NS {
			args = append(args, "netns", nsName(s.Peer.NS))
		}
	case scenario.TypeVXLAN:
		v := s.VXLAN
		args = append(args, s.If, "type", "vxlan", "id", strconv.FormatUint(uint64(v.VNI), 10))
		if v.Local.IsValid() {
			args = append(args, "local", v.Local.String())
		}
		if v.Remote.IsValid() {
			if v.Remote.IsMulticast() {
				args = append(args, "group", v.Remote.String())
			} else {
				args = append(args, "remote", v.Remote.String())
			}
		}
		if v.Dev != "" {
			args = append(args, "dev", v.Dev)
		}
		args = append(args, "dstport", strconv.Itoa(int(VXLANPort(v))))
	case scenario.TypeMacvlan:
		args = append(args, s.If, "link", s.Macvlan.Parent, "type", "macvlan", "mode", MacvlanMode(s.Macvlan))
	default:
		args = append(args, s.If, "type", string(s.Type))
	}
	return args
}

// VXLANPort is the UDP port of v: its dstport, or 4789 (IANA) when unset.
func VXLANPort(v *scenario.VXLAN) uint16 {
	if v.DstPort == 0 {
		return 4789
	}
	return v.DstPort
}

// MacvlanMode is the mode of m, bridge when unset.
func MacvlanMode(m *scenario.Macvlan) string {
	if m.Mode == "" {
		return "bridge"
	}
	return m.Mode
}

// routeArgs returns `route add ...` for r, with -6 for IPv6 routes so that
// "default" means ::/0.
func routeArgs(r *scenario.Route) []string {
	var args []string
	if r.Dst.Addr().Is6() {
		args = append(args, "-6")
	}
	dst := r.Dst.String()
	if r.Dst.Bits() == 0 {
		dst = "default"
	}
	args = append(args, "route", "add", dst)
	if r.Via.IsValid() {
		args = append(args, "via", r.Via.String())
	}
	if r.Dev != "" {
		args = append(args, "dev", r.Dev)
	}
	if r.Src.IsValid() {
		args = append(args, "src", r.Src.String())
	}
	if r.Metric != 0 {
		args = append(args, "metric", strconv.Itoa(r.Metric))
	}
	if r.Table != 0 {
		args = append(args, "table", strconv.Itoa(r.Table))
	}
	return args
}

// Script renders p as a bash script that builds the same topology with one
// ip, sysctl or iptables process per step, the recipe of the container
// networking tutorials. nsName maps scenario namespaces to kernel names as
// for Step.Argv. The script stops at the first failing command.
func (p *Plan) Script(nsName func(string) string) string {
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	b.WriteString("# Builds scenario " + p.Scenario.Name)
	if p.Scenario.File != "" {
		b.WriteString(" (" + p.Scenario.File + ")")
	}
	b.WriteString(", one command per step.\nset -e\n")
	for _, s := range p.Steps {
		b.WriteString(shellJoin(s.Argv(nsName)))
		b.WriteByte('\n')
	}
	if UsesIPv6(p.Scenario) {
		writeDADWait(&b, p.Scenario, nsName)
	}
	return b.String()
}

// dadWaitFunc is the bash function a script of an IPv6 scenario ends
// with, as the builder ends with its wait (harness/build): an IPv6 address
// is tentative, and cannot be used, until duplicate address detection is
// over, so a ping typed right after the script could fail. It waits, 10 s
// at most, until no address is tentative on an interface with a carrier
// (one without keeps its addresses tentative, as the scenario made it),
// and prints the addresses DAD found duplicated: those the kernel will
// never use.
const dadWaitFunc = `# wait_dad NS...: wait until IPv6 duplicate address detection is over.
wait_dad() {
  local ns dev i busy
  for ns in "$@"; do
    for i in $(seq 100); do
      busy=
      for dev in $(ip -n "$ns" -6 -o addr show tentative -dadfailed | awk '{print $2}' | sort -u); do
        if ip -n "$ns" link show dev "$dev" | grep -q LOWER_UP; then busy=$dev; fi
      done
      if [ -z "$busy" ]; then break; fi
      sleep 0.1
    done
    if [ -n "$busy" ]; then echo "$ns: IPv6 addresses on $busy still tentative after 10 s; a ping to them may fail until DAD ends (see: ip -n $ns -6 addr show tentative)" >&2; fi
    ip -n "$ns" -6 -o addr show dadfailed | awk -v ns="$ns" '{print ns ": " $2 " " $4 ": duplicate address (DAD failed), never used" }' >&2
  done
}
`

// writeDADWait appends dadWaitFunc and its call for every namespace of sc
// that has an interface other than lo.
func writeDADWait(b *strings.Builder, sc *scenario.Scenario, nsName func(string) string) {
	if nsName == nil {
		nsName = func(ns string) string { return ns }
	}
	call := []string{"wait_dad"}
	for _, ns := range sc.Namespaces {
		for _, ifc := range ns.Interfaces {
			if ifc.Name != "lo" {
				call = append(call, nsName(ns.Name))
				break
			}
		}
	}
	if len(call) == 1 {
		return
	}
	b.WriteString(dadWaitFunc)
	b.WriteString(shellJoin(call))
	b.WriteByte('\n')
}

// String renders p as Script does, with the scenario's namespace names.
func (p *Plan) String() string { return p.Script(nil) }

// TeardownScript renders the commands that remove what Script builds:
// deleting a namespace removes its links, addresses, routes and rules,
// and a veth pair dies with either end.
func (p *Plan) TeardownScript(nsName func(string) string) string {
	if nsName == nil {
		nsName = func(ns string) string { return ns }
	}
	var b strings.Builder
	b.WriteString("#!/bin/bash\n# Removes scenario " + p.Scenario.Name + ".\n")
	for i := len(p.Scenario.Namespaces) - 1; i >= 0; i-- {
		b.WriteString(shellJoin([]string{"ip", "netns", "del", nsName(p.Scenario.Namespaces[i].Name)}))
		b.WriteString(" || true\n")
	}
	return b.String()
}

// shellJoin quotes each word for bash where needed and joins them.
func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// shellQuote returns s as one bash word: unchanged when it holds only
// characters bash never interprets, else single-quoted.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("@%+=:,./_-", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ruleArgs returns `[-6] rule add SELECTOR... table T` for r.
func ruleArgs(r *scenario.Rule) []string {
	words := strings.Fields(r.String())
	if len(words) > 0 && words[0] == "-6" {
		return append([]string{"-6", "rule", "add"}, words[1:]...)
	}
	return append([]string{"rule", "add"}, words...)
}

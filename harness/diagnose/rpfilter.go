package diagnose

import (
	"fmt"
	"strings"

	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
)

// Reverse-path filtering: the route back to a packet's source must leave
// through the interface it arrived on (strict) or exist at all (loose).

// rpfMode is a reverse-path filter setting.
type rpfMode int

const (
	rpfOff    rpfMode = 0
	rpfStrict rpfMode = 1
	rpfLoose  rpfMode = 2
)

// rpFilter returns the reverse-path filter mode for packets arriving on
// link in: the larger of conf.all.rp_filter and conf.IN.rp_filter, as the
// kernel's IN_DEV_RPFILTER does.
func rpFilterMode(n *snapshot.NSState, in string) (rpfMode, []string) {
	all := n.SysctlInt("net.ipv4.conf.all.rp_filter", 0)
	dev := n.SysctlInt("net.ipv4.conf."+in+".rp_filter", 0)
	mode := max(all, dev)
	if mode > 2 || mode < 0 {
		mode = 0
	}
	return rpfMode(mode), []string{
		"net.ipv4.conf.all.rp_filter = " + itoa(all),
		"net.ipv4.conf." + in + ".rp_filter = " + itoa(dev),
	}
}

// rpFilter applies reverse-path filtering to a packet arriving on in:
// strict mode wants the route back to the source to leave through in,
// loose mode any route back.
func (w *walker) rpFilter(ns *snapshot.NSState, in string, p packet) *finding {
	mode, settings := rpFilterMode(ns, in)
	if mode == rpfOff || in == "lo" {
		return nil
	}
	// The reverse lookup of fib_validate_source: to the source, from the
	// destination, as if generated here.
	lk := ns.Lookup(snapshot.Flow{Src: p.Dst, Dst: p.Src, IIf: "lo"})
	back, ok := lk.Route, lk.OK
	good := ok && forwardable(back.Type)
	if mode == rpfStrict {
		good = good && back.Dev == in
	}
	if good {
		return nil
	}
	name := map[rpfMode]string{rpfStrict: "strict", rpfLoose: "loose"}[mode]
	backText := "no route"
	if ok {
		backText = back.String()
	}
	f := &finding{
		Cause: RPFilter, NS: ns.Name, If: in,
		Evidence: append([]string{
			fmt.Sprintf("%s: %s arrived on %s", ns.Name, p, in),
			fmt.Sprintf("%s: ip route get %s -> %s", ns.Name, p.Src, backText),
		}, prefixAll(ns.Name+": ", settings)...),
	}
	if mode == rpfStrict && ok {
		f.Summary = fmt.Sprintf("%s drops the packet from %s arriving on %s by strict reverse-path filtering: its route back to %s leaves through %s", ns.Name, p.Src, in, p.Src, back.Dev)
	} else {
		f.Summary = fmt.Sprintf("%s drops the packet from %s arriving on %s by %s reverse-path filtering: it has no route back to %s", ns.Name, p.Src, in, name, p.Src)
	}
	var cmds []string
	for _, key := range []string{"all", in} {
		if ns.SysctlInt("net.ipv4.conf."+key+".rp_filter", 0) == int(rpfStrict) {
			cmds = append(cmds, fmt.Sprintf("net.ipv4.conf.%s.rp_filter=2", key))
		}
	}
	if len(cmds) > 0 {
		f.Fix = fixIn(ns.Name, "sysctl -w "+strings.Join(cmds, " "))
	}
	return f
}

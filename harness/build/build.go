package build

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/coreos/go-iptables/iptables"
	"github.com/hopcheck/hopcheck/harness/plan"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Options tune a build.
type Options struct {
	// RunID names the run's kernel objects (netns.Name(RunID, ns)); empty
	// means a fresh netns.NewRunID(). Callers that record runs before
	// building (so `hopcheck clean` knows the run is alive) pass their own.
	RunID string
	// Progress, when set, is told of every build step done and, at
	// Down, of every namespace deleted: phase is PhaseBuild or
	// PhaseTeardown. Calls are serialised; a large topology makes
	// thousands, so the callee should be cheap (throttle what it prints).
	Progress func(phase string, done, total int)
}

// Up builds sc in fresh namespaces of one run and returns the topology,
// once its links carry traffic (see Topology.ready) and, in a scenario
// that uses IPv6, its IPv6 addresses have passed duplicate address
// detection (see Topology.settleIPv6; a duplicate fails the build with a
// *StepError wrapping a *DuplicateAddressError). A scenario that cannot be planned returns the planner's
// scenario.ErrorList and creates nothing. A step the kernel (or iptables)
// refuses returns a *StepError naming the scenario line and object, after
// everything already made has been removed; so does a cancelled ctx, with
// ctx's cause. A panic during the build also removes what was made.
func Up(ctx context.Context, sc *scenario.Scenario, opts Options) (_ *Topology, err error) {
	p, err := plan.New(sc)
	if err != nil {
		return nil, err
	}
	runID := opts.RunID
	if runID == "" {
		if runID, err = netns.NewRunID(); err != nil {
			return nil, err
		}
	}
	if _, _, ok := netns.ParseName(netns.Name(runID, "x")); !ok {
		// Clean could not recognise this run's namespaces as hopcheck's.
		return nil, fmt.Errorf("build %s: run ID %q is not 1-12 characters of [a-z0-9]", sc.Name, runID)
	}

	t := newTopology(runID, sc)
	t.progress = opts.Progress
	built := false
	defer func() {
		if built {
			return
		}
		// Runs on error and on panic (which then continues).
		if derr := t.Down(context.WithoutCancel(ctx)); derr != nil {
			err = errors.Join(err, fmt.Errorf("remove partial build of %s: %w", sc.Name, derr))
		}
	}()

	steps := p.Steps
	b := &builder{t: t, progress: newProgress(opts.Progress, PhaseBuild, len(steps))}
	// The plan starts with every namespace; they are made concurrently.
	first := 0
	for first < len(steps) && steps[first].Kind == plan.CreateNamespace {
		first++
	}
	if serr := b.createNamespaces(ctx, steps[:first]); serr != nil {
		return nil, serr
	}
	for _, s := range steps[first:] {
		if ctx.Err() != nil {
			return nil, &StepError{Pos: s.Pos, Field: s.Field, Step: s, Err: fmt.Errorf("build interrupted: %w", context.Cause(ctx))}
		}
		if serr := b.do(s); serr != nil {
			return nil, &StepError{Pos: s.Pos, Field: s.Field, Step: s, Err: serr}
		}
		b.progress.step()
	}
	pending, err := t.collect()
	if err == nil {
		err = t.ready(ctx, pending)
	}
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", sc.Name, err)
	}
	if plan.UsesIPv6(sc) {
		if err := t.settleIPv6(ctx, p); err != nil {
			return nil, err
		}
		if err := b.restoreSysctls(); err != nil {
			return nil, fmt.Errorf("build %s: %w", sc.Name, err)
		}
	}
	built = true
	return t, nil
}

// builder executes the steps of one build.
type builder struct {
	t *Topology
	// ipt runs iptables; made on the first iptables step, because finding
	// the binary and its version costs a process.
	ipt *iptables.IPTables
	// restore holds the previous values of the BuildOnly sysctls, in the
	// order they were written.
	restore []sysctlValue
	// progress counts steps done for Options.Progress; nil without it.
	progress *progress
}

// sysctlValue is a sysctl's value in one namespace.
type sysctlValue struct {
	ns  *namespace
	key string
	val string
}

func (b *builder) do(s plan.Step) error {
	if s.Kind == plan.CreateNamespace {
		return b.createNamespace(s.NS)
	}
	ns, ok := b.t.byName[s.NS]
	if !ok {
		return fmt.Errorf("namespace %s was not created", s.NS)
	}
	switch s.Kind {
	case plan.CreateLink:
		return b.createLink(ns, s)
	case plan.SetSysctl:
		if s.BuildOnly {
			return b.setForBuild(ns, s.Sysctl)
		}
		return writeSysctl(ns, s.Sysctl.Key, s.Sysctl.Value)
	case plan.RunIPTables:
		return b.iptables(ns, s.IPTables)
	case plan.RunNFT:
		return loadNFT(ns.h, s.NFT)
	case plan.AddRoute:
		return b.addRoute(ns, s.Route)
	case plan.AddRule:
		return ns.nl.RuleAdd(netlinkRule(s.Rule))
	}
	// The rest act on the interface s.If.
	idx, err := b.index(s.NS, s.If)
	if err != nil {
		return err
	}
	link := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: idx, Name: s.If}}
	switch s.Kind {
	case plan.SetMAC:
		return ns.nl.LinkSetHardwareAddr(link, s.MAC)
	case plan.SetMTU:
		return ns.nl.LinkSetMTU(link, s.MTU)
	case plan.SetMaster:
		br, err := b.index(s.NS, s.Master)
		if err != nil {
			return err
		}
		return ns.nl.LinkSetMasterByIndex(link, br)
	case plan.AddAddress:
		// An IPv6 address stays tentative (unusable) until duplicate
		// address detection has found no other interface with it: a
		// duplicate is a finding, so DAD is not switched off; settleIPv6
		// waits for it.
		return ns.nl.AddrAdd(link, &netlink.Addr{IPNet: ipNet(s.Addr)})
	case plan.SetUp:
		return ns.nl.LinkSetUp(link)
	case plan.AddNeighbor:
		n := s.Neighbor
		return ns.nl.NeighAdd(&netlink.Neigh{
			LinkIndex:    idx,
			Family:       family(n.IP),
			State:        netlink.NUD_PERMANENT,
			IP:           net.IP(n.IP.AsSlice()),
			HardwareAddr: n.MAC,
		})
	}
	return fmt.Errorf("unknown step kind %q", s.Kind)
}

// createNamespaces executes CreateNamespace steps a few at a time: making
// a network namespace is mostly kernel work outside the lock that link
// changes serialise on (rtnl), so this shortens large builds markedly. It
// returns when every worker has finished, with a *StepError for the first
// failed step in plan order; every namespace made is recorded either way.
func (b *builder) createNamespaces(ctx context.Context, steps []plan.Step) error {
	errs := make([]error, len(steps))
	var (
		next   atomic.Int64
		failed atomic.Bool
		wg     sync.WaitGroup
	)
	for range min(len(steps), namespaceWorkers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(steps) || failed.Load() {
					return
				}
				if ctx.Err() != nil {
					errs[i] = fmt.Errorf("build interrupted: %w", context.Cause(ctx))
				} else {
					errs[i] = b.createNamespace(steps[i].NS)
				}
				if errs[i] == nil {
					b.progress.step()
				}
				if errs[i] != nil {
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			s := steps[i]
			return &StepError{Pos: s.Pos, Field: s.Field, Step: s, Err: err}
		}
	}
	return nil
}

// namespaceWorkers is how many namespaces are made at once. Beyond a few,
// the kernel's own serialisation leaves nothing to gain.
const namespaceWorkers = 4

// createNamespace makes the run's namespace for scenario namespace name
// and records it at once, so that any later failure removes it.
func (b *builder) createNamespace(name string) error {
	kernel := netns.Name(b.t.RunID, name)
	h, err := netns.Create(kernel)
	if err != nil {
		// Not recorded: a name that already existed belongs to someone
		// else (netns.Create refuses to reuse it) and must survive.
		return err
	}
	ns := &namespace{name: name, kernel: kernel, h: h, index: map[string]int{}}
	b.t.add(ns)
	return ns.attach()
}

func (b *builder) createLink(ns *namespace, s plan.Step) error {
	k, ok := linkKinds[s.Type]
	if !ok {
		return fmt.Errorf("hopcheck cannot create interfaces of type %q", s.Type)
	}
	l, err := k.newLink(s, b)
	if err != nil {
		return err
	}
	if err := ns.nl.LinkAdd(l); err != nil {
		// EOPNOTSUPP is also how the kernel refuses some settings of a
		// kind it has; a probe tells the two apart.
		if errors.Is(err, unix.EOPNOTSUPP) {
			if has, perr := hasKind(k.kernelKind()); perr == nil && !has {
				return &UnsupportedKindError{Type: s.Type, Config: k.kernelConfig()}
			}
		}
		return err
	}
	if idx := l.Attrs().Index; idx > 0 {
		ns.index[s.If] = idx
	}
	return nil
}

// index implements resolver: the ifindex of ifname in scenario namespace
// nsName, from the cache or looked up once.
func (b *builder) index(nsName, ifname string) (int, error) {
	ns, ok := b.t.byName[nsName]
	if !ok {
		return 0, fmt.Errorf("namespace %s was not created", nsName)
	}
	if idx, ok := ns.index[ifname]; ok {
		return idx, nil
	}
	l, err := ns.nl.LinkByName(ifname)
	if err != nil {
		return 0, fmt.Errorf("find %s/%s: %w", nsName, ifname, err)
	}
	ns.index[ifname] = l.Attrs().Index
	return l.Attrs().Index, nil
}

// handle implements resolver.
func (b *builder) handle(nsName string) (netns.Handle, error) {
	ns, ok := b.t.byName[nsName]
	if !ok {
		return netns.Handle(-1), fmt.Errorf("namespace %s was not created", nsName)
	}
	return ns.h, nil
}

func (b *builder) addRoute(ns *namespace, r *scenario.Route) error {
	nr := &netlink.Route{
		Dst:      ipNet(r.Dst.Masked()),
		Priority: r.Metric,
		Table:    r.Table,
	}
	if r.Via.IsValid() {
		nr.Gw = net.IP(r.Via.AsSlice())
	} else if r.Dst.Addr().Is4() {
		// As `ip route add PREFIX dev IF` does for IPv4: a route without
		// gateway is on-link.
		nr.Scope = netlink.SCOPE_LINK
	}
	if r.Dev != "" {
		idx, err := b.index(ns.name, r.Dev)
		if err != nil {
			return err
		}
		nr.LinkIndex = idx
	}
	if r.Src.IsValid() {
		nr.Src = net.IP(r.Src.AsSlice())
	}
	return ns.nl.RouteAdd(nr)
}

// netlinkRule converts a scenario rule to the netlink rule `ip rule add`
// would send.
func netlinkRule(r *scenario.Rule) *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = netlink.FAMILY_V4
	if r.V6 {
		nr.Family = netlink.FAMILY_V6
	}
	nr.Table = r.Table
	if nr.Table == 0 {
		nr.Table = unix.RT_TABLE_MAIN
	}
	nr.Priority = int(r.Priority) // -1: the kernel numbers it
	if r.From.IsValid() {
		nr.Src = ipNet(r.From)
	}
	if r.To.IsValid() {
		nr.Dst = ipNet(r.To)
	}
	nr.IifName, nr.OifName, nr.Invert = r.IIf, r.OIf, r.Not
	if r.HasMark {
		mask := r.Mask
		nr.Mark, nr.Mask = r.Mark, &mask
	}
	return nr
}

// writeSysctl writes key=value inside ns. /proc/sys/net shows the
// namespace of the thread that opens the file, so the open happens in
// netns.Do.
func writeSysctl(ns *namespace, key, value string) error {
	path, err := plan.SysctlPath(key)
	if err != nil {
		return err
	}
	return netns.Do(ns.h, func() error { return writeFile(path, value) })
}

func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(value)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr
}

// setForBuild writes a BuildOnly sysctl inside ns and remembers the value
// it replaced, for restoreSysctls.
func (b *builder) setForBuild(ns *namespace, s *scenario.Sysctl) error {
	path, err := plan.SysctlPath(s.Key)
	if err != nil {
		return err
	}
	var old []byte
	err = netns.Do(ns.h, func() error {
		var err error
		if old, err = os.ReadFile(path); err != nil {
			return err
		}
		return writeFile(path, s.Value)
	})
	if err != nil {
		return err
	}
	b.restore = append(b.restore, sysctlValue{ns: ns, key: s.Key, val: strings.TrimSpace(string(old))})
	return nil
}

// restoreSysctls puts back the values the BuildOnly sysctls replaced,
// once the build has settled, so the topology behaves as the kernel's
// defaults (or the host's) make it: an unanswered neighbor solicitation,
// for one, is retried a second apart again, not 100 ms.
func (b *builder) restoreSysctls() error {
	for _, v := range b.restore {
		if err := writeSysctl(v.ns, v.key, v.val); err != nil {
			return fmt.Errorf("%s: restore %s=%s: %w", v.ns.name, v.key, v.val, err)
		}
	}
	b.restore = nil
	return nil
}

// iptables applies c inside ns. go-iptables runs the iptables binary (argv,
// no shell); the process is forked from the thread netns.Do switched, so
// it starts in ns. (os/exec's goroutines that copy the process's output
// only read a pipe; they do nothing that depends on the namespace.)
func (b *builder) iptables(ns *namespace, c *scenario.IPTablesCommand) error {
	if b.ipt == nil {
		ipt, err := iptables.New()
		if err != nil {
			return fmt.Errorf("find iptables: %w", err)
		}
		b.ipt = ipt
	}
	table := c.Table
	if table == "" {
		table = "filter"
	}
	err := netns.Do(ns.h, func() error {
		switch c.Op {
		case "-A":
			return b.ipt.Append(table, c.Chain, c.Args...)
		case "-I":
			pos, args := 1, c.Args
			if len(args) > 0 {
				if n, err := strconv.Atoi(args[0]); err == nil {
					pos, args = n, args[1:]
				}
			}
			return b.ipt.Insert(table, c.Chain, pos, args...)
		case "-N":
			return b.ipt.NewChain(table, c.Chain)
		case "-P":
			if len(c.Args) != 1 {
				return fmt.Errorf("-P %s needs exactly one target, got %q", c.Chain, c.Args)
			}
			return b.ipt.ChangePolicy(table, c.Chain, c.Args[0])
		}
		return fmt.Errorf("unsupported iptables command %q", c.Op)
	})
	return iptablesReason(err)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

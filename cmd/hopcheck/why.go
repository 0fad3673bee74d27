package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hopcheck/hopcheck/harness/build"
	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
	"github.com/hopcheck/hopcheck/harness/report"
	"github.com/hopcheck/hopcheck/harness/runner"
	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/spf13/cobra"
)

type whyFlags struct {
	from, to, listen string
	tcp, udp         bool
	participantFlags
	timeout  time.Duration
	tcAttach string
	traceOff bool
}

func newWhyCmd() *cobra.Command {
	var f whyFlags
	cmd := &cobra.Command{
		Use:   "why [FILE] --from NS --to IP[:PORT] [--tcp|--udp] [--netns A,B] [--container C] [--node]",
		Short: "Send one probe, show its hops, and say why it fails",
		Long: `why sends one probe (ICMP echo by default, or a TCP/UDP round trip) from
namespace NS to the destination, traces it hop by hop, and, when it does not
get through, names the cause, the ns/if where it happened, the evidence, and
a command that fixes it.

With FILE, the scenario is built for the probe and torn down afterwards (or,
if it is up with 'hopcheck up', used as it is). With --netns instead, the
probe runs in existing namespaces that hopcheck did not build. With
--container, a running container's namespace takes part under the
container's name (--from web, output web/eth0): NAME is looked up with
every runtime CLI on PATH (docker, podman, crictl), and exactly one must
know it; docker:NAME, podman:NAME or cri:NAME asks one. The CLI is run as
you would run it, so DOCKER_HOST, CONTAINER_HOST, CONTAINERS_STORAGE_CONF
and CONTAINER_RUNTIME_ENDPOINT choose the daemon or storage as usual.
--node adds the namespace hopcheck runs in: the host of those containers.

Exit code: 0 when the probe got through, 1 when it did not, 2 for bad
input, 130 when interrupted before the probe was judged.`,
		Example: `  hopcheck why scenarios/broken/no-masquerade.yaml --from ns1 --to 203.0.113.8
  hopcheck why scenarios/dnat-ingress.yaml --from internet --to 198.51.100.2:8080 --tcp --listen ns1:80
  hopcheck why --netns red,blue --from red --to 10.0.0.3
  hopcheck why --node --netns /proc/4242/ns/net --from /proc/4242/ns/net --to 203.0.113.8
  hopcheck why --node --container web --from web --to 203.0.113.8
  hopcheck why --node --container podman:web,docker:db --from node --to 10.88.0.2:80 --tcp`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (!f.empty() || f.node) {
				return &exitError{code: exitBadInput, err: errors.New("give a scenario FILE or --node/--netns/--container, one of the two")}
			}
			if f.node && len(args) == 1 {
				return &exitError{code: exitBadInput, err: errors.New("--node goes with --netns or --container: a scenario's host is a namespace of its own")}
			}
			if err := checkParticipantFlags(f.participantFlags); err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			c, err := whyCheck(f)
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			mode, attach, err := traceOptions("always", f.tcAttach)
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			if f.traceOff {
				mode = runner.TraceOff
			}
			if f.node {
				attach = nodeAttach(attach)
			}
			opts := runner.Options{Trace: mode, Attach: attach}
			if len(args) == 1 {
				return whyScenario(cmd, args[0], c, opts)
			}
			return whyNetns(cmd, f.participantFlags, c, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "namespace the probe starts in (required)")
	fl.StringVar(&f.to, "to", "", "destination `IP`, or IP:PORT with --tcp/--udp (required)")
	fl.BoolVar(&f.tcp, "tcp", false, "probe with a TCP connection")
	fl.BoolVar(&f.udp, "udp", false, "probe with a UDP round trip")
	fl.StringVar(&f.listen, "listen", "", "with --tcp/--udp: serve the probe at `NS:PORT` (as a check's listen field)")
	fl.StringSliceVar(&f.netns, "netns", nil, "probe existing namespaces (names from 'ip netns list', or paths) instead of a scenario")
	fl.StringSliceVar(&f.containers, "container", nil, containerHelp)
	fl.DurationVar(&f.timeout, "timeout", time.Second, "how long to wait for the reply")
	fl.StringVar(&f.tcAttach, "tc-attach", "auto", "tc attach method: auto, tcx, clsact")
	fl.BoolVar(&f.traceOff, "trace-off", false, "diagnose from namespace state alone, without tracing")
	fl.BoolVar(&f.node, "node", false, nodeHelp)
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("to")
	return cmd
}

// whyCheck turns the flags into the check a scenario would state.
func whyCheck(f whyFlags) (*scenario.Check, error) {
	if f.tcp && f.udp {
		return nil, errors.New("--tcp and --udp: choose one")
	}
	if f.timeout <= 0 || f.timeout > scenario.MaxTimeout {
		return nil, fmt.Errorf("--timeout %v: want more than 0 and at most %v", f.timeout, scenario.MaxTimeout)
	}
	c := &scenario.Check{Expect: scenario.ExpectSuccess}
	if !f.tcp && !f.udp {
		if f.listen != "" {
			return nil, errors.New("--listen needs --tcp or --udp")
		}
		to, err := netip.ParseAddr(f.to)
		if err != nil {
			if _, perr := netip.ParseAddrPort(f.to); perr == nil {
				return nil, fmt.Errorf("--to %q: a port needs --tcp or --udp", f.to)
			}
			return nil, fmt.Errorf("--to %q: not an IP address", f.to)
		}
		c.Kind, c.Name = "ping", fmt.Sprintf("ping %s -> %s", f.from, to)
		c.Ping = &scenario.PingCheck{From: f.from, To: scenario.Target{Addr: to}, Count: 1, Timeout: f.timeout}
		return c, nil
	}
	proto := "tcp"
	if f.udp {
		proto = "udp"
	}
	to, err := netip.ParseAddrPort(f.to)
	if err != nil {
		return nil, fmt.Errorf("--to %q: want IP:PORT with --%s", f.to, proto)
	}
	conn := &scenario.ConnCheck{Proto: proto, From: f.from, To: to, Timeout: f.timeout}
	c.Kind, c.Name, c.Conn = proto, fmt.Sprintf("%s %s -> %s", proto, f.from, to), conn
	if f.listen != "" {
		ns, port, ok := strings.Cut(f.listen, ":")
		p, err := strconv.ParseUint(port, 10, 16)
		if !ok || ns == "" || err != nil || p == 0 {
			return nil, fmt.Errorf("--listen %q: want NS:PORT", f.listen)
		}
		conn.ListenNS, conn.ListenPort = ns, uint16(p)
		c.Name += fmt.Sprintf(" (listen %s)", f.listen)
	}
	return c, nil
}

// whyScenario probes inside a scenario's topology: the one that is up, or
// one built for the probe and torn down after.
func whyScenario(cmd *cobra.Command, file string, c *scenario.Check, opts runner.Options) error {
	scs, err := scenario.LoadContext(cmd.Context(), file)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	if len(scs) != 1 {
		return &exitError{code: exitBadInput, err: fmt.Errorf("why takes one scenario file; %s holds %d", file, len(scs))}
	}
	sc := scs[0]
	if err := whyNames(sc, c); err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	if err := requireRoot("why"); err != nil {
		return err
	}
	ctx := cmd.Context()
	store := runs.Open()
	var topo *build.Topology
	if rec, err := store.Find(sc.Name); err == nil && rec.Kept && sameFile(rec.File, sc.File) {
		if topo, err = build.Open(sc, rec.RunID); err != nil {
			return fmt.Errorf("%w; the kept topology is incomplete: remove it with 'hopcheck down %s' and run 'hopcheck up %s' again", err, sc.Name, sc.File)
		}
		defer topo.Release()
		fmt.Fprintf(cmd.OutOrStdout(), "using %s, up as run %s\n", sc.Name, rec.RunID)
	} else {
		rec, err := recordRun(store, sc, false)
		if err != nil {
			return err
		}
		topo, err = build.Up(ctx, sc, build.Options{RunID: rec.RunID})
		if err != nil {
			store.RemoveIfGone(rec)
			return &exitError{code: exitBadInput, err: err}
		}
		defer func() {
			// Never cut short by Ctrl-C: Down must finish.
			if err := topo.Down(context.WithoutCancel(ctx)); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "hopcheck: teardown: %v (hopcheck clean removes what remains)\n", err)
				return
			}
			store.RemoveIfGone(rec)
		}()
	}
	rc, tracing := runner.Probe(ctx, topo, sc, c, opts)
	if ctx.Err() != nil {
		return &exitError{code: exitInterrupted, err: errors.New("interrupted: the probe was not judged")}
	}
	return printWhy(cmd, sc.Name, rc, tracing)
}

// sameFile reports whether two scenario paths name the same file, so that
// why never probes a kept topology built from another file of that name.
func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// whyNames checks that the probe names namespaces of the scenario.
func whyNames(sc *scenario.Scenario, c *scenario.Check) error {
	names := []string{checkFrom(c)}
	if c.Conn != nil && c.Conn.ListenNS != "" {
		names = append(names, c.Conn.ListenNS)
	}
	for _, n := range names {
		if sc.Namespace(n) == nil {
			var have []string
			for _, ns := range sc.Namespaces {
				have = append(have, ns.Name)
			}
			return fmt.Errorf("%s has no namespace %q (it has %s)", sc.File, n, strings.Join(have, ", "))
		}
	}
	return nil
}

func checkFrom(c *scenario.Check) string {
	if c.Ping != nil {
		return c.Ping.From
	}
	return c.Conn.From
}

// whyNetns probes in namespaces hopcheck did not build: the node,
// --netns namespaces and containers.
func whyNetns(cmd *cobra.Command, f participantFlags, c *scenario.Check, opts runner.Options) error {
	if err := requireRoot("why"); err != nil {
		return err
	}
	ps, err := openParticipants(cmd.Context(), f)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	defer closeParticipants(ps)
	var env snapshot.Named
	for _, p := range ps {
		env = append(env, snapshot.NamedNS{Name: p.name, Handle: p.h, Exec: p.exec, Recorded: p.recorded})
	}
	from := checkFrom(c)
	if !env.NS(from).IsOpen() {
		hint := ""
		if from == nodeName && !f.node {
			hint = " (probes start in the namespace hopcheck runs in only with --node)"
		}
		if hint == "" {
			hint = fmt.Sprintf(" (add --container %s or --netns %s)", from, from)
		}
		return &exitError{code: exitBadInput, err: fmt.Errorf("--from %s is not one of the namespaces given (%s)%s", from, participantNames(ps), hint)}
	}
	// The diagnosis may take in namespaces the path crosses beyond those
	// given (snapshot.Named.Follow); they are closed here with the rest.
	defer func() {
		for _, n := range env[len(ps):] {
			n.Handle.Close()
		}
	}()
	rc, tracing := runner.Probe(cmd.Context(), &env, nil, c, opts)
	if cmd.Context().Err() != nil {
		// Ctrl-C or SIGTERM: the probe was cut short, which says nothing
		// of the network, and its trace was not incomplete by fault.
		return &exitError{code: exitInterrupted, err: errors.New("interrupted: the probe was not judged")}
	}
	return printWhy(cmd, "why", rc, tracing)
}

// printWhy prints the probe with its hops and diagnosis, whatever its
// outcome, and maps it to the exit code.
func printWhy(cmd *cobra.Command, name string, rc report.Check, tracing report.Tracing) error {
	text := report.NewText(cmd.OutOrStdout(), report.TextOptions{Color: report.ColorEnabled(os.Stdout), TraceAlways: true})
	if !tracing.Enabled {
		// The runner names run's flag; why's is --trace-off.
		rc.TraceNote = "tracing off: " + strings.Replace(tracing.Reason, "--trace off", "--trace-off", 1)
	}
	text.CheckDone(name, rc)
	if err := text.Err(); err != nil {
		return err
	}
	if !rc.Passed {
		return &exitError{code: exitCheckFailed}
	}
	return nil
}

// recordRun saves the record of a run of sc before its first namespace
// exists, so that a concurrent `hopcheck clean` leaves it alone.
func recordRun(store runs.Store, sc *scenario.Scenario, kept bool) (*runs.Record, error) {
	rec, err := runs.New(sc.Name, sc.File, sc.NamespaceNames(), kept)
	if err != nil {
		return nil, err
	}
	return rec, store.Save(rec)
}

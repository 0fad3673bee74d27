package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/hopcheck/hopcheck/harness/runs"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/trace"
	"github.com/spf13/cobra"
)

func newTraceCmd() *cobra.Command {
	var (
		pf       participantFlags
		host     string
		proto    string
		tcAttach string
	)
	cmd := &cobra.Command{
		Use:   "trace --netns A,B,... [--container C] [--node] [--host IP] [--proto icmp|tcp|udp]",
		Short: "Trace packets live in existing namespaces, hop by hop, with drops",
		Long: `trace attaches hopcheck's tc programs to every interface of the given
network namespaces (made with 'ip netns add', by 'hopcheck up', by a container
runtime: any name in /var/run/netns, or a path such as /proc/PID/ns/net) and
prints every packet crossing them, and every packet the kernel drops in them
with the drop reason, until interrupted. Then it detaches everything.

--container adds a running container's namespace, called by the container's
name (web/eth0): NAME is looked up with every runtime CLI on PATH (docker,
podman, crictl), and exactly one must know it; docker:NAME, podman:NAME or
cri:NAME asks one. The CLI reads DOCKER_HOST, CONTAINER_HOST,
CONTAINERS_STORAGE_CONF and CONTAINER_RUNTIME_ENDPOINT as usual.`,
		Example: `  hopcheck trace --netns ns1,ns2 --host 10.0.0.3 --proto icmp
  hopcheck trace --netns $(ip netns list | awk '{print $1}' | paste -sd,)
  hopcheck trace --node --container web,podman:db --proto tcp`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if pf.empty() && !pf.node {
				return &exitError{code: exitBadInput, err: errors.New("--node, --netns, --container: name at least one namespace")}
			}
			if err := checkParticipantFlags(pf); err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			var f trace.Filter
			if host != "" {
				a, err := netip.ParseAddr(host)
				if err != nil {
					return &exitError{code: exitBadInput, err: fmt.Errorf("--host %q: not an IP address", host)}
				}
				f.Host = a
			}
			p, err := trace.ParseProto(proto)
			if err != nil {
				return &exitError{code: exitBadInput, err: fmt.Errorf("--proto: %w", err)}
			}
			f.Proto = p
			mode, err := trace.ParseAttachMode(tcAttach)
			if err != nil {
				return &exitError{code: exitBadInput, err: fmt.Errorf("--tc-attach: %w", err)}
			}
			if err := requireRoot("trace"); err != nil {
				return err
			}
			if pf.node {
				mode = nodeAttach(mode)
			}
			return traceLive(cmd.Context(), cmd.OutOrStdout(), pf, f, mode)
		},
	}
	cmd.Flags().StringSliceVar(&pf.netns, "netns", nil, "namespaces to trace: names from 'ip netns list' or paths, comma-separated")
	cmd.Flags().StringSliceVar(&pf.containers, "container", nil, containerHelp)
	cmd.Flags().BoolVar(&pf.node, "node", false, nodeHelp)
	cmd.Flags().StringVar(&host, "host", "", "show only packets to or from `IP`")
	cmd.Flags().StringVar(&proto, "proto", "", "show only icmp, tcp or udp")
	cmd.Flags().StringVar(&tcAttach, "tc-attach", "auto", "tc attach method: auto, tcx, clsact")
	return cmd
}

// traceLive attaches to every interface of the namespaces and prints
// events until ctx ends.
func traceLive(ctx context.Context, w io.Writer, pf participantFlags, f trace.Filter, mode trace.AttachMode) error {
	// A live trace shows every packet, the user's own pings included.
	tr, err := trace.New(trace.Options{Attach: mode, AllPackets: true})
	if err != nil {
		return err
	}
	// clsact filters outlive a killed process: where they go is recorded
	// before attaching (rec), so that `hopcheck clean` can remove them,
	// and the record goes once Close has detached them.
	var rec *runs.Attached
	store := runs.Open()
	defer func() {
		if err := tr.Close(); err == nil && rec != nil {
			store.RemoveAttached(rec)
		}
	}()
	nss, err := openParticipants(ctx, pf)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	defer closeParticipants(nss)
	if tr.Mode() == trace.AttachClsact {
		rec = runs.NewAttached()
		for _, n := range nss {
			ino, err := netns.Inode(n.h)
			if err != nil {
				return err
			}
			rec.Namespaces = append(rec.Namespaces, runs.AttachedNS{Name: n.path, Inode: ino, Label: n.name})
		}
		if err := store.SaveAttached(rec); err != nil {
			rec = nil
			return err
		}
	}
	for _, n := range nss {
		if err := tr.AddNamespace(n.name, n.h); err != nil {
			return err
		}
		if err := tr.AttachAll(n.name); err != nil {
			return err
		}
	}
	if rec != nil {
		own := tr.OwnQdiscs()
		for i, n := range nss {
			rec.Namespaces[i].OwnQdiscs = own[n.name]
		}
		if err := store.SaveAttached(rec); err != nil {
			return err
		}
	}
	if err := tr.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "tracing %s (%s); Ctrl-C to stop\n", participantNames(nss), tr.Mode())

	var origin time.Duration
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			lost, _ := tr.Lost()
			fmt.Fprintf(w, "stopped; %d events lost\n", lost)
			return nil
		case <-tick.C:
		}
		for _, ev := range tr.Take() {
			p, err := trace.Decode(ev)
			if err != nil || !f.Match(p) {
				continue
			}
			if origin == 0 {
				origin = ev.Time
			}
			fmt.Fprintln(w, liveLine(ev, p, ev.Time-origin))
		}
	}
}

// liveLine formats one event: time since the first, where, what.
func liveLine(ev trace.Event, p trace.Packet, t time.Duration) string {
	where := ev.NS + "/" + ev.If
	if ev.Kind == trace.KindDrop {
		if ev.If == "" {
			where = ev.NS
		}
		return fmt.Sprintf("%10.6fs  DROP %-24s %s at %s: %s", t.Seconds(), where, p, ev.Location, ev.ReasonName)
	}
	return fmt.Sprintf("%10.6fs  %-29s %-7s %s", t.Seconds(), where, ev.Dir, p)
}

// checkNetnsList refuses empty names in a --netns list (",,," splits into
// four): an empty name would open the netns run directory itself.
func checkNetnsList(names []string) error {
	for i, n := range names {
		if strings.TrimSpace(n) == "" {
			return fmt.Errorf("--netns: name %d of %d is empty; give names from 'ip netns list' or paths, separated by commas", i+1, len(names))
		}
	}
	return nil
}

// openNamespace opens a namespace by name (/var/run/netns) or by path, and
// refuses hopcheck's own namespace: attaching programs there or probing
// from it would change or use the caller's root namespace.
func openNamespace(s string) (netns.Handle, error) {
	h, err := netns.OpenArg(s)
	if err != nil {
		return h, err
	}
	own, err := netns.Current()
	if err != nil {
		h.Close()
		return h, err
	}
	defer own.Close()
	if h.Equal(own) {
		h.Close()
		return netns.Handle(-1), fmt.Errorf("%s is the namespace hopcheck runs in; hopcheck attaches to it only with --node (or pick a namespace of the containers, see 'ip netns list')", s)
	}
	return h, nil
}

package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/harness/diagnose/iptrules"
	"github.com/hopcheck/hopcheck/harness/diagnose/nftrules"
	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/nl"
)

// Env is the set of namespaces a snapshot covers; build.Topology
// satisfies it, and so does Named.
type Env interface {
	// Namespaces returns the scenario names of the namespaces.
	Namespaces() []string
	// NS returns the open handle of the namespace called name.
	NS(name string) netns.Handle
}

// ErrNoIPTablesSave is recorded (in NSState.Errors) and returned when
// iptables-save is not installed: the snapshot then has no iptables.
var ErrNoIPTablesSave = errors.New("iptables-save not found in PATH")

// ErrNoIP6TablesSave is the same for ip6tables-save: the snapshot then has
// no ip6tables.
var ErrNoIP6TablesSave = errors.New("ip6tables-save not found in PATH")

// Take reads the state of every namespace of env: links (with vxlan
// settings and FDB), IPv4 and IPv6 addresses and routes of every table,
// ARP and NDP neighbors, the sysctls the diagnosis reads, iptables and
// ip6tables with counters, nftables (nftrules.Read), and listening
// sockets. A part that cannot be read is named in its namespace's Errors
// and the rest is still taken; the error returned joins what could not be
// read at all (a namespace that cannot be entered, ctx done). The State is
// returned in every case.
func Take(ctx context.Context, env Env) (*State, error) {
	st := &State{}
	var errs []error
	handles := map[string]netns.Handle{}
	for _, name := range env.Namespaces() {
		handles[name] = env.NS(name)
	}
	// Namespaces are read a few at a time: most of a snapshot is waiting
	// for iptables-save, and a diagnosis waits for the whole snapshot.
	names := env.Namespaces()
	nss := make([]*NSState, len(names))
	nsErrs := make([]error, len(names))
	sem := make(chan struct{}, snapshotWorkers)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := ctx.Err(); err != nil {
				nss[i], nsErrs[i] = &NSState{Name: name}, err
				return
			}
			nss[i], nsErrs[i] = takeNS(ctx, name, handles)
		}()
	}
	wg.Wait()
	for i, n := range nss {
		if nsErrs[i] != nil {
			errs = append(errs, fmt.Errorf("%s: %w", names[i], nsErrs[i]))
		}
		st.Namespaces = append(st.Namespaces, n)
	}
	resolvePeers(st)
	if rec, ok := env.(recorder); ok {
		for _, n := range st.Namespaces {
			n.Recorded = rec.Recorded(n.Name)
		}
	}
	return st, errors.Join(errs...)
}

// recorder is an Env that knows the addresses runtimes recorded for its
// namespaces (Named).
type recorder interface {
	Recorded(name string) []RecordedAddr
}

// snapshotWorkers bounds how many namespaces Take reads at once.
const snapshotWorkers = 4

// TakeCounters reads only the iptables and nftables rules and counters of
// every namespace of env: what Delta needs from before a probe, and cheap
// enough to take before every probe check (one iptables-save per
// namespace).
func TakeCounters(ctx context.Context, env Env) (*State, error) {
	st := &State{}
	var errs []error
	for _, name := range env.Namespaces() {
		n := &NSState{Name: name}
		tables, err := iptablesSave(ctx, env.NS(name))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			n.Errors = append(n.Errors, err.Error())
		}
		n.IPTables = tables
		tables6, err := ip6tablesSave(ctx, env.NS(name))
		if err != nil && !errors.Is(err, ErrNoIP6TablesSave) {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			n.Errors = append(n.Errors, err.Error())
		}
		n.IP6Tables = tables6
		if n.NFT, err = nftrules.Read(env.NS(name)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			n.Errors = append(n.Errors, err.Error())
		}
		st.Namespaces = append(st.Namespaces, n)
	}
	return st, errors.Join(errs...)
}

// takeNS reads one namespace. handles holds every namespace of the
// snapshot, to name the namespaces veth peers live in.
func takeNS(ctx context.Context, name string, handles map[string]netns.Handle) (*NSState, error) {
	n := &NSState{Name: name, Sysctls: map[string]string{}}
	ns := handles[name]
	if !ns.IsOpen() {
		return n, errors.New("namespace handle is closed")
	}
	h, err := nl.HandleAt(ns, unix.NETLINK_ROUTE, unix.NETLINK_INET_DIAG)
	if err != nil {
		return n, err
	}
	defer h.Close()

	fail := func(what string, err error) { n.Errors = append(n.Errors, fmt.Sprintf("%s: %v", what, err)) }
	links, err := nl.Dump(h.LinkList)
	if err != nil {
		// Without links nothing else can be named.
		return n, fmt.Errorf("list links: %w", err)
	}
	byIndex := map[int]string{}
	for _, l := range links {
		byIndex[l.Attrs().Index] = l.Attrs().Name
	}
	nsids := peerNamespaces(h, name, handles)
	var outside map[int]outsideNS
	for _, l := range links {
		link, err := readLink(h, l, byIndex, nsids, name)
		if err != nil {
			fail("addresses of "+l.Attrs().Name, err)
		}
		if id := l.Attrs().NetNsID; link.Kind == "veth" && link.Peer == "" && id >= 0 {
			if outside == nil {
				outside = findOutside(ctx, h, handles)
			}
			link.PeerOutside, link.PeerOutsideWho, link.PeerOutsideInode = outside[id].path, outside[id].who, outside[id].ino
		}
		if link.Master != "" && link.Peer == "" && link.Kind != "vxlan" {
			if link.LearnedMACs, err = learnedMACs(h, link.Index); err != nil {
				fail("fdb of "+link.Name, err)
			}
		}
		n.Links = append(n.Links, link)
	}
	if n.Routes, err = readRoutes(h, byIndex); err != nil {
		fail("routes", err)
	}
	if n.Rules, err = readRules(h); err != nil {
		fail("rules", err)
	}
	if n.Neighbors, err = readNeighbors(h, byIndex); err != nil {
		fail("neighbors", err)
	}
	if n.Listeners, err = readListeners(h); err != nil {
		fail("sockets", err)
	}
	if err := readSysctls(ns, n); err != nil {
		fail("sysctls", err)
	}
	if n.IPTables, err = iptablesSave(ctx, ns); err != nil {
		fail("iptables", err)
	}
	if n.IP6Tables, err = ip6tablesSave(ctx, ns); err != nil {
		fail("ip6tables", err)
	}
	if n.NFT, err = nftrules.Read(ns); err != nil {
		fail("nftables", err)
	}
	return n, nil
}

// peerNamespaces maps the netns ids that namespace name knows its peers'
// namespaces by (IFLA_LINK_NETNSID) to their scenario names.
func peerNamespaces(h *netlink.Handle, name string, handles map[string]netns.Handle) map[int]string {
	out := map[int]string{}
	for other, oh := range handles {
		if other == name || !oh.IsOpen() {
			continue
		}
		if id, err := h.GetNetNsIdByFd(int(oh)); err == nil && id >= 0 {
			out[id] = other
		}
	}
	return out
}

// readLink converts a netlink link. The peer of a veth is recorded as its
// namespace and ifindex here; resolvePeers names it once every namespace
// is read.
func readLink(h *netlink.Handle, l netlink.Link, byIndex map[int]string, nsids map[int]string, self string) (Link, error) {
	a := l.Attrs()
	out := Link{
		Name:      a.Name,
		Index:     a.Index,
		Kind:      l.Type(),
		Up:        a.Flags&net.FlagUp != 0,
		Carrier:   a.RawFlags&unix.IFF_LOWER_UP != 0,
		OperState: a.OperState.String(),
		Master:    byIndex[a.MasterIndex],
		MTU:       a.MTU,
	}
	if a.Flags&net.FlagLoopback != 0 {
		out.Kind = "loopback"
	}
	if len(a.HardwareAddr) > 0 {
		out.MAC = a.HardwareAddr.String()
	}
	if out.Kind == "veth" && a.ParentIndex > 0 {
		out.PeerIndex = a.ParentIndex
		peerNS := self
		if a.NetNsID >= 0 {
			peerNS = nsids[a.NetNsID]
		}
		if peerNS != "" {
			// Completed to "ns/if" by resolvePeers.
			out.Peer = peerNS + "/"
		}
	}
	if vx, ok := l.(*netlink.Vxlan); ok {
		out.VXLAN = &VXLAN{
			VNI: vx.VxlanId, Port: vx.Port, Remote: addrOf(vx.Group), Local: addrOf(vx.SrcAddr),
			Dev: byIndex[vx.VtepDevIndex], Learning: vx.Learning,
		}
	}
	addrs, err := nl.Dump(func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_ALL) })
	for _, ad := range addrs {
		if p, ok := nl.Prefix(ad.IPNet); ok {
			out.Addrs = append(out.Addrs, p)
		}
	}
	if out.VXLAN != nil && err == nil {
		out.VXLAN.FDB, err = readFDB(h, a.Index)
	}
	return out, err
}

// readFDB dumps a vxlan device's forwarding entries that name a remote
// VTEP (bridge fdb show dev X).
func readFDB(h *netlink.Handle, index int) ([]FDBEntry, error) {
	ns, err := nl.Dump(func() ([]netlink.Neigh, error) { return h.NeighList(index, unix.AF_BRIDGE) })
	if err != nil {
		return nil, fmt.Errorf("fdb: %w", err)
	}
	var out []FDBEntry
	for _, n := range ns {
		if n.LinkIndex != index {
			continue
		}
		if dst := addrOf(n.IP); dst.IsValid() {
			out = append(out, FDBEntry{MAC: n.HardwareAddr.String(), Dst: dst})
		}
	}
	return out, nil
}

// learnedMACs dumps the MACs a bridge learned behind port index (bridge
// fdb show brport X, leaving out the port's own permanent entries).
func learnedMACs(h *netlink.Handle, index int) ([]string, error) {
	ns, err := nl.Dump(func() ([]netlink.Neigh, error) { return h.NeighList(index, unix.AF_BRIDGE) })
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range ns {
		if n.LinkIndex == index && n.State&netlink.NUD_PERMANENT == 0 && len(n.HardwareAddr) > 0 {
			out = append(out, n.HardwareAddr.String())
		}
	}
	return out, nil
}

// resolvePeers names each veth peer "ns/if" from the peer namespace's
// links, now that every namespace is read. A peer in a namespace outside
// the snapshot is left unnamed.
func resolvePeers(st *State) {
	for _, n := range st.Namespaces {
		for i := range n.Links {
			l := &n.Links[i]
			ns, ok := strings.CutSuffix(l.Peer, "/")
			if !ok {
				continue
			}
			l.Peer = ""
			for _, pl := range st.NS(ns).linksOrNil() {
				if pl.Index == l.PeerIndex {
					l.Peer = ns + "/" + pl.Name
				}
			}
		}
	}
}

func (n *NSState) linksOrNil() []Link {
	if n == nil {
		return nil
	}
	return n.Links
}

// readNeighbors dumps the IPv4 (ARP) and IPv6 (NDP) neighbor tables.
func readNeighbors(h *netlink.Handle, byIndex map[int]string) ([]Neighbor, error) {
	var ns []netlink.Neigh
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		got, err := nl.Dump(func() ([]netlink.Neigh, error) { return h.NeighList(0, fam) })
		if err != nil {
			return nil, err
		}
		ns = append(ns, got...)
	}
	var out []Neighbor
	for _, nb := range ns {
		ip := addrOf(nb.IP)
		if !ip.IsValid() {
			continue
		}
		n := Neighbor{IP: ip, Dev: byIndex[nb.LinkIndex], State: neighState(nb.State)}
		if len(nb.HardwareAddr) > 0 {
			n.MAC = nb.HardwareAddr.String()
		}
		out = append(out, n)
	}
	return out, nil
}

// neighState names a NUD state as ip neigh does.
func neighState(s int) string {
	names := []struct {
		bit  int
		name string
	}{
		{netlink.NUD_INCOMPLETE, NeighIncomplete}, {netlink.NUD_REACHABLE, "REACHABLE"},
		{netlink.NUD_STALE, "STALE"}, {netlink.NUD_DELAY, "DELAY"}, {netlink.NUD_PROBE, "PROBE"},
		{netlink.NUD_FAILED, NeighFailed}, {netlink.NUD_NOARP, "NOARP"}, {netlink.NUD_PERMANENT, "PERMANENT"},
	}
	var out []string
	for _, n := range names {
		if s&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "NONE"
	}
	return strings.Join(out, ",")
}

// readListeners lists TCP sockets in LISTEN and UDP sockets that are not
// connected, IPv4 and IPv6, through sock_diag.
func readListeners(h *netlink.Handle) ([]Listener, error) {
	var out []Listener
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		tcp, err := nl.Dump(func() ([]*netlink.Socket, error) { return h.SocketDiagTCP(fam) })
		if err != nil {
			return out, fmt.Errorf("sock_diag tcp: %w", err)
		}
		for _, s := range tcp {
			if s.State == unix.BPF_TCP_LISTEN {
				out = append(out, Listener{Proto: "tcp", Addr: netip.AddrPortFrom(addrOf(s.ID.Source), s.ID.SourcePort)})
			}
		}
		udp, err := nl.Dump(func() ([]*netlink.Socket, error) { return h.SocketDiagUDP(fam) })
		if err != nil {
			return out, fmt.Errorf("sock_diag udp: %w", err)
		}
		for _, s := range udp {
			if d := addrOf(s.ID.Destination); !d.IsValid() || d.IsUnspecified() {
				out = append(out, Listener{Proto: "udp", Addr: netip.AddrPortFrom(addrOf(s.ID.Source), s.ID.SourcePort)})
			}
		}
	}
	return out, nil
}

// sysctlKeys are the per-namespace sysctls the diagnosis reads, and
// linkSysctls those read for all, default and every link.
var (
	sysctlKeys = []string{"net.ipv4.ip_forward", "net.ipv4.icmp_echo_ignore_all",
		"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"}
	linkSysctls  = []string{"rp_filter", "forwarding", "accept_local", "arp_ignore", "arp_announce", "proxy_arp"}
	link6Sysctls = []string{"forwarding", "disable_ipv6"}
)

// readSysctls reads the sysctls inside ns: /proc/sys/net resolves against
// the namespace of the thread that opens the file.
func readSysctls(ns netns.Handle, n *NSState) error {
	keys := append([]string(nil), sysctlKeys...)
	for _, dev := range append([]string{"all", "default"}, linkNames(n)...) {
		for _, k := range linkSysctls {
			keys = append(keys, "net.ipv4.conf."+dev+"."+k)
		}
		for _, k := range link6Sysctls {
			keys = append(keys, "net.ipv6.conf."+dev+"."+k)
		}
	}
	paths := make([]string, len(keys))
	for i, k := range keys {
		paths[i] = sysctlPath(k)
	}
	vals := make([]string, len(keys))
	err := netns.Do(ns, func() error {
		var errs []error
		for i, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				if !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
				continue
			}
			vals[i] = strings.TrimSpace(string(b))
		}
		return errors.Join(errs...)
	})
	for i, k := range keys {
		if vals[i] != "" {
			n.Sysctls[k] = vals[i]
		}
	}
	return err
}

// sysctlPath maps a dotted key whose interface part may itself hold dots
// ("net.ipv4.conf.eth0.100.rp_filter") to its file under /proc/sys: the
// first four levels and the last are fixed, the rest is the interface.
func sysctlPath(key string) string {
	parts := strings.Split(key, ".")
	if len(parts) > 5 && parts[2] == "conf" {
		dev := strings.Join(parts[3:len(parts)-1], ".")
		parts = append(parts[:3], dev, parts[len(parts)-1])
	}
	return filepath.Join(append([]string{"/proc/sys"}, parts...)...)
}

func linkNames(n *NSState) []string {
	out := make([]string, len(n.Links))
	for i, l := range n.Links {
		out[i] = l.Name
	}
	return out
}

// iptablesSave runs `iptables-save -c` inside ns and parses its output.
//
// The child process inherits the namespace of the thread that forks it,
// so it is started inside netns.Do; os/exec forks from the calling,
// locked thread. Its output goes to memory files rather than pipes, so
// that starting it spawns no goroutine inside the switched section; it is
// waited for outside, where ctx can cut it short.
func iptablesSave(ctx context.Context, ns netns.Handle) ([]iptrules.Table, error) {
	path, err := exec.LookPath("iptables-save")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoIPTablesSave, err)
	}
	return saveTables(ctx, ns, path)
}

// ip6tablesSave runs `ip6tables-save -c` inside ns, as iptablesSave does.
func ip6tablesSave(ctx context.Context, ns netns.Handle) ([]iptrules.Table, error) {
	path, err := exec.LookPath("ip6tables-save")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoIP6TablesSave, err)
	}
	return saveTables(ctx, ns, path)
}

// saveTables runs the save command at path with -c inside ns and parses
// its output.
func saveTables(ctx context.Context, ns netns.Handle, path string) ([]iptrules.Table, error) {
	stdout, err := memFile(filepath.Base(path) + "-stdout")
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := memFile(filepath.Base(path) + "-stderr")
	if err != nil {
		return nil, err
	}
	defer stderr.Close()

	cmd := exec.Command(path, "-c")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := netns.Do(ns, cmd.Start); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	if err := wait(ctx, cmd); err != nil {
		msg, _ := readAll(stderr)
		return nil, fmt.Errorf("%s -c: %w: %s", path, err, strings.TrimSpace(msg))
	}
	out, err := readAll(stdout)
	if err != nil {
		return nil, fmt.Errorf("read %s output: %w", filepath.Base(path), err)
	}
	return iptrules.ParseSave(out)
}

// wait waits for cmd, killing it when ctx is done first. It returns only
// after the process has been reaped, so no goroutine outlives it.
func wait(ctx context.Context, cmd *exec.Cmd) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return context.Cause(ctx)
	}
}

// memFile returns an anonymous in-memory file.
func memFile(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// readAll reads f from its start.
func readAll(f *os.File) (string, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	b, err := io.ReadAll(f)
	return string(b), err
}

// addrOf converts an IP from netlink, unmapping IPv4; invalid for nil.
func addrOf(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

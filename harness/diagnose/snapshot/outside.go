package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hopcheck/hopcheck/internal/netns"
)

// Finding the namespaces a path leaves into: a veth whose peer is in a
// namespace hopcheck was not given names that namespace only by a netns
// id (IFLA_LINK_NETNSID), which means nothing to a user. findOutside maps
// those ids to a name the user can pass back to hopcheck: an `ip netns`
// name, else /proc/PID/ns/net of a process living there (a container's).

// outsideNS is a namespace outside the snapshot, as a user names it.
type outsideNS struct {
	path string // "hcdockinet" (ip netns) or "/proc/4242/ns/net"
	who  string // "process 4242 (httpd)", or ""
	ino  uint64 // the namespace's inode, to check a later open of path
}

// HomeNS is Link.PeerOutsideWho for a veth whose peer is in the namespace
// hopcheck runs in, which takes part only when the user asks for it
// (--node).
const HomeNS = "the namespace hopcheck runs in"

// maxOutsideProcs bounds how many processes findOutside looks at: a node
// with more processes than that is searched only this far.
const maxOutsideProcs = 20000

// findOutside returns, for every netns id that h's namespace has assigned,
// how a user names that namespace. Namespaces in handles are skipped
// (they are in the snapshot already). Named namespaces come first; a
// process is taken for a namespace without a name, the oldest (lowest
// PID) first, which is a container's init rather than a passing exec.
func findOutside(ctx context.Context, h *netlink.Handle, handles map[string]netns.Handle) map[int]outsideNS {
	out := map[int]outsideNS{}
	seen := map[uint64]bool{}
	for _, hd := range handles {
		if ino, err := netns.Inode(hd); err == nil {
			seen[ino] = true
		}
	}
	try := func(path, name, who string) {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		ino, err := netns.Inode(netns.Handle(fd))
		if err != nil || seen[ino] {
			return
		}
		seen[ino] = true
		id, err := h.GetNetNsIdByFd(fd)
		if err != nil || id < 0 {
			return
		}
		if _, ok := out[id]; !ok {
			out[id] = outsideNS{path: name, who: who, ino: ino}
		}
	}
	// hopcheck's own namespace first: it takes part only with --node.
	try("/proc/thread-self/ns/net", "", HomeNS)
	names, _ := filepath.Glob("/run/netns/*")
	sort.Strings(names)
	for _, p := range names {
		try(p, filepath.Base(p), "")
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	for i, pid := range pids {
		if i >= maxOutsideProcs || ctx.Err() != nil {
			break
		}
		p := "/proc/" + strconv.Itoa(pid) + "/ns/net"
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		who := "process " + strconv.Itoa(pid)
		if c := strings.TrimSpace(string(comm)); c != "" {
			who += " (" + c + ")"
		}
		try(p, p, who)
	}
	return out
}

// Package netns runs code inside Linux network namespaces with the thread
// discipline that namespace switching needs, and names the namespaces that
// hopcheck creates so that runs never collide and leftovers can be found.
//
// It is the only place in hopcheck that calls setns. Work runs on a fresh
// goroutine whose OS thread is locked, switched, and switched back; the
// thread stays locked if switching back fails, so the thread dies with
// its goroutine instead of serving other goroutines in the wrong namespace
// (the same rule as containernetworking/plugins pkg/ns). When switching back
// succeeds the thread is unlocked and reused, which keeps Do cheap: hopcheck
// calls it for every socket it opens inside a namespace.
package netns

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RunDir is where iproute2 and hopcheck keep named network namespaces
// (bind mounts of /proc/PID/ns/net); `ip netns list` reads it.
const RunDir = "/var/run/netns"

// Prefix starts the name of every namespace hopcheck creates, so that
// `hopcheck clean` recognises its own objects and nothing else.
const Prefix = "hc"

// Handle is an open network namespace. The zero value is not valid; use
// Open, Create or Current.
type Handle = vnetns.NsHandle

// Do runs fn with its OS thread switched into the namespace ns, and waits for
// it. fn must not start goroutines that expect to be in ns: they run on other
// threads. Sockets opened inside fn stay in ns and may be used anywhere.
func Do(ns Handle, fn func() error) error {
	if !ns.IsOpen() {
		return errors.New("netns: closed namespace handle")
	}
	type result struct {
		err      error
		panicked bool
		p        any
	}
	done := make(chan result, 1)
	go func() {
		// Unlocked only after a successful switch back: see the package comment.
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			done <- result{err: fmt.Errorf("netns: get current namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := vnetns.Set(ns); err != nil {
			done <- result{err: fmt.Errorf("netns: enter %s: %w", ns, err)}
			return
		}
		var r result
		func() {
			// A panic in fn must not skip the switch back, nor kill the
			// process from this goroutine: it is re-raised in the caller,
			// whose own recover (the runner's, for one) then sees it.
			defer func() {
				if p := recover(); p != nil {
					r.panicked, r.p = true, p
				}
			}()
			r.err = fn()
		}()
		if err := vnetns.Set(orig); err != nil {
			// The thread is in the wrong namespace; it must not be reused.
			// Exiting the goroutine with the thread locked terminates it.
			r.err = errors.Join(r.err, fmt.Errorf("netns: restore namespace: %w", err))
			done <- r
			return
		}
		runtime.UnlockOSThread()
		done <- r
	}()
	r := <-done
	if r.panicked {
		panic(r.p)
	}
	return r.err
}

// Create makes a new named network namespace (visible in `ip netns list`)
// without changing the namespace of the caller's threads, and returns an open
// handle to it. The caller owns the handle.
func Create(name string) (Handle, error) {
	var h Handle
	err := do(func() error {
		var err error
		// NewNamed switches the calling thread into the new namespace;
		// do() runs on a locked thread that is restored afterwards.
		h, err = vnetns.NewNamed(name)
		if err != nil {
			return fmt.Errorf("netns: create %s: %w", name, err)
		}
		return nil
	})
	return h, err
}

// do runs fn on a locked thread and restores that thread's namespace after,
// for library calls (like NewNamed) that switch the calling thread.
func do(fn func() error) error {
	cur, err := vnetns.Get()
	if err != nil {
		return fmt.Errorf("netns: get current namespace: %w", err)
	}
	defer cur.Close()
	return Do(cur, fn)
}

// ErrNotNetns is returned for a path that is not a network namespace.
var ErrNotNetns = errors.New("not a network namespace")

// ErrBadName is returned for a namespace name that is not one entry of
// RunDir: empty, ".", "..", or holding a '/'.
var ErrBadName = errors.New("not a namespace name")

// checkName returns ErrBadName unless name is one entry of RunDir.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("%w: %q (names are entries of %s, as 'ip netns list' shows them)", ErrBadName, name, RunDir)
	}
	return nil
}

// Open returns a handle to the named namespace (an entry of RunDir).
func Open(name string) (Handle, error) {
	if err := checkName(name); err != nil {
		return vnetns.None(), fmt.Errorf("netns: open: %w", err)
	}
	return OpenPath(filepath.Join(RunDir, name))
}

// OpenPath returns a handle to the network namespace at path (a
// /var/run/netns entry, or /proc/PID/ns/net). Anything else is refused:
// a path that is not a regular file (a FIFO is never opened), and a file
// that the kernel does not say is a network namespace.
func OpenPath(path string) (Handle, error) {
	fail := func(err error) (Handle, error) {
		return vnetns.None(), fmt.Errorf("netns: open %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fail(err)
	}
	// Namespace files (nsfs) are regular files to stat.
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fail(ErrNotNetns)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return fail(err)
	}
	typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil || typ != unix.CLONE_NEWNET {
		unix.Close(fd)
		return fail(ErrNotNetns)
	}
	return Handle(fd), nil
}

// OpenArg opens a namespace as a user names it on the command line: a
// name from `ip netns list`, or a path (anything holding a '/'), such as
// /proc/PID/ns/net. ExecPrefix is its runnable form.
func OpenArg(s string) (Handle, error) {
	if strings.ContainsRune(s, '/') {
		return OpenPath(s)
	}
	return Open(s)
}

// Current returns a handle to the namespace of the calling thread. On a
// thread that no Do switched (every thread outside Do) that is the
// process's own namespace.
func Current() (Handle, error) {
	h, err := vnetns.Get()
	if err != nil {
		return vnetns.None(), fmt.Errorf("netns: get current namespace: %w", err)
	}
	return h, nil
}

// Delete removes the named namespace. The kernel frees it, and every link
// and rule in it, when the last handle and process inside are gone.
// Deleting a namespace that does not exist is not an error, and neither is
// an entry that was never mounted (what a process killed between creating
// the entry and mounting the namespace on it leaves): it is removed.
func Delete(name string) error {
	_, err := remove(name)
	return err
}

// DeleteOwn removes a namespace that hopcheck made (a name ParseName
// accepts; any other is refused) and reports whether this call removed it:
// false when it was already gone, for example removed by a concurrent
// clean.
func DeleteOwn(name string) (removed bool, err error) {
	if _, _, ok := ParseName(name); !ok {
		return false, fmt.Errorf("netns: delete %q: %w: hopcheck deletes only the hc<run>-<ns> namespaces it made", name, ErrBadName)
	}
	return remove(name)
}

// remove unmounts and removes the entry name of RunDir. Only a single
// entry of RunDir is ever touched: the name cannot climb out of it, and a
// symbolic link there is neither followed by the unmount nor by the
// removal.
func remove(name string) (bool, error) {
	if err := checkName(name); err != nil {
		return false, fmt.Errorf("netns: delete: %w", err)
	}
	path := filepath.Join(RunDir, name)
	err := unix.Unmount(path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
	switch {
	case err == nil, errors.Is(err, unix.EINVAL):
		// EINVAL: not a mount point, a half-created entry; remove it.
	case errors.Is(err, unix.ENOENT):
		return false, nil
	default:
		return false, fmt.Errorf("netns: delete %s: unmount: %w", name, err)
	}
	if err := os.Remove(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("netns: delete %s: %w", name, err)
	}
	return true, nil
}

// Exists reports whether a named namespace exists.
func Exists(name string) bool {
	_, err := os.Stat(filepath.Join(RunDir, name))
	return err == nil
}

// Name returns the kernel name for namespace ns of run runID:
// "hc<runID>-<ns>". Interface names inside it stay as the scenario writes
// them, because the namespace already isolates them.
func Name(runID, ns string) string {
	return Prefix + runID + "-" + ns
}

// ParseName splits a name made by Name into run ID and scenario namespace.
// ok is false for names hopcheck did not make.
func ParseName(name string) (runID, ns string, ok bool) {
	if !strings.HasPrefix(name, Prefix) {
		return "", "", false
	}
	rest := name[len(Prefix):]
	i := strings.IndexByte(rest, '-')
	if i <= 0 || i == len(rest)-1 || !IsRunID(rest[:i]) || checkName(name) != nil {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// List returns the names of all named namespaces hopcheck made (of any run).
func List() ([]string, error) {
	ents, err := os.ReadDir(RunDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("netns: list %s: %w", RunDir, err)
	}
	var out []string
	for _, e := range ents {
		if _, _, ok := ParseName(e.Name()); ok {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Cookie returns the kernel's netns cookie of ns (SO_NETNS_COOKIE), the
// identifier BPF programs see as bpf_get_netns_cookie.
func Cookie(ns Handle) (uint64, error) {
	var cookie uint64
	err := Do(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("netns: socket: %w", err)
		}
		defer unix.Close(fd)
		v, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
		if err != nil {
			return fmt.Errorf("netns: SO_NETNS_COOKIE: %w", err)
		}
		cookie = v
		return nil
	})
	return cookie, err
}

// Inode returns the inode number of ns, the identifier `ip netns identify`
// and /proc/PID/ns/net show.
func Inode(ns Handle) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(ns), &st); err != nil {
		return 0, fmt.Errorf("netns: stat: %w", err)
	}
	return st.Ino, nil
}

// IsRunID reports whether s has the form of a run ID: 1 to 12 characters
// of [a-z0-9] (NewRunID makes six).
func IsRunID(s string) bool {
	if len(s) == 0 || len(s) > 12 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// NewRunID returns a fresh random run identifier: six characters of
// [a-z0-9], short enough to keep namespace names readable and random enough
// that two runs started at once do not collide.
func NewRunID() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("netns: run id: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:]), nil
}

// Exec replaces the calling process with path, running inside ns. It
// returns only on failure. Entering ns on the one locked thread is enough
// because execve keeps the calling thread's namespaces and ends all others.
func Exec(ns Handle, path string, argv, env []string) error {
	runtime.LockOSThread()
	if err := vnetns.Set(ns); err != nil {
		return fmt.Errorf("netns: enter %s: %w", ns, err)
	}
	err := unix.Exec(path, argv, env)
	return fmt.Errorf("netns: exec %s: %w", path, err)
}

// CreateScratch makes a new unnamed network namespace and returns the only
// handle to it: the kernel frees it when the handle is closed, or when the
// process dies, so a namespace made to probe a kernel feature can never be
// left behind. It does not change the namespace of the caller's threads.
func CreateScratch() (Handle, error) {
	var h Handle
	err := do(func() error {
		var err error
		// New switches the calling thread into the new namespace; do()
		// runs on a locked thread that is restored afterwards.
		h, err = vnetns.New()
		if err != nil {
			return fmt.Errorf("netns: create scratch namespace: %w", err)
		}
		return nil
	})
	return h, err
}

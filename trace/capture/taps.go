package capture

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// namespaceTaps reports whether the kernel keeps the taps of packet sockets
// bound to no interface per namespace (Linux 6.15), so that a capture can
// read a whole namespace through one socket. Before, such a tap is on one
// list for the machine: each of a capture's hundreds of sockets would be
// called for every frame in every namespace, the host's own included, to
// find it is not theirs. No behaviour tells the two apart, so the kernel's
// version decides; a kernel with the change backported is only slower.
var namespaceTaps = sync.OnceValue(func() bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	return kernelAtLeast(unix.ByteSliceToString(u.Release[:]), 6, 15)
})

// kernelAtLeast reports whether a kernel release string ("6.18.4-arch1")
// names version major.minor or later.
func kernelAtLeast(release string, major, minor int) bool {
	var gotMajor, gotMinor int
	if _, err := fmt.Sscanf(release, "%d.%d", &gotMajor, &gotMinor); err != nil {
		return false
	}
	return gotMajor > major || gotMajor == major && gotMinor >= minor
}

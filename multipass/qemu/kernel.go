package qemu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoKernel is wrapped by the errors of a --kernel PATH that is not a
// kernel hopcheck can boot.
var ErrNoKernel = errors.New("not a kernel hopcheck can boot")

// Kernel is a kernel image and its modules on the host.
type Kernel struct {
	// Vmlinuz is the bootable image.
	Vmlinuz string
	// Release is its `uname -r` (the suffix of vmlinuz-REL).
	Release string
	// Modules is its module tree (…/lib/modules/REL); "" when it has none
	// beside it, which works only for a kernel with everything built in.
	Modules string
}

// OpenKernel finds the kernel of p: a linux-image .deb (unpacked into
// scratch, which the caller removes) or a vmlinuz-REL file with its modules
// where `dpkg -x` puts them (ROOT/boot/vmlinuz-REL,
// ROOT/lib/modules/REL or ROOT/usr/lib/modules/REL).
func OpenKernel(p, scratch string) (*Kernel, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("--kernel %s: %w", p, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("--kernel %s: %w: a directory; give the .deb or boot/vmlinuz-REL in it", p, ErrNoKernel)
	}
	if isDeb(p) {
		root := filepath.Join(scratch, "kernel")
		if err := extractDeb(p, root); err != nil {
			return nil, fmt.Errorf("--kernel %s: %w", p, err)
		}
		images, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
		if len(images) != 1 {
			return nil, fmt.Errorf("--kernel %s: %w: the package holds %d boot/vmlinuz-* images, want 1 (is it a linux-image package?)", p, ErrNoKernel, len(images))
		}
		p = images[0]
	}
	base := filepath.Base(p)
	rel, ok := strings.CutPrefix(base, "vmlinuz-")
	if !ok || rel == "" {
		return nil, fmt.Errorf("--kernel %s: %w: want a linux-image-*.deb or a file named vmlinuz-RELEASE", p, ErrNoKernel)
	}
	k := &Kernel{Vmlinuz: p, Release: rel}
	root := filepath.Dir(filepath.Dir(p))
	for _, dir := range []string{"lib/modules", "usr/lib/modules"} {
		m := filepath.Join(root, dir, rel)
		if st, err := os.Stat(m); err == nil && st.IsDir() {
			k.Modules = m
			break
		}
	}
	return k, nil
}

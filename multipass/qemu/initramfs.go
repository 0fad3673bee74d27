package qemu

import (
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/cavaliergopher/cpio"
)

// tree is an initramfs being put together: guest paths (absolute, slash
// separated) to what goes there. Parent directories are made as needed.
type tree struct {
	entries map[string]entry
}

// entry is one file, link or directory of a tree.
type entry struct {
	dir  bool
	link string // symlink target
	data []byte // contents held in memory
	host string // or a host file read when the tree is written
	perm cpio.FileMode
}

func newTree() *tree { return &tree{entries: map[string]entry{}} }

func (t *tree) addData(p string, data []byte, perm cpio.FileMode) {
	t.entries[path.Clean(p)] = entry{data: data, perm: perm}
}

func (t *tree) addHost(p, host string, perm cpio.FileMode) {
	t.entries[path.Clean(p)] = entry{host: host, perm: perm}
}

func (t *tree) addLink(p, target string) {
	t.entries[path.Clean(p)] = entry{link: target}
}

func (t *tree) addDir(p string) {
	t.entries[path.Clean(p)] = entry{dir: true, perm: 0o755}
}

func (t *tree) has(p string) bool {
	_, ok := t.entries[path.Clean(p)]
	return ok
}

// write writes the tree as a newc cpio archive, the format the kernel
// unpacks into its initial root file system, parents before children.
func (t *tree) write(w io.Writer) error {
	all := map[string]entry{}
	for p, e := range t.entries {
		all[p] = e
		for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
			if _, ok := all[d]; !ok {
				all[d] = entry{dir: true, perm: 0o755}
			}
		}
	}
	names := make([]string, 0, len(all))
	for p := range all {
		names = append(names, p)
	}
	sort.Strings(names) // a parent sorts before what is under it
	cw := cpio.NewWriter(w)
	for _, p := range names {
		e := all[p]
		name := strings.TrimPrefix(p, "/")
		var err error
		switch {
		case e.dir:
			err = cw.WriteHeader(&cpio.Header{Name: name, Mode: cpio.TypeDir | e.perm})
		case e.link != "":
			err = cw.WriteHeader(&cpio.Header{Name: name, Mode: cpio.TypeSymlink | 0o777, Size: int64(len(e.link))})
			if err == nil {
				_, err = io.WriteString(cw, e.link)
			}
		case e.host != "":
			err = writeHostFile(cw, name, e.host, e.perm)
		default:
			err = cw.WriteHeader(&cpio.Header{Name: name, Mode: cpio.TypeReg | e.perm, Size: int64(len(e.data))})
			if err == nil {
				_, err = cw.Write(e.data)
			}
		}
		if err != nil {
			return fmt.Errorf("initramfs %s: %w", p, err)
		}
	}
	return cw.Close()
}

func writeHostFile(cw *cpio.Writer, name, host string, perm cpio.FileMode) error {
	f, err := os.Open(host)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := cw.WriteHeader(&cpio.Header{Name: name, Mode: cpio.TypeReg | perm, Size: st.Size()}); err != nil {
		return err
	}
	n, err := io.Copy(cw, f)
	if err == nil && n != st.Size() {
		err = fmt.Errorf("%s changed while being read", host)
	}
	return err
}

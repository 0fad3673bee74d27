package qemu

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// moduleDirs are the parts of a kernel's module tree whose modules the
// guest gets whole: netfilter (iptables, nft, NAT, conntrack and the
// xtables matches and targets, which the kernel loads on demand), the
// bridge, VLANs and the qdiscs and classifiers (clsact, cls_bpf).
var moduleDirs = []string{
	"kernel/net/netfilter/",
	"kernel/net/ipv4/netfilter/",
	"kernel/net/ipv6/netfilter/",
	"kernel/net/bridge/",
	"kernel/net/8021q/",
	"kernel/net/sched/",
}

// moduleNames are single modules the guest gets: interface kinds
// scenarios use, tunnels, the socket dumps diagnosis reads (sock_diag),
// and the virtio devices of the VM itself.
var moduleNames = []string{
	"veth", "vxlan", "dummy", "macvlan", "ipvlan", "tun", "geneve",
	"ipip", "ip_gre", "sit", "ip6_tunnel", "ip6_gre",
	"inet_diag", "tcp_diag", "udp_diag", "raw_diag",
	"virtio_pci", "virtio_blk", "virtio_rng",
}

// bootModules are loaded by the init before anything else: the VM's own
// devices (the results disk, an entropy source) and what hopcheck's probes
// and tracer expect to find. Everything else is loaded when the kernel asks
// for it (busybox modprobe, with modules.alias).
var bootModules = []string{"virtio_pci", "virtio_blk", "virtio_rng", "veth", "bridge", "sch_ingress", "cls_bpf"}

// module is one kernel module bound for the initramfs.
type module struct {
	name    string // as the kernel knows it: dashes as underscores
	rel     string // path in the host's tree, relative to it
	out     string // path in the guest's tree: rel, decompressed
	data    []byte // the decompressed .ko
	deps    []string
	aliases []string
}

// moduleName returns the kernel's name of the module file name.
func moduleName(file string) string {
	base, _ := trimCompressed(path.Base(file))
	return strings.ReplaceAll(strings.TrimSuffix(base, ".ko"), "-", "_")
}

// moduleSet is the modules of a kernel that go into the guest, with the
// files busybox modprobe reads.
type moduleSet struct {
	mods  []*module
	files map[string][]byte // modules.dep, modules.alias, modules.builtin
}

// selectModules reads the module tree dir and returns moduleDirs and
// moduleNames with everything they depend on, decompressed. Modules the
// kernel does not have (built in, or not built at all) are left out; a
// dependency on a module that is neither present nor built in is an error.
func selectModules(dir string) (*moduleSet, error) {
	index := map[string]string{} // name -> rel
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.Contains(d.Name(), ".ko") {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			if base, _ := trimCompressed(d.Name()); strings.HasSuffix(base, ".ko") {
				index[moduleName(d.Name())] = filepath.ToSlash(rel)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kernel modules %s: %w", dir, err)
	}
	builtinText, _ := os.ReadFile(filepath.Join(dir, "modules.builtin"))
	builtin := map[string]bool{}
	for _, line := range strings.Fields(string(builtinText)) {
		builtin[moduleName(line)] = true
	}

	var queue []string
	for name, rel := range index {
		if hasAnyPrefix(rel, moduleDirs) {
			queue = append(queue, name)
		}
	}
	for _, name := range moduleNames {
		if _, ok := index[name]; ok {
			queue = append(queue, name)
		}
	}
	sort.Strings(queue)

	// Most of the work is decompressing; the named modules are read in
	// parallel, their few dependencies outside them one by one.
	byName, err := readModules(dir, index, queue)
	if err != nil {
		return nil, err
	}
	for _, m := range byName {
		queue = append(queue, m.deps...)
	}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if byName[name] != nil {
			continue
		}
		rel, ok := index[name]
		if !ok {
			if builtin[name] {
				continue
			}
			return nil, fmt.Errorf("kernel modules %s: a module needs %s, which is neither there nor built in", dir, name)
		}
		m, err := readModule(dir, rel)
		if err != nil {
			return nil, err
		}
		m.name = name
		byName[name] = m
		queue = append(queue, m.deps...)
	}

	set := &moduleSet{files: map[string][]byte{}}
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	sort.Strings(names)
	var dep, alias bytes.Buffer
	for _, name := range names {
		m := byName[name]
		set.mods = append(set.mods, m)
		// modules.dep lists every module a module needs, transitively,
		// each before the ones it needs: modprobe loads them from the
		// end of the list.
		order := loadOrder(name, byName)
		fmt.Fprintf(&dep, "%s:", m.out)
		for i := len(order) - 2; i >= 0; i-- { // the last is name itself
			fmt.Fprintf(&dep, " %s", byName[order[i]].out)
		}
		dep.WriteByte('\n')
		for _, a := range m.aliases {
			fmt.Fprintf(&alias, "alias %s %s\n", a, name)
		}
	}
	set.files["modules.dep"] = dep.Bytes()
	set.files["modules.alias"] = alias.Bytes()
	set.files["modules.builtin"] = builtinText
	return set, nil
}

// loadOrder returns name's dependencies, transitively, in the order they
// load (each after those it needs), ending with name. Dependencies that
// are built in are left out.
func loadOrder(name string, byName map[string]*module) []string {
	var order []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		m := byName[n]
		if seen[n] || m == nil {
			return
		}
		seen[n] = true
		for _, d := range m.deps {
			visit(d)
		}
		order = append(order, n)
	}
	visit(name)
	return order
}

// readModules reads the modules names (which index has) on every CPU.
func readModules(dir string, index map[string]string, names []string) (map[string]*module, error) {
	type result struct {
		m   *module
		err error
	}
	work := make(chan string)
	results := make(chan result)
	workers := runtime.NumCPU()
	for range workers {
		go func() {
			for name := range work {
				m, err := readModule(dir, index[name])
				if m != nil {
					m.name = name
				}
				results <- result{m, err}
			}
		}()
	}
	go func() {
		for _, n := range names {
			work <- n
		}
		close(work)
	}()
	byName := map[string]*module{}
	var errs []error
	for range names {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		byName[r.m.name] = r.m
	}
	return byName, errors.Join(errs...)
}

// readModule reads and decompresses the module at rel in dir and its
// .modinfo: the modules it depends on and its aliases.
func readModule(dir, rel string) (*module, error) {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out, ext := trimCompressed(rel)
	data, err := decompressAll(f, ext)
	if err != nil {
		return nil, fmt.Errorf("kernel module %s: %w", rel, err)
	}
	m := &module{rel: rel, out: out, data: data}
	info, err := modinfo(data)
	if err != nil {
		return nil, fmt.Errorf("kernel module %s: %w", rel, err)
	}
	for _, kv := range info {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d != "" {
					m.deps = append(m.deps, strings.ReplaceAll(d, "-", "_"))
				}
			}
		case "alias":
			m.aliases = append(m.aliases, v)
		}
	}
	return m, nil
}

// modinfo returns the key=value strings of a module's .modinfo section.
func modinfo(ko []byte) ([]string, error) {
	ef, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, err
	}
	defer ef.Close()
	sec := ef.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("no .modinfo section")
	}
	b, err := sec.Data()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range bytes.Split(b, []byte{0}) {
		if len(s) > 0 {
			out = append(out, string(s))
		}
	}
	return out, nil
}

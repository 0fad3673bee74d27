package qemu

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// libDirs are where the host's dynamic loader finds libraries without a
// cache; the guest gets each library at the path it was found at here.
var libDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// iptablesNames are the commands hopcheck runs (go-iptables, and
// iptables-save for diagnosis), found on the host's PATH.
var iptablesNames = []string{
	"iptables", "iptables-save", "iptables-restore",
	"ip6tables", "ip6tables-save", "ip6tables-restore",
}

// optionalTools are commands scenarios may run that the guest gets when
// the host has them.
var optionalTools = []string{"nft"}

// addIptables puts the host's iptables into t: the commands as links to
// the real executable (xtables-nft-multi or -legacy-multi, which picks its
// applet by name), its libraries, and its extensions (xtables/*.so, which
// it opens by name at run time), each with theirs. It returns the library
// directories used, for LD_LIBRARY_PATH.
func addIptables(t *tree) ([]string, error) {
	libs := &libSet{t: t, dirs: map[string]bool{}}
	found := false
	for _, name := range iptablesNames {
		ok, err := libs.addTool(name)
		if err != nil {
			return nil, err
		}
		if !ok && name == "iptables" {
			return nil, fmt.Errorf("the guest needs iptables, and this host has none: install iptables (make deps)")
		}
		found = found || ok
	}
	if !found {
		return nil, errors.New("no iptables found")
	}
	// nft, for scenarios with an nft: ruleset, when the host has it (the
	// guest's kernel has the nftables modules either way).
	for _, name := range optionalTools {
		if _, err := libs.addTool(name); err != nil {
			return nil, err
		}
	}
	for _, dir := range libDirs {
		plugins, _ := filepath.Glob(filepath.Join(dir, "xtables", "*.so"))
		for _, p := range plugins {
			if t.has(p) {
				continue
			}
			t.addHost(p, p, 0o644)
			// An extension whose own libraries are missing cannot be
			// loaded; iptables says so if a rule ever needs it.
			_ = libs.addNeeded(p, false)
		}
	}
	var dirs []string
	for d := range libs.dirs {
		dirs = append(dirs, d)
	}
	return dirs, nil
}

// addTool puts the host's command name (found on PATH) into the tree
// with its libraries, and a link to it at /usr/sbin/NAME where that is not
// the file itself (iptables' applets are links to one multi-call binary).
// ok is false when the host has no such command.
func (l *libSet) addTool(name string) (ok bool, err error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return false, nil
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return false, fmt.Errorf("%s: %w", p, err)
	}
	if !l.t.has(real) {
		l.t.addHost(real, real, 0o755)
		if err := l.addNeeded(real, true); err != nil {
			return false, fmt.Errorf("%s (%s): %w", name, real, err)
		}
	}
	if link := path.Join("/usr/sbin", name); link != real {
		l.t.addLink(link, real)
	}
	return true, nil
}

// libSet adds ELF files' dependencies to a tree.
type libSet struct {
	t    *tree
	dirs map[string]bool
}

// addNeeded adds the program interpreter and the DT_NEEDED libraries of
// the ELF file at p, transitively. With strict, a library not found is an
// error.
func (l *libSet) addNeeded(p string, strict bool) error {
	f, err := elf.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, prog.Filesz)
		if _, err := prog.ReadAt(b, 0); err != nil {
			return fmt.Errorf("read interpreter: %w", err)
		}
		interp := strings.TrimRight(string(b), "\x00")
		if !l.t.has(interp) {
			real, err := filepath.EvalSymlinks(interp)
			if err != nil {
				return fmt.Errorf("interpreter %s: %w", interp, err)
			}
			l.t.addHost(interp, real, 0o755)
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return err
	}
	var runpath []string
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		vals, _ := f.DynString(tag)
		for _, v := range vals {
			runpath = append(runpath, filepath.SplitList(strings.ReplaceAll(v, "$ORIGIN", filepath.Dir(p)))...)
		}
	}
	for _, lib := range needed {
		var at string
		for _, dir := range append(runpath, libDirs...) {
			cand := filepath.Join(dir, lib)
			if _, err := os.Stat(cand); err == nil {
				at = cand
				break
			}
		}
		if at == "" {
			if strict {
				return fmt.Errorf("library %s not found in %s", lib, strings.Join(libDirs, ", "))
			}
			continue
		}
		if l.t.has(at) {
			continue
		}
		real, err := filepath.EvalSymlinks(at)
		if err != nil {
			return err
		}
		l.t.addHost(at, real, 0o755)
		l.dirs[filepath.Dir(at)] = true
		if err := l.addNeeded(real, strict); err != nil {
			return fmt.Errorf("%s: %w", lib, err)
		}
	}
	return nil
}

// staticBusybox returns the host's busybox if it is statically linked, as
// the busybox-static package installs it.
func staticBusybox() (string, error) {
	p, err := exec.LookPath("busybox")
	if err != nil {
		return "", errors.New("the guest needs busybox, and this host has none: install busybox-static (apt-get install busybox-static)")
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	if !isStatic(real) {
		return "", fmt.Errorf("%s is linked dynamically; the guest needs a static one: install busybox-static (apt-get install busybox-static)", p)
	}
	return real, nil
}

// isStatic reports whether the ELF file at p runs without a dynamic
// loader.
func isStatic(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

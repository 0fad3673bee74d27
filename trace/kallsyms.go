package trace

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Symbols names kernel addresses. It reads /proc/kallsyms once, on first
// use, and is safe for concurrent use: a run shares one among all its
// Tracers (Options.Symbols), so the table, over a hundred thousand lines,
// is read once per run rather than once per scenario, and never by a
// Tracer's event reader, whose delay would hold up every probe's Flush.
type Symbols struct {
	once sync.Once
	k    *ksyms
	err  error
}

// NewSymbols returns a Symbols that has not read anything yet.
func NewSymbols() *Symbols { return &Symbols{} }

func (s *Symbols) table() (*ksyms, error) {
	s.once.Do(func() { s.k, s.err = loadKallsyms() })
	return s.k, s.err
}

// Name returns "func+0xoff" for a kernel address, or the address in hex
// when the table cannot be read or hides addresses.
func (s *Symbols) Name(addr uint64) string {
	k, err := s.table()
	if err != nil {
		return fmt.Sprintf("%#x", addr)
	}
	return k.symbolize(addr)
}

// Addr returns the address of the kernel text symbol called name, or 0
// when there is none or addresses are hidden.
func (s *Symbols) Addr(name string) uint64 {
	k, err := s.table()
	if err != nil {
		return 0
	}
	for _, sym := range k.syms {
		if sym.name == name {
			return sym.addr
		}
	}
	return 0
}

// kallsymsPath lists the kernel's symbols with their addresses. Addresses
// read as zero unless the reader may see them (root, kptr_restrict < 2).
const kallsymsPath = "/proc/kallsyms"

// ksym is one kernel text symbol.
type ksym struct {
	addr uint64
	name string
}

// ksyms maps kernel text addresses to "func+0xoff", the way the kernel
// prints them in stack traces.
type ksyms struct {
	syms []ksym // sorted by addr
}

// loadKallsyms reads the running kernel's symbols.
func loadKallsyms() (*ksyms, error) {
	f, err := os.Open(kallsymsPath)
	if err != nil {
		return nil, fmt.Errorf("kernel symbols: %w", err)
	}
	defer f.Close()
	k, err := parseKallsyms(f)
	if err != nil {
		return nil, fmt.Errorf("kernel symbols: %s: %w", kallsymsPath, err)
	}
	return k, nil
}

// parseKallsyms reads /proc/kallsyms lines ("ffffffff81f81290 T nf_hook_slow",
// with a tab and "[module]" after module symbols) and keeps the text symbols
// (types t, T, w, W). Symbols at address zero are hidden addresses and are
// dropped, so a reader without permission gets an empty table, not a wrong
// one.
func parseKallsyms(r io.Reader) (*ksyms, error) {
	var syms []ksym
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			return nil, fmt.Errorf("line %d: %q: want address, type and name", line, sc.Text())
		}
		switch fields[1] {
		case "t", "T", "w", "W":
		default:
			continue
		}
		addr, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: address %q: %w", line, fields[0], err)
		}
		if addr == 0 {
			continue
		}
		syms = append(syms, ksym{addr: addr, name: fields[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// Module symbols follow the core kernel's, not in address order.
	slices.SortStableFunc(syms, func(a, b ksym) int { return cmp.Compare(a.addr, b.addr) })
	return &ksyms{syms: syms}, nil
}

// symbolize returns "func+0xoff" for a kernel address, or the address in
// hex if no symbol is at or below it (or the table is empty because
// addresses are hidden).
func (k *ksyms) symbolize(addr uint64) string {
	i, found := slices.BinarySearchFunc(k.syms, addr, func(s ksym, a uint64) int { return cmp.Compare(s.addr, a) })
	if !found {
		// i is where addr would go: the symbol before it contains addr.
		i--
	}
	// Aliases share an address; the first one listed (the stable sort kept
	// file order) is the name the kernel itself prints.
	for i > 0 && k.syms[i-1].addr == k.syms[i].addr {
		i--
	}
	if i < 0 || addr == 0 {
		return fmt.Sprintf("%#x", addr)
	}
	s := k.syms[i]
	return fmt.Sprintf("%s+%#x", s.name, addr-s.addr)
}

package vm

import (
	"context"
	"debug/elf"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hopcheck/hopcheck/internal/privtest"
)

// tinyModule writes a module whose ./cmd/hopcheck is the given source.
func tinyModule(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"go.mod":               "module example.com/tiny\n\ngo 1.21\n",
		"cmd/hopcheck/main.go": src,
	})
	return dir
}

func TestBuildBinary(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		privtest.Unavailable(t, "the go tool")
	}
	mod := tinyModule(t, "package main\n\nimport \"net\"\n\nfunc main() { _, _ = net.LookupHost(\"localhost\") }\n")
	tests := []struct {
		goarch  string
		machine elf.Machine
	}{
		// The architecture of Multipass VMs on Apple silicon.
		{"arm64", elf.EM_AARCH64},
	}
	for _, tt := range tests {
		t.Run(tt.goarch, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "hopcheck")
			if err := BuildBinary(context.Background(), mod, tt.goarch, out); err != nil {
				t.Fatal(err)
			}
			f, err := elf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != tt.machine || f.OSABI != elf.ELFOSABI_NONE {
				t.Errorf("built a %v binary, want %v for Linux", f.Machine, tt.machine)
			}
			// net would pull in cgo's resolver unless CGO_ENABLED=0; a
			// static binary has no program interpreter.
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Error("binary is dynamically linked (has PT_INTERP); the guest needs a static one")
				}
			}
		})
	}
}

func TestBuildBinaryErrors(t *testing.T) {
	if err := BuildBinary(context.Background(), t.TempDir(), "sparc", filepath.Join(t.TempDir(), "x")); err == nil {
		t.Error("BuildBinary for an unknown GOARCH succeeded")
	}
	if _, err := exec.LookPath("go"); err != nil {
		privtest.Unavailable(t, "the go tool")
	}
	mod := tinyModule(t, "package main\n\nfunc main() { undefinedName() }\n")
	err := BuildBinary(context.Background(), mod, "amd64", filepath.Join(t.TempDir(), "x"))
	if err == nil || !strings.Contains(err.Error(), "undefinedName") {
		t.Errorf("BuildBinary of broken code = %v, want the compiler's message", err)
	}
}

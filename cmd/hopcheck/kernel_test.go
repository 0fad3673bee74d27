package main

import (
	"context"
	"testing"
)

func TestSizeMiB(t *testing.T) {
	for in, want := range map[string]int{"2G": 2048, "1536M": 1536, "1536MB": 1536, "1048576K": 1024, "536870912": 512} {
		if got, err := sizeMiB(in); err != nil || got != want {
			t.Errorf("sizeMiB(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "2X", "-1G", "100M", "G"} {
		if _, err := sizeMiB(in); err == nil {
			t.Errorf("sizeMiB(%q) accepted", in)
		}
	}
}

// TestRunKernelBadFlags: flags that cannot go with --kernel are bad input,
// found before anything boots.
func TestRunKernelBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--kernel", "/nonexistent/vmlinuz-1", "--accel", "xen", "scenarios/"},
		{"run", "--kernel", "/nonexistent/vmlinuz-1", "--vm", "x", "scenarios/"},
		{"run", "--kernel", "/nonexistent/vmlinuz-1", "--keep", "scenarios/"},
		{"run", "--kernel", "/nonexistent/vmlinuz-1", "--memory", "12", "scenarios/"},
		{"run", "--kernel", "/nonexistent/vmlinuz-1", "../../scenarios/"},
	} {
		if code := run(context.Background(), args); code != exitBadInput {
			t.Errorf("hopcheck %q: exit %d, want %d", args, code, exitBadInput)
		}
	}
}

package safefile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestReadRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := func(name, target string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 2048), 0o600); err != nil {
		t.Fatal(err)
	}
	opt := ReadOptions{MaxSize: 1024}
	for _, tt := range []struct {
		name, path string
		want       error
	}{
		{"dev zero", "/dev/zero", ErrNotRegular},
		{"link to dev zero", link("zero.yaml", "/dev/zero"), ErrNotRegular},
		{"link to dev urandom", link("random.yaml", "/dev/urandom"), ErrNotRegular},
		{"fifo", fifo, ErrNotRegular},
		{"link to fifo", link("fifo.yaml", fifo), ErrNotRegular},
		{"directory", dir, ErrNotRegular},
		{"over the limit", big, ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := Read(context.Background(), tt.path, opt)
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) {
					t.Errorf("Read(%s) = %v, want %v", tt.path, err, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("Read(%s) still blocked after 5s", tt.path)
			}
		})
	}
}

func TestReadLimitsAndOwnership(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Read(context.Background(), p, ReadOptions{MaxSize: 5, NoFollow: true, Trusted: true})
	if err != nil || string(b) != "hello" {
		t.Fatalf("Read = %q, %v", b, err)
	}
	if _, err := Read(context.Background(), p, ReadOptions{MaxSize: 4}); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "the limit is 4 bytes") {
		t.Errorf("over the limit: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Read(ctx, p, ReadOptions{MaxSize: 5}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled read: %v", err)
	}
	l := filepath.Join(dir, "l")
	if err := os.Symlink(p, l); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(context.Background(), l, ReadOptions{MaxSize: 5, NoFollow: true}); !errors.Is(err, ErrSymlink) {
		t.Errorf("symlink with NoFollow: %v", err)
	}
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(context.Background(), p, ReadOptions{MaxSize: 5, Trusted: true}); !errors.Is(err, ErrUntrusted) {
		t.Errorf("world-writable file read as trusted: %v", err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := CheckDir(dir); !errors.Is(err, ErrUntrusted) {
		t.Errorf("CheckDir of a world-writable directory: %v", err)
	}
	if err := CheckDir(p); err == nil {
		t.Errorf("CheckDir of a file: no error")
	}
}

func TestWriteReplacesASymlinkInsteadOfFollowingIt(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report.json")
	if err := os.Symlink(victim, out); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "junit.xml")
	if err := os.Symlink(filepath.Join(dir, "created-through-link"), dangling); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{out, dangling} {
		if err := WriteFile(p, []byte("report"), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s after write: %v, %v; want a regular file, mode 0644", p, fi, err)
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Errorf("the link's target was written: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(dir, "created-through-link")); err == nil {
		t.Errorf("a dangling link's target was created")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Errorf("directory holds %d entries; temporary files left behind?", len(ents))
	}

	w, err := Create(filepath.Join(dir, "aborted"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if ents2, _ := os.ReadDir(dir); len(ents2) != 3 {
		t.Errorf("Abort left %d entries", len(ents2))
	}
	if _, err := Create(dir, 0o644); err == nil {
		t.Errorf("Create over a directory: no error")
	}
}

func TestStaging(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, "a.pcapng")); err != nil {
		t.Fatal(err)
	}
	s, err := NewStaging(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "a.pcapng"), []byte("pcap"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Errorf("the planted link's target was written: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a.pcapng")); string(b) != "pcap" {
		t.Errorf("a.pcapng = %q", b)
	}
	if _, err := os.Stat(s.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging directory left: %v", err)
	}
	if _, err := NewStaging(victim); err == nil {
		t.Errorf("staging in a file: no error")
	}
}

func TestSame(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	if err := os.WriteFile(a, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l := filepath.Join(dir, "l")
	if err := os.Symlink(a, l); err != nil {
		t.Fatal(err)
	}
	if !Same(a, filepath.Join(dir, ".", "a")) || !Same(a, l) || Same(a, filepath.Join(dir, "b")) {
		t.Errorf("Same gives wrong answers")
	}
}

package qemu

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cavaliergopher/cpio"
)

func TestTreeWritesNewc(t *testing.T) {
	host := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(host, []byte("from the host"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := newTree()
	tr.addData("/init", []byte("#!/bin/sh\n"), 0o755)
	tr.addHost("/usr/lib/x/libfoo.so.1", host, 0o644)
	tr.addLink("/usr/sbin/iptables", "/usr/sbin/xtables-nft-multi")
	tr.addDir("/root")
	var buf bytes.Buffer
	if err := tr.write(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("070701")) {
		t.Fatalf("not a newc archive: %q", buf.Bytes()[:6])
	}
	got := map[string]string{}
	var order []string
	r := cpio.NewReader(&buf)
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r)
		if h.Linkname != "" {
			body = []byte(h.Linkname) // the reader takes a link's target from its data
		}
		order = append(order, h.Name)
		got[h.Name] = fmt.Sprintf("%o %s", h.Mode, body)
	}
	want := map[string]string{
		"init":                  "100755 #!/bin/sh\n",
		"usr":                   "40755 ",
		"usr/lib":               "40755 ",
		"usr/lib/x":             "40755 ",
		"usr/lib/x/libfoo.so.1": "100644 from the host",
		"usr/sbin":              "40755 ",
		"usr/sbin/iptables":     "120777 /usr/sbin/xtables-nft-multi",
		"root":                  "40755 ",
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %q, want %q", name, got[name], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("entries %v", order)
	}
	// Parents come before their children.
	if slices.Index(order, "usr/lib") > slices.Index(order, "usr/lib/x/libfoo.so.1") {
		t.Errorf("order %v", order)
	}
}

// makeDeb writes a .deb (an ar archive with a gzip data.tar) holding files.
func makeDeb(t *testing.T, files map[string]string) string {
	t.Helper()
	var data bytes.Buffer
	gz := gzip.NewWriter(&data)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))})
		io.WriteString(tw, body)
	}
	tw.Close()
	gz.Close()
	var deb bytes.Buffer
	deb.WriteString(arMagic)
	member := func(name string, body []byte) {
		fmt.Fprintf(&deb, "%-16s%-12s%-6s%-6s%-8s%-10d`\n", name, "0", "0", "0", "100644", len(body))
		deb.Write(body)
		if len(body)%2 == 1 {
			deb.WriteByte('\n')
		}
	}
	member("debian-binary", []byte("2.0\n"))
	member("control.tar.xz", []byte("x")) // odd length: padded
	member("data.tar.gz", data.Bytes())
	p := filepath.Join(t.TempDir(), "linux-image-test.deb")
	if err := os.WriteFile(p, deb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenKernelDeb(t *testing.T) {
	deb := makeDeb(t, map[string]string{
		"./boot/vmlinuz-6.1.0-test":                     "kernel",
		"./usr/lib/modules/6.1.0-test/kernel/x/veth.ko": "module",
		"./usr/share/doc/linux-image/changelog":         "not wanted",
	})
	scratch := t.TempDir()
	k, err := OpenKernel(deb, scratch)
	if err != nil {
		t.Fatal(err)
	}
	if k.Release != "6.1.0-test" || filepath.Base(k.Vmlinuz) != "vmlinuz-6.1.0-test" ||
		k.Modules != filepath.Join(scratch, "kernel/usr/lib/modules/6.1.0-test") {
		t.Errorf("kernel %+v", k)
	}
	if _, err := os.Stat(filepath.Join(scratch, "kernel/usr/share")); err == nil {
		t.Errorf("unpacked more than the kernel and its modules")
	}
}

func TestOpenKernelRejects(t *testing.T) {
	dir := t.TempDir()
	notKernel := filepath.Join(dir, "bzImage")
	os.WriteFile(notKernel, []byte("x"), 0o644)
	noImage := makeDeb(t, map[string]string{"./usr/bin/true": "x"})
	escape := makeDeb(t, map[string]string{"boot/../../etc/passwd": "x"})
	for _, p := range []string{notKernel, noImage, dir} {
		if _, err := OpenKernel(p, t.TempDir()); !errors.Is(err, ErrNoKernel) {
			t.Errorf("%s: %v, want ErrNoKernel", p, err)
		}
	}
	scratch := t.TempDir()
	if _, err := OpenKernel(escape, scratch); err == nil {
		t.Errorf("a package entry leaving its tree was accepted")
	}
	if _, err := OpenKernel(filepath.Join(dir, "missing"), t.TempDir()); err == nil {
		t.Errorf("a missing path was accepted")
	}
}

func TestLoadOrder(t *testing.T) {
	mods := map[string]*module{
		"xt_MASQUERADE": {deps: []string{"nf_nat", "x_tables"}},
		"nf_nat":        {deps: []string{"nf_conntrack"}},
		"nf_conntrack":  {deps: []string{"libcrc32c"}},
		"libcrc32c":     {},
		"x_tables":      {},
	}
	got := loadOrder("xt_MASQUERADE", mods)
	want := []string{"libcrc32c", "nf_conntrack", "nf_nat", "x_tables", "xt_MASQUERADE"}
	if !slices.Equal(got, want) {
		t.Errorf("loadOrder = %v, want %v", got, want)
	}
	if n := moduleName("kernel/net/8021q/8021q.ko.xz"); n != "8021q" {
		t.Errorf("moduleName = %q", n)
	}
	if n := moduleName("kernel/drivers/char/hw_random/virtio-rng.ko"); n != "virtio_rng" {
		t.Errorf("moduleName = %q", n)
	}
}

func TestInitScriptQuotes(t *testing.T) {
	s := initScript("/run/x/in", []string{"/run/x/hopcheck", "run", "it's here", "$(reboot)"}, []string{"NO_COLOR=1"}, "")
	if !strings.Contains(s, `'it'\''s here' '$(reboot)'`) {
		t.Errorf("arguments not quoted:\n%s", s)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to check the script's syntax")
	}
	cmd := exec.Command(sh, "-n")
	cmd.Stdin = strings.NewReader(s)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v: %s\n%s", err, out, s)
	}
}

func TestConsole(t *testing.T) {
	in := "[    0.000000] Linux version 6.1\r\n" + markerPrefix + "booted 6.1.0\n" +
		"[    9.1] sysrq: Trigger a crash\n[    9.2] Kernel panic - not syncing: sysrq triggered crash\n"
	c := &console{}
	markers := make(chan marker, 4)
	var echo bytes.Buffer
	c.read(strings.NewReader(in), &echo, markers)
	if m := <-markers; m != (marker{"booted", "6.1.0"}) {
		t.Errorf("marker %+v", m)
	}
	if p := c.panicMessage(); p != "Kernel panic - not syncing: sysrq triggered crash" {
		t.Errorf("panic %q", p)
	}
	if tail := c.tail(); strings.Contains(tail, markerPrefix) || !strings.Contains(tail, "Linux version 6.1\n") {
		t.Errorf("tail %q", tail)
	}
	if !strings.Contains(echo.String(), markerPrefix) {
		t.Errorf("the console was not echoed whole")
	}
}

package vm

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestGuestArch(t *testing.T) {
	tests := map[string]string{
		"x86_64\n":    "amd64",
		"aarch64":     "arm64",
		"arm64":       "arm64",
		"armv7l":      "arm",
		"i686":        "386",
		"ppc64le":     "ppc64le",
		"riscv64":     "riscv64",
		"loongarch64": "loong64",
	}
	for machine, want := range tests {
		got, err := guestArch(machine)
		if err != nil || got != want {
			t.Errorf("guestArch(%q) = %q, %v; want %q", machine, got, err, want)
		}
		if !knownGOARCH(got) {
			t.Errorf("guestArch(%q) = %q, which BuildBinary refuses", machine, got)
		}
	}
	for _, machine := range []string{"", "sparc64", "mips", "s390x", "armv8b"} {
		if got, err := guestArch(machine); err == nil {
			t.Errorf("guestArch(%q) = %q, want an error", machine, got)
		}
	}
}

func TestGuestRel(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the table uses Unix paths")
	}
	tests := []struct {
		base, path, want string
	}{
		{"/work", "scenarios/nat.yaml", "scenarios/nat.yaml"},
		{"/work", "./scenarios/", "scenarios"},
		{"/work", "/work/scenarios/broken", "scenarios/broken"},
		{"/work", ".", "."},
		{"/work", "../other/x.yaml", "_outside/other/x.yaml"},
		{"/work", "/etc/hopcheck/x.yaml", "_outside/etc/hopcheck/x.yaml"},
		{"/work", "scenarios/../../x.yaml", "_outside/x.yaml"},
	}
	for _, tt := range tests {
		if got := guestRel(tt.base, tt.path); got != tt.want {
			t.Errorf("guestRel(%q, %q) = %q, want %q", tt.base, tt.path, got, tt.want)
		}
	}
}

// writeTree creates files (slash paths relative to dir) with their contents.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCollect(t *testing.T) {
	base := t.TempDir()
	writeTree(t, base, map[string]string{
		"scenarios/nat.yaml":           "nat",
		"scenarios/broken/mtu.yaml":    "mtu",
		"scenarios/broken/mtu.cause":   "cause",
		"scenarios/README.md":          "readme",
		"single.yaml":                  "single",
		"-dash.yaml":                   "dash",
		"elsewhere/not-included.yaml":  "no",
		"elsewhere/linked-target.yaml": "target",
	})
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"far.yaml": "far"})
	// A symlink to a file is followed; one to a directory is not.
	if err := os.Symlink(filepath.Join(base, "elsewhere", "linked-target.yaml"), filepath.Join(base, "scenarios", "link.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(base, filepath.Join(base, "scenarios", "loop")); err != nil {
		t.Fatal(err)
	}

	files, args, err := collect(base, []string{"scenarios", "single.yaml", "scenarios/nat.yaml", "-dash.yaml", filepath.Join(outside, "far.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	farGuest := guestRel(base, filepath.Join(outside, "far.yaml"))
	wantArgs := []string{"scenarios", "single.yaml", "scenarios/nat.yaml", "./-dash.yaml", farGuest}
	if !reflect.DeepEqual(args, wantArgs) {
		t.Errorf("args = %q, want %q", args, wantArgs)
	}
	got := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f.host)
		if err != nil {
			t.Fatal(err)
		}
		got[f.guest] = string(b)
	}
	want := map[string]string{
		"scenarios/nat.yaml":         "nat",
		"scenarios/broken/mtu.yaml":  "mtu",
		"scenarios/broken/mtu.cause": "cause",
		"scenarios/README.md":        "readme",
		"scenarios/link.yaml":        "target",
		"single.yaml":                "single",
		"-dash.yaml":                 "dash",
		farGuest:                     "far",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("collected\n%v\nwant\n%v", got, want)
	}

	if _, _, err := collect(base, []string{"missing.yaml"}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("collect(missing) = %v, want ErrNotExist", err)
	}
}

func TestWriteBundle(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"bin": "ELF...", "a.yaml": "a", "sub/b.yaml": "b"})
	files := []bundleFile{
		{host: filepath.Join(dir, "a.yaml"), guest: "a.yaml"},
		{host: filepath.Join(dir, "sub", "b.yaml"), guest: "sub/b.yaml"},
	}
	var buf bytes.Buffer
	if err := writeBundle(&buf, filepath.Join(dir, "bin"), files); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		mode int64
		data string
	}
	got := map[string]entry{}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Uid != 0 || hdr.Uname != "" {
			t.Errorf("%s carries owner %d/%q; the guest user should own what it extracts", hdr.Name, hdr.Uid, hdr.Uname)
		}
		b, _ := io.ReadAll(tr)
		got[hdr.Name] = entry{hdr.Mode, string(b)}
	}
	want := map[string]entry{
		"hopcheck":      {0o755, "ELF..."},
		"in/a.yaml":     {0o644, "a"},
		"in/sub/b.yaml": {0o644, "b"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bundle holds %v, want %v", got, want)
	}
}

type tarEntry struct {
	name     string
	typeflag byte
	data     string
}

func makeTar(t *testing.T, entries []tarEntry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Mode: 0o644, Size: int64(len(e.data))}
		if e.typeflag == tar.TypeSymlink || e.typeflag == tar.TypeLink {
			hdr.Linkname, hdr.Size = e.data, 0
		}
		if e.typeflag == tar.TypeDir {
			hdr.Mode, hdr.Size = 0o755, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func TestExtractResults(t *testing.T) {
	// What `tar -cf results.tar -C out .` gives.
	archive := []tarEntry{
		{"./", tar.TypeDir, ""},
		{"./report.json", tar.TypeReg, `{"ok":true}`},
		{"./report.junit.xml", tar.TypeReg, "<testsuites/>"},
		{"./pcap/", tar.TypeDir, ""},
		{"./pcap/nat.pcapng", tar.TypeReg, "pcap-nat"},
		{"./pcap/sub/x.pcapng", tar.TypeReg, "pcap-x"},
		{"./pcap/link", tar.TypeSymlink, "nat.pcapng"},
		{"./stray.txt", tar.TypeReg, "ignored"},
	}
	t.Run("all requested", func(t *testing.T) {
		dir := t.TempDir()
		dests := resultDests{
			JSON:  filepath.Join(dir, "reports", "r.json"),
			JUnit: filepath.Join(dir, "junit.xml"),
			Pcap:  filepath.Join(dir, "captures"),
		}
		got, err := extractResults(makeTar(t, archive), dests, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if !got.JSON || !got.JUnit {
			t.Errorf("found = %+v, want both reports", got)
		}
		for file, want := range map[string]string{
			dests.JSON:                              `{"ok":true}`,
			dests.JUnit:                             "<testsuites/>",
			filepath.Join(dests.Pcap, "nat.pcapng"): "pcap-nat",
			filepath.Join(dests.Pcap, "sub", "x.pcapng"): "pcap-x",
		} {
			if b, err := os.ReadFile(file); err != nil || string(b) != want {
				t.Errorf("%s = %q (%v), want %q", file, b, err, want)
			}
		}
		if _, err := os.Lstat(filepath.Join(dests.Pcap, "link")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a symlink from the guest was extracted (%v)", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "stray.txt")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("an unrequested file was extracted (%v)", err)
		}
	})
	t.Run("only JSON requested", func(t *testing.T) {
		dir := t.TempDir()
		got, err := extractResults(makeTar(t, archive), resultDests{JSON: filepath.Join(dir, "r.json")}, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if !got.JSON || got.JUnit {
			t.Errorf("found = %+v, want the JSON report only", got)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("extracted %d entries, want the JSON report only", len(ents))
		}
	})
	for _, bad := range []tarEntry{
		{"../report.json", tar.TypeReg, "x"},
		{"/etc/cron.d/x", tar.TypeReg, "x"},
		{"/report.json", tar.TypeReg, "x"},
		{"pcap/../../x", tar.TypeReg, "x"},
		{"pcap/abs", tar.TypeSymlink, "/etc/shadow"},
		{"pcap/up", tar.TypeSymlink, "../../.ssh/authorized_keys"},
		{"pcap/hard", tar.TypeLink, "../x"},
		{"pcap/hardabs", tar.TypeLink, "/etc/passwd"},
	} {
		t.Run("unsafe "+bad.name, func(t *testing.T) {
			dir := t.TempDir()
			entries := []tarEntry{bad}
			if bad.typeflag == tar.TypeLink {
				entries = []tarEntry{{"pcap/ok.pcapng", tar.TypeReg, "x"}, bad}
			}
			_, err := extractResults(makeTar(t, entries), resultDests{Pcap: filepath.Join(dir, "p"), JSON: filepath.Join(dir, "j")}, 1<<20)
			if !errors.Is(err, errUnsafePath) {
				t.Errorf("extractResults(%q) = %v, want errUnsafePath", bad.name, err)
			}
			for _, p := range []string{filepath.Join(dir, "x"), filepath.Join(dir, "p", "abs"), filepath.Join(dir, "p", "up"), filepath.Join(dir, "p", "hard")} {
				if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s exists after a rejected archive (%v)", p, err)
				}
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		dir := t.TempDir()
		big := strings.Repeat("p", 64<<10)
		archive := makeTar(t, []tarEntry{{"pcap/a.pcapng", tar.TypeReg, big}, {"pcap/b.pcapng", tar.TypeReg, big}})
		_, err := extractResults(archive, resultDests{Pcap: filepath.Join(dir, "p")}, 100<<10)
		if !errors.Is(err, errTooLarge) {
			t.Errorf("extractResults of %d bytes with a limit of %d = %v, want errTooLarge", archive.Len(), 100<<10, err)
		}
		if _, err := extractResults(makeTar(t, []tarEntry{{"pcap/a.pcapng", tar.TypeReg, big}}), resultDests{Pcap: filepath.Join(dir, "q")}, 100<<10); err != nil {
			t.Errorf("an archive under the limit: %v", err)
		}
	})
}

func TestGuestRunArgv(t *testing.T) {
	got := guestRunArgv("/home/ubuntu/hopcheck-run-1", true, []string{"--shard=1/2"}, []string{"scenarios", "x.yaml"})
	want := []string{
		"sudo", "env", "-C", "/home/ubuntu/hopcheck-run-1/in", "/home/ubuntu/hopcheck-run-1/hopcheck", "run",
		"--json", "/home/ubuntu/hopcheck-run-1/out/report.json",
		"--junit", "/home/ubuntu/hopcheck-run-1/out/report.junit.xml",
		"--pcap", "/home/ubuntu/hopcheck-run-1/out/pcap",
		"--shard=1/2", "scenarios", "x.yaml",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("guestRunArgv =\n%q\nwant\n%q", got, want)
	}
	if got := guestRunArgv("/r", false, nil, []string{"a"}); strings.Contains(strings.Join(got, " "), "--pcap") {
		t.Errorf("guestRunArgv without captures = %q", got)
	}
}

func TestCloudInit(t *testing.T) {
	b := CloudInit()
	if !bytes.HasPrefix(b, []byte("#cloud-config\n")) {
		t.Errorf("cloud-init does not start with #cloud-config: %q", b)
	}
	var doc struct {
		PackageUpdate bool     `yaml:"package_update"`
		Packages      []string `yaml:"packages"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if !doc.PackageUpdate || !reflect.DeepEqual(doc.Packages, []string{"iptables"}) {
		t.Errorf("cloud-init = %+v, want an apt update and iptables only", doc)
	}
	b[0] = 'X'
	if CloudInit()[0] != '#' {
		t.Error("CloudInit returns shared bytes")
	}
}

func TestSpecDefaults(t *testing.T) {
	got := Spec{}.withDefaults()
	want := Spec{Name: "hopcheck", Image: "24.04", CPUs: 2, Memory: "2G", Disk: "10G"}
	if got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	custom := Spec{Name: "ci-1", Image: "22.04", CPUs: 4, Memory: "4G", Disk: "20G"}
	if got := custom.withDefaults(); got != custom {
		t.Errorf("withDefaults changed a full spec: %+v", got)
	}
}

// TestGuestRunSharesTheMultipassCommand: the qemu backend's command is the
// Multipass one without sudo and env -C.
func TestGuestRunSharesTheMultipassCommand(t *testing.T) {
	b := &Bundle{Args: []string{"scenarios"}}
	dir, argv := GuestRun("/r", true, []string{"--trace=always"}, b)
	full := guestRunArgv("/r", true, []string{"--trace=always"}, b.Args)
	if dir != "/r/in" || full[0] != "sudo" || full[1] != "env" || full[2] != "-C" || full[3] != dir ||
		strings.Join(argv, " ") != strings.Join(full[4:], " ") || argv[0] != "/r/hopcheck" || argv[len(argv)-1] != "scenarios" {
		t.Errorf("GuestRun = %q %q; Multipass runs %q", dir, argv, full)
	}
}

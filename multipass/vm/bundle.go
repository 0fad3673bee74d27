package vm

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Layout of the per-run directory in the guest, and of the bundle archive
// that fills it.
const (
	binName    = "hopcheck"         // the hopcheck binary
	inDir      = "in"               // scenario files, in their relative layout; the run's working directory
	outDir     = "out"              // what the run writes
	jsonName   = "report.json"      // in outDir
	junitName  = "report.junit.xml" // in outDir
	pcapName   = "pcap"             // in outDir
	outsideDir = "_outside"         // in inDir: paths that are not under the base directory
)

// guestArch maps `uname -m` in the guest to the GOARCH of a binary that runs
// there.
func guestArch(machine string) (string, error) {
	switch strings.TrimSpace(machine) {
	case "x86_64", "amd64":
		return "amd64", nil
	case "aarch64", "arm64":
		return "arm64", nil
	case "armv7l", "armv6l":
		return "arm", nil
	case "i386", "i686":
		return "386", nil
	case "ppc64le":
		return "ppc64le", nil
	case "riscv64":
		return "riscv64", nil
	case "loongarch64":
		return "loong64", nil
	}
	// Big-endian machines (s390x, armv8b) are left out on purpose: the
	// committed BPF object is little-endian only (bpf2go -target bpfel).
	return "", fmt.Errorf("guest architecture %q is not supported: hopcheck runs on little-endian Linux (amd64, arm64, arm, 386, ppc64le, riscv64, loong64)", machine)
}

// bundleFile is a host file and the slash-separated path it gets under
// inDir in the guest.
type bundleFile struct {
	host, guest string
}

// guestRel maps a path given on the host command line to the path the guest
// run is given, relative to inDir. Paths under base keep their relative
// form, so the guest's report names them as a local run would; others go
// under _outside/ with their absolute path, so that nothing escapes inDir.
func guestRel(base, p string) string {
	abs := p
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(base, abs)
	}
	abs = filepath.Clean(abs)
	if rel, err := filepath.Rel(base, abs); err == nil && filepath.IsLocal(rel) {
		return filepath.ToSlash(rel) // "." for base itself
	}
	vol := filepath.VolumeName(abs)
	rest := strings.TrimLeft(filepath.ToSlash(abs[len(vol):]), "/")
	return path.Join(outsideDir, strings.TrimSuffix(vol, ":"), rest)
}

// collect lists the files to send for the scenario paths and returns the
// path arguments of the guest run. Directories are sent whole (their
// regular files, and files that symlinks point at); a symlink to a
// directory is not followed, so a loop cannot make the bundle endless.
func collect(base string, paths []string) ([]bundleFile, []string, error) {
	seen := map[string]bool{}
	var files []bundleFile
	add := func(host, guest string) {
		if !seen[guest] {
			seen[guest] = true
			files = append(files, bundleFile{host: host, guest: guest})
		}
	}
	args := make([]string, 0, len(paths))
	for _, p := range paths {
		hostPath := p
		if !filepath.IsAbs(hostPath) {
			hostPath = filepath.Join(base, hostPath)
		}
		rel := guestRel(base, p)
		arg := rel
		if strings.HasPrefix(arg, "-") {
			arg = "./" + arg // not an option to the guest's hopcheck
		}
		args = append(args, arg)
		st, err := os.Stat(hostPath)
		if err != nil {
			return nil, nil, fmt.Errorf("scenario path %s: %w", p, err)
		}
		if !st.IsDir() {
			add(hostPath, rel)
			continue
		}
		err = filepath.WalkDir(hostPath, func(hp string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			st, err := os.Stat(hp) // follows a symlink to a file
			if err != nil {
				return err
			}
			if !st.Mode().IsRegular() {
				return nil
			}
			sub, err := filepath.Rel(hostPath, hp)
			if err != nil {
				return err
			}
			add(hp, path.Join(rel, filepath.ToSlash(sub)))
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("scenario path %s: %w", p, err)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].guest < files[j].guest })
	return files, args, nil
}

// writeBundle writes the archive that fills the guest's run directory: the
// binary as "hopcheck" (mode 0755) and every file under "in/". Owners are
// left out: the guest user extracts it as its own.
func writeBundle(w io.Writer, binary string, files []bundleFile) error {
	tw := tar.NewWriter(w)
	if err := addFile(tw, binary, binName, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if err := addFile(tw, f.host, path.Join(inDir, f.guest), 0o644); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, hostPath, name string, mode int64) error {
	f, err := os.Open(hostPath)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: st.Size(), ModTime: st.ModTime()}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("bundle %s: %w", hostPath, err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("bundle %s: %w", hostPath, err)
	}
	return nil
}

// resultDests says where the guest run's outputs go on the host; "" skips
// one.
type resultDests struct {
	JSON, JUnit, Pcap string
}

// found records which reports the results archive held.
type found struct {
	JSON, JUnit bool
}

// Errors of a results archive that is not one hopcheck's guest writes.
var (
	// errUnsafePath rejects archive entries that would land outside their
	// destination: absolute paths, "..", links pointing out.
	errUnsafePath = errors.New("unsafe path")
	// errTooLarge rejects an archive larger than the limit.
	errTooLarge = errors.New("results archive too large")
)

// extractResults unpacks the archive of the guest's out directory, as it
// streams in, into the host destinations: report.json and report.junit.xml
// to their files, the pcap directory's regular files under dests.Pcap.
// Anything else is ignored, and so are entries other than directories and
// regular files: links are never made. The archive comes from the guest, so
// it is checked as untrusted: an entry with an absolute path or "..", or a
// link pointing outside the archive, fails the whole extraction, and so
// does an archive longer than limit bytes.
func extractResults(r io.Reader, dests resultDests, limit int64) (found, error) {
	var got found
	lr := &limitReader{r: r, left: limit}
	tr := tar.NewReader(lr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, fmt.Errorf("read results archive: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if name == "." {
			continue
		}
		if path.IsAbs(hdr.Name) || !filepath.IsLocal(filepath.FromSlash(name)) {
			return got, fmt.Errorf("results archive entry %q: %w", hdr.Name, errUnsafePath)
		}
		if hdr.Typeflag == tar.TypeSymlink || hdr.Typeflag == tar.TypeLink {
			// A hard link names an archive path; a symlink is relative to
			// its own directory.
			target := hdr.Linkname
			if hdr.Typeflag == tar.TypeSymlink && !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			target = strings.TrimPrefix(target, "./")
			if path.IsAbs(target) || !filepath.IsLocal(filepath.FromSlash(path.Clean(target))) {
				return got, fmt.Errorf("results archive entry %q links to %q: %w", hdr.Name, hdr.Linkname, errUnsafePath)
			}
			continue
		}
		var dst string
		switch {
		case name == jsonName && hdr.Typeflag == tar.TypeReg:
			dst, got.JSON = dests.JSON, dests.JSON != ""
		case name == junitName && hdr.Typeflag == tar.TypeReg:
			dst, got.JUnit = dests.JUnit, dests.JUnit != ""
		case name == pcapName || strings.HasPrefix(name, pcapName+"/"):
			if dests.Pcap != "" {
				dst = filepath.Join(dests.Pcap, filepath.FromSlash(strings.TrimPrefix(name, pcapName)))
			}
		}
		if dst == "" {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return got, err
			}
		case tar.TypeReg:
			if err := writeFile(dst, tr); err != nil {
				return got, err
			}
		}
	}
}

// limitReader fails with errTooLarge once more than left bytes are read.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, errTooLarge
	}
	return n, err
}

func writeFile(dst string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}

package qemu

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// arMagic starts an ar archive, which a .deb is.
const arMagic = "!<arch>\n"

// extractDeb unpacks the kernel image and modules of a linux-image .deb
// into dst, as `dpkg -x` would: only boot/ and the module trees
// (lib/modules, usr/lib/modules) are written. The package is treated as
// untrusted: entries that would land outside dst are an error, links are
// not made.
func extractDeb(debPath, dst string) error {
	f, err := os.Open(debPath)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic := make([]byte, len(arMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != arMagic {
		return fmt.Errorf("%s: not a .deb (no ar archive header)", debPath)
	}
	for {
		name, size, err := nextArMember(br)
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: no data.tar member", debPath)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", debPath, err)
		}
		if base, ext := trimCompressed(name); base == "data.tar" {
			rd, closeRd, err := decompress(io.LimitReader(br, size), ext)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", debPath, name, err)
			}
			defer closeRd()
			if err := extractKernelTar(rd, dst); err != nil {
				return fmt.Errorf("%s: %s: %w", debPath, name, err)
			}
			return nil
		}
		// Members are padded to an even length.
		if _, err := br.Discard(int(size + size%2)); err != nil {
			return fmt.Errorf("%s: %s: %w", debPath, name, err)
		}
	}
}

// nextArMember reads the next ar header and returns the member's name and
// size; the reader is left at the member's data.
func nextArMember(r *bufio.Reader) (string, int64, error) {
	var hdr [60]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return "", 0, fmt.Errorf("truncated ar header")
		}
		return "", 0, err
	}
	if string(hdr[58:60]) != "`\n" {
		return "", 0, fmt.Errorf("bad ar header")
	}
	name := strings.TrimSuffix(strings.TrimSpace(string(hdr[0:16])), "/")
	size, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
	if err != nil || size < 0 {
		return "", 0, fmt.Errorf("ar member %q: bad size", name)
	}
	return name, size, nil
}

// kernelTarPrefixes are the parts of a linux-image package hopcheck uses.
var kernelTarPrefixes = []string{"boot/", "lib/modules/", "usr/lib/modules/"}

// extractKernelTar writes the regular files under kernelTarPrefixes of the
// tar stream r into dst.
func extractKernelTar(r io.Reader, dst string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if hdr.Typeflag != tar.TypeReg || !hasAnyPrefix(name, kernelTarPrefixes) {
			continue
		}
		if path.IsAbs(name) || !filepath.IsLocal(filepath.FromSlash(name)) {
			return fmt.Errorf("entry %q: path outside the package", hdr.Name)
		}
		out := filepath.Join(dst, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// isDeb reports whether the file at p starts like an ar archive.
func isDeb(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, len(arMagic))
	_, err = io.ReadFull(f, b)
	return err == nil && bytes.Equal(b, []byte(arMagic))
}

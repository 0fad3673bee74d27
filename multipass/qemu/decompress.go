package qemu

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// compressedExt lists the compressions of kernel modules and of .deb
// members that decompress handles, by file name suffix.
var compressedExt = []string{".xz", ".zst", ".gz"}

// trimCompressed returns name without a compression suffix, and the
// suffix.
func trimCompressed(name string) (string, string) {
	for _, ext := range compressedExt {
		if strings.HasSuffix(name, ext) {
			return strings.TrimSuffix(name, ext), ext
		}
	}
	return name, ""
}

// decompress returns a reader of r decompressed as ext says ("" means not
// compressed). close releases the decoder.
func decompress(r io.Reader, ext string) (rd io.Reader, close func(), err error) {
	switch ext {
	case "":
		return r, func() {}, nil
	case ".xz":
		x, err := xz.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("xz: %w", err)
		}
		return x, func() {}, nil
	case ".zst":
		z, err := zstd.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		return z, z.Close, nil
	case ".gz":
		g, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		return g, func() { g.Close() }, nil
	}
	return nil, nil, fmt.Errorf("unknown compression %q", ext)
}

// decompressAll reads r whole, decompressed as ext says. xz is by far the
// slowest in Go (several seconds for the few hundred modules of a Debian
// 6.12 kernel), so the host's xz does it when there is one.
func decompressAll(r io.Reader, ext string) ([]byte, error) {
	if ext == ".xz" {
		if xzPath, err := exec.LookPath("xz"); err == nil {
			var out, stderr bytes.Buffer
			cmd := exec.Command(xzPath, "-d", "-c")
			cmd.Stdin, cmd.Stdout, cmd.Stderr = r, &out, &stderr
			if err := cmd.Run(); err != nil {
				return nil, fmt.Errorf("xz -d: %w: %s", err, strings.TrimSpace(stderr.String()))
			}
			return out.Bytes(), nil
		}
	}
	rd, closeRd, err := decompress(r, ext)
	if err != nil {
		return nil, err
	}
	defer closeRd()
	return io.ReadAll(rd)
}

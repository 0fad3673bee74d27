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
		if rd, close, ok := hostXZ(r); ok {
			return rd, close, nil
		}
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

// decompressAll reads r whole, decompressed as ext says.
func decompressAll(r io.Reader, ext string) ([]byte, error) {
	rd, closeRd, err := decompress(r, ext)
	if err != nil {
		return nil, err
	}
	defer closeRd()
	return io.ReadAll(rd)
}

// hostXZ decompresses r with the host's xz, which is several times faster
// than the Go decoder (seconds for a kernel package or the few hundred
// modules of a Debian 6.12 kernel). ok is false when there is no xz.
func hostXZ(r io.Reader) (rd io.Reader, close func(), ok bool) {
	xzPath, err := exec.LookPath("xz")
	if err != nil {
		return nil, nil, false
	}
	var stderr bytes.Buffer
	cmd := exec.Command(xzPath, "-d", "-c")
	cmd.Stdin, cmd.Stderr = r, &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, false
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, false
	}
	return &xzReader{out: out, cmd: cmd, stderr: &stderr}, func() {
		out.Close() // a reader that stopped early unblocks xz
		cmd.Wait()
	}, true
}

// xzReader reads the host xz's output and reports its failure at the end.
type xzReader struct {
	out    io.Reader
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   bool
}

func (x *xzReader) Read(p []byte) (int, error) {
	n, err := x.out.Read(p)
	if err == io.EOF && !x.done {
		x.done = true
		if werr := x.cmd.Wait(); werr != nil {
			return n, fmt.Errorf("xz -d: %w: %s", werr, strings.TrimSpace(x.stderr.String()))
		}
	}
	return n, err
}

package realnode

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// applets returns the busybox applets the image links, enough for a web
// server, an idle process and some looking around.
func applets() []string {
	return []string{
		"sh", "httpd", "sleep", "nc", "ip", "ping", "cat", "ls", "wget",
		"ifconfig", "route", "arp", "echo", "true", "ps",
	}
}

// writeImage writes a root file system with /bin/busybox (a static build,
// from the machine's busybox-static) and its applets' links to a tar file
// that `podman import` and `docker import` take.
func writeImage(path string) error {
	bb, err := os.Open("/bin/busybox")
	if err != nil {
		return fmt.Errorf("busybox-static: %w", err)
	}
	defer bb.Close()
	st, err := bb.Stat()
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	now := time.Now()
	hdrs := []*tar.Header{}
	for _, d := range []string{"bin/", "etc/", "proc/", "sys/", "dev/", "tmp/", "www/"} {
		hdrs = append(hdrs, &tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: now})
	}
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: st.Size(), ModTime: now}); err != nil {
		f.Close()
		return err
	}
	if _, err := io.Copy(tw, bb); err != nil {
		f.Close()
		return err
	}
	for _, a := range applets() {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: filepath.Join("bin", a), Linkname: "busybox", Mode: 0o777, ModTime: now}); err != nil {
			f.Close()
			return err
		}
	}
	index := []byte("hopcheck\n")
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "www/index.html", Mode: 0o644, Size: int64(len(index)), ModTime: now}); err != nil {
		f.Close()
		return err
	}
	if _, err := tw.Write(index); err != nil {
		f.Close()
		return err
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

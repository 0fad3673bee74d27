package realnode

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
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
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeRootfs(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeRootfs writes the image's root file system as a tar stream.
func writeRootfs(w io.Writer) error {
	bb, err := os.Open("/bin/busybox")
	if err != nil {
		return fmt.Errorf("busybox-static: %w", err)
	}
	defer bb.Close()
	st, err := bb.Stat()
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	now := time.Now()
	for _, d := range []string{"bin/", "etc/", "proc/", "sys/", "dev/", "tmp/", "www/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: now}); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: st.Size(), ModTime: now}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, bb); err != nil {
		return err
	}
	for _, a := range applets() {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: filepath.Join("bin", a), Linkname: "busybox", Mode: 0o777, ModTime: now}); err != nil {
			return err
		}
	}
	index := []byte("hopcheck\n")
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "www/index.html", Mode: 0o644, Size: int64(len(index)), ModTime: now}); err != nil {
		return err
	}
	if _, err := tw.Write(index); err != nil {
		return err
	}
	return tw.Close()
}

// writeImageArchive writes the same root file system as an image in the
// docker-archive format (`docker save`: manifest.json, a config, one
// uncompressed layer), tagged with each of tags, whose entrypoint is
// entrypoint. `ctr images import` takes it; no registry is needed.
func writeImageArchive(path string, entrypoint []string, tags ...string) error {
	var layer bytes.Buffer
	if err := writeRootfs(&layer); err != nil {
		return err
	}
	diffID := fmt.Sprintf("sha256:%x", sha256.Sum256(layer.Bytes()))
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config": map[string]any{
			"Env":        []string{"PATH=/bin"},
			"Entrypoint": entrypoint,
			"WorkingDir": "/",
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
	if err != nil {
		return err
	}
	configName := fmt.Sprintf("%x.json", sha256.Sum256(config))
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   configName,
		"RepoTags": tags,
		"Layers":   []string{"layer.tar"},
	}})
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	now := time.Now()
	for _, e := range []struct {
		name string
		data []byte
	}{{configName, config}, {"layer.tar", layer.Bytes()}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: now}); err != nil {
			f.Close()
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Command echorun is a FAKE of `hopcheck run`, built by the VM backend's
// tests only to check the plumbing around the guest run: that the binary,
// the scenario files in their relative layout, the report paths and the
// extra flags reach the guest; that the guest's output streams back; that
// reports and captures come home; and that the exit status is returned. It
// builds no network and checks nothing. The end-to-end test of `run --vm`
// drives the real hopcheck binary.
//
// It reads every file under its path arguments; a line "exit: N" in one of
// them makes it exit with N (the largest wins).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "run" {
		fmt.Fprintln(os.Stderr, "echorun: usage: echorun run --json FILE --junit FILE [--pcap DIR] [--shard K/N] PATH...")
		os.Exit(2)
	}
	fl := flag.NewFlagSet("run", flag.ContinueOnError)
	jsonPath := fl.String("json", "", "")
	junitPath := fl.String("junit", "", "")
	pcapDir := fl.String("pcap", "", "")
	shard := fl.String("shard", "", "")
	if err := fl.Parse(os.Args[2:]); err != nil {
		os.Exit(2)
	}
	cwd, _ := os.Getwd()
	var files []string
	exit := 0
	for _, p := range fl.Args() {
		err := filepath.WalkDir(p, func(f string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			files = append(files, filepath.ToSlash(f))
			code, err := wantedExit(f)
			exit = max(exit, code)
			return err
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "echorun:", err)
			os.Exit(2)
		}
	}
	sort.Strings(files)
	for _, f := range files {
		fmt.Printf("echorun: read %s\n", f)
	}
	report, _ := json.Marshal(map[string]any{"files": files, "shard": *shard, "cwd": cwd, "exit": exit})
	write(*jsonPath, report)
	write(*junitPath, []byte(fmt.Sprintf("<testsuites tests=\"%d\"></testsuites>\n", len(files))))
	if *pcapDir != "" {
		write(filepath.Join(*pcapDir, "all.pcapng"), []byte("not a capture\n"))
	}
	fmt.Fprintf(os.Stderr, "echorun: exit %d\n", exit)
	os.Exit(exit)
}

func wantedExit(file string) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	code := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "exit: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return 0, err
			}
			code = max(code, n)
		}
	}
	return code, sc.Err()
}

func write(name string, data []byte) {
	if name == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "echorun:", err)
		os.Exit(2)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "echorun:", err)
		os.Exit(2)
	}
}

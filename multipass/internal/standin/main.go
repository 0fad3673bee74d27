//go:build linux

// Command standin is a STAND-IN for the real multipass CLI, built by tests so
// that the multipass client and the VM backend can be exercised where no
// multipass (and no VM) exists. It is not multipass and runs no VM: an
// "instance" is a directory, and a command "in" an instance runs on the
// local machine.
//
// What it keeps of multipass: the subcommands hopcheck uses (launch, info,
// list, start, stop, delete, exec, transfer, shell), their options, the JSON
// shape of `info --format json` and `list --format json`, the failure texts
// ("info failed: The following errors occurred:\ninstance "x" does not
// exist") and the exit codes (1 command line, 2 command failed, the inner
// command's status for exec).
//
// State lives under $HOPCHECK_STANDIN_DIR, one directory per instance:
//
//	$HOPCHECK_STANDIN_DIR/NAME/instance.json   name, state, image, sizes
//	$HOPCHECK_STANDIN_DIR/NAME/cloud-init.yaml user data given to launch (recorded, never run)
//	$HOPCHECK_STANDIN_DIR/NAME/home/ubuntu/    the default user's home
//
// Paths are not translated. `exec` runs its command on this machine with
// HOME and the working directory set to the instance's home, and drops a
// leading "sudo" (tests run as root). `transfer` uses guest paths as local
// paths, relative ones taken from the instance's home, and, like the real
// one that writes as the ubuntu user, refuses to write outside that home.
// So a client that discovers the guest home with `exec NAME -- printenv HOME`
// and keeps its files under it works the same against multipass and against
// this stand-in, and a test never touches anything outside its own temporary
// directory. Without $HOPCHECK_STANDIN_DIR every command fails the way
// multipass does when its daemon is unreachable.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"gopkg.in/yaml.v3"
)

// Exit codes of the multipass client.
const (
	exitCommandLineError = 1
	exitCommandFail      = 2
)

// stateDirEnv names the directory that holds the stand-in's instances.
const stateDirEnv = "HOPCHECK_STANDIN_DIR"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "Usage: multipass [options] <command> (stand-in)")
		return exitCommandLineError
	}
	cmd, rest := args[0], args[1:]
	h := handlerFor(cmd)
	if h == nil {
		fmt.Fprintf(os.Stderr, "Unknown command: %s\n", cmd)
		return exitCommandLineError
	}
	root := os.Getenv(stateDirEnv)
	if root == "" {
		return fail(cmd, exitCommandFail, "cannot connect to the multipass socket\n"+
			"Please ensure multipassd is running and '"+stateDirEnv+"' is accessible")
	}
	s := &store{root: root}
	return h(s, cmd, rest)
}

type handler func(s *store, cmd string, args []string) int

// handlerFor returns the handler of a subcommand, or nil.
func handlerFor(cmd string) handler {
	switch cmd {
	case "launch":
		return launch
	case "info":
		return info
	case "list", "ls":
		return list
	case "start":
		return setState("Running")
	case "stop":
		return setState("Stopped")
	case "delete":
		return deleteCmd
	case "exec":
		return execCmd
	case "transfer", "copy-files":
		return transfer
	case "shell", "sh":
		return shell
	}
	return nil
}

// fail prints a failure the way multipass does: "<command> failed: <msg>".
func fail(cmd string, code int, msg string) int {
	fmt.Fprintf(os.Stderr, "%s failed: %s\n", cmd, msg)
	return code
}

// usageError prints a command-line error (multipass prints these bare).
func usageError(msg string) int {
	fmt.Fprintln(os.Stderr, msg)
	return exitCommandLineError
}

// instance is the recorded state of one stand-in instance.
type instance struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Image  string `json:"image"`
	CPUs   int    `json:"cpus"`
	Memory string `json:"memory"`
	Disk   string `json:"disk"`
}

type store struct{ root string }

func (s *store) dir(name string) string  { return filepath.Join(s.root, name) }
func (s *store) home(name string) string { return filepath.Join(s.dir(name), "home", "ubuntu") }

func (s *store) load(name string) (*instance, error) {
	b, err := os.ReadFile(filepath.Join(s.dir(name), "instance.json"))
	if err != nil {
		return nil, err
	}
	var in instance
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &in, nil
}

// save writes the state through a rename, so that a concurrent reader sees
// either the old or the new state.
func (s *store) save(in *instance) error {
	b, err := json.MarshalIndent(in, "", "    ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir(in.Name), ".instance.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.dir(in.Name), "instance.json"))
}

func (s *store) names() ([]string, error) {
	ents, err := os.ReadDir(s.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(s.root, e.Name(), "instance.json")); err == nil {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// selectInstances loads the named instances and reports the missing ones the
// way the daemon does for commands that take instance names. With
// operative set, deleted instances are errors too.
func (s *store) selectInstances(cmd string, names []string, operative bool) ([]*instance, int) {
	var found []*instance
	var errs []string
	for _, n := range names {
		in, err := s.load(n)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			errs = append(errs, fmt.Sprintf("instance %q does not exist", n))
		case err != nil:
			return nil, fail(cmd, exitCommandFail, err.Error())
		case operative && in.State == "Deleted":
			errs = append(errs, fmt.Sprintf("instance %q is deleted", n))
		default:
			found = append(found, in)
		}
	}
	if len(errs) > 0 {
		return nil, fail(cmd, exitCommandFail, "The following errors occurred:\n"+strings.Join(errs, "\n"))
	}
	return found, 0
}

// opts is a parsed command line: option values by canonical name, flags,
// and positional arguments (everything after "--" among them).
type opts struct {
	values map[string]string
	flags  map[string]bool
	pos    []string
	// dashed holds the arguments after "--".
	dashed []string
}

// spec lists a command's options: aliases map to a canonical name; values
// take an argument, flags do not.
type spec struct {
	values map[string]string
	flags  map[string]string
}

// parse parses args; a non-empty message is a command-line error, worded as
// multipass's (Qt's) parser words it.
func parse(sp spec, args []string) (*opts, string) {
	o := &opts{values: map[string]string{}, flags: map[string]bool{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			o.dashed = args[i+1:]
			break
		}
		if len(a) < 2 || a[0] != '-' {
			o.pos = append(o.pos, a)
			continue
		}
		key, val, hasVal := strings.Cut(a, "=")
		if canon, ok := sp.values[key]; ok {
			if !hasVal {
				if i+1 >= len(args) {
					return nil, fmt.Sprintf("Missing value after '%s'.", key)
				}
				i++
				val = args[i]
			}
			o.values[canon] = val
			continue
		}
		if canon, ok := sp.flags[key]; ok && !hasVal {
			o.flags[canon] = true
			continue
		}
		return nil, fmt.Sprintf("Unknown option '%s'.", strings.TrimLeft(key, "-"))
	}
	return o, ""
}

var validName = regexp.MustCompile(`^[a-zA-Z]([a-zA-Z0-9-]*[a-zA-Z0-9])?$`)

func launch(s *store, cmd string, args []string) int {
	o, msg := parse(spec{values: map[string]string{
		"-n": "name", "--name": "name",
		"-c": "cpus", "--cpus": "cpus",
		"-m": "memory", "--memory": "memory", "--mem": "memory",
		"-d": "disk", "--disk": "disk",
		"--cloud-init": "cloud-init",
		"--timeout":    "timeout",
	}}, args)
	if msg != "" {
		return usageError(msg)
	}
	if len(o.pos) > 1 {
		return usageError("Too many arguments supplied")
	}
	name := o.values["name"]
	if name == "" {
		// Real multipass would make up a name; tests always give one.
		return usageError("stand-in: launch needs --name")
	}
	if !validName.MatchString(name) || len(name) > 63 {
		return fail(cmd, exitCommandFail, "Invalid instance name supplied: "+name)
	}
	in := &instance{Name: name, State: "Running", Image: "24.04", CPUs: 1, Memory: "1G", Disk: "5G"}
	if len(o.pos) == 1 {
		in.Image = o.pos[0]
	}
	if v, ok := o.values["cpus"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fail(cmd, exitCommandFail, "error: Invalid CPUs value supplied: "+v)
		}
		in.CPUs = n
	}
	for key, dst := range map[string]*string{"memory": &in.Memory, "disk": &in.Disk} {
		if v, ok := o.values[key]; ok {
			if _, err := parseSize(v); err != nil {
				return fail(cmd, exitCommandFail, fmt.Sprintf("Invalid %s size value supplied: %s.", key, v))
			}
			*dst = v
		}
	}
	if v, ok := o.values["timeout"]; ok {
		if n, err := strconv.Atoi(v); err != nil || n <= 0 {
			return usageError("error: --timeout value has to be a positive integer")
		}
	}
	var cloudInit []byte
	if src, ok := o.values["cloud-init"]; ok {
		var err error
		if src == "-" {
			cloudInit, err = io.ReadAll(os.Stdin)
		} else {
			cloudInit, err = os.ReadFile(src)
		}
		if err != nil {
			return usageError("error: No such file: " + src)
		}
		var node yaml.Node
		if err := yaml.Unmarshal(cloudInit, &node); err != nil {
			return usageError("error loading cloud-init config: " + err.Error())
		}
	}
	if _, err := os.Stat(s.dir(name)); err == nil {
		return fail(cmd, exitCommandFail, fmt.Sprintf("instance %q already exists", name))
	}
	if err := os.MkdirAll(s.home(name), 0o755); err != nil {
		return fail(cmd, exitCommandFail, err.Error())
	}
	if cloudInit != nil {
		if err := os.WriteFile(filepath.Join(s.dir(name), "cloud-init.yaml"), cloudInit, 0o644); err != nil {
			return fail(cmd, exitCommandFail, err.Error())
		}
	}
	if err := s.save(in); err != nil {
		return fail(cmd, exitCommandFail, err.Error())
	}
	fmt.Printf("Launched: %s\n", name)
	return 0
}

var formatSpec = spec{values: map[string]string{"--format": "format"}}

func checkFormat(o *opts) string {
	if f := o.values["format"]; f != "json" {
		return fmt.Sprintf("stand-in: only --format json is supported, not %q", f)
	}
	return ""
}

func info(s *store, cmd string, args []string) int {
	o, msg := parse(formatSpec, args)
	if msg == "" {
		msg = checkFormat(o)
	}
	if msg != "" {
		return usageError(msg)
	}
	if len(o.pos) == 0 {
		return usageError("Name argument or --all is required")
	}
	found, code := s.selectInstances(cmd, o.pos, false)
	if code != 0 {
		return code
	}
	entries := map[string]any{}
	for _, in := range found {
		entries[in.Name] = infoEntry(in)
	}
	return printJSON(map[string]any{"errors": []any{}, "info": entries})
}

// infoEntry has the keys of `multipass info --format json` (json_formatter.cpp).
func infoEntry(in *instance) map[string]any {
	disk := map[string]any{}
	if n, err := parseSize(in.Disk); err == nil {
		disk["total"] = strconv.FormatUint(n, 10)
	}
	memory := map[string]any{}
	if n, err := parseSize(in.Memory); err == nil {
		memory["total"] = n
	}
	e := map[string]any{
		"cpu_count":      strconv.Itoa(in.CPUs),
		"disks":          map[string]any{"sda1": disk},
		"image_hash":     "",
		"image_release":  in.Image,
		"ipv4":           []string{}, // the stand-in has no network of its own
		"load":           []float64{},
		"memory":         memory,
		"mounts":         map[string]any{},
		"release":        "",
		"snapshot_count": "0",
		"state":          in.State,
	}
	if in.State == "Running" {
		e["release"] = hostRelease()
		e["load"] = loadAverage()
	}
	return e
}

func list(s *store, cmd string, args []string) int {
	o, msg := parse(formatSpec, args)
	if msg == "" {
		msg = checkFormat(o)
	}
	if msg != "" {
		return usageError(msg)
	}
	names, err := s.names()
	if err != nil {
		return fail(cmd, exitCommandFail, err.Error())
	}
	entries := []any{}
	for _, n := range names {
		in, err := s.load(n)
		if err != nil {
			return fail(cmd, exitCommandFail, err.Error())
		}
		release := "Not Available"
		if in.State == "Running" {
			release = hostRelease()
		}
		entries = append(entries, map[string]any{"name": in.Name, "state": in.State, "ipv4": []string{}, "release": release})
	}
	return printJSON(map[string]any{"list": entries})
}

func printJSON(v any) int {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitCommandFail
	}
	fmt.Printf("%s\n", b)
	return 0
}

func setState(state string) handler {
	return func(s *store, cmd string, args []string) int {
		o, msg := parse(spec{values: map[string]string{"--timeout": "timeout"}}, args)
		if msg != "" {
			return usageError(msg)
		}
		if len(o.pos) == 0 {
			return usageError("Name argument or --all is required")
		}
		found, code := s.selectInstances(cmd, o.pos, true)
		if code != 0 {
			return code
		}
		for _, in := range found {
			in.State = state
			if err := s.save(in); err != nil {
				return fail(cmd, exitCommandFail, err.Error())
			}
		}
		return 0
	}
}

func deleteCmd(s *store, cmd string, args []string) int {
	o, msg := parse(spec{flags: map[string]string{"-p": "purge", "--purge": "purge"}}, args)
	if msg != "" {
		return usageError(msg)
	}
	if len(o.pos) == 0 {
		return usageError("Name argument or --all is required")
	}
	found, code := s.selectInstances(cmd, o.pos, false)
	if code != 0 {
		return code
	}
	for _, in := range found {
		if o.flags["purge"] {
			if err := os.RemoveAll(s.dir(in.Name)); err != nil {
				return fail(cmd, exitCommandFail, err.Error())
			}
			continue
		}
		in.State = "Deleted"
		if err := s.save(in); err != nil {
			return fail(cmd, exitCommandFail, err.Error())
		}
	}
	return 0
}

// execCmd runs `exec NAME -- ARGV` on this machine in the instance's home
// and exits with the command's status, as multipass passes it through.
func execCmd(s *store, cmd string, args []string) int {
	o, msg := parse(spec{
		values: map[string]string{"-d": "dir", "--working-directory": "dir"},
		flags:  map[string]string{"-n": "nomap", "--no-map-working-directory": "nomap"},
	}, args)
	if msg != "" {
		return usageError(msg)
	}
	argv := append(o.pos[min(1, len(o.pos)):], o.dashed...)
	if len(o.pos) == 0 || len(argv) == 0 {
		return usageError("Wrong number of arguments")
	}
	in, code := s.operative(cmd, o.pos[0])
	if code != 0 {
		return code
	}
	dir := s.home(in.Name)
	if d, ok := o.values["dir"]; ok {
		dir = s.guestPath(in.Name, d)
	}
	return runLocal(s.home(in.Name), dir, argv)
}

// operative loads one instance for exec, transfer and shell; like multipass
// it starts a stopped instance instead of failing.
func (s *store) operative(cmd, name string) (*instance, int) {
	found, code := s.selectInstances(cmd, []string{name}, true)
	if code != 0 {
		return nil, code
	}
	in := found[0]
	if in.State != "Running" {
		in.State = "Running"
		if err := s.save(in); err != nil {
			return nil, fail(cmd, exitCommandFail, err.Error())
		}
	}
	return in, 0
}

// runLocal runs argv with this process's stdio and returns its exit status
// the way a shell reports it.
func runLocal(home, dir string, argv []string) int {
	if argv[0] == "sudo" {
		// The guest's default user needs sudo for root; the stand-in's
		// caller is root already.
		argv = argv[1:]
		if len(argv) == 0 {
			return usageError("usage: sudo command")
		}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bash: line 1: %s: command not found\n", argv[0])
		return 127
	}
	c := exec.Command(path, argv[1:]...)
	c.Args[0] = argv[0]
	c.Dir = dir
	c.Env = append(os.Environ(), "HOME="+home)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	// If the client kills the stand-in, the command gets the hangup it would
	// get when the ssh session that carries it closes.
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGHUP}
	err = c.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	default:
		fmt.Fprintf(os.Stderr, "bash: line 1: %s: %v\n", argv[0], err)
		return 126
	}
}

func shell(s *store, cmd string, args []string) int {
	o, msg := parse(spec{}, args)
	if msg != "" {
		return usageError(msg)
	}
	if len(o.pos) != 1 {
		return usageError("Wrong number of arguments")
	}
	in, code := s.operative(cmd, o.pos[0])
	if code != 0 {
		return code
	}
	return runLocal(s.home(in.Name), s.home(in.Name), []string{"/bin/sh"})
}

// guestPath resolves a path in an instance: relative paths start at the
// default user's home, as with sftp.
func (s *store) guestPath(name, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(s.home(name), p)
}

func transfer(s *store, cmd string, args []string) int {
	o, msg := parse(spec{flags: map[string]string{
		"-r": "recursive", "--recursive": "recursive",
		"-p": "parents", "--parents": "parents",
	}}, args)
	if msg != "" {
		return usageError(msg)
	}
	paths := append(o.pos, o.dashed...)
	if len(paths) < 2 {
		return usageError("Not enough arguments given")
	}
	type endpoint struct{ name, path string }
	split := func(a string) endpoint {
		if n, p, ok := strings.Cut(a, ":"); ok {
			return endpoint{n, p}
		}
		return endpoint{"", a}
	}
	srcs, dst := make([]endpoint, 0, len(paths)-1), split(paths[len(paths)-1])
	var guestSrc string
	for _, a := range paths[:len(paths)-1] {
		e := split(a)
		if e.name != "" {
			if guestSrc != "" && guestSrc != e.name {
				return usageError("All sources must be from the same instance")
			}
			guestSrc = e.name
		}
		srcs = append(srcs, e)
	}
	switch {
	case dst.name != "" && guestSrc != "":
		return usageError("Cannot specify an instance name for both source and destination")
	case dst.name == "" && guestSrc == "":
		return usageError("An instance name is needed for either source or destination")
	}
	name := dst.name + guestSrc
	in, code := s.operative(cmd, name)
	if code != 0 {
		return code
	}
	toGuest := dst.name != ""
	target := dst.path
	if toGuest {
		target = s.guestPath(in.Name, dst.path)
		home := s.home(in.Name)
		if rel, err := filepath.Rel(home, target); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			// The real transfer writes as the ubuntu user.
			fmt.Fprintf(os.Stderr, "[sftp] cannot open remote file %s: permission denied\n", dst.path)
			return exitCommandFail
		}
	}
	if len(srcs) > 1 {
		if st, err := os.Stat(target); err != nil || !st.IsDir() {
			fmt.Fprintf(os.Stderr, "[sftp] target %s is not a directory\n", dst.path)
			return exitCommandFail
		}
	}
	for _, src := range srcs {
		from := src.path
		if !toGuest {
			from = s.guestPath(in.Name, src.path)
		}
		if err := copyPath(from, target, o.flags["recursive"], o.flags["parents"]); err != nil {
			fmt.Fprintf(os.Stderr, "[sftp] %v\n", err)
			return exitCommandFail
		}
	}
	return 0
}

// copyPath copies src to dst the way scp and multipass transfer do: into
// dst when dst is an existing directory, as dst otherwise.
func copyPath(src, dst string, recursive, parents bool) error {
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("cannot access %s: %w", src, err)
	}
	if d, err := os.Stat(dst); err == nil && d.IsDir() {
		dst = filepath.Join(dst, filepath.Base(src))
	} else if parents {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
	}
	if !st.IsDir() {
		return copyFile(src, dst, st.Mode().Perm())
	}
	if !recursive {
		return fmt.Errorf("omitting directory %s, use -r", src)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(out, info.Mode().Perm()|0o700)
		case info.Mode().IsRegular():
			return copyFile(p, out, info.Mode().Perm())
		default:
			return nil // sftp copies regular files and directories only
		}
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("cannot open %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("cannot open %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return os.Chmod(dst, perm)
}

var sizeRE = regexp.MustCompile(`^([0-9]+)([KkMmGg]?)(i?[Bb])?$`)

// parseSize reads a multipass size: bytes, or a number with K, M or G
// (powers of 1024, optionally followed by "B" or "iB").
func parseSize(s string) (uint64, error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		return 0, err
	}
	switch strings.ToUpper(m[2]) {
	case "K":
		n <<= 10
	case "M":
		n <<= 20
	case "G":
		n <<= 30
	}
	return n, nil
}

// hostRelease is the release reported for a running instance: commands run
// on this machine, so its /etc/os-release is the truthful answer.
func hostRelease() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return "Not Available"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Not Available"
}

func loadAverage() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return []float64{}
	}
	fields := strings.Fields(string(b))
	if len(fields) < 3 {
		return []float64{}
	}
	out := []float64{}
	for _, f := range fields[:3] {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return []float64{}
		}
		out = append(out, v)
	}
	return out
}

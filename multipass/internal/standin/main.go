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
// What it models of the real CLI, each behaviour with the source it is
// taken from (canonical/multipass issues unless said otherwise):
//
//   - Strict snap confinement, ON by default as on Linux, where multipass
//     is a strictly confined snap; HOPCHECK_STANDIN_CONFINED=0 turns it off
//     (macOS, Windows). The client opens host paths (transfer's host side,
//     `launch --cloud-init FILE`) only under the user's home ($HOME) and not
//     in a hidden folder there (#1598, #3554, snapcraft's home interface);
//     it has a /tmp of its own (#1783, snapd#6614), kept here under
//     $HOPCHECK_STANDIN_DIR/.snap-private-tmp. A host source outside home
//     fails with `Source path "X" does not exist` and exit code 1, the
//     command-line error code (#1783, #1598; "returned exit code 1" in
//     canonical/multipass#1074); one in a hidden folder with `transfer
//     failed: [sftp push] error opening file for reading: Permission
//     denied` and exit code 2 (#1783); a destination in /tmp lands in the
//     private /tmp and the caller never sees it (#1783, #3554). A cloud-init
//     file it cannot read fails as `error loading cloud-init config: bad
//     file` (#3693). Standard input and output are not paths and always
//     work: `launch --cloud-init -` (#3693) and `exec` with pipes in and out
//     behave as ssh does without a terminal (#667, #1217).
//   - Instance states Starting, Running, Suspended, Stopped and Deleted
//     (status_string_for in format_utils.cpp): launch shows Starting until
//     the instance is up; `suspend` and `stop`, then `start` (which resumes
//     a suspended instance, #763, #988); `exec`, `shell` and `transfer`
//     start a stopped or suspended instance (#621); `delete` without
//     --purge leaves the instance Deleted, listed, refusing exec and start
//     (`instance "x" is deleted`) and holding its name, so that launching
//     the name again fails with `instance "x" already exists` until `purge`
//     or `delete --purge NAME`, which also works on a deleted instance
//     (#189, #499, #2018); `recover` brings it back Stopped (#534).
//   - Launch: the first launch of an image retrieves it, with progress
//     ("Retrieving image: N%", #3986) and a spinner after each step
//     (#490, #2313); later launches of the image skip that. With
//     HOPCHECK_STANDIN_LAUNCH_DELAY (a Go duration) the instance takes that
//     long to initialise; when --timeout runs out first, launch fails with
//     `launch failed: The following errors occurred:` / `timed out waiting
//     for initialization to complete` and exit code 5, and the instance
//     stays, Starting and then Running (#1525, #2574, #3536, #4395).
//   - No daemon: without $HOPCHECK_STANDIN_DIR every command fails with
//     `cannot connect to the multipass socket` and exit code 2, as a
//     multipass whose multipassd is not running does.
//
// Every invocation is appended, as a JSON array of its arguments, to
// $HOPCHECK_STANDIN_DIR/.calls, so that a test can check which commands
// were used (and that no host path was handed to multipass).
//
// Paths are not translated. `exec` runs its command on this machine with
// HOME and the working directory set to the instance's home, and drops a
// leading "sudo" (tests run as root). `transfer` uses guest paths as local
// paths, relative ones taken from the instance's home, and, like the real
// one that writes as the ubuntu user, refuses to write outside that home.
// So a client that discovers the guest home with `exec NAME -- printenv HOME`
// and keeps its files under it works the same against multipass and against
// this stand-in, and a test never touches anything outside its own temporary
// directory.
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
	"time"

	"gopkg.in/yaml.v3"
)

// Exit codes of the multipass client (return_codes.h).
const (
	exitCommandLineError = 1
	exitCommandFail      = 2
	exitTimeout          = 5
)

// Environment of the stand-in.
const (
	// stateDirEnv names the directory that holds the stand-in's instances.
	stateDirEnv = "HOPCHECK_STANDIN_DIR"
	// confinedEnv set to 0, false or off models an unconfined multipass.
	confinedEnv = "HOPCHECK_STANDIN_CONFINED"
	// launchDelayEnv is how long an instance takes to initialise.
	launchDelayEnv = "HOPCHECK_STANDIN_LAUNCH_DELAY"
)

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
	s := &store{root: root, confined: confined()}
	s.logCall(args)
	return h(s, cmd, rest)
}

// confined reports whether the stand-in models the strictly confined snap.
func confined() bool {
	switch strings.ToLower(os.Getenv(confinedEnv)) {
	case "0", "false", "off", "no":
		return false
	}
	return true
}

// logCall appends the command line to the call log. It is best effort: a
// test that reads the log fails on a missing entry anyway.
func (s *store) logCall(args []string) {
	b, err := json.Marshal(args)
	if err != nil {
		return
	}
	f, err := os.OpenFile(filepath.Join(s.root, ".calls"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.Write(append(b, '\n'))
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
	case "suspend":
		return setState("Suspended")
	case "delete":
		return deleteCmd
	case "recover":
		return recoverCmd
	case "purge":
		return purge
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
	// ReadyAt is when a Starting instance is up; load reports it Running
	// from then on.
	ReadyAt time.Time `json:"ready_at,omitzero"`
}

type store struct {
	root     string
	confined bool
}

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
	if in.State == "Starting" && !time.Now().Before(in.ReadyAt) {
		in.State = "Running"
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
	var timeout time.Duration // none
	if v, ok := o.values["timeout"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return usageError("error: --timeout value has to be a positive integer")
		}
		timeout = time.Duration(n) * time.Second
	}
	var delay time.Duration
	if v := os.Getenv(launchDelayEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return usageError("stand-in: " + launchDelayEnv + ": " + err.Error())
		}
		delay = d
	}
	var cloudInit []byte
	if src, ok := o.values["cloud-init"]; ok {
		var err error
		if src == "-" {
			cloudInit, err = io.ReadAll(os.Stdin)
		} else {
			p, access := s.hostPath(src)
			if access != visible {
				// The confined client cannot open it (#3693).
				return usageError("error loading cloud-init config: bad file")
			}
			cloudInit, err = os.ReadFile(p)
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
		// A deleted instance that is not purged holds its name (#189, #499).
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
	start := time.Now()
	in.State, in.ReadyAt = "Starting", start.Add(delay)
	if err := s.save(in); err != nil {
		return fail(cmd, exitCommandFail, err.Error())
	}
	if err := s.retrieveImage(in.Image); err != nil {
		return fail(cmd, exitCommandFail, err.Error())
	}
	fmt.Printf("\rStarting %s |", name)
	fmt.Printf("\rWaiting for initialization to complete /")
	if timeout > 0 && delay > timeout {
		// The instance keeps booting; only the wait for it gives up.
		time.Sleep(time.Until(start.Add(timeout)))
		fmt.Printf("\r%60s\r", "")
		return fail(cmd, exitTimeout, "The following errors occurred:\ntimed out waiting for initialization to complete")
	}
	time.Sleep(time.Until(in.ReadyAt))
	in.State, in.ReadyAt = "Running", time.Time{}
	if err := s.save(in); err != nil {
		return fail(cmd, exitCommandFail, err.Error())
	}
	fmt.Printf("\r%60s\rLaunched: %s\n", "", name)
	return 0
}

// retrieveImage prints the progress of an image's first download, as the
// real launch does, and remembers the image, so that later launches of it
// skip the download.
func (s *store) retrieveImage(image string) error {
	cached := filepath.Join(s.root, ".images", image)
	if _, err := os.Stat(cached); err == nil {
		return nil
	}
	for pct := 0; pct <= 100; pct += 5 {
		fmt.Printf("\rRetrieving image: %d%%", pct)
	}
	fmt.Printf("\rVerifying image \\")
	fmt.Printf("\rPreparing image for instance -")
	return os.MkdirAll(cached, 0o755)
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
			in.State, in.ReadyAt = state, time.Time{}
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

// recoverCmd brings deleted instances back, stopped (#534).
func recoverCmd(s *store, cmd string, args []string) int {
	o, msg := parse(spec{}, args)
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
		if in.State != "Deleted" {
			continue
		}
		in.State = "Stopped"
		if err := s.save(in); err != nil {
			return fail(cmd, exitCommandFail, err.Error())
		}
	}
	return 0
}

// purge removes every deleted instance for good, freeing their names.
func purge(s *store, cmd string, args []string) int {
	if _, msg := parse(spec{}, args); msg != "" {
		return usageError(msg)
	}
	names, err := s.names()
	if err != nil {
		return fail(cmd, exitCommandFail, err.Error())
	}
	for _, n := range names {
		in, err := s.load(n)
		if err != nil {
			return fail(cmd, exitCommandFail, err.Error())
		}
		if in.State == "Deleted" {
			if err := os.RemoveAll(s.dir(n)); err != nil {
				return fail(cmd, exitCommandFail, err.Error())
			}
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
// it starts a stopped or suspended instance instead of failing (#621). An
// instance that is still starting is waited for (the stand-in's choice).
func (s *store) operative(cmd, name string) (*instance, int) {
	found, code := s.selectInstances(cmd, []string{name}, true)
	if code != 0 {
		return nil, code
	}
	in := found[0]
	if in.State == "Starting" {
		time.Sleep(time.Until(in.ReadyAt))
	}
	if in.State != "Running" {
		in.State = "Running"
		in.ReadyAt = time.Time{}
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
	toGuest := dst.name != ""
	// The client checks its host paths before it asks the daemon anything.
	if toGuest {
		for i, src := range srcs {
			p, access := s.hostPath(src.path)
			if access == private {
				if _, err := os.Stat(p); err != nil {
					access = invisible
				}
			}
			switch access {
			case invisible:
				// #1783, #1598: the path is not in the snap's view.
				fmt.Fprintf(os.Stderr, "Source path %q does not exist\n", src.path)
				return exitCommandLineError
			case hidden:
				// #1783: the home interface leaves out hidden folders.
				return fail(cmd, exitCommandFail, "[sftp push] error opening file for reading: Permission denied")
			}
			srcs[i].path = p
		}
	}
	in, code := s.operative(cmd, name)
	if code != 0 {
		return code
	}
	target := dst.path
	if toGuest {
		target = s.guestPath(in.Name, dst.path)
		home := s.home(in.Name)
		if rel, err := filepath.Rel(home, target); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			// The real transfer writes as the ubuntu user.
			fmt.Fprintf(os.Stderr, "[sftp] cannot open remote file %s: permission denied\n", dst.path)
			return exitCommandFail
		}
	} else {
		p, access := s.hostPath(dst.path)
		switch access {
		case hidden, invisible:
			// Modelled on #1783's message for reading; the confined
			// client cannot write there either.
			return fail(cmd, exitCommandFail, "[sftp pull] error opening file for writing: Permission denied")
		case private:
			// #1783, #3554: it lands in the snap's own /tmp.
			if err := os.MkdirAll(s.privateTmp(), 0o1777); err != nil {
				return fail(cmd, exitCommandFail, err.Error())
			}
		}
		target = p
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

// access is what the multipass client can do with a host path.
type access int

const (
	visible   access = iota // opened as given
	private                 // under /tmp: the snap's own /tmp instead
	hidden                  // under the home, in a hidden folder: seen, not opened
	invisible               // outside the home: not there at all
)

// privateTmp is where the confined client's /tmp is.
func (s *store) privateTmp() string { return filepath.Join(s.root, ".snap-private-tmp", "tmp") }

// hostPath says where the client finds a host path it is given, and how.
// Unconfined, every path is visible. Confined (the snap's home interface
// and private /tmp): non-hidden paths under $HOME are visible, /tmp is the
// snap's own, and the rest of the file system is not there.
func (s *store) hostPath(p string) (string, access) {
	abs, err := filepath.Abs(p)
	if err != nil || !s.confined {
		return abs, visible
	}
	if home := os.Getenv("HOME"); home != "" {
		if rel, err := filepath.Rel(home, abs); err == nil && filepath.IsLocal(rel) || rel == "." {
			for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
				if strings.HasPrefix(part, ".") && part != "." {
					return abs, hidden
				}
			}
			return abs, visible
		}
	}
	if rel, err := filepath.Rel("/tmp", abs); err == nil && (filepath.IsLocal(rel) || rel == ".") {
		return filepath.Join(s.privateTmp(), rel), private
	}
	return abs, invisible
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

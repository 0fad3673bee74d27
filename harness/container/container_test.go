package container

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hopcheck/hopcheck/internal/privtest"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseEngineInspect(t *testing.T) {
	podmanWeb := []Address{{Network: "podman", MAC: "ba:7e:2f:c2:88:39", Addr: netip.MustParsePrefix("10.88.0.7/16"), Gateway: netip.MustParseAddr("10.88.0.1")}}
	tests := []struct {
		file, runtime, asked string
		want                 Container
		err                  error
		detail               string
	}{
		{"docker-20.10-running.json", "docker", "web", Container{Runtime: "docker", Name: "web",
			ID: "7434fbee8f9fb98856c12b73e2c18aee6b7f6aaf7d26d88453225f7b46b96338", PID: 1497, NetNS: "/proc/1497/ns/net",
			Addresses: []Address{{Network: "bridge", MAC: "02:42:ac:11:00:02", Addr: netip.MustParsePrefix("172.17.0.2/16"), Gateway: netip.MustParseAddr("172.17.0.1")}}}, nil, ""},
		{"docker-20.10-created.json", "docker", "stopped", Container{}, ErrNotRunning, "state created"},
		{"docker-20.10-exited.json", "docker", "exited", Container{}, ErrNotRunning, "state exited"},
		{"podman-4.3-running.json", "podman", "web", Container{Runtime: "podman", Name: "web",
			ID: "7650e09e3c8aa1170b0610c677829afc04dece60943c872f125d583844ea8e52", PID: 762, NetNS: "/proc/762/ns/net",
			Addresses: podmanWeb}, nil, ""},
		// Asked by an ID prefix: the container's own name comes back.
		{"podman-4.3-running.json", "podman", "7650e09e", Container{Runtime: "podman", Name: "web",
			ID: "7650e09e3c8aa1170b0610c677829afc04dece60943c872f125d583844ea8e52", PID: 762, NetNS: "/proc/762/ns/net",
			Addresses: podmanWeb}, nil, ""},
		{"podman-4.3-created.json", "podman", "stopped", Container{}, ErrNotRunning, "state created"},
		{"podman-4.3-exited.json", "podman", "exited", Container{}, ErrNotRunning, "state exited"},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.asked, func(t *testing.T) {
			got, err := ParseEngineInspect(tt.runtime, tt.asked, readTestdata(t, tt.file))
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("error %q does not say %q", err, tt.detail)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseEngineInspectBadOutput(t *testing.T) {
	tests := []struct {
		out string
		err error
	}{
		{"[]", ErrNotFound},
		{"", ErrBadOutput},
		{"{}", ErrBadOutput},
		{`[{"Id":"a","Name":"/x","State":{"Running":true,"Pid":1}},{"Id":"b","Name":"/x"}]`, ErrAmbiguous},
		{`[{"Name":"/x","State":{"Running":true,"Pid":1}}]`, ErrBadOutput},
		// Running with no PID has no namespace to enter.
		{`[{"Id":"a","Name":"/x","State":{"Status":"running","Running":true,"Pid":0}}]`, ErrNotRunning},
	}
	for _, tt := range tests {
		if _, err := ParseEngineInspect("docker", "x", []byte(tt.out)); !errors.Is(err, tt.err) {
			t.Errorf("ParseEngineInspect(%q): %v, want %v", tt.out, err, tt.err)
		}
	}
}

func TestParseCRIInspect(t *testing.T) {
	got, err := ParseCRIInspect("web", readTestdata(t, "crictl-1.37-running.json"))
	want := Container{Runtime: "cri", Name: "web", ID: "e6bab20bc25a1751a30d431ff3739c3227ed18892b4e8d5ae3bb9c563c51ddb4",
		PID: 25298, NetNS: "/proc/25298/ns/net"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("running: %+v, %v; want %+v", got, err, want)
	}
	for _, tt := range []struct{ file, name, state string }{
		{"crictl-1.37-exited.json", "exited", "state exited"},
		{"crictl-1.37-created.json", "stopped", "state created"},
	} {
		_, err = ParseCRIInspect(tt.name, readTestdata(t, tt.file))
		if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), tt.state) {
			t.Errorf("%s: %v, want ErrNotRunning saying %s", tt.file, err, tt.state)
		}
	}
	for _, bad := range []string{"", "[]", `{"status":{}}`} {
		if _, err := ParseCRIInspect("x", []byte(bad)); !errors.Is(err, ErrBadOutput) {
			t.Errorf("ParseCRIInspect(%q): %v, want ErrBadOutput", bad, err)
		}
	}
}

// crictl 1.37's own stderr (testdata/crictl-1.37-*.stderr), through
// CRI.Inspect: the kind of error, and the message hopcheck keeps, without
// the config-file warning, klog's repeat or logrus's quoting.
func TestCRIErrors(t *testing.T) {
	for _, tt := range []struct {
		file, argv string
		err        error
		want       []string
		not        []string
	}{
		{"crictl-1.37-inspect-notfound.stderr", "crictl inspect -o json nope", ErrNotFound,
			nil, []string{"does not exist, trying next", "remote_runtime.go"}},
		{"crictl-1.37-unreachable.stderr", "crictl ps -a --name ^nope$ -q", ErrUnreachable,
			[]string{`validate CRI v1 runtime API for endpoint "unix:///tmp/nope.sock"`, "dial unix /tmp/nope.sock: connect: no such file or directory"},
			[]string{"does not exist, trying next", `level=`, `\"`}},
		{"crictl-1.37-default-endpoints.stderr", "crictl ps -a --name ^nope$ -q", ErrUnreachable,
			[]string{"unix:///run/containerd/containerd.sock", "unix:///run/crio/crio.sock", "unix:///var/run/cri-dockerd.sock"},
			[]string{"does not exist, trying next", "cri-dockerd.sock: connect: no such file or directory\" / "}},
	} {
		stderr := string(readTestdata(t, tt.file))
		answers := map[string]fakeAnswer{"crictl ps -a --name ^nope$ -q": {stdout: ""}}
		answers[tt.argv] = fakeAnswer{stderr: stderr}
		cli := fakeCLIs{[]string{"crictl"}, answers}
		_, err := CRI{}.Inspect(context.Background(), cli.resolver().Run, "nope")
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: %v, want %v", tt.file, err, tt.err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tt.file, err, w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(err.Error(), n) {
				t.Errorf("%s: %q says %q", tt.file, err, n)
			}
		}
	}
}

func TestParseSpec(t *testing.T) {
	tests := []struct {
		spec, runtime, name string
		bad                 bool
	}{
		{"web", "", "web", false},
		{"docker:web", "docker", "web", false},
		{"podman:web", "podman", "web", false},
		{"cri:0a2c7", "cri", "0a2c7", false},
		{"my_app.1-2", "", "my_app.1-2", false},
		{"", "", "", true},
		{"docker:", "", "", true},
		{"lxc:web", "", "", true},
		{"docker:a:b", "", "", true},
		{"a/b", "", "", true},
		{"-rm", "", "", true},
		{"docker:--help", "", "", true},
		{"web app", "", "", true},
	}
	for _, tt := range tests {
		rt, name, err := ParseSpec(tt.spec)
		if tt.bad {
			if !errors.Is(err, ErrBadSpec) {
				t.Errorf("ParseSpec(%q) = %q, %q, %v; want ErrBadSpec", tt.spec, rt, name, err)
			}
			continue
		}
		if err != nil || rt != tt.runtime || name != tt.name {
			t.Errorf("ParseSpec(%q) = %q, %q, %v; want %q, %q", tt.spec, rt, name, err, tt.runtime, tt.name)
		}
	}
}

// The CLIs' own messages, as docker 20.10, podman 4.3 and crictl print
// them (crictl's from cri-tools' sources).
func TestClassify(t *testing.T) {
	tests := []struct {
		stderr string
		want   error
	}{
		{"Error: No such container: nosuch\n", ErrNotFound},
		{"Error: inspecting object: no such container nosuch\n", ErrNotFound},
		{`time="2024-05-02T09:14:03Z" level=fatal msg="getting the status of the container \"x\": rpc error: code = NotFound desc = an error occurred when try to find container \"x\": not found"`, ErrNotFound},
		{"Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n", ErrUnreachable},
		{"Cannot connect to Podman. Please verify your connection to the Linux system using `podman system connection list`, or try `podman machine init` and `podman machine start` to manage a new Linux VM\n" +
			`Error: unable to connect to Podman socket: Get "http://d/v4.3.1/libpod/_ping": dial unix /tmp/nothere.sock: connect: no such file or directory` + "\n", ErrUnreachable},
		{`level=fatal msg="validate service connection: validate CRI v1 runtime API for endpoint \"unix:///run/containerd/containerd.sock\": rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial unix /run/containerd/containerd.sock: connect: no such file or directory\""`, ErrUnreachable},
		{"WARNING: Error loading config file: /root/.docker/config.json: open /root/.docker/config.json: permission denied\n" +
			`permission denied while trying to connect to the Docker daemon socket at unix:///tmp/d/docker.sock: Get "http://%2Ftmp%2Fd%2Fdocker.sock/v1.24/containers/web/json": dial unix /tmp/d/docker.sock: connect: permission denied`, ErrPermission},
		{"Error: something else entirely\n", nil},
	}
	for _, tt := range tests {
		err := classify("docker", "web", &CLIError{Argv: []string{"docker", "inspect"}, Code: 1, Stderr: tt.stderr}, "hint")
		if tt.want == nil {
			var ce *CLIError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), "something else") {
				t.Errorf("%q: %v, want the CLI's error passed through", tt.stderr, err)
			}
			continue
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("%q: %v, want %v", tt.stderr, err, tt.want)
		}
		if !strings.Contains(err.Error(), strings.TrimSpace(strings.Split(strings.TrimSpace(tt.stderr), "\n")[0])[:20]) {
			t.Errorf("%v: the CLI's message is not passed on", err)
		}
	}
}

func TestTrimStderr(t *testing.T) {
	long := strings.Repeat("x", 400)
	tests := []struct{ in, want string }{
		{"", ""},
		{"  Error: x \n\n", "Error: x"},
		{"a\nb\nc\nd\n", "b / c / d"},
		{long, strings.Repeat("x", 300) + "..."},
	}
	for _, tt := range tests {
		if got := trimStderr(tt.in); got != tt.want {
			t.Errorf("trimStderr(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// fakeCLIs answers command lines from a table: what each runtime's CLI
// says, without running anything.
type fakeCLIs struct {
	onPath  []string
	answers map[string]fakeAnswer // by the command line joined with spaces
}

type fakeAnswer struct {
	stdout, stderr string
	block          bool // never answer: wait for ctx
}

func (f fakeCLIs) resolver() Resolver {
	return Resolver{
		LookPath: func(file string) (string, error) {
			if slices.Contains(f.onPath, file) {
				return "/usr/bin/" + file, nil
			}
			return "", &exec.Error{Name: file, Err: exec.ErrNotFound}
		},
		Run: func(ctx context.Context, argv []string) ([]byte, error) {
			a, ok := f.answers[strings.Join(argv, " ")]
			if !ok {
				return nil, &CLIError{Argv: argv, Code: 99, Stderr: "fake: no answer for " + strings.Join(argv, " ")}
			}
			if a.block {
				<-ctx.Done()
				return nil, &CLIError{Argv: argv, Code: -1, Err: ctx.Err()}
			}
			if a.stderr != "" {
				return []byte(a.stdout), &CLIError{Argv: argv, Code: 1, Stderr: a.stderr}
			}
			return []byte(a.stdout), nil
		},
		Timeout: time.Second,
	}
}

func TestResolve(t *testing.T) {
	dockerWeb := string(readTestdata(t, "docker-20.10-running.json"))
	podmanWeb := string(readTestdata(t, "podman-4.3-running.json"))
	dockerExited := string(readTestdata(t, "docker-20.10-exited.json"))
	criRunning := string(readTestdata(t, "crictl-1.37-running.json"))
	// An earlier attempt of web, exited.
	criExited := strings.ReplaceAll(string(readTestdata(t, "crictl-1.37-exited.json")), `"name": "exited"`, `"name": "web"`)
	criOther := strings.ReplaceAll(criRunning, "e6bab20bc25a1", "ffff00000000f")
	const (
		dockerIns   = "docker inspect --type container -- web"
		podmanIns   = "podman inspect --type container -- web"
		dockerGone  = "Error: No such container: web"
		podmanGone  = "Error: inspecting object: no such container web"
		dockerDown  = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
		criPs       = "crictl ps -a --name ^web$ -q"
		criIns      = "crictl inspect -o json e6bab20bc25a1751a30d431ff3739c3227ed18892b4e8d5ae3bb9c563c51ddb4"
		criInsOld   = "crictl inspect -o json 1111"
		criInsOther = "crictl inspect -o json ffff"
	)
	tests := []struct {
		name    string
		cli     fakeCLIs
		spec    string
		want    Container
		err     error
		message []string // the error says each of these
	}{
		{
			name: "docker:NAME asks docker only",
			cli:  fakeCLIs{[]string{"docker", "podman"}, map[string]fakeAnswer{dockerIns: {stdout: dockerWeb}}},
			spec: "docker:web", want: Container{Runtime: "docker", Name: "web", ID: "7434fbee8f9fb98856c12b73e2c18aee6b7f6aaf7d26d88453225f7b46b96338", PID: 1497, NetNS: "/proc/1497/ns/net"},
		},
		{
			name: "a plain name only podman knows",
			cli: fakeCLIs{[]string{"docker", "podman"}, map[string]fakeAnswer{
				dockerIns: {stdout: "[]", stderr: dockerGone}, podmanIns: {stdout: podmanWeb}}},
			spec: "web", want: Container{Runtime: "podman", Name: "web", ID: "7650e09e3c8aa1170b0610c677829afc04dece60943c872f125d583844ea8e52", PID: 762, NetNS: "/proc/762/ns/net"},
		},
		{
			name: "a plain name with only podman on PATH",
			cli:  fakeCLIs{[]string{"podman"}, map[string]fakeAnswer{podmanIns: {stdout: podmanWeb}}},
			spec: "web", want: Container{Runtime: "podman", Name: "web", ID: "7650e09e3c8aa1170b0610c677829afc04dece60943c872f125d583844ea8e52", PID: 762, NetNS: "/proc/762/ns/net"},
		},
		{
			name: "a plain name podman knows while docker's daemon is down",
			cli: fakeCLIs{[]string{"docker", "podman"}, map[string]fakeAnswer{
				dockerIns: {stderr: dockerDown}, podmanIns: {stdout: podmanWeb}}},
			spec: "web", want: Container{Runtime: "podman", Name: "web", ID: "7650e09e3c8aa1170b0610c677829afc04dece60943c872f125d583844ea8e52", PID: 762, NetNS: "/proc/762/ns/net"},
		},
		{
			name: "a plain name both know: say which",
			cli: fakeCLIs{[]string{"docker", "podman"}, map[string]fakeAnswer{
				dockerIns: {stdout: dockerWeb}, podmanIns: {stdout: podmanWeb}}},
			spec: "web", err: ErrAmbiguous,
			message: []string{"docker:web or podman:web", "called web"},
		},
		{
			name: "a stopped container is known, and not running",
			cli: fakeCLIs{[]string{"docker", "podman"}, map[string]fakeAnswer{
				dockerIns: {stdout: strings.ReplaceAll(dockerExited, "/exited", "/web")}, podmanIns: {stdout: "[]", stderr: podmanGone}}},
			spec: "web", err: ErrNotRunning, message: []string{"docker:web", "state exited"},
		},
		{
			name: "nobody knows it",
			cli: fakeCLIs{[]string{"docker", "podman"}, map[string]fakeAnswer{
				dockerIns: {stdout: "[]", stderr: dockerGone}, podmanIns: {stdout: "[]", stderr: podmanGone}}},
			spec: "web", err: ErrNotFound, message: []string{"asked docker, podman", "not on PATH: crictl"},
		},
		{
			name: "not found by one, the other unreachable: both said",
			cli: fakeCLIs{[]string{"docker", "podman"}, map[string]fakeAnswer{
				dockerIns: {stderr: dockerDown}, podmanIns: {stdout: "[]", stderr: podmanGone}}},
			spec: "web", err: ErrUnreachable, message: []string{"Cannot connect to the Docker daemon", "DOCKER_HOST", "podman:web: no such container"},
		},
		{
			name: "no runtime CLI at all",
			cli:  fakeCLIs{nil, nil},
			spec: "web", err: ErrNoCLI, message: []string{"docker, podman, crictl"},
		},
		{
			name: "the runtime asked for is not installed",
			cli:  fakeCLIs{[]string{"podman"}, nil},
			spec: "docker:web", err: ErrNoCLI, message: []string{"docker:web", "PATH"},
		},
		{
			name: "a CLI that never answers",
			cli:  fakeCLIs{[]string{"docker"}, map[string]fakeAnswer{dockerIns: {block: true}}},
			spec: "docker:web", err: ErrUnreachable, message: []string{"did not answer within 1s"},
		},
		{
			name: "cri: the running attempt of a name",
			cli: fakeCLIs{[]string{"crictl"}, map[string]fakeAnswer{
				criPs:  {stdout: "1111\ne6bab20bc25a1751a30d431ff3739c3227ed18892b4e8d5ae3bb9c563c51ddb4\n"},
				criIns: {stdout: criRunning}, criInsOld: {stdout: criExited}}},
			spec: "cri:web", want: Container{Runtime: "cri", Name: "web", ID: "e6bab20bc25a1751a30d431ff3739c3227ed18892b4e8d5ae3bb9c563c51ddb4", PID: 25298, NetNS: "/proc/25298/ns/net"},
		},
		{
			name: "cri: a name running in two pods",
			cli: fakeCLIs{[]string{"crictl"}, map[string]fakeAnswer{
				criPs:  {stdout: "e6bab20bc25a1751a30d431ff3739c3227ed18892b4e8d5ae3bb9c563c51ddb4\nffff\n"},
				criIns: {stdout: criRunning}, criInsOther: {stdout: criOther}}},
			spec: "web", err: ErrAmbiguous, message: []string{"cri:e6bab20bc25a1", "cri:ffff00000000f"},
		},
		{
			name: "cri: only exited attempts",
			cli: fakeCLIs{[]string{"crictl"}, map[string]fakeAnswer{
				criPs: {stdout: "1111\n"}, criInsOld: {stdout: criExited}}},
			spec: "cri:web", err: ErrNotRunning,
		},
		{
			name: "cri: an ID",
			cli: fakeCLIs{[]string{"crictl"}, map[string]fakeAnswer{
				"crictl ps -a --name ^e6bab$ -q": {stdout: "\n"},
				"crictl inspect -o json e6bab":   {stdout: criRunning}}},
			spec: "cri:e6bab", want: Container{Runtime: "cri", Name: "web", ID: "e6bab20bc25a1751a30d431ff3739c3227ed18892b4e8d5ae3bb9c563c51ddb4", PID: 25298, NetNS: "/proc/25298/ns/net"},
		},
		{
			name: "cri: neither a name nor an ID",
			cli: fakeCLIs{[]string{"crictl"}, map[string]fakeAnswer{
				"crictl ps -a --name ^nope$ -q": {stdout: ""},
				"crictl inspect -o json nope":   {stderr: string(readTestdata(t, "crictl-1.37-inspect-notfound.stderr"))}}},
			spec: "cri:nope", err: ErrNotFound, message: []string{"CONTAINER_RUNTIME_ENDPOINT"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cli.resolver().Resolve(context.Background(), tt.spec)
			got.Addresses = nil // TestParseEngineInspect reads them
			if tt.err == nil {
				if err != nil || !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("got %+v, %v\nwant %+v", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			for _, m := range tt.message {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not say %q", err, m)
				}
			}
		})
	}
}

func TestResolveCancelled(t *testing.T) {
	cli := fakeCLIs{[]string{"docker", "podman"}, map[string]fakeAnswer{
		"docker inspect --type container -- web": {block: true},
		"podman inspect --type container -- web": {block: true},
	}}
	r := cli.resolver()
	r.Timeout = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	for _, spec := range []string{"web", "docker:web"} {
		if _, err := r.Resolve(ctx, spec); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want context.Canceled", spec, err)
		}
	}
}

// TestDetectRealCLIs runs the real docker and podman CLIs, with PATH
// holding only them, against daemons that are not there: every error is
// the CLI's own, classified.
func TestDetectRealCLIs(t *testing.T) {
	dir := t.TempDir()
	found := map[string]string{}
	// docker.io's client; a newer one elsewhere on PATH would do as well.
	for cli, paths := range map[string][]string{"docker": {"/usr/bin/docker"}, "podman": {"/usr/bin/podman"}} {
		for _, p := range paths {
			if _, err := os.Stat(p); err == nil {
				found[cli] = p
			}
		}
		if found[cli] == "" {
			p, err := exec.LookPath(cli)
			if err != nil {
				privtest.Unavailable(t, "the "+cli+" CLI (apt-get install docker.io podman)")
			}
			found[cli] = p
		}
	}
	link := func(t *testing.T, clis ...string) string {
		d := filepath.Join(dir, strings.Join(clis, "+")+"-path")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, c := range clis {
			if err := os.Symlink(found[c], filepath.Join(d, c)); err != nil && !os.IsExist(err) {
				t.Fatal(err)
			}
		}
		return d
	}
	nowhere := "unix://" + filepath.Join(dir, "no-daemon.sock")
	t.Setenv("DOCKER_HOST", nowhere)
	t.Setenv("DOCKER_CONFIG", dir) // no docker context of the user's
	t.Setenv("CONTAINER_HOST", nowhere)
	tests := []struct {
		name    string
		path    []string
		spec    string
		err     error
		message []string
	}{
		{"docker alone, no daemon", []string{"docker"}, "web", ErrUnreachable, []string{"docker:web", "Cannot connect to the Docker daemon", "not on PATH: podman, crictl"}},
		{"podman alone, no service", []string{"podman"}, "web", ErrUnreachable, []string{"podman:web", "Cannot connect to Podman", "CONTAINER_HOST"}},
		{"both, neither reachable", []string{"docker", "podman"}, "web", ErrUnreachable, []string{"docker:web", "podman:web"}},
		{"named runtime missing", []string{"docker"}, "podman:web", ErrNoCLI, []string{"podman:web"}},
		{"cri without crictl", []string{"docker", "podman"}, "cri:web", ErrNoCLI, []string{"cri:web", "crictl"}},
		{"nothing on PATH", nil, "web", ErrNoCLI, []string{"docker, podman, crictl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", link(t, tt.path...))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := Resolver{}.Resolve(ctx, tt.spec)
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			for _, m := range tt.message {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not say %q", err, m)
				}
			}
		})
	}
}

func TestContainerExec(t *testing.T) {
	c := Container{Runtime: "podman", Name: "web", PID: 4242}
	if got, want := c.Exec(), []string{"nsenter", "-t", "4242", "-n"}; !slices.Equal(got, want) {
		t.Errorf("Exec() = %q, want %q", got, want)
	}
	if c.Spec() != "podman:web" {
		t.Errorf("Spec() = %q", c.Spec())
	}
}

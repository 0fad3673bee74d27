package container

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
)

// CRI is a CRI runtime (containerd, CRI-O), asked with crictl, which
// talks to the endpoint CONTAINER_RUNTIME_ENDPOINT or /etc/crictl.yaml
// names. crictl inspects containers by ID: a name is first looked up
// with `crictl ps -a --name '^NAME$' -q`.
type CRI struct{}

func (CRI) Name() string { return "cri" }
func (CRI) CLI() string  { return "crictl" }

// criHint says where crictl looks.
const criHint = "crictl asks the endpoint that CONTAINER_RUNTIME_ENDPOINT or /etc/crictl.yaml names"

// maxCRICandidates bounds how many containers of one name are inspected
// (a Kubernetes container keeps its exited attempts under its name).
const maxCRICandidates = 16

func (c CRI) Inspect(ctx context.Context, run Run, name string) (Container, error) {
	// --name is a regular expression; anchored and quoted, it matches the
	// name only.
	out, err := run(ctx, []string{"crictl", "ps", "-a", "--name", "^" + regexp.QuoteMeta(name) + "$", "-q"})
	if err != nil {
		return Container{}, classify(c.Name(), name, cleanCRIError(err), criHint)
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		// Not a name; perhaps an ID or a prefix of one.
		ct, err := c.inspectID(ctx, run, name, name)
		if errors.Is(err, ErrNotFound) {
			return Container{}, &Error{Runtime: c.Name(), Name: name, Err: ErrNotFound, Hint: criHint}
		}
		return ct, err
	}
	if len(ids) > maxCRICandidates {
		ids = ids[:maxCRICandidates]
	}
	var (
		running []Container
		lastErr error
	)
	for _, id := range ids {
		ct, err := c.inspectID(ctx, run, name, id)
		if err != nil {
			lastErr = err
			continue
		}
		running = append(running, ct)
	}
	switch len(running) {
	case 0:
		return Container{}, lastErr
	case 1:
		return running[0], nil
	}
	var short []string
	for _, ct := range running {
		short = append(short, "cri:"+ct.ID[:min(13, len(ct.ID))])
	}
	return Container{}, &Error{Runtime: c.Name(), Name: name, Err: ErrAmbiguous,
		Detail: "running in several pods: " + strings.Join(short, ", "),
		Hint:   "give the container's ID instead, as crictl ps shows it"}
}

func (c CRI) inspectID(ctx context.Context, run Run, name, id string) (Container, error) {
	out, err := run(ctx, []string{"crictl", "inspect", "-o", "json", id})
	if err != nil {
		return Container{}, classify(c.Name(), name, cleanCRIError(err), criHint)
	}
	return ParseCRIInspect(name, out)
}

// criJSON is the part of `crictl inspect -o json ID` that hopcheck reads:
// the CRI ContainerStatus under "status" and the runtime's verbose info
// under "info", whose "pid" containerd and CRI-O both report.
type criJSON struct {
	Status struct {
		ID       string `json:"id"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		State string `json:"state"`
	} `json:"status"`
	Info struct {
		Pid int `json:"pid"`
	} `json:"info"`
}

// ParseCRIInspect reads the output of `crictl inspect -o json ID` for the
// container asked for as name.
func ParseCRIInspect(name string, out []byte) (Container, error) {
	var c criJSON
	if err := json.Unmarshal(out, &c); err != nil {
		return Container{}, &Error{Runtime: "cri", Name: name, Err: ErrBadOutput, Detail: err.Error()}
	}
	if c.Status.ID == "" || c.Status.Metadata.Name == "" {
		return Container{}, &Error{Runtime: "cri", Name: name, Err: ErrBadOutput, Detail: "no status.id or status.metadata.name"}
	}
	state := strings.ToLower(strings.TrimPrefix(c.Status.State, "CONTAINER_"))
	return fromState("cri", c.Status.Metadata.Name, c.Status.ID, c.Info.Pid, c.Status.State == "CONTAINER_RUNNING", state)
}

// cleanCRIError returns err with crictl's stderr reduced by criStderr.
func cleanCRIError(err error) error {
	var cli *CLIError
	if !errors.As(err, &cli) {
		return err
	}
	clean := *cli
	clean.Stderr = criStderr(cli.Stderr)
	return &clean
}

var (
	// crictl 1.37 logs with logrus's text format: time="..." level=error
	// msg="...", the message quoted.
	logrusLine = regexp.MustCompile(`^(?:time="[^"]*" )?level=(\w+) msg=("(?:[^"\\]|\\.)*")`)
	// The CRI client library's klog lines repeat the error crictl logs
	// (E1204 22:12:30.129363   25963 remote_runtime.go:657] ...).
	klogLine = regexp.MustCompile(`^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ \S+:\d+\] `)
)

// criStderr keeps what crictl's stderr says went wrong: each logrus
// line's message alone, unquoted, once; without the klog lines that repeat
// it, or the warning, printed on every run without /etc/crictl.yaml, that
// the file does not exist. Otherwise the message that matters is cut
// short, or pushed out of the last three lines that an error keeps (an
// unreachable endpoint is tried twice, each default endpoint once).
func criStderr(s string) string {
	var keep []string
	seen := map[string]bool{}
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || klogLine.MatchString(l) {
			continue
		}
		if m := logrusLine.FindStringSubmatch(l); m != nil {
			msg, err := strconv.Unquote(m[2])
			if err != nil {
				msg = m[2]
			}
			if m[1] == "warning" && strings.HasPrefix(msg, "Config ") && strings.Contains(msg, "does not exist, trying next") {
				continue
			}
			l = msg
		}
		if !seen[l] {
			seen[l] = true
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return s
	}
	return strings.Join(keep, "\n")
}

package multipass

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// LaunchOptions describes an instance to launch. Zero fields leave
// multipass's own defaults (current LTS image, 1 CPU, 1G memory, 5G disk).
type LaunchOptions struct {
	// Name of the instance; required, because hopcheck always addresses its
	// VM by name.
	Name string
	// Image is an alias or release ("24.04", "noble", "daily:25.10").
	Image string
	// CPUs to allocate.
	CPUs int
	// Memory and Disk sizes: an integer with an optional K, M or G suffix
	// ("2G").
	Memory, Disk string
	// CloudInit is cloud-init user data, handed to multipass on stdin with
	// `--cloud-init -`: no file, which a strictly confined multipass could
	// not read outside the user's home (canonical/multipass#3693).
	CloudInit []byte
	// Progress receives multipass's progress reports while it launches
	// ("Retrieving image: 40%", "Waiting for initialization to complete"),
	// one line each, spinners and repeats left out; nil discards them.
	Progress io.Writer
}

// validNameRE is multipass's rule for instance names (valid_hostname in
// src/utils/utils.cpp): letters, digits and hyphens, starting with a letter
// and not ending with a hyphen.
var validNameRE = regexp.MustCompile(`^[a-zA-Z]([a-zA-Z0-9-]*[a-zA-Z0-9])?$`)

// ValidName checks name against multipass's rule for instance names. It
// also keeps names from being read as options: a name is a positional
// argument in most multipass commands.
func ValidName(name string) error {
	if len(name) > 63 || !validNameRE.MatchString(name) {
		return fmt.Errorf("%w %q: use letters, digits and hyphens, starting with a letter and not ending with a hyphen, at most 63 characters", ErrInvalidName, name)
	}
	return nil
}

// sizeRE accepts what multipass accepts for --memory and --disk.
var sizeRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?([KkMmGg](i?[Bb])?|[Bb])?$`)

// launchArgs builds the arguments of `multipass launch`. timeout, when
// positive, becomes multipass's own --timeout, which bounds the boot and the
// cloud-init run inside the guest.
func launchArgs(o LaunchOptions, timeout time.Duration) ([]string, error) {
	if err := ValidName(o.Name); err != nil {
		return nil, err
	}
	args := []string{"launch", "--name", o.Name}
	if o.CPUs < 0 {
		return nil, fmt.Errorf("launch %s: CPUs %d is negative", o.Name, o.CPUs)
	}
	if o.CPUs > 0 {
		args = append(args, "--cpus", strconv.Itoa(o.CPUs))
	}
	for _, sz := range []struct{ flag, val string }{{"--memory", o.Memory}, {"--disk", o.Disk}} {
		if sz.val == "" {
			continue
		}
		if !sizeRE.MatchString(sz.val) {
			return nil, fmt.Errorf("launch %s: %s %q is not a size such as 2G or 512M", o.Name, sz.flag, sz.val)
		}
		args = append(args, sz.flag, sz.val)
	}
	if o.CloudInit != nil {
		args = append(args, "--cloud-init", "-")
	}
	if secs := int(timeout / time.Second); secs > 0 {
		args = append(args, "--timeout", strconv.Itoa(secs))
	}
	if o.Image != "" {
		if strings.HasPrefix(o.Image, "-") {
			return nil, fmt.Errorf("launch %s: image %q looks like an option", o.Name, o.Image)
		}
		args = append(args, o.Image)
	}
	return args, nil
}

func infoArgs(name string) []string { return []string{"info", "--format", "json", name} }

func listArgs() []string { return []string{"list", "--format", "json"} }

// execArgs builds `multipass exec NAME -- ARGV...`; the "--" keeps options
// of the inner command away from multipass's parser.
func execArgs(name string, argv []string) ([]string, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("exec %s: empty command", name)
	}
	return append([]string{"exec", name, "--"}, argv...), nil
}

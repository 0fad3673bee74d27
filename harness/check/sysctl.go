package check

import (
	"context"
	"errors"
	"fmt"
	"github.com/hopcheck/hopcheck/harness/plan"
	"os"
	"strings"

	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/internal/netns"
)

// sysctlKind reads a sysctl inside a namespace and compares it with the
// stated value. /proc/sys/net resolves against the namespace of the thread
// that opens the file, so the read runs inside netns.Do. Values compare
// with whitespace collapsed; a key that does not exist fails the check
// under either expect.
type sysctlKind struct{}

// ErrBadSysctlKey is returned for a key that cannot name a file under
// /proc/sys (empty parts, "..").
var ErrBadSysctlKey = errors.New("bad sysctl key")

func (sysctlKind) Run(ctx context.Context, env Env, c *scenario.Check) Result {
	sc := c.Sysctl
	if sc == nil {
		return failed(errors.New("sysctl check without sysctl settings"))
	}
	if err := ctx.Err(); err != nil {
		return failed(err)
	}
	path, err := sysctlPath(sc.Key)
	if err != nil {
		return failed(err)
	}
	ns, err := nsOf(env, sc.In)
	if err != nil {
		return failed(err)
	}
	var raw []byte
	err = netns.Do(ns, func() error {
		var err error
		raw, err = os.ReadFile(path)
		return err
	})
	if errors.Is(err, os.ErrNotExist) {
		// Not "the value differs": a missing key is a typo or a missing
		// interface, and must not pass an `expect: fail` check.
		return failed(fmt.Errorf("%s: sysctl %s does not exist in this namespace (no %s)", sc.In, sc.Key, path))
	}
	if err != nil {
		return failed(fmt.Errorf("%s: read sysctl %s: %w", sc.In, sc.Key, err))
	}
	got := normaliseSysctl(string(raw))
	r := Result{
		Summary: fmt.Sprintf("%s = %s", sc.Key, got),
		Details: []Detail{{"key", sc.Key}, {"value", got}},
	}
	if want := normaliseSysctl(sc.Value); got != want {
		r.Error = fmt.Sprintf("%s: expected %s = %s, got %s", sc.In, sc.Key, want, got)
		return r
	}
	r.Passed, r.Reached = true, true
	return r
}

// sysctlPath maps a key to its /proc/sys file the way the builder does, so a
// check reads exactly what a scenario's sysctls wrote.
func sysctlPath(key string) (string, error) {
	p, err := plan.SysctlPath(key)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadSysctlKey, err)
	}
	return p, nil
}

// normaliseSysctl trims a value and collapses inner runs of whitespace to
// one space, so that "0\t2147483647\n" (how ping_group_range reads) equals
// "0 2147483647" (how a scenario writes it).
func normaliseSysctl(v string) string {
	return strings.Join(strings.Fields(v), " ")
}

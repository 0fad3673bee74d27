package build

import (
	"context"
	"errors"

	"github.com/hopcheck/hopcheck/internal/netns"
)

// Clean removes the namespaces that runs left behind: every namespace
// named by netns.Name whose run keep does not claim. It never touches a
// name hopcheck did not make. keep decides liveness (the CLI keeps a
// record of live and kept runs); it must claim every run still in use,
// including runs being built in this process, whose namespaces appear
// before the build returns. Clean returns the kernel names it removed; it
// stops early when ctx is done, and joins the errors of names it could not
// remove.
func Clean(ctx context.Context, keep func(runID string) bool) ([]string, error) {
	if keep == nil {
		return nil, errors.New("clean: no keep predicate: refusing to remove the namespaces of every run")
	}
	names, err := netns.List()
	if err != nil {
		return nil, err
	}
	var (
		removed []string
		errs    []error
	)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		runID, _, ok := netns.ParseName(name)
		if !ok || keep(runID) {
			continue
		}
		if err := netns.Delete(name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

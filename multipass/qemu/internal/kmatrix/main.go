// Command kmatrix prints the table of `make kernel-matrix` from the JSON
// reports of its runs, and fails unless every run passed traced.
//
//	kmatrix KERNEL ATTACH SECONDS REPORT.json [KERNEL ATTACH SECONDS REPORT.json]...
//
// A REPORT that does not exist stands for a run that wrote none (the guest
// failed); its row says so.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/hopcheck/hopcheck/harness/report"
)

// noReason is how the table shows drops of kernels whose kfree_skb has no
// reason argument.
const noReason = "none given (kernel < 5.17)"

func main() {
	args := os.Args[1:]
	if len(args) == 0 || len(args)%4 != 0 {
		fmt.Fprintln(os.Stderr, "usage: kmatrix KERNEL ATTACH SECONDS REPORT.json ...")
		os.Exit(2)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "kernel\tattach\tscenarios passed\tchecks with hops\tdrop reasons seen\ttime\t")
	ok := true
	for i := 0; i < len(args); i += 4 {
		row, good := summarize(args[i], args[i+1], args[i+2], args[i+3])
		ok = ok && good
		fmt.Fprintln(tw, row)
	}
	tw.Flush()
	if !ok {
		fmt.Println("kernel-matrix: FAIL")
		os.Exit(1)
	}
	fmt.Println("kernel-matrix: PASS")
}

// summarize returns one table row and whether the run passed, traced
// with the attach path it asked for.
func summarize(kernel, attach, secs, path string) (string, bool) {
	s, _ := strconv.ParseFloat(secs, 64)
	t := fmt.Sprintf("%.0fs", s)
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("%s\t%s\tno report (the guest run failed; see above)\t-\t-\t%s\t", kernel, attach, t), false
	}
	var run report.Run
	if err := json.Unmarshal(b, &run); err != nil {
		return fmt.Sprintf("%s\t%s\tunreadable report: %v\t-\t-\t%s\t", kernel, attach, err, t), false
	}
	passed, withHops, traceable := 0, 0, 0
	reasons := map[string]bool{}
	for _, sc := range run.Scenarios {
		if sc.Passed {
			passed++
		}
		for _, c := range sc.Checks {
			switch c.Kind {
			case "ping", "tcp", "udp":
				traceable++
				if len(c.Hops) > 0 {
					withHops++
				}
			}
			if c.Drop != nil {
				r := c.Drop.Reason
				if r == "" {
					r = noReason
				}
				reasons[r] = true
			}
		}
	}
	var rs []string
	for r := range reasons {
		rs = append(rs, r)
	}
	sort.Strings(rs)
	tracing := run.Tracing.Mode
	good := run.Passed && run.Tracing.Enabled && tracing == attach && withHops > 0
	if !run.Tracing.Enabled {
		tracing = "off: " + run.Tracing.Reason
	}
	status := ""
	if !good {
		status = fmt.Sprintf(" FAIL (passed %v, tracing %s)", run.Passed, tracing)
	}
	return fmt.Sprintf("%s\t%s\t%d/%d%s\t%d/%d\t%s\t%s\t", kernel, attach, passed, len(run.Scenarios), status,
		withHops, traceable, strings.Join(rs, ", "), t), good
}

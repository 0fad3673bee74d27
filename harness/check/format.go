package check

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hopcheck/hopcheck/trace"
)

// formatMS formats d in milliseconds with microsecond precision ("0.051"),
// the unit ping(8) users read RTTs in.
func formatMS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
}

// formatPercent formats a fraction 0..1 as a percentage with at most one
// decimal and no trailing zeros ("0%", "33.3%", "100%").
func formatPercent(f float64) string {
	s := strconv.FormatFloat(f*100, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + "%"
}

// rttStats returns the smallest, mean and largest of ds; all zero when ds
// is empty.
func rttStats(ds []time.Duration) (lo, avg, hi time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	lo, hi = ds[0], ds[0]
	var sum time.Duration
	for _, d := range ds {
		lo, hi = min(lo, d), max(hi, d)
		sum += d
	}
	return lo, sum / time.Duration(len(ds)), hi
}

// countedList joins messages in first-seen order, folding repeats into a
// count: "destination host unreachable from 10.0.0.1 (x3)".
func countedList(msgs []string) string {
	var (
		order []string
		n     = map[string]int{}
	)
	for _, m := range msgs {
		if n[m] == 0 {
			order = append(order, m)
		}
		n[m]++
	}
	for i, m := range order {
		if n[m] > 1 {
			order[i] = fmt.Sprintf("%s (x%d)", m, n[m])
		}
	}
	return strings.Join(order, "; ")
}

// newTag returns a fresh random, non-zero probe tag. It comes from
// crypto/rand so that probes of runs started at the same moment never share
// a tag, which would mix their traces.
func newTag() (trace.Tag, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("probe tag: %w", err)
		}
		if t := trace.Tag(binary.BigEndian.Uint64(b[:])); t != 0 {
			return t, nil
		}
	}
}

package multipass

import (
	"io"
	"regexp"
	"strconv"
	"strings"
)

// progressWriter turns what `multipass launch` prints on stdout into one
// line per step. Multipass redraws its progress in place: a spinner after
// the step ("Starting hopcheck \", "Waiting for initialization to complete
// /", canonical/multipass#490, #2313) and a percentage while it downloads
// an image ("Retrieving image: 40%", #3986), each redrawn after a carriage
// return or backspaces. The writer splits on those, drops the spinner and
// blank redraws, repeats no line, and passes a percentage on only when it
// reaches another tenth, so a first launch's minutes of download show as a
// handful of lines instead of silence or a flood.
//
// Writes come from one goroutine (the copier of multipass's stdout), so the
// writer needs no lock. Errors of the underlying writer are ignored: the
// progress of a launch is not worth failing it for.
type progressWriter struct {
	w       io.Writer
	partial []byte
	last    string // the last line passed on
	step    string // the step the last percentage belonged to
	tenth   int    // the last tenth of it passed on
}

// spinnerRE matches a trailing spinner frame.
var spinnerRE = regexp.MustCompile(`\s+[|/\\-]$`)

// percentRE matches a step with a percentage: "Retrieving image: 42%".
var percentRE = regexp.MustCompile(`^(.*?):?\s+([0-9]{1,3})%$`)

func (p *progressWriter) Write(b []byte) (int, error) {
	for _, c := range b {
		switch c {
		case '\r', '\n', '\b':
			p.line()
		default:
			p.partial = append(p.partial, c)
		}
	}
	return len(b), nil
}

// Flush passes on what is left after the last separator.
func (p *progressWriter) Flush() { p.line() }

func (p *progressWriter) line() {
	s := strings.TrimSpace(stripANSI(string(p.partial)))
	p.partial = p.partial[:0]
	s = strings.TrimSpace(spinnerRE.ReplaceAllString(s, ""))
	if s == "" || s == p.last || s == "|" || s == "/" || s == "-" || s == `\` {
		return
	}
	if m := percentRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[2])
		if m[1] == p.step && n/10 <= p.tenth && n != 100 {
			return
		}
		p.step, p.tenth = m[1], n/10
	}
	p.last = s
	io.WriteString(p.w, s+"\n")
}

var ansiRE = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// stripANSI removes terminal control sequences (cursor moves, line
// clearing) that a progress redraw may carry.
func stripANSI(s string) string { return ansiRE.ReplaceAllString(s, "") }

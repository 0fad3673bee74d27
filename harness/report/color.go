package report

import (
	"os"

	"golang.org/x/sys/unix"
)

// ColorEnabled reports whether the text report on f should be coloured: f is
// a terminal, NO_COLOR is unset or empty (https://no-color.org), and TERM is
// not "dumb". It is the only function here that asks the system anything.
func ColorEnabled(f *os.File) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	// A terminal answers TCGETS; a pipe or a file fails it with ENOTTY.
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

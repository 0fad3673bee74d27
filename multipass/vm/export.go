package vm

import (
	"fmt"
	"io"
	"strings"
)

// What this backend shares with hopcheck's other VM backend (the qemu one
// of `run --kernel`, in multipass/qemu): the bundle of hopcheck and the
// scenarios, the guest run's command line, and bringing the reports home
// from an archive of the guest's out directory, checked as untrusted.

// Layout of a guest run directory, as the bundle fills it.
const (
	// GuestBinary is the hopcheck executable's name in the run directory.
	GuestBinary = binName
	// GuestOutDir is the directory, in the run directory, that the guest
	// run writes its reports and captures into.
	GuestOutDir = outDir
)

// Bundle is the scenario files of a guest run and the path arguments the
// guest run gets for them.
type Bundle struct {
	files []bundleFile
	// Args are the guest run's scenario arguments, relative to its
	// working directory (see GuestRun).
	Args []string
}

// Collect lists the files of the scenario paths; relative paths are taken
// from dir ("" means the current directory) and keep their relative form
// in the guest.
func Collect(dir string, paths []string) (*Bundle, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("no scenario paths")
	}
	base, err := baseDir(dir)
	if err != nil {
		return nil, err
	}
	files, args, err := collect(base, paths)
	if err != nil {
		return nil, err
	}
	return &Bundle{files: files, Args: args}, nil
}

// Len returns the number of scenario files.
func (b *Bundle) Len() int { return len(b.files) }

// Write writes the tar archive that fills a guest run directory: bin as
// GuestBinary (mode 0755) and the scenarios under their guest paths.
func (b *Bundle) Write(w io.Writer, bin string) error {
	return writeBundle(w, bin, b.files)
}

// GuestRun returns the working directory and the command line (binary
// first, no sudo) of the guest's `hopcheck run` in runDir: --json and
// --junit always, --pcap when pcap, then extra, then the bundle's paths.
// It is the command the Multipass backend runs under sudo.
func GuestRun(runDir string, pcap bool, extra []string, b *Bundle) (dir string, argv []string) {
	full := guestRunArgv(runDir, pcap, extra, b.Args)
	// full is: sudo env -C DIR BIN run ...
	return full[3], full[4:]
}

// Results says where a guest run's outputs go on the host; "" skips one.
type Results struct {
	JSON, JUnit, Pcap string
}

// Empty reports whether nothing is to be brought home.
func (r Results) Empty() bool { return r == Results{} }

// ExtractResults unpacks a tar archive of the guest's out directory into
// the host destinations as it streams in, treating it as untrusted (see
// extractResults), at most limit bytes (0 means DefaultMaxResults). After
// the archive it checks that a run with exit code code wrote the reports
// it must have: bad input (2) may stop a run before it writes any.
func ExtractResults(r io.Reader, dests Results, limit int64, code int) error {
	if limit <= 0 {
		limit = DefaultMaxResults
	}
	got, err := extractResults(r, resultDests(dests), limit)
	if err != nil {
		return err
	}
	return missingReports(resultDests(dests), got, code)
}

// missingReports says which reports a run that checked something (exit
// code 0 or 1) failed to write.
func missingReports(dests resultDests, got found, code int) error {
	if code == 2 {
		return nil
	}
	var missing []string
	if dests.JSON != "" && !got.JSON {
		missing = append(missing, jsonName)
	}
	if dests.JUnit != "" && !got.JUnit {
		missing = append(missing, junitName)
	}
	if len(missing) > 0 {
		return fmt.Errorf("the guest run wrote no %s", strings.Join(missing, " or "))
	}
	return nil
}

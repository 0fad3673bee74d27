package multipass

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The fixtures under testdata/stderr are multipass's stderr for each case,
// with the exit code it returns beside them here.
func TestClassify(t *testing.T) {
	tests := []struct {
		fixture     string
		exitCode    int
		want        error // nil: no sentinel
		execFailure bool  // for exec: multipass's failure, not the command's
		message     string
	}{
		{"info-missing.txt", 2, ErrNotFound, false, `info failed: The following errors occurred: instance "hopcheck" does not exist`},
		{"exec-missing.txt", 2, ErrNotFound, true, `exec failed: The following errors occurred: instance "hopcheck" does not exist`},
		{"exec-missing-legacy.txt", 2, ErrNotFound, true, `exec failed: instance "hopcheck" does not exist`},
		{"exec-deleted.txt", 2, ErrDeleted, true, `exec failed: The following errors occurred: instance "hopcheck" is deleted`},
		{"launch-exists.txt", 2, ErrExists, false, `launch failed: instance "hopcheck" already exists`},
		{"list-socket.txt", 2, ErrDaemonUnavailable, false, "list failed: cannot connect to the multipass socket Please ensure multipassd is running and '/var/snap/multipass/common/multipass_socket' is accessible"},
		{"exec-socket.txt", 2, ErrDaemonUnavailable, true, "exec failed: cannot connect to the multipass socket Please ensure multipassd is running and '/var/snap/multipass/common/multipass_socket' is accessible"},
		{"list-socket-denied.txt", 2, ErrDaemonUnavailable, false, "list failed: multipass socket access denied Please check that you have read/write permissions to '/var/snap/multipass/common/multipass_socket'"},
		{"list-unavailable-legacy.txt", 3, ErrDaemonUnavailable, false, "list failed: failed to connect to all addresses"},
		{"launch-timeout.txt", 5, ErrTimeout, false, "Timed out waiting for instance launch."},
		// canonical/multipass#2574, #3536, #4395: multipass's --timeout.
		{"launch-init-timeout.txt", 5, ErrTimeout, false, "launch failed: The following errors occurred: timed out waiting for initialization to complete"},
		// canonical/multipass#1783: a confined client and a host path in
		// /tmp (a command-line error, exit code 1, canonical/multipass#1074)
		// or in a hidden folder.
		{"transfer-confined-tmp.txt", 1, ErrHostPath, false, `Source path "/tmp/hopcheck-vm-425085148/bundle.tar" does not exist`},
		{"transfer-confined-hidden.txt", 2, ErrHostPath, false, "transfer failed: [sftp push] error opening file for reading: Permission denied"},
		{"launch-no-image.txt", 2, nil, false, `launch failed: Unable to find an image matching "99.04" in remote "".`},
		{"exec-autostart-failed.txt", 2, nil, true, `start failed: The following errors occurred: instance "hopcheck" failed to start: qemu-system-x86_64 crashed`},
		// The inner command's own stderr and exit code: not multipass's failure.
		{"exec-inner-ls.txt", 2, nil, false, "ls: cannot access '/nope': No such file or directory"},
		{"exec-inner-failed-word.txt", 2, nil, false, "build failed: ns1/veth_1: add address 10.0.0.2/24: file exists"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			stderr := string(readFixture(t, filepath.Join("stderr", tt.fixture)))
			got := classify(stderr, tt.exitCode)
			if got != tt.want {
				t.Errorf("classify() = %v, want %v", got, tt.want)
			}
			if ef := execFailure(stderr); ef != tt.execFailure {
				t.Errorf("execFailure() = %v, want %v", ef, tt.execFailure)
			}
			e := &Error{Argv: []string{"multipass", "info", "hopcheck"}, ExitCode: tt.exitCode, Stderr: stderr, Err: got}
			if tt.want != nil && !errors.Is(e, tt.want) {
				t.Errorf("errors.Is(%v, %v) = false", e, tt.want)
			}
			wantMsg := "multipass info hopcheck: " + tt.message
			if msg := e.Error(); !strings.HasPrefix(msg, wantMsg) {
				t.Errorf("Error() = %q, want it to start with %q", msg, wantMsg)
			}
		})
	}
}

func TestTailBuffer(t *testing.T) {
	var tb tailBuffer
	big := strings.Repeat("x", tailSize)
	tb.Write([]byte(big))
	tb.Write([]byte("\nexec failed: instance \"a\" does not exist\n"))
	s := tb.String()
	if len(s) != tailSize {
		t.Fatalf("tail holds %d bytes, want %d", len(s), tailSize)
	}
	if !execFailure(s) {
		t.Error("tail lost multipass's failure line at the end of a long stderr")
	}
}

func TestHint(t *testing.T) {
	notInstalled := &Error{Argv: []string{"multipass", "list"}, ExitCode: -1, Err: fmt.Errorf("%w: %w", ErrNotInstalled, exec.ErrNotFound)}
	down := &Error{Argv: []string{"multipass", "list"}, ExitCode: 2, Stderr: "list failed: cannot connect to the multipass socket\n", Err: ErrDaemonUnavailable}
	tests := []struct {
		err  error
		goos string
		want []string
	}{
		{notInstalled, "linux", []string{"sudo snap install multipass"}},
		{notInstalled, "darwin", []string{"https://canonical.com/multipass/install"}},
		{down, "linux", []string{"snap services multipass", "sudo snap start multipass"}},
		{down, "windows", []string{"Start Multipass"}},
	}
	for _, tt := range tests {
		h := hint(tt.err, tt.goos)
		for _, w := range tt.want {
			if !strings.Contains(h, w) {
				t.Errorf("hint(%v, %s) = %q, want it to contain %q", tt.err, tt.goos, h, w)
			}
		}
	}
	if h := hint(ErrNotFound, "linux"); h != "" {
		t.Errorf("hint(ErrNotFound) = %q, want none", h)
	}
	if runtime.GOOS == "linux" && !strings.Contains(down.Error(), "snap start multipass") {
		t.Errorf("Error() = %q, want the hint in it", down.Error())
	}
}

func TestProgressWriter(t *testing.T) {
	var out strings.Builder
	p := &progressWriter{w: &out}
	var in strings.Builder
	for pct := 0; pct <= 100; pct++ {
		fmt.Fprintf(&in, "\rRetrieving image: %d%%", pct)
	}
	in.WriteString("\rVerifying image \\\rVerifying image |\b\b/\rStarting hopcheck -\r\x1b[2K\rWaiting for initialization to complete \\")
	in.WriteString("\rWaiting for initialization to complete /\r     \rLaunched: hopcheck\n")
	// Byte by byte, as a pipe may deliver it.
	for _, b := range []byte(in.String()) {
		p.Write([]byte{b})
	}
	p.Flush()
	want := "Retrieving image: 0%\nRetrieving image: 10%\nRetrieving image: 20%\nRetrieving image: 30%\nRetrieving image: 40%\n" +
		"Retrieving image: 50%\nRetrieving image: 60%\nRetrieving image: 70%\nRetrieving image: 80%\nRetrieving image: 90%\n" +
		"Retrieving image: 100%\nVerifying image\nStarting hopcheck\nWaiting for initialization to complete\nLaunched: hopcheck\n"
	if out.String() != want {
		t.Errorf("progress lines:\n%s\nwant:\n%s", out.String(), want)
	}
}

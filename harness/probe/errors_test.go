package probe

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		kind error // nil: no sentinel applies
		text string
	}{
		{"refused", unix.ECONNREFUSED, ErrRefused, "connection refused"},
		{"refused inside OpError", &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("read", unix.ECONNREFUSED)}, ErrRefused, "connection refused"},
		{"refused inside PathError", &os.PathError{Op: "read", Path: "probe socket", Err: unix.ECONNREFUSED}, ErrRefused, "connection refused"},
		{"no route", os.NewSyscallError("sendto", unix.ENETUNREACH), ErrUnreachable, "network is unreachable"},
		{"neighbour failed", unix.EHOSTUNREACH, ErrUnreachable, "no route to host"},
		{"host down", unix.EHOSTDOWN, ErrUnreachable, "host is down"},
		{"local netfilter drop", os.NewSyscallError("sendto", unix.EPERM), ErrFiltered, "operation not permitted"},
		{"icmpv6 prohibited", unix.EACCES, ErrFiltered, "permission denied"},
		{"deadline", &os.PathError{Op: "read", Path: "probe socket", Err: os.ErrDeadlineExceeded}, ErrTimeout, "read probe socket: i/o timeout"},
		{"tcp timeout", unix.ETIMEDOUT, ErrTimeout, "connection timed out"},
		{"reset stays itself", unix.ECONNRESET, nil, "connection reset by peer"},
		{"other error stays itself", errors.New("boom"), nil, "boom"},
	}
	sentinels := []error{ErrRefused, ErrTimeout, ErrUnreachable, ErrFiltered, ErrBadReply}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.err)
			for _, s := range sentinels {
				if want := s == tt.kind; errors.Is(got, s) != want {
					t.Errorf("errors.Is(classify(%v), %v) = %v, want %v", tt.err, s, !want, want)
				}
			}
			var errno unix.Errno
			if errors.As(tt.err, &errno) && !errors.Is(got, errno) {
				t.Errorf("classify(%v) lost the errno %v", tt.err, errno)
			}
			if got.Error() != tt.text {
				t.Errorf("classify(%v) says %q, want %q", tt.err, got, tt.text)
			}
		})
	}
	if classify(nil) != nil {
		t.Error("classify(nil) != nil")
	}
}

// A classified error keeps working through the context callers add.
func TestClassifyWrapped(t *testing.T) {
	err := fmt.Errorf("udp 10.0.0.1:5000 -> 10.0.0.2:53: receive: %w", classify(unix.ECONNREFUSED))
	if !errors.Is(err, ErrRefused) || !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("%v: lost its classification when wrapped", err)
	}
	if want := "udp 10.0.0.1:5000 -> 10.0.0.2:53: receive: connection refused"; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
}

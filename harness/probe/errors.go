package probe

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Sentinel errors classify why a probe failed. A probe's error wraps one of
// them together with the kernel's own error, so both
// errors.Is(err, ErrRefused) and errors.Is(err, syscall.ECONNREFUSED) hold.
var (
	// ErrRefused: the destination answered that nothing listens there: a
	// TCP reset, or an ICMP port (or protocol) unreachable for UDP.
	ErrRefused = errors.New("refused")

	// ErrTimeout: no answer arrived within the probe's timeout.
	ErrTimeout = errors.New("timed out")

	// ErrUnreachable: there is no way to the destination: no route at the
	// sender (ENETUNREACH), neighbour resolution failed (EHOSTUNREACH), or a
	// router on the way sent an ICMP network or host unreachable.
	ErrUnreachable = errors.New("unreachable")

	// ErrFiltered: a firewall refused the probe: a netfilter rule in the
	// sender's own namespace dropped it on output (the kernel reports EPERM
	// to the sender), or an ICMPv6 "administratively prohibited" came back
	// (EACCES).
	ErrFiltered = errors.New("filtered")

	// ErrTooBig: the probe was larger than a link's MTU and may not be
	// fragmented: the sender's own egress interface refused it at send
	// (EMSGSIZE), or a router answered "fragmentation needed" (ICMPv6
	// "packet too big").
	ErrTooBig = errors.New("too big")

	// ErrBadReply: something answered, but not with the reply of a hopcheck
	// Listener for this probe (another service on that port, or a reply cut
	// short).
	ErrBadReply = errors.New("not a hopcheck listener's reply")
)

// classified is a kernel error together with the sentinel that says what it
// means for a probe. Its text is the kernel's, so messages read naturally
// ("connection refused"), while errors.Is matches either.
type classified struct {
	kind error // one of the sentinels above
	err  error // the kernel's error
}

func (c *classified) Error() string   { return c.err.Error() }
func (c *classified) Unwrap() []error { return []error{c.kind, c.err} }

// classify returns err wrapped with the sentinel that describes it, or err
// itself when no sentinel applies. When err carries an errno (inside
// *os.SyscallError, *os.PathError or *net.OpError), only the errno is kept:
// the caller adds the context (protocol and addresses) that the wrappers
// would only repeat less clearly.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = errno
	}
	var kind error
	switch {
	case errors.Is(err, unix.ECONNREFUSED), errors.Is(err, unix.ENOPROTOOPT):
		kind = ErrRefused
	case errors.Is(err, unix.ENETUNREACH), errors.Is(err, unix.EHOSTUNREACH),
		errors.Is(err, unix.EHOSTDOWN), errors.Is(err, unix.ENONET):
		kind = ErrUnreachable
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		kind = ErrFiltered
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, unix.ETIMEDOUT):
		kind = ErrTimeout
	case errors.Is(err, unix.EMSGSIZE):
		kind = ErrTooBig
	default:
		return err
	}
	return &classified{kind: kind, err: err}
}

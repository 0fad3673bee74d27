// Package multipass is a thin, typed client of the multipass command-line
// tool (https://canonical.com/multipass): it launches, inspects, starts,
// stops and deletes instances and runs commands in them, by running the
// multipass executable with an argument vector (never a shell string) under
// a context deadline.
//
// Multipass reports its own failures as "<command> failed: <message>" on
// stderr with exit code 2 (command failed), 3 (daemon failed) or 5 (its
// --timeout ran out); this package turns them into an *Error that carries the
// argv, the exit code and stderr, and that matches ErrNotFound, ErrExists,
// ErrDaemonUnavailable or ErrTimeout with errors.Is.
//
// `multipass exec` passes the inner command's exit status through as its
// own, so an exit code alone cannot tell a failed command from a failed
// multipass. Exec and ExecStream tell them apart by multipass's
// "exec failed: " line on stderr: the inner command's status comes back as a
// plain exit code with a nil error, multipass's failures as an *Error.
//
// Data moves only on multipass's standard streams, never through a host
// path that the multipass client must open: on Linux multipass is a
// strictly confined snap whose client sees only non-hidden paths under the
// user's home and has a /tmp of its own (canonical/multipass#1783, #1598,
// #3554), so `multipass transfer` and `launch --cloud-init FILE` fail for
// files anywhere else. Cloud-init goes to `launch --cloud-init -` on stdin;
// ExecStream feeds a command's stdin from a reader, and ExecOutput hands its
// stdout to a reader as it comes, so a tar stream can go either way.
package multipass

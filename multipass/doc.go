// Package multipass is a thin, typed client of the multipass command-line
// tool (https://canonical.com/multipass): it launches, inspects, starts,
// stops and deletes instances, runs commands in them and moves files in and
// out, by running the multipass executable with an argument vector (never a
// shell string) under a context deadline.
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
// Transfers run as the instance's default user (ubuntu), so guest paths given
// to Push must be writable by that user, which in practice means its home
// directory; work that needs root moves files from there with sudo.
package multipass

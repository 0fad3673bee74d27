// Package probe sends hopcheck's own probes from inside a network
// namespace: ICMP echo (Ping), TCP and UDP round trips (Connect) against a
// Listener that the harness runs inside the listening namespace.
//
// Every probe carries a trace.Tag so that the eBPF tracer can find its
// packets at every hop, whatever NAT does to their addresses: echo requests
// and UDP datagrams start their payload with the tag, and a TCP probe is
// followed by its initial sequence number, for which the tracer needs only
// the exact local address and port, which Connect binds before the first
// packet leaves and reports even when the connection fails.
//
// Sockets are opened inside the namespace with netns.Do (only the socket(2)
// call needs to run there; a socket stays in the namespace it was created
// in) and used from the caller's goroutine afterwards. No goroutine is
// started inside netns.Do, and none outlives the call that started it:
// Ping and Connect start none of their own, and Listener.Close returns only
// after the listener's goroutines have exited.
//
// Failures are reported, not returned: a probe that gets no answer, a
// refusal or an ICMP error has a result that says so, classified by the
// sentinel errors ErrRefused, ErrTimeout, ErrUnreachable and ErrFiltered
// (use errors.Is). The Go error of Ping and Connect is for the cases where
// no probe could be sent at all: bad arguments, no socket, or a cancelled
// context.
package probe

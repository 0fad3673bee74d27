package check

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/hopcheck/hopcheck/harness/probe"
	"github.com/hopcheck/hopcheck/harness/scenario"
	"github.com/hopcheck/hopcheck/trace"
)

// connKind runs a tcp or udp round trip from a namespace to an address (and
// port), with a harness listener in the check's `listen` namespace when it
// has one. It passes when the listener's reply came back; the result names
// the source address the listener saw, which shows SNAT and DNAT on the way.
type connKind struct{}

func (connKind) Run(ctx context.Context, env Env, c *scenario.Check) Result {
	cc := c.Conn
	if cc == nil {
		return failed(fmt.Errorf("%s check without connection settings", c.Kind))
	}
	proto := probe.Proto(cc.Proto)
	from, err := nsOf(env, cc.From)
	if err != nil {
		return failed(err)
	}
	tag, err := newTag()
	if err != nil {
		return failed(err)
	}
	// The listener must be up before the first packet leaves, and gone
	// (its goroutines with it) before Run returns.
	var l *probe.Listener
	if cc.ListenNS != "" {
		lns, err := nsOf(env, cc.ListenNS)
		if err != nil {
			return failed(err)
		}
		if l, err = probe.Listen(ctx, lns, proto, cc.ListenPort); err != nil {
			return failed(fmt.Errorf("%s: %w", cc.ListenNS, err))
		}
	}
	opt := probe.ConnOptions{Tag: tag, Timeout: cc.Timeout}
	if proto == probe.UDP {
		opt.Size, opt.Frag = cc.Size, fragmentation(cc.Fragment)
	}
	if l == nil {
		// No listen: a real service answers at To.
		opt.Service = &probe.Service{Payload: cc.Payload, Reply: []byte(cc.Reply)}
	}
	res, err := probe.ConnectWith(ctx, from, proto, cc.To, opt)
	var arrived netip.AddrPort
	if l != nil {
		arrived, _ = l.Arrived(tag)
		if cerr := l.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("%s: close listener: %w", cc.ListenNS, cerr)
		}
	}
	var info *trace.Probe
	if res.Attempts > 0 || res.Local.IsValid() {
		info = &trace.Probe{Tag: tag, Proto: traceProto(proto), Src: res.Local, Dst: cc.To, SrcNS: cc.From,
			UntaggedReply: l == nil}
	}
	if err != nil {
		r := failed(fmt.Errorf("%s: %w", cc.From, err))
		r.Probe = info
		return r
	}
	r := connResult(cc, res, arrived)
	r.Probe = info
	return r
}

// connResult judges a finished probe. arrived is the peer a harness
// listener saw the probe's request from, when it saw it; it tells a lost
// reply from a lost request.
func connResult(cc *scenario.ConnCheck, res probe.ConnResult, arrived netip.AddrPort) Result {
	d := []Detail{{"outcome", connOutcome(res.Err)}}
	if res.Local.IsValid() {
		d = append(d, Detail{"local", res.Local.String()})
	}
	if res.Seen.IsValid() {
		d = append(d, Detail{"seen_source", res.Seen.String()})
	}
	if res.Err == nil {
		d = append(d, Detail{"rtt_ms", formatMS(res.RTT)})
	}
	if cc.ListenNS != "" {
		d = append(d, Detail{"listener", cc.ListenNS + ":" + strconv.Itoa(int(cc.ListenPort))})
	}
	if res.Err != nil && arrived.IsValid() {
		d = append(d, Detail{"request_arrived_from", arrived.String()})
	}
	d = append(d, Detail{"attempts", strconv.Itoa(res.Attempts)}, Detail{"tag", res.Tag.String()})

	if res.Err == nil {
		summary := fmt.Sprintf("%s round trip to %s in %s ms, listener saw %s", cc.Proto, cc.To, formatMS(res.RTT), res.Seen)
		switch {
		case cc.ListenNS != "":
		case cc.Proto == "tcp":
			summary = fmt.Sprintf("tcp handshake with the service at %s in %s ms", cc.To, formatMS(res.RTT))
		default:
			summary = fmt.Sprintf("udp answer from the service at %s in %s ms", cc.To, formatMS(res.RTT))
		}
		return Result{Passed: true, Reached: true, Summary: summary, Details: d}
	}
	return Result{
		Summary: fmt.Sprintf("%s to %s: %s", cc.Proto, cc.To, connOutcome(res.Err)),
		Error:   connError(cc, res, arrived),
		Details: d,
	}
}

// connOutcome names a probe's outcome in one word for reports.
func connOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, probe.ErrRefused):
		return "refused"
	case errors.Is(err, probe.ErrTimeout):
		return "timeout"
	case errors.Is(err, probe.ErrUnreachable):
		return "unreachable"
	case errors.Is(err, probe.ErrFiltered):
		return "filtered"
	case errors.Is(err, probe.ErrBadReply):
		return "bad-reply"
	case errors.Is(err, probe.ErrTooBig):
		return "too-big"
	}
	return "error"
}

// connError says in words why a probe failed and what that points at.
func connError(cc *scenario.ConnCheck, res probe.ConnResult, arrived netip.AddrPort) string {
	head := fmt.Sprintf("%s from %s to %s", cc.Proto, cc.From, cc.To)
	var s string
	switch connOutcome(res.Err) {
	case "refused":
		s = head + " was refused: nothing listens there, or a REJECT rule answered"
	case "timeout":
		s = head + " got no answer in time"
		if arrived.IsValid() {
			s += fmt.Sprintf("; the request reached the listener (from %s), so the reply was lost on the way back", arrived)
		}
	case "unreachable":
		s = head + " is unreachable"
	case "filtered":
		s = head + " was refused by a firewall"
	case "bad-reply":
		s = head + " was answered, but not by a hopcheck listener"
	case "too-big":
		s = fmt.Sprintf("%s: the %d-byte datagram is larger than an MTU on the way and may not be fragmented", head, cc.Size)
	default:
		s = head + " failed"
	}
	return s + " (" + res.Err.Error() + ")"
}

// traceProto names a probe protocol as the tracer does.
func traceProto(p probe.Proto) string {
	if p == probe.UDP {
		return trace.ProtoUDP
	}
	return trace.ProtoTCP
}

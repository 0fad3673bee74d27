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

// pingKind sends ICMP echo requests from a namespace (harness/probe) and
// passes when no more than MaxLoss of them went unanswered. Reached is "at
// least one reply came back", so an `expect: fail` ping passes only when
// the destination stayed entirely silent.
type pingKind struct{}

// lossSlack absorbs float rounding when loss equals MaxLoss exactly (1/3
// lost against max_loss: 33.333...%).
const lossSlack = 1e-9

func (pingKind) Run(ctx context.Context, env Env, c *scenario.Check) Result {
	pc := c.Ping
	if pc == nil {
		return failed(errors.New("ping check without ping settings"))
	}
	// A target written as NS/IF carries the address the scenario gives
	// that interface (scenario.Target). The kernel's list is never asked:
	// its first IPv4 address on lo is 127.0.0.1, which any sender reaches
	// on its own lo, so a ping to it passes without crossing a link.
	ns, err := nsOf(env, pc.From)
	if err != nil {
		return failed(err)
	}
	dst := pc.To.Addr
	if !dst.IsValid() {
		return failed(fmt.Errorf("ping target %s has no address from the scenario", pc.To))
	}
	tag, err := newTag()
	if err != nil {
		return failed(err)
	}
	info := &trace.Probe{Tag: tag, Proto: trace.ProtoICMP, Dst: netip.AddrPortFrom(dst, 0), SrcNS: pc.From}
	opt := probe.PingOptions{Count: pc.Count, Timeout: pc.Timeout, Tag: tag, Frag: fragmentation(pc.Fragment)}
	if pc.Size > 0 {
		opt.PayloadSize = probe.PayloadFor(pc.Size, dst.Is6())
	}
	res, err := probe.Ping(ctx, ns, dst, opt)
	if err != nil {
		r := failed(fmt.Errorf("%s: %w", pc.From, err))
		if res.Sent > 0 {
			r.Probe = info
		}
		return r
	}
	r := pingResult(pc, dst, res)
	r.Probe = info
	return r
}

// pingResult judges a finished ping against pc.
func pingResult(pc *scenario.PingCheck, dst netip.Addr, res probe.PingResult) Result {
	loss := res.Loss()
	lo, avg, hi := rttStats(res.RTTs)
	var icmpErrs []string
	for _, e := range res.ICMPErrors {
		icmpErrs = append(icmpErrs, e.Description()+" from "+e.From.String())
	}
	why := countedList(icmpErrs)
	if res.SendErr != nil {
		why = joinNonEmpty(why, "send: "+res.SendErr.Error())
	}

	d := []Detail{
		{"target", dst.String()},
		{"sent", strconv.Itoa(res.Sent)},
		{"received", strconv.Itoa(res.Received)},
		{"loss", formatPercent(loss)},
	}
	if res.Received > 0 {
		d = append(d,
			Detail{"rtt_min_ms", formatMS(lo)},
			Detail{"rtt_avg_ms", formatMS(avg)},
			Detail{"rtt_max_ms", formatMS(hi)})
	}
	if len(icmpErrs) > 0 {
		d = append(d, Detail{"icmp_errors", countedList(icmpErrs)})
	}
	if res.SendErr != nil {
		d = append(d, Detail{"send_error", res.SendErr.Error()})
	}
	if tooBig(res) {
		// The one outcome a ping names: the diagnosis looks for the
		// link with the smaller MTU.
		d = append(d, Detail{"outcome", "too-big"})
	}
	if pc.Size > 0 {
		d = append(d, Detail{"size", strconv.Itoa(pc.Size)})
	}
	d = append(d, Detail{"tag", res.Tag.String()})

	summary := fmt.Sprintf("%d/%d replies from %s", res.Received, res.Sent, dst)
	if res.Received > 0 {
		summary += fmt.Sprintf(", %s loss, rtt min/avg/max %s/%s/%s ms", formatPercent(loss), formatMS(lo), formatMS(avg), formatMS(hi))
	}
	if why != "" {
		summary += ": " + why
	} else if res.Received < res.Sent {
		summary += fmt.Sprintf(": %d without reply within %v", res.Sent-res.Received, timeoutOrDefault(pc))
	}

	r := Result{Summary: summary, Details: d, Reached: res.Received > 0}
	if loss <= pc.MaxLoss+lossSlack {
		r.Passed = true
		return r
	}
	if res.Received == 0 {
		r.Error = fmt.Sprintf("%s got no reply from %s", pc.From, dst)
	} else {
		r.Error = fmt.Sprintf("%s lost %s of its pings to %s, more than the allowed %s", pc.From, formatPercent(loss), dst, formatPercent(pc.MaxLoss))
	}
	if why != "" {
		r.Error += " (" + why + ")"
	}
	return r
}

func timeoutOrDefault(pc *scenario.PingCheck) string {
	if pc.Timeout == 0 {
		return probe.DefaultPingTimeout.String()
	}
	return pc.Timeout.String()
}

func joinNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// fragmentation is the probe's mode for a check's df: requests carry DF
// unless the check says df: false.
func fragmentation(fragment bool) probe.Fragmentation {
	if fragment {
		return probe.FragAllow
	}
	return probe.FragNever
}

// tooBig reports whether a ping failed because its requests were larger
// than an MTU on the way: refused at send, or answered with
// "fragmentation needed" / "packet too big".
func tooBig(res probe.PingResult) bool {
	if errors.Is(res.SendErr, probe.ErrTooBig) {
		return true
	}
	for _, e := range res.ICMPErrors {
		if errors.Is(e, probe.ErrTooBig) {
			return true
		}
	}
	return false
}

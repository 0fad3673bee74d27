package diagnose

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/hopcheck/hopcheck/harness/check"
	"github.com/hopcheck/hopcheck/harness/diagnose/snapshot"
	"github.com/hopcheck/hopcheck/harness/scenario"
)

// IsProbe reports whether c is a check that sends a probe (ping, tcp,
// udp): the checks Diagnose explains.
func IsProbe(c *scenario.Check) bool {
	return c.Ping != nil || c.Conn != nil
}

// ProbeOf describes the probe of check c from its result r. ok is false
// for a check that sends no probe. The addresses come from the probe the
// check reports (the destination resolved, the source the prober bound)
// and fall back to the check as written.
func ProbeOf(c *scenario.Check, r check.Result) (p Probe, ok bool) {
	switch {
	case c.Ping != nil:
		p = Probe{Proto: "icmp", From: c.Ping.From, Dst: netip.AddrPortFrom(c.Ping.To.Addr, 0), DF: !c.Ping.Fragment}
	case c.Conn != nil:
		p = Probe{Proto: c.Conn.Proto, From: c.Conn.From, Dst: c.Conn.To, ListenNS: c.Conn.ListenNS, ListenPort: c.Conn.ListenPort}
		if c.Conn.Proto == "udp" && c.Conn.Size > 0 {
			p.Size, p.DF = c.Conn.Size, !c.Conn.Fragment
		}
	default:
		return Probe{}, false
	}
	if tp := r.Probe; tp != nil {
		if tp.Dst.Addr().IsValid() {
			p.Dst = tp.Dst
		}
		p.Src = tp.Src
		if tp.SrcNS != "" {
			p.From = tp.SrcNS
		}
	}
	if c.Ping != nil {
		p.Size = pingSize(c.Ping, p.Dst.Addr())
	}
	p.Outcome = outcomeOf(r)
	return p, true
}

// pingSize is the IP packet size of a ping check's requests: its size, or
// that of ping(8)'s default 56 data bytes.
func pingSize(pc *scenario.PingCheck, dst netip.Addr) int {
	if pc.Size > 0 {
		return pc.Size
	}
	if dst.Is6() {
		return 56 + 48
	}
	return 56 + 28
}

// outcomeOf reads how a probe failed from the key figures its check
// reports: "outcome" for tcp and udp, "send_error" and "icmp_errors" for
// ping.
func outcomeOf(r check.Result) Outcome {
	get := func(key string) (string, bool) {
		for _, d := range r.Details {
			if d.Key == key {
				return d.Value, true
			}
		}
		return "", false
	}
	if v, ok := get("outcome"); ok {
		switch v {
		case "refused":
			return OutcomeRefused
		case "timeout":
			return OutcomeTimeout
		case "unreachable":
			return OutcomeUnreachable
		case "filtered":
			return OutcomeFiltered
		case "too-big":
			return OutcomeTooBig
		}
		return OutcomeError
	}
	if _, ok := get("icmp_errors"); ok {
		return OutcomeUnreachable
	}
	if _, ok := get("send_error"); ok {
		return OutcomeError
	}
	return OutcomeTimeout
}

// Follower is an Env that can take in a namespace the diagnosis found the
// path leads into: Follow opens the namespace a user names s (an `ip netns`
// name or a path) and returns the name it goes by, or an error.
type Follower interface {
	snapshot.Env
	Follow(s string, ino uint64) (name string, err error)
}

// maxFollow bounds how many namespaces Explain takes in for one probe.
const maxFollow = 8

// Explain diagnoses a failed probe of a running topology: it takes the
// full snapshot of env (in.After, unless the caller took it) and runs
// Diagnose. Parts of the snapshot that could not be read are named in the
// evidence rather than failing the diagnosis. This is the whole sequence
// for a caller that has sent one probe, such as `hopcheck why`:
//
//	before, _ := snapshot.TakeCounters(ctx, topo)
//	res := check.Run(ctx, topo, c)            // the probe
//	p, _ := diagnose.ProbeOf(c, res)
//	d := diagnose.Explain(ctx, topo, diagnose.Input{Scenario: sc, Probe: p, Trace: t, Before: before})
//
// When the path leaves the namespaces of env into one hopcheck can name
// (Diagnosis.Beyond) and env is a Follower, that namespace is taken in and
// the diagnosis made again, up to maxFollow times: the user gives the
// namespaces they know, hopcheck finds the ones the path crosses.
func Explain(ctx context.Context, env snapshot.Env, in Input) *Diagnosis {
	var takeErr error
	given := in.After
	if in.After == nil {
		in.After, takeErr = snapshot.Take(ctx, env)
	}
	d := Diagnose(in)
	var followed []string
	if fl, ok := env.(Follower); ok && given == nil {
		for range maxFollow {
			if d.Beyond == "" || ctx.Err() != nil {
				break
			}
			name, err := fl.Follow(d.Beyond, d.beyondIno)
			if err != nil {
				followed = append(followed, fmt.Sprintf("could not follow the path into %s: %v", d.Beyond, err))
				break
			}
			followed = append(followed, fmt.Sprintf("followed the path into %s, which was not given", name))
			in.After, takeErr = snapshot.Take(ctx, env)
			d = Diagnose(in)
		}
	}
	d.Evidence = append(d.Evidence, followed...)
	if takeErr != nil {
		d.Evidence = append(d.Evidence, "snapshot incomplete: "+takeErr.Error())
	}
	for _, n := range in.After.Namespaces {
		for _, e := range n.Errors {
			d.Evidence = append(d.Evidence, "snapshot of "+n.Name+" incomplete: "+e)
		}
	}
	return d
}

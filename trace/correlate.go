package trace

import (
	"math"
	"net/netip"
	"slices"
	"time"
)

// record is an event with its decoded packet. view is the packet the probe
// is: pkt itself, or the packet inside pkt's tunnel headers.
type record struct {
	ev   *Event
	pkt  Packet
	view *Packet
}

func (r *record) key() hopKey { return hopKey{r.ev.NS, r.ev.If, r.ev.Dir} }

// hopKey is a place and way a packet can cross: ns/if and direction.
type hopKey struct {
	ns, ifname string
	dir        Direction
}

// Correlate finds the packets of probe p among the events of a run and
// returns its trace. Events outside the probe's time window, and events
// whose data cannot be decoded, are ignored; events need not be sorted.
// It is pure: it neither blocks nor touches the kernel.
//
// ICMP and UDP packets are recognised by the probe's tag. A TCP probe is
// recognised by its SYN leaving SrcNS from Src's port to Dst: its initial
// sequence number, which NAT keeps, then identifies every later segment of
// the connection in either direction, and nothing of another connection
// that reuses the port.
func Correlate(p Probe, events []Event) Trace {
	recs := decodeWindow(p, events)
	var m matcher
	switch p.Proto {
	case ProtoTCP:
		m = newTCPMatcher(p, recs)
	case ProtoUDP:
		m = newUDPMatcher(p)
		m.(*udpMatcher).untaggedReply = p.UntaggedReply
	default:
		m = &icmpMatcher{tag: p.Tag}
	}
	c := correlation{
		probe: p,
		legs:  [3]legHops{LegRequest: newLegHops(), LegReply: newLegHops()},
		in:    map[string]time.Duration{p.SrcNS: p.Start},
		out:   map[hopKey]time.Duration{},
	}
	var arps []*record
	for _, r := range recs {
		if r.view.ARP != nil {
			if r.ev.Kind == KindPacket {
				arps = append(arps, r)
			}
			continue
		}
		l, first := m.match(r.view)
		switch {
		case l == LegNone:
			if q := r.view.Quoted; q != nil && r.ev.Kind == KindPacket && m.quotes(q) {
				c.addICMPError(r)
			}
		case r.ev.Kind == KindDrop:
			c.addDrop(r, l)
		case r.ev.Kind == KindPacket:
			c.addPacket(r, l, first)
		}
	}
	return c.finish(arps)
}

// decodeWindow decodes the events inside p's window, in time order (stable,
// so events with equal times keep the order the kernel reported them in).
func decodeWindow(p Probe, events []Event) []*record {
	end := p.End
	if end == 0 {
		end = math.MaxInt64
	}
	var recs []*record
	for i := range events {
		e := &events[i]
		if e.Time < p.Start || e.Time > end || (e.Kind != KindPacket && e.Kind != KindDrop) {
			continue
		}
		pkt, err := Decode(*e)
		if err != nil {
			continue
		}
		r := &record{ev: e, pkt: pkt}
		r.view = r.pkt.Innermost()
		recs = append(recs, r)
	}
	slices.SortStableFunc(recs, func(a, b *record) int {
		switch {
		case a.ev.Time < b.ev.Time:
			return -1
		case a.ev.Time > b.ev.Time:
			return 1
		}
		return 0
	})
	return recs
}

// legHops collects the hops of one leg. Hops come from the leg's first
// packet, at the first time it crossed each place; counts include every
// packet of the leg.
type legHops struct {
	hops   []Hop // T is still absolute kernel time
	at     map[hopKey]int
	counts map[hopKey]int
}

func newLegHops() legHops {
	return legHops{at: map[hopKey]int{}, counts: map[hopKey]int{}}
}

// correlation is the state of one Correlate call.
type correlation struct {
	probe Probe
	legs  [3]legHops // indexed by Leg
	drop  *Drop
	errs  []ICMPError
	// in is when the probe was first seen in each namespace; out is when a
	// probe packet last left through each interface. They decide which ARP
	// exchanges the probe waited for.
	in  map[string]time.Duration
	out map[hopKey]time.Duration
	// replyArrived: a reply packet was seen arriving in the source
	// namespace.
	replyArrived bool
}

func (c *correlation) addPacket(r *record, l Leg, first bool) {
	lh := &c.legs[l]
	k := r.key()
	lh.counts[k]++
	if first {
		if _, ok := lh.at[k]; !ok {
			lh.at[k] = len(lh.hops)
			lh.hops = append(lh.hops, Hop{
				NS:    r.ev.NS,
				If:    r.ev.If,
				Dir:   r.ev.Dir,
				T:     r.ev.Time,
				Src:   r.view.SrcAddrPort(),
				Dst:   r.view.DstAddrPort(),
				Proto: r.view.Proto,
				Len:   r.ev.Len,
				Encap: r.pkt.Encap,
			})
		}
	}
	if t, ok := c.in[r.ev.NS]; !ok || r.ev.Time < t {
		c.in[r.ev.NS] = r.ev.Time
	}
	if r.ev.Dir == Egress && r.ev.Time > c.out[k] {
		c.out[k] = r.ev.Time
	}
	if l == LegReply && r.ev.Dir == Ingress && r.ev.NS == c.probe.SrcNS {
		c.replyArrived = true
	}
}

func (c *correlation) addDrop(r *record, l Leg) {
	if c.drop != nil || FreedAfterDelivery(r.ev, &r.pkt) {
		return
	}
	c.drop = &Drop{
		NS:       r.ev.NS,
		If:       r.ev.If,
		Reason:   r.ev.ReasonName,
		Location: r.ev.Location,
		T:        r.ev.Time,
		Reply:    l == LegReply,
		Packet:   r.pkt,
	}
}

// addICMPError records an ICMP error about the probe the first time it is
// seen; the same error seen again on later hops is the same message.
func (c *correlation) addICMPError(r *record) {
	v := r.view
	for _, e := range c.errs {
		if e.From == v.Src && e.To == v.Dst && e.Type == v.ICMP.Type && e.Code == v.ICMP.Code {
			return
		}
	}
	c.errs = append(c.errs, ICMPError{
		NS:    r.ev.NS,
		If:    r.ev.If,
		Dir:   r.ev.Dir,
		T:     r.ev.Time,
		From:  v.Src,
		To:    v.Dst,
		Proto: v.Proto,
		Type:  v.ICMP.Type,
		Code:  v.ICMP.Code,
	})
}

// finish assembles the trace: counts, translations, ARP, and times made
// relative to the first request hop.
func (c *correlation) finish(arps []*record) Trace {
	var t Trace
	for _, l := range [...]Leg{LegRequest, LegReply} {
		lh := &c.legs[l]
		for i := range lh.hops {
			h := &lh.hops[i]
			h.Count = lh.counts[hopKey{h.NS, h.If, h.Dir}]
		}
	}
	t.Request, t.Reply = c.legs[LegRequest].hops, c.legs[LegReply].hops
	t.Drop = c.drop
	t.ICMPErrors = c.errs
	t.ReplyArrived = c.replyArrived
	t.ARP = c.arpExchanges(arps, t)
	t.Translations = append(sourceTranslations(c.probe, t.Request), translations(t.Request)...)

	t0, ok := c.origin(t)
	if !ok {
		return t
	}
	for _, hs := range [][]Hop{t.Request, t.Reply} {
		for i := range hs {
			hs[i].T -= t0
		}
	}
	for i := range t.Translations {
		t.Translations[i].T -= t0
	}
	for i := range t.ARP {
		t.ARP[i].T -= t0
		if t.ARP[i].AnswerMAC != nil {
			t.ARP[i].AnswerT -= t0
		}
	}
	for i := range t.ICMPErrors {
		t.ICMPErrors[i].T -= t0
	}
	if t.Drop != nil {
		t.Drop.T -= t0
	}
	return t
}

// origin returns the time trace times count from: the first request hop,
// or when there is none the earliest event attributed to the probe.
func (c *correlation) origin(t Trace) (time.Duration, bool) {
	if len(t.Request) > 0 {
		return t.Request[0].T, true
	}
	var times []time.Duration
	for _, h := range t.Reply {
		times = append(times, h.T)
	}
	for _, a := range t.ARP {
		times = append(times, a.T)
	}
	for _, e := range t.ICMPErrors {
		times = append(times, e.T)
	}
	if t.Drop != nil {
		times = append(times, t.Drop.T)
	}
	if len(times) == 0 {
		return 0, false
	}
	return slices.Min(times), true
}

// sourceTranslations names the address changes made before the request's
// first hop: NAT in the source namespace's own output path (nat/OUTPUT,
// or POSTROUTING for its own packets), which the first hop already shows
// done. They are the difference between the addresses the prober used and
// those of the first hop.
func sourceTranslations(p Probe, hops []Hop) []Translation {
	if len(hops) == 0 {
		return nil
	}
	first := hops[0]
	var out []Translation
	if src := unmap(p.Src); specified(src.Addr()) && !sameEnd(src, first.Src) {
		out = append(out, Translation{Kind: SNAT, From: src, To: first.Src, NS: first.NS, If: first.If, Dir: first.Dir, T: first.T})
	}
	if dst := unmap(p.Dst); specified(dst.Addr()) && !sameEnd(dst, first.Dst) {
		out = append(out, Translation{Kind: DNAT, From: dst, To: first.Dst, NS: first.NS, If: first.If, Dir: first.Dir, T: first.T})
	}
	return out
}

// sameEnd reports whether a hop's address and port are the prober's: the
// same address, and the same port where the prober knew one (a ping's
// addresses have none).
func sameEnd(prober, hop netip.AddrPort) bool {
	return prober.Addr().WithZone("") == hop.Addr().WithZone("") && (prober.Port() == 0 || prober.Port() == hop.Port())
}

// translations names every address change between consecutive request
// hops, at the hop where the new address first appears.
func translations(hops []Hop) []Translation {
	var out []Translation
	for i := 1; i < len(hops); i++ {
		prev, cur := hops[i-1], hops[i]
		if cur.Src != prev.Src {
			out = append(out, Translation{Kind: SNAT, From: prev.Src, To: cur.Src, NS: cur.NS, If: cur.If, Dir: cur.Dir, T: cur.T})
		}
		if cur.Dst != prev.Dst {
			out = append(out, Translation{Kind: DNAT, From: prev.Dst, To: cur.Dst, NS: cur.NS, If: cur.If, Dir: cur.Dir, T: cur.T})
		}
	}
	return out
}

// arpExchanges pairs the window's neighbor requests with their replies and
// keeps the exchanges the probe waited for. An exchange is identified by
// (sender, target) and placed where its first request was seen leaving;
// copies of the request flooded through a bridge are the same exchange.
// The probe waited for it when it was sent from a namespace after the probe
// got there, and either a probe packet left through the same interface
// afterwards (resolution held it back) or the probe never got further than
// that namespace (resolution failed).
func (c *correlation) arpExchanges(arps []*record, t Trace) []ARPExchange {
	type exchange struct {
		ARPExchange
		origin hopKey
		valid  bool
	}
	var xs []*exchange
	find := func(sender, target netip.Addr) *exchange {
		for _, x := range xs {
			if x.Sender == sender && x.Target == target {
				return x
			}
		}
		return nil
	}
	for _, r := range arps {
		a := r.view.ARP
		switch a.Op {
		case ARPRequest:
			if a.SenderIP == a.TargetIP {
				continue // gratuitous: announces, waits for nothing
			}
			if !specified(a.SenderIP) {
				// IPv6 duplicate address detection ("who-has X tell ::")
				// checks the sender's own new address; no packet waits
				// for it.
				continue
			}
			x := find(a.SenderIP, a.TargetIP)
			if x == nil {
				x = &exchange{
					ARPExchange: ARPExchange{
						NS: r.ev.NS, If: r.ev.If, T: r.ev.Time,
						Sender: a.SenderIP, Target: a.TargetIP, SenderMAC: a.SenderMAC,
					},
					origin: r.key(),
					// Seen first arriving: sent from outside what is traced.
					valid: r.ev.Dir == Egress,
				}
				xs = append(xs, x)
			}
			if r.key() == x.origin {
				x.Requests++
			}
		case ARPReply:
			x := find(a.TargetIP, a.SenderIP)
			if x == nil {
				continue
			}
			if x.AnswerMAC == nil {
				x.AnswerMAC, x.AnswerT = a.SenderMAC, r.ev.Time
			}
			if r.ev.NS == x.NS && r.ev.If == x.If && r.ev.Dir == Ingress {
				x.Answered = true
			}
		}
	}

	stuck := c.stuck(t)
	var out []ARPExchange
	for _, x := range xs {
		in, onPath := c.in[x.NS]
		if !x.valid || !onPath || x.T < in {
			continue
		}
		heldBack := c.out[x.origin] >= x.T
		failed := false
		if st, ok := stuck[x.NS]; ok && x.T >= st {
			failed = true
		}
		if heldBack || failed {
			out = append(out, x.ARPExchange)
		}
	}
	return out
}

// stuck returns the namespaces where a leg of the probe ended without
// reaching its goal, with the time it got there: where the request was last
// seen arriving when no reply came (or SrcNS when the request never left),
// and where the reply was last seen arriving if that is not SrcNS.
func (c *correlation) stuck(t Trace) map[string]time.Duration {
	st := map[string]time.Duration{}
	if len(t.Reply) == 0 {
		if len(t.Request) == 0 {
			st[c.probe.SrcNS] = c.probe.Start
		} else if last := t.Request[len(t.Request)-1]; last.Dir == Ingress {
			st[last.NS] = last.T
		}
	} else if last := t.Reply[len(t.Reply)-1]; last.Dir == Ingress && last.NS != c.probe.SrcNS {
		st[last.NS] = last.T
	}
	return st
}

package trace

import (
	"testing"

	"github.com/hopcheck/hopcheck/internal/netns"
	"github.com/hopcheck/hopcheck/internal/privtest"
)

// TestTracerByInodeNumber runs, on this kernel, what kernels without
// SO_NETNS_COOKIE (before 5.14) get: the programs and the Tracer know
// namespaces by inode number. Packets and drops are still found, in the
// right namespace, and the old kfree_skb fallback is used too, as on 5.10.
func TestTracerByInodeNumber(t *testing.T) {
	privtest.Require(t)
	feat := ProbeFeatures()
	feat.HasNetnsCookie = false
	feat.KfreeSkbHasReason = false
	topo := newVethTopology(t)
	tr := newTestTracer(t, Options{Attach: AttachClsact, Features: &feat}, topo)
	topo.listenB(t)
	topo.dropUDPInB(t)

	inoA, err := netns.Inode(topo.a)
	if err != nil {
		t.Fatal(err)
	}
	inoB, err := netns.Inode(topo.b)
	if err != nil {
		t.Fatal(err)
	}

	tags := testTags(2)
	topo.sendTagged(t, tags)
	flushTracer(t, tr)

	for _, tag := range tags {
		var egressA, ingressB, dropB bool
		evs := eventsWithTag(tr.Events(), tag)
		for _, ev := range evs {
			switch {
			case ev.Kind == KindPacket && ev.NS == "A" && ev.Dir == Egress && ev.Netns == inoA:
				egressA = true
			case ev.Kind == KindPacket && ev.NS == "B" && ev.Dir == Ingress && ev.Netns == inoB:
				ingressB = true
			case ev.Kind == KindDrop && ev.NS == "B" && ev.Netns == inoB:
				dropB = true
			}
		}
		if !egressA || !ingressB || !dropB {
			t.Errorf("tag %v: egress A %v, ingress B %v, drop in B %v (inodes A %d, B %d); events with the tag:%s",
				tag, egressA, ingressB, dropB, inoA, inoB, describeEvents(evs))
		}
	}
}

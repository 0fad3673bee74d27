// Package capture writes every frame that crosses a set of interfaces, in
// any number of network namespaces, into one pcapng file in time order, with
// one interface block per "ns/if".
//
// Frames are read through AF_PACKET sockets with TPACKET_V3 receive rings,
// each opened inside its namespace: one per namespace where the kernel keeps
// such taps per namespace (Linux 6.15), else one per interface. Each packet
// block says whether the frame arrived or left; frames the kernel could not
// keep are counted in the file's interface statistics blocks and in Stop's
// result.
//
// An Annotation names the packets of one probe: the capture finds them as
// trace.Correlate does (trace.Matcher), comments them "(request)" or
// "(reply)", and writes the tracer's drop events as packets of an extra
// "drops" interface. The package uses trace's probe and packet types and
// nothing of the tracer; trace does not import it.
//
//	c, err := capture.Start(ctx, "run.pcapng", []capture.Interface{{NS: "ns1", Netns: h, If: "eth0"}})
//	...
//	c.Annotate(capture.Annotation{Probe: p, From: from, To: to, Comment: "nat: ping ns1 -> 203.0.113.8"})
//	stats, err := c.Stop()
package capture

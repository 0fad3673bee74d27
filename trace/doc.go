// Package trace follows probe packets through a topology of network
// namespaces: it attaches tc eBPF programs to every interface (TCX, or
// clsact with cls_bpf on older kernels), reads their events and the
// kernel's drop events (skb:kfree_skb, with reason names from the running
// kernel's BTF) from one ring buffer, decodes the packets with gopacket, and
// correlates them into the hop-by-hop path of each probe, with the address
// translations on the way and the drop reason where a packet vanished.
//
// Probes are found by the Tag hopcheck puts in their payload (ICMP, UDP) or
// by their initial sequence number (TCP), both of which survive NAT.
// Matcher finds them the same way in packets seen one by one; package
// trace/capture uses it to comment a probe's packets in a pcapng capture.
package trace

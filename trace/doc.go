// Package trace follows probe packets through a topology of network
// namespaces: it attaches tc eBPF programs to every interface, reads their
// events and the kernel's drop events from one ring buffer, decodes the
// packets with gopacket, and correlates them into the hop-by-hop path of
// each probe, with translations and the drop reason where a packet vanished.
package trace

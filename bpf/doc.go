// Package bpf holds hopcheck's eBPF programs and the Go bindings that
// bpf2go generates for them.
//
// trace.c defines two tc classifiers (tc_ingress, tc_egress) that report
// every packet crossing an interface, two variants of a program on the
// skb:kfree_skb tracepoint (kfree_skb_reason for kernels whose tracepoint
// carries a drop reason, kfree_skb_noreason for older ones) that report
// dropped packets, the netns_filter map that limits both to the traced
// namespaces, the events ring buffer and the lost counter. The programs
// read kernel structures with CO-RE, so the one compiled object runs on
// every kernel with BTF from 5.10 on.
//
// The compiled objects (trace_bpfel.o) and their bindings (trace_bpfel.go)
// are committed, so building hopcheck needs no clang. To rebuild them after
// changing trace.c (needs clang, llvm-strip and libbpf's headers):
//
//	go generate ./bpf/...
//
// vmlinux.h is the running kernel's BTF as C
// (bpftool btf dump file /sys/kernel/btf/vmlinux format c); with CO-RE it
// only has to name the fields the programs use, not match the target
// kernel's layout.
//
// Package trace loads and attaches these programs; nothing else should.
package bpf

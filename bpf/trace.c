//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// hopcheck's kernel side: follow packets through the scenario's network
// namespaces and report the ones the kernel drops.
//
// Two tc classifiers (tc_ingress, tc_egress) see every packet on the
// interfaces they are attached to, and one program on the skb:kfree_skb
// tracepoint sees every packet the kernel frees as dropped. Both report to
// one ring buffer, and only for namespaces listed in netns_filter. Nothing
// here changes a packet or a verdict: the classifiers always return
// TC_ACT_UNSPEC (== TCX_NEXT).
//
// Everything kernel-internal is read with CO-RE (BPF_CORE_READ), so the one
// object runs on every kernel with BTF from 5.15 on.

#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char __license[] SEC("license") = "Dual BSD/GPL";

// SNAP_LEN is how many bytes of each packet an event carries: enough for
// Ethernet + IPv6 + TCP with options, or Ethernet + IPv4 + ICMP/UDP + the
// probe tag, and small enough to keep an event at 176 bytes.
#define SNAP_LEN 128

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_IPV6 0x86DD

// TC_ACT_UNSPEC: "no opinion, carry on". For TCX it is TCX_NEXT (-1) too.
#define TC_ACT_UNSPEC (-1)

// Values of event.kind, event.dir and event.layer. They match trace.EventKind,
// trace.Direction and trace.Layer in Go.
enum {
	KIND_PACKET = 1,
	KIND_DROP = 2,
};

enum {
	DIR_INGRESS = 1,
	DIR_EGRESS = 2,
};

enum {
	LAYER_ETHERNET = 1,
	LAYER_IPV4 = 2,
	LAYER_IPV6 = 3,
};

// event is one ring-buffer record. Its layout is shared with the Go reader
// (bpf2go generates TraceEvent from this definition); keep it 8-byte
// aligned with no implicit padding.
struct event {
	__u64 time_ns;  // bpf_ktime_get_ns()
	__u64 netns;    // netns cookie of the packet's device (or socket)
	__u64 location; // drops: kernel address that freed the skb
	__u32 ifindex;  // 0 for drops without a device
	__u32 len;      // full packet length (from the network header for drops)
	__u32 reason;   // drops: enum skb_drop_reason, 0 where the kernel has none
	__u16 cap_len;  // valid bytes in data
	__u8 kind;      // KIND_*
	__u8 dir;       // DIR_* for packets, 0 for drops
	__u8 layer;     // LAYER_*: where data starts
	__u8 pad[7];
	__u8 data[SNAP_LEN];
};

// Keep struct event in the object's BTF (nothing else names it outside a
// function), so bpf2go can generate its Go mirror.
const struct event *unused_event __attribute__((unused));

// netns_filter holds the cookies of the namespaces being traced. User space
// fills it; programs emit nothing for any other namespace.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} netns_filter SEC(".maps");

// events is the one ring buffer for packets and drops. User space may
// resize it before loading.
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

// wakeup_bytes is how much unread data in events makes a submit wake the
// reader; below it, submits leave the reader asleep and it finds the
// events when its poll deadline passes or a Flush interrupts it (see
// submit). User space sets it to a fraction of the ring's size before
// loading; the default matches an eighth of the default 4 MiB ring.
volatile const __u64 wakeup_bytes = 512 << 10;

// lost counts events that did not fit in the ring buffer, per CPU, so that
// a report can say how many hops it may be missing.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);

	if (n)
		*n += 1; // per-CPU slot: no other writer, no atomic needed
}

// snap_len clamps a length to SNAP_LEN for a helper's size argument.
// barrier_var keeps clang from testing one copy of n and passing another,
// unbounded, to the helper, which the verifier would reject.
static __always_inline __u64 snap_len(__u64 n)
{
	if (n > SNAP_LEN)
		n = SNAP_LEN;
	barrier_var(n);
	return n;
}

// submit commits an event without the wakeup the kernel would otherwise
// send, unless the reader has fallen behind by wakeup_bytes.
//
// With flags 0 the kernel wakes the reader whenever a record is the first
// one it has not consumed, which is every record of traffic slower than
// the reader: a probe's packets, and most packets of a TCP stream. Each
// such wakeup queues irq_work that then wakes the reader's thread, and it
// was most of what an event cost, on the packet's path: 1.2-2.5 us per
// run against 0.3-1 us without it (BenchmarkTCInvocation, in a VM). So
// events are submitted with BPF_RB_NO_WAKEUP; the reader polls with a
// deadline instead, and Flush wakes it on demand, so neither a probe's
// events nor a live trace wait on a wakeup. A burst that outruns the
// polling still wakes the reader, with BPF_RB_FORCE_WAKEUP, once
// wakeup_bytes are waiting: that leaves the rest of the ring as room for
// the reader to catch up before events are lost.
//
// bpf_ringbuf_query exists since 5.8 and counts reserved and committed
// records, this one included.
static __always_inline void submit(struct event *e)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

static __always_inline bool traced(__u64 cookie)
{
	return cookie && bpf_map_lookup_elem(&netns_filter, &cookie);
}

static __always_inline __u64 dev_netns_cookie(struct net_device *dev)
{
	return BPF_CORE_READ(dev, nd_net.net, net_cookie);
}

// skb_netns_cookie returns the cookie of the namespace an skb is in: its
// device's, or, before it has a device (locally generated, dropped early),
// its socket's.
static __always_inline __u64 skb_netns_cookie(struct sk_buff *skb)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);

	if (dev)
		return dev_netns_cookie(dev);

	struct sock *sk = BPF_CORE_READ(skb, sk);

	if (sk)
		return BPF_CORE_READ(sk, __sk_common.skc_net.net, net_cookie);
	return 0;
}

static __always_inline int handle_tc(struct __sk_buff *ctx, __u8 dir)
{
	__u16 proto = bpf_ntohs(ctx->protocol);

	// Probes are IPv4, IPv6 or the ARP/ND that resolves their next hop;
	// skip everything else (LLDP, STP on bridges) before any work.
	if (proto != ETH_P_IP && proto != ETH_P_IPV6 && proto != ETH_P_ARP)
		return TC_ACT_UNSPEC;

	// bpf_get_netns_cookie on tc reports the socket's namespace (or
	// init_net), not the device's. The tc context is the kernel's own
	// struct sk_buff behind the __sk_buff view, so read the device's
	// namespace from it directly.
	__u64 cookie = dev_netns_cookie(BPF_CORE_READ((struct sk_buff *)ctx, dev));

	if (!traced(cookie))
		return TC_ACT_UNSPEC;

	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count_lost();
		return TC_ACT_UNSPEC;
	}

	e->time_ns = bpf_ktime_get_ns();
	e->netns = cookie;
	e->location = 0;
	e->ifindex = ctx->ifindex;
	e->len = ctx->len;
	e->reason = 0;
	e->kind = KIND_PACKET;
	e->dir = dir;
	e->layer = LAYER_ETHERNET;
	__builtin_memset(e->pad, 0, sizeof(e->pad));

	__u64 n = snap_len(ctx->len);

	// "n < ETH_HLEN" rather than "n == 0": kernels before 6.8 learn
	// nothing from a != 0 test, and would reject the helper's size as
	// possibly zero; an unsigned lower bound they do track. A frame shorter
	// than an Ethernet header has nothing to decode anyway.
	if (n < ETH_HLEN || bpf_skb_load_bytes(ctx, 0, e->data, n) < 0)
		n = 0;
	e->cap_len = n;

	submit(e);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int tc_ingress(struct __sk_buff *ctx)
{
	return handle_tc(ctx, DIR_INGRESS);
}

SEC("tc")
int tc_egress(struct __sk_buff *ctx)
{
	return handle_tc(ctx, DIR_EGRESS);
}

// handle_drop reports skb if its namespace is traced. Drops carry the
// packet from its network header: the MAC header is often unset (egress
// before neighbour output) or already stripped.
static __always_inline int handle_drop(struct sk_buff *skb, __u64 location, __u32 reason)
{
	__u64 cookie = skb_netns_cookie(skb);

	if (!traced(cookie))
		return 0;

	__u8 layer;

	switch (bpf_ntohs(BPF_CORE_READ(skb, protocol))) {
	case ETH_P_IP:
		layer = LAYER_IPV4;
		break;
	case ETH_P_IPV6:
		layer = LAYER_IPV6;
		break;
	default:
		// trace.Layer has no value for other network protocols, so a
		// drop of one could not be decoded.
		return 0;
	}

	unsigned char *head = BPF_CORE_READ(skb, head);
	unsigned char *data = BPF_CORE_READ(skb, data);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u32 tail = BPF_CORE_READ(skb, tail); // an offset from head on 64-bit
	__u32 len = BPF_CORE_READ(skb, len);

	// 0xffff marks an unset header offset (skb_network_header_was_set).
	if (nh == 0xffff || nh >= tail)
		return 0;

	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count_lost();
		return 0;
	}

	// skb->len counts from skb->data, which may be before or after the
	// network header; report the length from the network header on.
	__s64 from_data = (__s64)(head + nh - data);

	e->time_ns = bpf_ktime_get_ns();
	e->netns = cookie;
	e->location = location;
	e->ifindex = BPF_CORE_READ(skb, dev, ifindex);
	e->len = (__s64)len > from_data ? (__u32)((__s64)len - from_data) : 0;
	e->reason = reason;
	e->kind = KIND_DROP;
	e->dir = 0;
	e->layer = layer;
	__builtin_memset(e->pad, 0, sizeof(e->pad));

	// Only the linear part (up to tail) is contiguous from head.
	__u64 n = snap_len(tail - nh);

	if (n == 0 || bpf_probe_read_kernel(e->data, n, head + nh) < 0)
		n = 0;
	e->cap_len = n;

	// Drops are rare, and a wakeup each would cost little, but a flood of
	// them (a DROP rule under load, a full queue) would pay it per packet
	// on the path that is already losing packets. Flush and the reader's
	// poll read them anyway, so drops go through the same submit.
	submit(e);
	return 0;
}

// kfree_skb_reason runs on kernels whose skb:kfree_skb carries a drop reason
// (5.17 on). User space loads it only there: the verifier rejects the read
// of an argument the tracepoint does not have.
SEC("tp_btf/kfree_skb")
int BPF_PROG(kfree_skb_reason, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	// The tracepoint has fired for consumed (not dropped) packets on some
	// kernels; their reasons are not drops. Compare with the running
	// kernel's values, which moved between releases.
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_NOT_DROPPED_YET) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_NOT_DROPPED_YET))
		return 0;
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return 0;

	return handle_drop(skb, (__u64)location, (__u32)reason);
}

// kfree_skb_noreason is the fallback for kernels whose skb:kfree_skb has
// only (skb, location): every event is a drop and the reason is unknown.
SEC("raw_tp/kfree_skb")
int BPF_PROG(kfree_skb_noreason, struct sk_buff *skb, void *location)
{
	return handle_drop(skb, (__u64)location, 0);
}

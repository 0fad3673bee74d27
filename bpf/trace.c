//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// hopcheck's kernel side: follow packets through the scenario's network
// namespaces and report the ones the kernel drops.
//
// Two tc classifiers (tc_ingress, tc_egress) see every packet on the
// interfaces they are attached to, and one program on the skb:kfree_skb
// tracepoint sees every packet the kernel frees as dropped. They report
// only for namespaces listed in netns_filter, each to the ring buffer of
// the tracer that traces it, so one loaded copy of the programs serves
// every tracer of a run. Nothing
// here changes a packet or a verdict: the classifiers always return
// TC_ACT_UNSPEC (== TCX_NEXT).
//
// Unless all_packets is set (captures, live tracing), only what correlating
// and diagnosing a probe needs leaves the kernel: packets carrying a probe
// tag (and TCP segments that open, reset or close a connection), ICMP
// errors, and neighbor resolution (ARP, IPv6 ND) where the namespace is the
// one asking or the one asked. The kernel's own chatter (router
// solicitations, MLD, duplicate address detection) and the copies of a
// broadcast flooded to every bridge port stay in the kernel: on a bridge of
// N ports they are N^2 events that no probe needs.
//
// Everything kernel-internal is read with CO-RE (BPF_CORE_READ), so the one
// object runs on every kernel with BTF from 5.10 on.

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

#define ARPHRD_ETHER 1
#define ARPHRD_LOOPBACK 772

#define IPPROTO_ICMP 1
#define IPPROTO_IPIP 4
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_IPV6 41
#define IPPROTO_GRE 47
#define IPPROTO_ICMPV6 58

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04

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
	__u64 netns;    // netns_id of the packet's device (or socket)
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

// events is the template of each tracer's ring buffer for packets and
// drops: user space sets its size before loading and makes every ring of
// that size (an inner map must match its template).
struct events {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
};

// MAX_RINGS is how many tracers can use one load of the programs at once.
#define MAX_RINGS 1024

// rings holds the ring buffer of each tracer using these programs, by
// slot. One load serves many tracers at once (the verifier, most of what
// loading costs, runs once per run), and each reads only its own
// namespaces' events, from its own ring. User space fills a slot once and
// hands it from tracer to tracer: writing a map of maps waits for an RCU
// grace period, which netns_filter, a plain hash, does not.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MAX_RINGS);
	__type(key, __u32);
	__array(values, struct events);
} rings SEC(".maps");

// MAX_NAMESPACES and MAX_ADDRS bound what every tracer of one load traces
// at once: all the scenarios of a run that are running together (eight
// 1000-container scenarios are 8,008 namespaces and some 24,000
// addresses), not one tracer's share. The per-namespace maps are not
// preallocated (BPF_F_NO_PREALLOC), so these cost nothing until used;
// only user space adds and removes their entries, and the programs only
// look them up.
#define MAX_NAMESPACES 65536
#define MAX_ADDRS (4 * MAX_NAMESPACES)

// netns_filter maps the cookie of each traced namespace to the slot in
// rings of the tracer that traces it. User space fills it; programs emit
// nothing for any other namespace.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_NAMESPACES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, __u32);
} netns_filter SEC(".maps");

// wakeup_bytes is how much unread data in a ring makes a submit wake the
// reader; below it, submits leave the reader asleep and it finds the
// events when its poll deadline passes or a Flush interrupts it (see
// submit). User space sets it to a fraction of the ring's size before
// loading; the default matches an eighth of the default 4 MiB ring.
volatile const __u64 wakeup_bytes = 512 << 10;

// lost counts, per traced namespace and per CPU, events that did not fit
// in the namespace's ring buffer, so that a report can say how many hops
// it may be missing. User space adds a namespace's counter before its
// netns_filter entry, so every loss is counted.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_NAMESPACES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, __u64);
} lost SEC(".maps");

// all_packets makes the programs report every packet of the traced
// namespaces, not only what probes need (captures, live tracing). User
// space sets it before loading.
volatile const __u8 all_packets = 0;

// sock_rfree_addr is the kernel address of sock_rfree, the destructor of
// a packet queued on a socket's receive queue; 0 where user space could
// not find it. A packet freed with it is one that was delivered and never
// read (a socket closed with data queued), not a drop.
volatile const __u64 sock_rfree_addr = 0;

// addr_key names an address of a namespace: IPv4 addresses as
// IPv4-mapped IPv6 (::ffff:a.b.c.d).
struct addr_key {
	__u64 netns;
	__u8 addr[16];
};

// local_addrs holds the addresses of the traced namespaces, filled by user
// space. Neighbor resolution is reported only where the namespace owns one
// end of it.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ADDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct addr_key);
	__type(value, __u8);
} local_addrs SEC(".maps");

// scratch is where a packet's first bytes are copied to be classified
// before ring space is reserved for it: reserving takes the ring's lock,
// which packets nobody needs should not.
struct scratch {
	__u8 data[SNAP_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

static __always_inline void count_lost(__u64 cookie)
{
	__u64 *n = bpf_map_lookup_elem(&lost, &cookie);

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
static __always_inline void submit(void *ring, struct event *e)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

// ring_of returns the ring buffer of the tracer that traces the namespace
// of cookie, or NULL if none does.
static __always_inline void *ring_of(__u64 cookie)
{
	if (!cookie)
		return NULL;

	__u32 *slot = bpf_map_lookup_elem(&netns_filter, &cookie);

	if (!slot)
		return NULL;
	return bpf_map_lookup_elem(&rings, slot);
}

// netns_by_inum makes the programs know a namespace by its inode number
// (ns.inum) instead of its cookie. User space sets it on kernels that do
// not tell it a namespace's cookie (SO_NETNS_COOKIE, 5.14), and where the
// cookie is made only when something asks for it (before 5.12), so that a
// namespace may have none yet.
volatile const __u8 netns_by_inum = 0;

// net___old is struct net before 5.12, whose net_cookie was an atomic64_t;
// from 5.12 on it is a u64. CO-RE picks the read that fits the kernel.
struct net___old {
	atomic64_t net_cookie;
} __attribute__((preserve_access_index));

// netns_id returns the identifier user space knows namespace net by: its
// cookie, or its inode number under netns_by_inum.
static __always_inline __u64 netns_id(struct net *net)
{
	if (!net)
		return 0;
	if (netns_by_inum)
		return BPF_CORE_READ(net, ns.inum);
	if (bpf_core_field_exists(((struct net___old *)net)->net_cookie.counter))
		return BPF_CORE_READ((struct net___old *)net, net_cookie.counter);
	return BPF_CORE_READ(net, net_cookie);
}

static __always_inline __u64 dev_netns_cookie(struct net_device *dev)
{
	return netns_id(BPF_CORE_READ(dev, nd_net.net));
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
		return netns_id(BPF_CORE_READ(sk, __sk_common.skc_net.net));
	return 0;
}

// netns_of reads the cookie of skb's device's namespace into *cookie unless it is
// there already, and returns it. tc programs read it only when a packet is
// wanted: it takes three pointer reads, which the many packets no probe
// needs should not pay. (A struct holding both would not do: clang marks
// its accesses for CO-RE relocation, which the kernel's BTF cannot
// satisfy.)
static __always_inline __u64 netns_of(struct sk_buff *skb, __u64 *cookie)
{
	if (!*cookie)
		*cookie = dev_netns_cookie(BPF_CORE_READ(skb, dev));
	return *cookie;
}

// at returns byte i of the n bytes copied to d, or -1 past them.
static __always_inline int at(const __u8 *d, __u32 n, __u32 i)
{
	if (i >= n) // n <= SNAP_LEN
		return -1;
	// The mask is what the verifier sees bound the index; barrier_var
	// keeps clang from dropping it as redundant after the test.
	barrier_var(i);
	return d[i & (SNAP_LEN - 1)];
}

// be16 returns the big-endian 16-bit value at byte i, or -1.
static __always_inline int be16(const __u8 *d, __u32 n, __u32 i)
{
	int hi = at(d, n, i), lo = at(d, n, i + 1);

	if (hi < 0 || lo < 0)
		return -1;
	return hi << 8 | lo;
}

// tagged reports whether a probe tag ("HOPC") starts at byte i.
static __always_inline bool tagged(const __u8 *d, __u32 n, __u32 i)
{
	return at(d, n, i) == 'H' && at(d, n, i + 1) == 'O' && at(d, n, i + 2) == 'P' &&
	       at(d, n, i + 3) == 'C';
}

// owns reports whether namespace netns has the address of len (4 or 16)
// bytes at byte i.
static __always_inline bool owns(__u64 netns, const __u8 *d, __u32 n, __u32 i, __u32 len)
{
	struct addr_key k = { .netns = netns };
	__u32 skip = 16 - len; // IPv4: ::ffff: then its 4 bytes

	if (len == 4) {
		k.addr[10] = 0xff;
		k.addr[11] = 0xff;
	}
#pragma unroll
	for (__u32 j = 0; j < 16; j++) {
		if (j < skip)
			continue;
		int b = at(d, n, i + j - skip);

		if (b < 0)
			return false;
		k.addr[j] = b;
	}
	return bpf_map_lookup_elem(&local_addrs, &k) != NULL;
}

// want_neighbor decides on a neighbor message whose sender address starts
// at byte s and target address at byte t, len bytes each: an ARP request
// or reply, an IPv6 solicitation (sender = source, target = the solicited
// address) or advertisement (sender = the advertised address, target =
// destination). It is wanted leaving the namespace that owns its sender,
// arriving in the one that owns its target, and, for drops (dir 0), in
// either. So the copies of a request flooded to every port of a bridge are
// left out, and an answer from a proxy (which owns neither) is still seen
// where it arrives.
static __always_inline bool want_neighbor(struct sk_buff *skb, __u64 *cookie, __u8 dir,
					  const __u8 *d, __u32 n, __u32 s, __u32 t, __u32 len)
{
	__u64 netns = netns_of(skb, cookie);

	if (dir == DIR_EGRESS)
		return owns(netns, d, n, s, len);
	if (dir == DIR_INGRESS)
		return owns(netns, d, n, t, len);
	return owns(netns, d, n, s, len) || owns(netns, d, n, t, len);
}

// wanted decides whether a packet is reported when all_packets is off. d
// holds its first n bytes; its network header, of protocol proto, starts
// at byte off. It looks through one VXLAN, IPIP or IPv6-in-IP header, so a
// probe inside a tunnel is found too.
static __always_inline bool wanted(struct sk_buff *skb, __u64 *cookie, __u8 dir, const __u8 *d,
				   __u32 n, __u32 off, __u16 proto)
{
#pragma unroll
	for (int depth = 0; depth < 2; depth++) {
		int l4;
		__u32 l4off;

		if (proto == ETH_P_ARP) {
			// Ethernet/IPv4 ARP only; tunnelled copies are seen
			// again where they are decapsulated.
			if (depth > 0 || be16(d, n, off + 2) != ETH_P_IP || at(d, n, off + 5) != 4)
				return false;
			return want_neighbor(skb, cookie, dir, d, n, off + 14, off + 24, 4);
		} else if (proto == ETH_P_IP) {
			int b0 = at(d, n, off);
			int frag = be16(d, n, off + 6);

			// Later fragments carry no header to recognise.
			if (b0 < 0 || frag < 0 || (frag & 0x1fff))
				return false;
			l4 = at(d, n, off + 9);
			l4off = off + (b0 & 0xf) * 4;
		} else if (proto == ETH_P_IPV6) {
			l4 = at(d, n, off + 6);
			l4off = off + 40;
		} else {
			return false;
		}

		switch (l4) {
		case IPPROTO_ICMP: {
			int type = at(d, n, l4off);

			if (type == 0 || type == 8) // echo reply, request
				return tagged(d, n, l4off + 8);
			// unreachable, source quench, redirect, time exceeded,
			// parameter problem
			return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
		}
		case IPPROTO_ICMPV6: {
			int type = at(d, n, l4off);

			if (type == 128 || type == 129)
				return tagged(d, n, l4off + 8);
			if (type >= 1 && type <= 4) // errors
				return true;
			if (type == 137) // redirect
				return true;
			if (depth > 0)
				return false;
			if (type == 135) // solicitation: source asks for target
				return want_neighbor(skb, cookie, dir, d, n, off + 8, l4off + 8, 16);
			if (type == 136) // advertisement: target to destination
				return want_neighbor(skb, cookie, dir, d, n, l4off + 8, off + 24, 16);
			return false; // router discovery, MLD
		}
		case IPPROTO_TCP: {
			int flags = at(d, n, l4off + 13);
			int doff = at(d, n, l4off + 12);

			if (flags < 0 || doff < 0)
				return false;
			if (flags & (TCP_SYN | TCP_FIN | TCP_RST))
				return true;
			return tagged(d, n, l4off + (doff >> 4) * 4);
		}
		case IPPROTO_UDP:
			if (tagged(d, n, l4off + 8))
				return true;
			// VXLAN (any port): flags 0x08 and reserved bytes zero,
			// then the inner Ethernet frame.
			if (depth > 0 || at(d, n, l4off + 8) != 0x08 || at(d, n, l4off + 9) != 0 ||
			    at(d, n, l4off + 10) != 0 || at(d, n, l4off + 11) != 0 ||
			    at(d, n, l4off + 15) != 0)
				return false;
			proto = be16(d, n, l4off + 16 + 12);
			off = l4off + 16 + ETH_HLEN;
			continue;
		case IPPROTO_IPIP:
			proto = ETH_P_IP;
			off = l4off;
			continue;
		case IPPROTO_IPV6:
			proto = ETH_P_IPV6;
			off = l4off;
			continue;
		case IPPROTO_GRE:
			return true;
		}
		return false;
	}
	return false;
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
	struct sk_buff *skb = (struct sk_buff *)ctx;
	__u64 cookie = 0;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s)
		return TC_ACT_UNSPEC;

	__u64 n = snap_len(ctx->len);

	// "n < ETH_HLEN" rather than "n == 0": kernels before 6.8 learn
	// nothing from a != 0 test, and would reject the helper's size as
	// possibly zero; an unsigned lower bound they do track. A frame shorter
	// than an Ethernet header has nothing to decode anyway.
	if (n < ETH_HLEN || bpf_skb_load_bytes(ctx, 0, s->data, n) < 0)
		n = 0;

	if (!all_packets) {
		// Ethernet and loopback frames start with an Ethernet header,
		// which ends with the protocol tc gave; on devices without one
		// (tun, wireguard, ipip) tc sees the IP header first. The
		// device's type settles it only when the bytes do not, so the
		// common case reads no more of the kernel.
		__u32 off = ETH_HLEN;

		if (be16(s->data, n, 12) != proto) {
			__u16 type = BPF_CORE_READ(skb, dev, type);

			if (type != ARPHRD_ETHER && type != ARPHRD_LOOPBACK)
				off = 0;
		}

		if (!wanted(skb, &cookie, dir, s->data, n, off, proto))
			return TC_ACT_UNSPEC;
	}

	void *ring = ring_of(netns_of(skb, &cookie));

	if (!ring)
		return TC_ACT_UNSPEC;

	struct event *e = bpf_ringbuf_reserve(ring, sizeof(*e), 0);

	if (!e) {
		count_lost(cookie);
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
	__builtin_memcpy(e->data, s->data, SNAP_LEN);
	e->cap_len = n;

	submit(ring, e);
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
	void *ring = ring_of(cookie);

	if (!ring)
		return 0;

	// A packet on a socket's receive queue was delivered; freeing it when
	// the socket closes unread is not the network dropping it.
	if (sock_rfree_addr && (__u64)BPF_CORE_READ(skb, destructor) == sock_rfree_addr)
		return 0;

	__u8 layer;
	__u16 proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));

	switch (proto) {
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

	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s)
		return 0;

	// Only the linear part (up to tail) is contiguous from head.
	__u64 n = snap_len(tail - nh);

	if (n == 0 || bpf_probe_read_kernel(s->data, n, head + nh) < 0)
		n = 0;
	if (!all_packets && !wanted(skb, &cookie, 0, s->data, n, 0, proto))
		return 0;

	struct event *e = bpf_ringbuf_reserve(ring, sizeof(*e), 0);

	if (!e) {
		count_lost(cookie);
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
	__builtin_memcpy(e->data, s->data, SNAP_LEN);
	e->cap_len = n;

	// Drops are rare, and a wakeup each would cost little, but a flood of
	// them (a DROP rule under load, a full queue) would pay it per packet
	// on the path that is already losing packets. Flush and the reader's
	// poll read them anyway, so drops go through the same submit.
	submit(ring, e);
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

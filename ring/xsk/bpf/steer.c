// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* rloc's XDP steering program: decides per frame whether the fast path (an
 * AF_XDP socket of the frame's rx queue) or the kernel gets it.
 *
 *   site mode: IPv4/IPv6 not addressed to the router goes to the socket;
 *              ARP, ND/MLD, link-local and traffic to our addresses pass.
 *   core mode: UDP to our RLOCs with destination port 4341 (LISP data,
 *              RFC 9300 §5.1), and 4789 (VXLAN, RFC 7348) or 4790
 *              (VXLAN-GPE) when enabled, goes to the socket; everything else,
 *              LISP control on 4342 included, passes.
 *
 *              IPv4 fragments of UDP to our RLOCs: the first by its
 *              UDP port, the others (no UDP header) all to the socket,
 *              where the fast path reassembles them.
 *
 * VLAN-tagged frames and IPv6 fragments pass to the kernel. Every decision is counted in the per-CPU stats map.
 *
 * Offload (site mode, when the config's epoch is not 0): an IPv4 or IPv6
 * packet whose flow the fast path has installed in the offload (offload6)
 * map for the current epoch
 * is encapsulated here, exactly as the fast path's flow memo would (the same
 * flow hash, selection bucket, outer IPv4 or IPv6 header, TTL and
 * checksums), and redirected to the egress interface; anything else goes to
 * the socket as before.
 *
 * Decap offload (core mode, when the config's epoch is not 0): a LISP data
 * packet to our RLOC whose flow (instance-ID, inner destination) the
 * fast path has installed in the decap map for the current epoch is
 * decapsulated here as the fast path's ETR would, given the Ethernet header
 * of its next hop, and redirected to the site interface.
 *
 * Re-encapsulation offload (core mode, an RTR's, when the config's
 * epoch_reencap is not 0): a LISP data packet to our RLOC whose
 * flow (instance-ID, inner IPv4 destination, RLOC selection bucket) the
 * fast path has installed in the reencap map is re-encapsulated here as
 * the RTR's flow memo would, and redirected to the egress interface. */
#include "steer.h"

#define MODE_OFF 0
#define MODE_SITE 1
#define MODE_CORE 2

#define FLAG_VXLAN 1 /* redirect UDP 4789 as well */
#define FLAG_GPE 2   /* redirect UDP 4790 as well */

#define PORT_LISP_DATA 4341
#define PORT_VXLAN 4789
#define PORT_VXLAN_GPE 4790

enum steer_stat {
	ST_REDIRECT = 0,
	ST_PASS_NO_XSK,
	ST_PASS_NOT_IP,
	ST_PASS_VLAN,
	ST_PASS_LOCAL,
	ST_PASS_CONTROL,
	ST_PASS_FRAGMENT,
	ST_PASS_OTHER,
	ST_PASS_MALFORMED,
	ST_PASS_OFF,
	ST_OFFLOAD,
	ST_MAX,
};

struct steer_config {
	__u32 mode;
	__u32 flags;
	__u32 epoch; /* offload entries of another epoch are not used; 0: offload off */
	__u32 seed;  /* the fast path's flow hash seed (wire.FlowHash) */
	__u32 epoch_reencap; /* the reencap entries' (core mode, an RTR); 0: off */
	__u32 pad;
};

/* An offloaded flow: the fast path's flow memo key (the destination; the
 * instance-ID is the interface's) and the flow's RLOC selection bucket
 * (cache.SelectBucket of its flow hash). */
struct offload_key {
	__be32 dst;
	__u8 bkt;
	__u8 pad[3];
};

/* An offloaded flow to an IPv6 EID. */
struct offload6_key {
	__u8 dst[16];
	__u8 bkt;
	__u8 pad[3];
};

#define OFFLOAD_FRONT 50  /* Ethernet 14 + outer IPv4 20 + UDP 8 + LISP 8 */
#define OFFLOAD_FRONT6 70 /* Ethernet 14 + outer IPv6 40 + UDP 8 + LISP 8 */

/* What the fast path's next-hop memo entry holds for an IPv4 outer header
 * (fastpath nextHop, fast4), or for an IPv6 one whose UDP checksum is zero
 * (v6). */
struct offload_val {
	__u32 epoch;
	__u32 ifindex;   /* egress interface */
	__u32 cs_base;   /* outer IPv4 checksum sum of the template's fixed words */
	__u16 max_inner; /* longest inner packet (path MTU less the front) */
	__u8 nonce;      /* draw a 24-bit nonce into the LISP header */
	__u8 v6;         /* the front is OFFLOAD_FRONT6 bytes with an outer IPv6 header */
	__u64 hits;      /* packets sent through the entry */
	__u8 front[OFFLOAD_FRONT6 + 2];
};

/* A decapsulated flow (core mode): the inner IPv4 destination and the
 * instance-ID, as the fast path's ETR delivers them (fastpath deliver4),
 * and the outer IP version it comes over (over6: to our IPv6 RLOC). A flow
 * that comes over both versions (from two ITRs) has an entry for each. */
struct decap_key {
	__be32 dst;
	__u32 iid;
	__u8 over6;
	__u8 pad[3];
};

/* A decapsulated flow to an IPv6 EID (core mode). */
struct decap6_key {
	__u8 dst[16];
	__u32 iid;
	__u8 over6;
	__u8 pad[3];
};

/* A flow an RTR re-encapsulates (core mode): the inner IPv4 destination,
 * the instance-ID and the flow's RLOC selection bucket, as the fast path's
 * flow memo keys it, and the outer IP version it comes over (over6), as
 * for decap_key. */
struct reencap_key {
	__be32 dst;
	__u32 iid_bkt; /* instance-ID << 8 | bucket */
	__u8 over6;
	__u8 pad[3];
};

/* A flow an RTR re-encapsulates to an IPv6 EID (core mode). */
struct reencap6_key {
	__u8 dst[16];
	__u32 iid_bkt; /* instance-ID << 8 | bucket */
	__u8 over6;
	__u8 pad[3];
};

/* What the fast path's next-hop memo entry holds for the flow (o, as for
 * offload), the RLOC of ours its packets must be sent to, and whether a
 * packet with only N among the observed flags may be taken. */
struct reencap_val {
	struct offload_val o;
	__be32 rloc;     /* the outer IPv4 destination the entry is for (in6: 0) */
	__u8 nonce_ok;
	__u8 in6;        /* the entry is for packets to rloc6, over IPv6 */
	__u8 pad[2];
	__be32 rloc6[4]; /* the outer IPv6 destination the entry is for (in6) */
};

/* What the fast path's next-hop memo entry holds for delivering to dst on
 * a site port, and the RLOC the packets must be addressed to. */
struct decap_val {
	__u32 epoch;
	__u32 ifindex; /* the site interface */
	__be32 rloc;   /* the outer IPv4 destination the entry is for (v6: 0) */
	__u8 nonce_ok; /* a packet with only N among the observed flags may be taken */
	__u8 v6;       /* the entry is for packets to rloc6, over IPv6 */
	__u8 pad[2];
	__u64 hits;    /* packets sent through the entry */
	__u8 eth[16];  /* the Ethernet header (14 bytes) */
	__be32 rloc6[4]; /* the outer IPv6 destination the entry is for (v6) */
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct steer_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __be32);
	__type(value, __u8);
} local_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct in6_addr);
	__type(value, __u8);
} local_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct offload_key);
	__type(value, struct offload_val);
} offload SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct offload6_key);
	__type(value, struct offload_val);
} offload6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct decap_key);
	__type(value, struct decap_val);
} decap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct decap6_key);
	__type(value, struct decap_val);
} decap6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct reencap_key);
	__type(value, struct reencap_val);
} reencap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct reencap6_key);
	__type(value, struct reencap_val);
} reencap6 SEC(".maps");

static __always_inline int count(__u32 st, int action)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &st);
	if (v)
		*v += 1;
	return action;
}

static __always_inline int to_socket(struct xdp_md *ctx)
{
	__u32 q = ctx->rx_queue_index;
	if (!bpf_map_lookup_elem(&xsks, &q))
		return count(ST_PASS_NO_XSK, XDP_PASS);
	count(ST_REDIRECT, 0);
	return bpf_redirect_map(&xsks, q, XDP_PASS);
}

static __always_inline int data_port(__be16 port, __u32 flags)
{
	if (port == bpf_htons(PORT_LISP_DATA))
		return 1;
	if ((flags & FLAG_VXLAN) && port == bpf_htons(PORT_VXLAN))
		return 1;
	if ((flags & FLAG_GPE) && port == bpf_htons(PORT_VXLAN_GPE))
		return 1;
	return 0;
}

/* wire.FlowHash's steps. */
static __always_inline __u64 flow_mix(__u64 h, __u64 v)
{
	h ^= v;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 31;
	return h;
}

static __always_inline __u32 flow_finish(__u64 h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (__u32)h;
}

static __always_inline __u64 be64(const __u8 *p)
{
	return ((__u64)p[0] << 56) | ((__u64)p[1] << 48) | ((__u64)p[2] << 40) | ((__u64)p[3] << 32) |
	       ((__u64)p[4] << 24) | ((__u64)p[5] << 16) | ((__u64)p[6] << 8) | (__u64)p[7];
}

static __always_inline __u16 fold16(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* csum20_ok reports whether the 20-byte IPv4 header at b (within the
 * frame) has a valid checksum (fastpath checksum20Valid). */
static __always_inline int csum20_ok(const __u8 *b)
{
	const __u16 *w = (const __u16 *)b;
	__u32 s = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		s += w[i];
	return fold16(s) == 0xffff;
}

/* lower_ttl sets the TTL of the IPv4 header at b (within the frame) to ttl,
 * at most its TTL, and updates its checksum by the drop (RFC 1624 eqn. 3,
 * fastpath csumLowerTTL: the same bytes as the fast path writes). */
static __always_inline void lower_ttl(__u8 *b, __u8 ttl)
{
	__u16 hc = ((__u16)b[10] << 8) | b[11];
	__u32 c = (__u32)(__u16)~hc + 0xffff - ((__u32)(__u8)(b[8] - ttl) << 8);
	__u16 n = ~(__u16)((c & 0xffff) + (c >> 16));
	b[8] = ttl;
	b[10] = n >> 8;
	b[11] = n;
}

/* sent counts a packet sent through an offload, decap or reencap entry
 * (its hits) and redirects it to ifindex. bpf_redirect without flags always
 * returns XDP_REDIRECT; returning the constant tells the verifier too, so
 * that it does not follow a failed redirect into the next offload's checks
 * with packet pointers the first one's head and tail moves made stale. */
static __always_inline int sent(__u64 *hits, __u32 ifindex)
{
	__sync_fetch_and_add(hits, 1);
	count(ST_OFFLOAD, 0);
	bpf_redirect(ifindex, 0);
	return XDP_REDIRECT;
}

/* encap_front puts entry v's front before the inner packet of the frame
 * (tl bytes long at its start after the Ethernet header, the frame have
 * bytes from there), writes what each packet sets in it as the fast path
 * does (tos and ttl are the inner header's, the latter already lowered;
 * hash the flow hash), and redirects it. The inner header was changed
 * already: it never leaves the packet to the socket. */
static __always_inline int encap_front(struct xdp_md *ctx, struct offload_val *v, __u32 tl, __u32 have, __u8 tos, __u8 ttl,
				       __u32 hash)
{
	/* The frame is cut to the packet, then the front goes before it. */
	if (have > tl && bpf_xdp_adjust_tail(ctx, -(int)(have - tl)))
		return XDP_DROP; /* cannot happen: the tail shrinks within the frame */
	int flen = v->v6 ? OFFLOAD_FRONT6 : OFFLOAD_FRONT;
	if (bpf_xdp_adjust_head(ctx, -(flen - 14)))
		return XDP_DROP; /* no headroom; the inner packet was already changed */
	__u8 *d = (void *)(long)ctx->data;
	void *e = (void *)(long)ctx->data_end;
	__u8 *o = d + 14, *u;
	__u32 ul;
	if (v->v6) {
		/* wire.PatchOuterIPv6: traffic class and hop limit from the
		 * inner header, the flow label from the hash, payload length;
		 * the UDP checksum stays zero. */
		if ((void *)(d + OFFLOAD_FRONT6) > e)
			return XDP_DROP;
		__builtin_memcpy(d, v->front, OFFLOAD_FRONT6);
		__u32 w0 = 0x60000000 | ((__u32)tos << 20) | (hash & 0xfffff);
		o[0] = w0 >> 24;
		o[1] = w0 >> 16;
		o[2] = w0 >> 8;
		o[3] = w0;
		ul = 16 + tl;
		o[4] = ul >> 8;
		o[5] = ul;
		o[7] = ttl;
		u = o + 40;
	} else {
		if ((void *)(d + OFFLOAD_FRONT) > e)
			return XDP_DROP;
		__builtin_memcpy(d, v->front, OFFLOAD_FRONT);
		/* fastpath patch4: TOS and TTL from the inner header, lengths,
		 * ID, checksum from cs_base (RFC 1624 eqn. 3). */
		__u32 on = 36 + tl;
		__u16 id = (__u16)bpf_get_prandom_u32();
		__u32 sum = v->cs_base + (0x4500 | tos) + on + id + (((__u32)ttl << 8) | IPPROTO_UDP);
		__u16 c = ~fold16(sum);
		o[1] = tos;
		o[2] = on >> 8;
		o[3] = on;
		o[4] = id >> 8;
		o[5] = id;
		o[8] = ttl;
		o[9] = IPPROTO_UDP;
		o[10] = c >> 8;
		o[11] = c;
		ul = on - 20;
		u = o + 20;
	}
	/* UDP source port from the hash, UDP length, nonce. */
	__u16 sport = 49152 | ((hash ^ (hash >> 16)) & 0x3fff);
	u[0] = sport >> 8;
	u[1] = sport;
	u[4] = ul >> 8;
	u[5] = ul;
	if (v->nonce) {
		__u32 x = bpf_get_prandom_u32();
		u[9] = x >> 16;
		u[10] = x >> 8;
		u[11] = x;
	}
	return sent(&v->hits, v->ifindex);
}

/* flow_ports sets *l4 to the flow hash's last word (wire.FlowHash): the
 * protocol, and the ports when it has them and the packet holds them (p,
 * the L4 header; l4len the bytes the packet has there). It returns -1 when
 * the ports lie beyond the frame (end), 0 otherwise. */
static __always_inline int flow_ports(__u8 proto, __u8 *p, __u32 l4len, void *end, __u64 *l4)
{
	*l4 = (__u64)proto << 32;
	int ports = proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP || proto == IPPROTO_UDPLITE;
	if (ports && l4len >= 4) {
		if ((void *)(p + 4) > end)
			return -1;
		*l4 |= ((__u32)p[0] << 24) | ((__u32)p[1] << 16) | ((__u32)p[2] << 8) | p[3];
	}
	return 0;
}

/* flow_hash4 sets *hash to wire.FlowHash of the IPv4 packet without
 * options at b (tl bytes long, its header within the frame), as fastpath's
 * parse loop writes it. It returns -1 when its ports lie beyond the frame
 * (end), 0 otherwise. */
static __always_inline int flow_hash4(__u8 *b, __u32 tl, void *end, struct steer_config *cfg, __u32 *hash)
{
	__u64 h = (__u64)cfg->seed * 0x9e3779b97f4a7c15ULL ^ 0x243f6a8885a308d3ULL;
	h = flow_mix(h, be64(b + 12));
	__u32 l4len = 0;
	if (tl >= 24 && !(((__u32)b[6] << 8 | b[7]) & 0x3fff))
		l4len = tl - 20;
	__u64 l4;
	if (flow_ports(b[9], b + 20, l4len, end, &l4))
		return -1;
	*hash = flow_finish(flow_mix(h, l4));
	return 0;
}

/* flow_hash6 sets *hash to wire.FlowHash of the IPv6 packet at b (its
 * fixed header within the frame, pl its payload length): the addresses,
 * the next header and the ports that follow the fixed header. It returns
 * -1 when the ports lie beyond the frame (end), 0 otherwise. */
static __always_inline int flow_hash6(__u8 *b, __u32 pl, void *end, struct steer_config *cfg, __u32 *hash)
{
	__u64 h = (__u64)cfg->seed * 0x9e3779b97f4a7c15ULL ^ 0x243f6a8885a308d3ULL;
	h = flow_mix(h, be64(b + 8));
	h = flow_mix(h, be64(b + 16));
	h = flow_mix(h, be64(b + 24));
	h = flow_mix(h, be64(b + 32));
	__u64 l4;
	if (flow_ports(b[6], b + 40, pl, end, &l4))
		return -1;
	*hash = flow_finish(flow_mix(h, l4));
	return 0;
}

/* offload_v4 encapsulates an IPv4 packet without options (ip, its header
 * in the frame) through its flow's offload entry, as the fast path's
 * encapLoop does, and redirects it; it returns -1 to leave the packet to
 * the socket, having changed nothing. */
static __always_inline int offload_v4(struct xdp_md *ctx, struct iphdr *ip, void *end, struct steer_config *cfg)
{
	__u8 *b = (__u8 *)ip;
	__u32 tl = bpf_htons(ip->tot_len);
	__u32 have = (__u8 *)end - b;
	if (ip->ver_ihl != 0x45 || tl < 20 || tl > have || ip->ttl <= 1 || !csum20_ok(b))
		return -1;
	__u8 dst0 = b[16];
	if ((dst0 & 0xf0) == 0xe0) /* multicast: not the flow memo's */
		return -1;

	__u32 hash;
	if (flow_hash4(b, tl, end, cfg, &hash))
		return -1;

	struct offload_key k = {.dst = ip->daddr, .bkt = (__u8)((hash * 0x9E3779B1U) >> 24)};
	struct offload_val *v = bpf_map_lookup_elem(&offload, &k);
	if (!v || v->epoch != cfg->epoch || tl > v->max_inner)
		return -1;

	/* The inner TTL less one, its checksum updated (fastpath decTTL4). */
	__u8 ttl = ip->ttl - 1;
	lower_ttl(b, ttl);
	return encap_front(ctx, v, tl, have, ip->tos, ttl, hash);
}

/* offload_v6 is offload_v4 for an IPv6 packet (ip6, its fixed header in the
 * frame), as the fast path's encap does for one: not multicast, its payload
 * length within the frame, a hop limit above 1 (lowered by one), the flow
 * hash over the addresses, the next header and the ports that follow the
 * fixed header (wire.FlowHash), the entry of its destination and bucket in
 * offload6. */
static __always_inline int offload_v6(struct xdp_md *ctx, struct ipv6hdr *ip6, void *end, struct steer_config *cfg)
{
	__u8 *b = (__u8 *)ip6;
	__u32 pl = bpf_htons(ip6->payload_len);
	__u32 tl = 40 + pl;
	__u32 have = (__u8 *)end - b;
	if (tl > have || ip6->hop_limit <= 1 || b[24] == 0xff)
		return -1;

	__u32 hash;
	if (flow_hash6(b, pl, end, cfg, &hash))
		return -1;

	struct offload6_key k = {.bkt = (__u8)((hash * 0x9E3779B1U) >> 24)};
	__builtin_memcpy(k.dst, b + 24, 16);
	struct offload_val *v = bpf_map_lookup_elem(&offload6, &k);
	if (!v || v->epoch != cfg->epoch || tl > v->max_inner)
		return -1;

	/* The hop limit less one (fastpath prepareInner); no checksum. */
	__u8 ttl = ip6->hop_limit - 1;
	b[7] = ttl;
	__u8 tos = (b[0] << 4) | (b[1] >> 4);
	return encap_front(ctx, v, tl, have, tos, ttl, hash);
}

#define LISP_N 0x80
#define LISP_L 0x40
#define LISP_E 0x20
#define LISP_V 0x10
#define LISP_I 0x08

/* lisp_header checks the LISP header of a data packet (u: its UDP header,
 * ul its UDP length, within the frame up to end) as the offloads take it:
 * the LISP header and 20 bytes of the inner packet within the frame and the
 * UDP length, none of the flags the fast path reports to its slow path (E,
 * L), not N and V together. It sets *flags and *iid (0 without the I flag)
 * and returns 0, or -1 when a check fails. */
static __always_inline int lisp_header(__u8 *u, __u32 ul, void *end, __u8 *flags, __u32 *iid)
{
	if ((void *)(u + 16 + 20) > end)
		return -1;
	__u8 f = u[8];
	if (ul < 36 || (f & (LISP_N | LISP_V)) == (LISP_N | LISP_V) || (f & (LISP_E | LISP_L)))
		return -1;
	*flags = f;
	*iid = 0;
	if (f & LISP_I)
		*iid = ((__u32)u[12] << 16) | ((__u32)u[13] << 8) | u[14];
	return 0;
}

/* rloc_is reports whether an entry's RLOC (e6: the IPv6 one, e6addr; else
 * e4) is the packet's outer destination (rloc6 over IPv6, else rloc4). */
static __always_inline int rloc_is(__u8 e6, __be32 e4, const __be32 *e6addr, __be32 rloc4, const __be32 *rloc6)
{
	if (rloc6)
		return e6 && e6addr[0] == rloc6[0] && e6addr[1] == rloc6[1] && e6addr[2] == rloc6[2] && e6addr[3] == rloc6[3];
	return !e6 && e4 == rloc4;
}

/* strip_outer cuts the frame to the inner packet (itl bytes after the outer
 * headers, which end outer bytes from the frame's start) and moves its
 * start past the outer headers but for the Ethernet header's 14 bytes. It
 * returns -1 when the kernel refuses either, which cannot happen: the tail
 * shrinks within the frame and the head stays in it. */
static __always_inline int strip_outer(struct xdp_md *ctx, void *end, __u32 outer, __u32 itl)
{
	__u32 flen = (__u8 *)end - (__u8 *)(long)ctx->data;
	if (flen > outer + itl && bpf_xdp_adjust_tail(ctx, -(int)(flen - outer - itl)))
		return -1;
	if (bpf_xdp_adjust_head(ctx, outer - 14))
		return -1;
	return 0;
}

/* decap_inner finishes offload_decap4 and offload_decap6 for a LISP packet
 * whose outer header the caller checked (hop: its TTL or hop limit; u: its
 * UDP header, ul its UDP length, within the frame; rloc4 or rloc6: the
 * packet's outer destination): the LISP header and inner packet checks
 * (an IPv4 header without options, or an IPv6 header, within the UDP
 * payload), the entry of the flow (decap for an IPv4 EID, decap6 for an
 * IPv6 one), the inner TTL or hop limit lowered to the outer one and not
 * 0, then the outer headers go (outer: their length, from the frame's
 * start). It returns -1 to leave the packet to the socket, having changed
 * nothing. */
static __always_inline int decap_inner(struct xdp_md *ctx, __u8 *u, __u32 ul, __u8 hop, void *end, struct steer_config *cfg,
				       __be32 rloc4, const __be32 *rloc6, __u32 outer)
{
	__u8 flags;
	__u32 iid;
	if (lisp_header(u, ul, end, &flags, &iid))
		return -1;
	__u8 *in = u + 16;
	__u32 itl;
	struct decap_val *v;
	int six = (in[0] >> 4) == 6;
	if (six) {
		if ((void *)(in + 40) > end)
			return -1;
		itl = 40 + (((__u32)in[4] << 8) | in[5]);
		if (ul < 56 || itl > ul - 16)
			return -1;
		struct decap6_key k = {.iid = iid, .over6 = rloc6 != 0};
		__builtin_memcpy(k.dst, in + 24, 16);
		v = bpf_map_lookup_elem(&decap6, &k);
	} else {
		itl = ((__u32)in[2] << 8) | in[3];
		if (in[0] != 0x45 || itl < 20 || itl > ul - 16)
			return -1;
		struct decap_key k = {.iid = iid, .over6 = rloc6 != 0};
		__builtin_memcpy(&k.dst, in + 16, 4);
		v = bpf_map_lookup_elem(&decap, &k);
	}
	if (!v || v->epoch != cfg->epoch || ((flags & LISP_N) && !v->nonce_ok))
		return -1;
	if (!rloc_is(v->v6, v->rloc, v->rloc6, rloc4, rloc6))
		return -1;
	if (six) {
		/* wire.ApplyDecap under a Not-ECT outer header: the hop
		 * limit lowered to the outer TTL; no checksum. */
		__u8 hl = in[7];
		if (hl == 0 || hop == 0)
			return -1;
		if (hop < hl)
			in[7] = hop;
	} else {
		__u8 ttl = in[8];
		if (ttl == 0 || hop == 0)
			return -1;
		if (hop < ttl)
			lower_ttl(in, hop); /* fastpath lowerTTL4 */
	}

	if (strip_outer(ctx, end, outer, itl))
		return XDP_DROP;
	__u8 *d = (void *)(long)ctx->data;
	if ((void *)(d + 14) > (void *)(long)ctx->data_end)
		return XDP_DROP;
	__builtin_memcpy(d, v->eth, 14);
	return sent(&v->hits, v->ifindex);
}

/* outer4_lisp checks the outer IPv4 header of a LISP data packet to our
 * RLOC (ip; its UDP destination port checked) as the fast path's core4
 * does: no options, long enough for the outer headers and an inner IPv4
 * header and within the frame, not a fragment, UDP, a valid checksum, a UDP
 * length within the IPv4 packet; and Not-ECT, as the offloads take it. It
 * returns the UDP length, or 0 when a check fails. */
static __always_inline __u32 outer4_lisp(struct iphdr *ip, void *end)
{
	__u8 *b = (__u8 *)ip;
	if ((void *)(b + 28) > end)
		return 0;
	__u32 tl = bpf_htons(ip->tot_len);
	__u32 have = (__u8 *)end - b;
	if (ip->ver_ihl != 0x45 || tl < 56 || tl > have || (ip->frag_off & bpf_htons(0x3fff)) ||
	    ip->protocol != IPPROTO_UDP || (ip->tos & 3) || !csum20_ok(b))
		return 0;
	__u32 ul = ((__u32)b[24] << 8) | b[25];
	if (ul > tl - 20)
		return 0;
	return ul;
}

/* offload_decap4 delivers a LISP data packet to our RLOC (ip, its UDP
 * destination port checked) through its flow's decap entry, as the fast
 * path's deliver4 does: core4's checks (no options, not a fragment, a valid
 * header checksum, UDP and inner lengths, not N and V together, an inner
 * IPv4 header without options), none of the flags the fast path reports
 * (E, L; N while the entry says so), a Not-ECT outer header, the inner TTL
 * lowered to the outer one (RFC 9300 §5.3) and not 0. It returns -1 to leave
 * the packet to the socket, having changed nothing. */
static __always_inline int offload_decap4(struct xdp_md *ctx, struct iphdr *ip, void *end, struct steer_config *cfg)
{
	__u32 ul = outer4_lisp(ip, end);
	if (!ul)
		return -1;
	return decap_inner(ctx, (__u8 *)ip + 20, ul, ip->ttl, end, cfg, ip->daddr, 0, 14 + 20 + 16);
}

/* outer6_lisp checks the outer IPv6 header of a LISP data packet to our
 * RLOC (ip6, without extension headers; its UDP destination port checked)
 * as the fast path's parseCoreAny does: a payload within the frame, of at
 * least 36 bytes (the UDP and LISP headers and 20 of the inner packet), a
 * UDP length within the payload; and a Not-ECT traffic class, as the offloads
 * take it. It returns the UDP length, or 0 when a check fails. */
static __always_inline __u32 outer6_lisp(struct ipv6hdr *ip6, void *end)
{
	__u8 *b = (__u8 *)ip6;
	if ((void *)(b + 48) > end)
		return 0;
	__u32 pl = bpf_htons(ip6->payload_len);
	__u32 have = (__u8 *)end - b;
	if (pl < 36 || pl > have - 40 || (b[1] & 0x30)) /* ECN: the traffic class's low bits */
		return 0;
	__u32 ul = ((__u32)b[44] << 8) | b[45];
	if (ul > pl)
		return 0;
	return ul;
}

/* offload_decap6 is offload_decap4 for an outer IPv6 header without
 * extension headers (ip6, UDP to the LISP data port checked), as the fast
 * path's parseCoreAny and deliverAt take it: the payload and UDP lengths
 * within the frame, a Not-ECT traffic class, the hop limit for the outer
 * TTL; the UDP checksum is not checked (RFC 9300 §5.3, RFC 6935 §5). */
static __always_inline int offload_decap6(struct xdp_md *ctx, struct ipv6hdr *ip6, void *end, struct steer_config *cfg)
{
	__u32 ul = outer6_lisp(ip6, end);
	if (!ul)
		return -1;
	return decap_inner(ctx, (__u8 *)ip6 + 40, ul, ip6->hop_limit, end, cfg, 0, (const __be32 *)ip6->daddr.s6_addr,
			   14 + 40 + 16);
}

/* reencap_inner finishes offload_reencap4 and offload_reencap6 for a LISP
 * packet whose outer header the caller checked (hop: its TTL or hop limit;
 * u: its UDP header, ul its UDP length, within the frame; rloc4 or rloc6:
 * the packet's outer destination; outer: the outer headers' length from
 * the frame's start), as an RTR's fast path does (fastpath core4 or
 * parseCoreAny, then rtrFlow4 and encapLoop for a flow memo hit, or
 * hashInner and encap for an IPv6 EID): the LISP header (none of the flags
 * the fast path reports: E, L; N while the entry says so; not N and V
 * together) and an inner IPv4 header without options, or an inner IPv6
 * header, within the UDP payload; the flow hash of the inner packet picks
 * the entry (instance-ID, destination, bucket; reencap for an IPv4 EID,
 * reencap6 for an IPv6 one), which must be for the packet's RLOC and no
 * shorter than it. The inner TTL or hop limit becomes the lower of the
 * outer and inner ones less one (RFC 9300 §5.3, then the forwarding hop),
 * which must be above 0; the outer headers go and the entry's front comes
 * in their place. It returns -1 to leave the packet to the socket, having
 * changed nothing. */
static __always_inline int reencap_inner(struct xdp_md *ctx, __u8 *u, __u32 ul, __u8 hop, void *end,
					 struct steer_config *cfg, __be32 rloc4, const __be32 *rloc6, __u32 outer)
{
	__u8 flags;
	__u32 iid;
	if (lisp_header(u, ul, end, &flags, &iid))
		return -1;
	__u8 *in = u + 16;
	__u32 itl, hash;
	struct reencap_val *v;
	int six = (in[0] >> 4) == 6;
	if (six) {
		if ((void *)(in + 40) > end)
			return -1;
		__u32 pl = ((__u32)in[4] << 8) | in[5];
		itl = 40 + pl;
		if (ul < 56 || itl > ul - 16 || in[24] == 0xff || flow_hash6(in, pl, end, cfg, &hash))
			return -1;
		struct reencap6_key k = {.iid_bkt = iid << 8 | (__u8)((hash * 0x9E3779B1U) >> 24), .over6 = rloc6 != 0};
		__builtin_memcpy(k.dst, in + 24, 16);
		v = bpf_map_lookup_elem(&reencap6, &k);
	} else {
		itl = ((__u32)in[2] << 8) | in[3];
		if (in[0] != 0x45 || itl < 20 || itl > ul - 16 || flow_hash4(in, itl, end, cfg, &hash))
			return -1;
		struct reencap_key k = {.iid_bkt = iid << 8 | (__u8)((hash * 0x9E3779B1U) >> 24), .over6 = rloc6 != 0};
		__builtin_memcpy(&k.dst, in + 16, 4);
		v = bpf_map_lookup_elem(&reencap, &k);
	}
	if (!v || v->o.epoch != cfg->epoch_reencap || ((flags & LISP_N) && !v->nonce_ok) || itl > v->o.max_inner)
		return -1;
	if (!rloc_is(v->in6, v->rloc, v->rloc6, rloc4, rloc6))
		return -1;
	__u8 ttl = six ? in[7] : in[8];
	if (hop < ttl)
		ttl = hop;
	if (ttl <= 1)
		return -1;
	ttl--;
	__u8 tos;
	if (six) {
		in[7] = ttl; /* fastpath decapRules and prepareInner: no checksum */
		tos = (in[0] << 4) | (in[1] >> 4);
	} else {
		lower_ttl(in, ttl); /* fastpath lowerTTL4 or decTTL4: the same bytes */
		tos = in[1];
	}

	/* The outer headers go, then the entry's front comes before the
	 * inner packet. */
	if (strip_outer(ctx, end, outer, itl))
		return XDP_DROP;
	return encap_front(ctx, &v->o, itl, itl, tos, ttl, hash);
}

/* offload_reencap4 re-encapsulates a LISP data packet over IPv4 to our RLOC
 * (ip, its UDP destination port checked) through its flow's reencap entry:
 * outer4_lisp's checks, then reencap_inner's. */
static __always_inline int offload_reencap4(struct xdp_md *ctx, struct iphdr *ip, void *end, struct steer_config *cfg)
{
	__u32 ul = outer4_lisp(ip, end);
	if (!ul)
		return -1;
	return reencap_inner(ctx, (__u8 *)ip + 20, ul, ip->ttl, end, cfg, ip->daddr, 0, 14 + 20 + 16);
}

/* offload_reencap6 is offload_reencap4 over an outer IPv6 header without
 * extension headers (ip6, UDP to the LISP data port checked), as
 * parseCoreAny takes it: the payload and UDP lengths within the frame, a
 * Not-ECT traffic class, the hop limit for the outer TTL; the UDP checksum
 * is not checked (RFC 9300 §5.3, RFC 6935 §5). */
static __always_inline int offload_reencap6(struct xdp_md *ctx, struct ipv6hdr *ip6, void *end, struct steer_config *cfg)
{
	__u32 ul = outer6_lisp(ip6, end);
	if (!ul)
		return -1;
	return reencap_inner(ctx, (__u8 *)ip6 + 40, ul, ip6->hop_limit, end, cfg, 0, (const __be32 *)ip6->daddr.s6_addr,
			     14 + 40 + 16);
}

static __always_inline int v4(struct xdp_md *ctx, void *l3, void *end, struct steer_config *cfg)
{
	struct iphdr *ip = l3;
	if ((void *)(ip + 1) > end)
		return count(ST_PASS_MALFORMED, XDP_PASS);
	__u32 ihl = ip->ver_ihl & 0x0f;
	if ((ip->ver_ihl >> 4) != 4 || ihl < 5)
		return count(ST_PASS_MALFORMED, XDP_PASS);
	__be32 dst = ip->daddr;
	int local = bpf_map_lookup_elem(&local_v4, &dst) != 0;

	if (cfg->mode == MODE_SITE) {
		if (local)
			return count(ST_PASS_LOCAL, XDP_PASS);
		/* Limited broadcast and 224.0.0.0/24 (link-local multicast,
		 * RFC 5771) are the kernel's. */
		if (dst == 0xffffffff || (dst & bpf_htonl(0xffffff00)) == bpf_htonl(0xe0000000))
			return count(ST_PASS_CONTROL, XDP_PASS);
		if (cfg->epoch) {
			int r = offload_v4(ctx, ip, end, cfg);
			if (r >= 0)
				return r;
		}
		return to_socket(ctx);
	}

	if (!local)
		return count(ST_PASS_OTHER, XDP_PASS);
	if (ip->protocol != IPPROTO_UDP)
		return count(ST_PASS_OTHER, XDP_PASS);
	/* An ITR may fragment the outer IPv4 packet for the path MTU and
	 * leave the reassembly to the ETR (RFC 9300 §7.1): a fragment with a
	 * non-zero offset carries no UDP header, so every such UDP fragment
	 * to a local RLOC goes to the fast path, which reassembles it; a
	 * first fragment is classified by its UDP header below. */
	if (ip->frag_off & bpf_htons(0x1fff))
		return to_socket(ctx);
	struct udphdr *udp = (void *)ip + ihl * 4;
	if ((void *)(udp + 1) > end)
		return count(ST_PASS_MALFORMED, XDP_PASS);
	if (!data_port(udp->dest, cfg->flags))
		return count(ST_PASS_OTHER, XDP_PASS);
	if (cfg->epoch && udp->dest == bpf_htons(PORT_LISP_DATA)) {
		int r = offload_decap4(ctx, ip, end, cfg);
		if (r >= 0)
			return r;
	}
	if (cfg->epoch_reencap && udp->dest == bpf_htons(PORT_LISP_DATA)) {
		int r = offload_reencap4(ctx, ip, end, cfg);
		if (r >= 0)
			return r;
	}
	return to_socket(ctx);
}

static __always_inline int v6(struct xdp_md *ctx, void *l3, void *end, struct steer_config *cfg)
{
	struct ipv6hdr *ip6 = l3;
	if ((void *)(ip6 + 1) > end)
		return count(ST_PASS_MALFORMED, XDP_PASS);
	if ((ip6->ver_tc_flow & bpf_htonl(0xf0000000)) != bpf_htonl(0x60000000))
		return count(ST_PASS_MALFORMED, XDP_PASS);
	struct in6_addr dst = ip6->daddr;
	int local = bpf_map_lookup_elem(&local_v6, &dst) != 0;

	if (cfg->mode == MODE_SITE) {
		if (local)
			return count(ST_PASS_LOCAL, XDP_PASS);
		__u8 b0 = dst.s6_addr[0], b1 = dst.s6_addr[1];
		/* fe80::/10 link-local unicast; ff01::/16 and ff02::/16
		 * interface- and link-local multicast (RFC 4291 §2.4). */
		if ((b0 == 0xfe && (b1 & 0xc0) == 0x80) || (b0 == 0xff && (b1 & 0x0f) <= 2))
			return count(ST_PASS_CONTROL, XDP_PASS);
		/* Hop-by-hop options carry MLD's router alert. */
		if (ip6->nexthdr == IPPROTO_HOPOPTS)
			return count(ST_PASS_CONTROL, XDP_PASS);
		if (ip6->nexthdr == IPPROTO_ICMPV6) {
			__u8 *type = (void *)(ip6 + 1);
			if ((void *)(type + 1) > end)
				return count(ST_PASS_MALFORMED, XDP_PASS);
			/* MLD 130-132 and 143, ND 133-137 (RFC 4861 §4). */
			if ((*type >= 130 && *type <= 137) || *type == 143)
				return count(ST_PASS_CONTROL, XDP_PASS);
		}
		if (cfg->epoch) {
			int r = offload_v6(ctx, ip6, end, cfg);
			if (r >= 0)
				return r;
		}
		return to_socket(ctx);
	}

	if (!local)
		return count(ST_PASS_OTHER, XDP_PASS);
	/* Extension headers (fragments included) go the kernel's way. */
	if (ip6->nexthdr != IPPROTO_UDP)
		return count(ST_PASS_OTHER, XDP_PASS);
	struct udphdr *udp = (void *)(ip6 + 1);
	if ((void *)(udp + 1) > end)
		return count(ST_PASS_MALFORMED, XDP_PASS);
	if (!data_port(udp->dest, cfg->flags))
		return count(ST_PASS_OTHER, XDP_PASS);
	if (cfg->epoch && udp->dest == bpf_htons(PORT_LISP_DATA)) {
		int r = offload_decap6(ctx, ip6, end, cfg);
		if (r >= 0)
			return r;
	}
	if (cfg->epoch_reencap && udp->dest == bpf_htons(PORT_LISP_DATA)) {
		int r = offload_reencap6(ctx, ip6, end, cfg);
		if (r >= 0)
			return r;
	}
	return to_socket(ctx);
}

SEC("xdp")
int rloc_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct steer_config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || cfg->mode == MODE_OFF)
		return count(ST_PASS_OFF, XDP_PASS);

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return count(ST_PASS_MALFORMED, XDP_PASS);
	__be16 proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
		return count(ST_PASS_VLAN, XDP_PASS);
	if (proto == bpf_htons(ETH_P_IP))
		return v4(ctx, eth + 1, end, cfg);
	if (proto == bpf_htons(ETH_P_IPV6))
		return v6(ctx, eth + 1, end, cfg);
	return count(ST_PASS_NOT_IP, XDP_PASS);
}

char _license[] SEC("license") = "Dual BSD/GPL";

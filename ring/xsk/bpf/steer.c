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
 * VLAN-tagged frames and IPv6 fragments pass to the kernel. Every decision is counted in the per-CPU stats map. */
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
	ST_MAX,
};

struct steer_config {
	__u32 mode;
	__u32 flags;
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

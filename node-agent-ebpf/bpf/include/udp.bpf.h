/* SPDX-License-Identifier: Apache-2.0 */
/* UDP packets as cgroup_skb programs see them: from the IP header on. */
#ifndef PLUMBLINE_UDP_BPF_H
#define PLUMBLINE_UDP_BPF_H

struct plb_ipv4_header {
	__u8 ver_ihl;
	__u8 tos;
	__u16 tot_len;
	__u16 id;
	__u16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__u16 check;
	__u8 saddr[4];
	__u8 daddr[4];
};

struct plb_ipv6_header {
	__u32 ver_tc_flow;
	__u16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

struct plb_udp_header {
	__u16 source;
	__u16 dest;
	__u16 len;
	__u16 check;
};

/* The UDP header of an IPv4 or IPv6 packet, its offset in the packet, and
 * the packet's ends (ports in host order). False for anything else. */
static __always_inline bool plb_udp_packet(struct __sk_buff *skb, struct plb_udp_header *udp, __u32 *udp_off,
					   struct plb_sockaddr *src, struct plb_sockaddr *dst)
{
	if (skb->protocol == bpf_htons(0x0800)) {
		struct plb_ipv4_header ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) || ip.protocol != IPPROTO_UDP)
			return false;
		*udp_off = ((ip.ver_ihl & 0x0f) * 4) & 0xff;
		src->family = dst->family = AF_INET;
		__builtin_memcpy(src->addr, ip.saddr, 4);
		__builtin_memcpy(dst->addr, ip.daddr, 4);
	} else if (skb->protocol == bpf_htons(0x86DD)) {
		struct plb_ipv6_header ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) || ip.nexthdr != IPPROTO_UDP)
			return false;
		*udp_off = sizeof(ip);
		src->family = dst->family = AF_INET6;
		__builtin_memcpy(src->addr, ip.saddr, 16);
		__builtin_memcpy(dst->addr, ip.daddr, 16);
	} else {
		return false;
	}
	if (bpf_skb_load_bytes(skb, *udp_off & 0xff, udp, sizeof(*udp)))
		return false;
	src->port = bpf_ntohs(udp->source);
	dst->port = bpf_ntohs(udp->dest);
	return true;
}

#endif /* PLUMBLINE_UDP_BPF_H */

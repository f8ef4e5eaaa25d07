package wire

import "encoding/binary"

// FlowHash returns a 32-bit hash of the flow of the IP packet at the start
// of pkt: source and destination address, protocol (IPv4) or next header
// (IPv6), and the two ports when the protocol is TCP, UDP, SCTP or
// UDP-Lite and the ports are present (not in an IPv4 fragment, and no IPv6
// extension header in between). This is the "5-tuple hash" of RFC 9300
// §5.3 that chooses the outer UDP source port, and the hash the map-cache
// uses to pick among RLOCs of equal priority (RFC 9300 §5.3, RFC 9301
// §5.4), so that one flow keeps one path.
//
// seed perturbs the hash, so that routers in a chain (ITR, then RTR) can
// split flows independently. Packets too short for their fixed header hash
// only the bytes that are there. The hash is not cryptographic: it mixes
// 64-bit words with multiply-xorshift steps and ends with the finaliser of
// MurmurHash3; it allocates nothing.
func FlowHash(pkt []byte, seed uint32) uint32 {
	h := uint64(seed)*0x9e3779b97f4a7c15 ^ 0x243f6a8885a308d3
	if len(pkt) == 0 {
		return finish(h)
	}
	var proto uint8
	var l4 []byte
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < IPv4MinLen {
			return finish(flowMix(h, uint64(len(pkt))))
		}
		h = flowMix(h, binary.BigEndian.Uint64(pkt[v4Src:]))
		proto = pkt[v4Proto]
		hl := int(pkt[v4VerIHL]&0x0f) * 4
		if hl >= IPv4MinLen && hl <= len(pkt) && !IPv4(pkt).IsFragment() {
			l4 = pkt[hl:]
		}
	case 6:
		if len(pkt) < IPv6Len {
			return finish(flowMix(h, uint64(len(pkt))))
		}
		h = flowMix(h, binary.BigEndian.Uint64(pkt[v6Src:]))
		h = flowMix(h, binary.BigEndian.Uint64(pkt[v6Src+8:]))
		h = flowMix(h, binary.BigEndian.Uint64(pkt[v6Dst:]))
		h = flowMix(h, binary.BigEndian.Uint64(pkt[v6Dst+8:]))
		proto = pkt[v6NextHdr]
		l4 = pkt[IPv6Len:]
	default:
		return finish(flowMix(h, uint64(pkt[0])))
	}
	var ports uint32
	switch proto {
	case ProtoTCP, ProtoUDP, ProtoSCTP, ProtoUDPLite:
		if len(l4) >= 4 {
			ports = binary.BigEndian.Uint32(l4)
		}
	}
	return finish(flowMix(h, uint64(proto)<<32|uint64(ports)))
}

func flowMix(h, v uint64) uint64 {
	h ^= v
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 31
	return h
}

func finish(h uint64) uint32 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return uint32(h)
}

// Outer UDP source ports come from the dynamic range of RFC 6335 §6,
// 49152-65535.
const (
	// SourcePortMin is the lowest outer UDP source port rloc sends.
	SourcePortMin = 49152
	// SourcePortMax is the highest outer UDP source port rloc sends.
	SourcePortMax = 65535
)

// SourcePort maps a flow hash to the outer UDP source port (RFC 9300 §5.3:
// the ITR picks the source port, which should be a hash of the inner
// 5-tuple so that underlay ECMP spreads flows). rloc uses the dynamic
// port range 49152-65535 (RFC 6335 §6), as GRE-in-UDP (RFC 8086 §3.2.1)
// and MPLS-in-UDP (RFC 7510 §3) recommend for tunnels: 14 bits of entropy
// is plenty for ECMP and the ports never collide with well-known or
// registered services that middleboxes treat specially. Both halves of the
// hash contribute.
func SourcePort(hash uint32) uint16 {
	return uint16(SourcePortMin | (hash^hash>>16)&0x3fff)
}

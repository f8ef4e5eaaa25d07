package fastpath

import (
	"encoding/binary"

	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/wire"
)

// ICMP sizes.
const (
	icmpHdrLen = 8
	// icmp4MaxLen bounds an ICMPv4 error: the original datagram is quoted up
	// to a 576-byte error (RFC 1812 §4.3.2.3).
	icmp4MaxLen = 576
	// icmp6MaxLen bounds an ICMPv6 error to the minimum MTU (RFC 4443 §2.4 (c)).
	icmp6MaxLen = 1280
)

// ICMP types and codes (RFC 792, RFC 1191 §4, RFC 4443 §3.2).
const (
	icmp4DestUnreach = 3
	icmp4FragNeeded  = 4
	icmp6TooBig      = 2
)

// icmpAllow takes a token from the worker's ICMP bucket (ICMPRate per
// second, ICMPBurst deep; RFC 1812 §4.3.2.8, RFC 4443 §2.4 (f)).
func (w *Worker) icmpAllow() bool {
	if w.icmpRate <= 0 {
		return false
	}
	el := min(max(w.now-w.icmpLast, 0), 100e9)
	w.icmpLast = w.now
	w.icmpTokens = min(w.icmpBurst, w.icmpTokens+el*w.icmpRate)
	if w.icmpTokens < 1e9 {
		return false
	}
	w.icmpTokens -= 1e9
	return true
}

// mayAnswer reports whether an ICMP error may be sent about the inner packet
// of pk: not about ICMP errors, non-first fragments, or packets from
// multicast or unspecified sources (RFC 1812 §4.3.2.7, RFC 4443 §2.4 (e)).
func (w *Worker) mayAnswer(pk *pktInfo, inner []byte) bool {
	if pk.src.IsMulticast() || pk.src.IsUnspecified() || pk.src.IsLoopback() {
		return false
	}
	if pk.v4 {
		ip := wire.IPv4(inner)
		if ip.FragmentOffset() != 0 {
			return false
		}
		hl := ip.HeaderLength()
		if ip.Protocol() == wire.ProtoICMP && len(inner) > hl {
			switch inner[hl] {
			case 3, 4, 5, 11, 12: // error messages (RFC 792)
				return false
			}
		}
		return true
	}
	if inner[6] == wire.ProtoICMPv6 && len(inner) > wire.IPv6Len && inner[wire.IPv6Len] < 128 {
		return false // ICMPv6 error message (RFC 4443 §2.1)
	}
	return true
}

// sendTooBig sends an ICMP "fragmentation needed and DF set" (RFC 792,
// next-hop MTU per RFC 1191 §4) or ICMPv6 "packet too big" (RFC 4443 §3.2)
// carrying mtu to the inner source of f, out of the port f came in on and
// back to the MAC it came from. This is the stateless solution of RFC 9300
// §7.1: the ITR keeps no per-destination MTU state; each oversized packet is
// answered (subject to the rate limit). f is left untouched.
func (w *Worker) sendTooBig(pk *pktInfo, f *ring.Frame, mtu int) {
	b := f.Bytes()
	inner := b[pk.innerOff : pk.innerOff+pk.innerLen]
	if !w.mayAnswer(pk, inner) {
		return
	}
	port := &w.ports[pk.slot]
	src := port.addr6
	if pk.v4 {
		src = port.addr4
	}
	if !src.IsValid() || !w.icmpAllow() {
		w.extra[ExtraICMPSuppressed]++
		return
	}
	var g ring.Frame
	if !w.alloc(pk.slot, &g) {
		w.extra[ExtraICMPSuppressed]++
		return
	}
	ipLen, et := wire.IPv6Len, wire.EtherTypeIPv6
	maxLen := icmp6MaxLen
	if pk.v4 {
		ipLen, et, maxLen = wire.IPv4MinLen, wire.EtherTypeIPv4, icmp4MaxLen
	}
	quote := min(len(inner), maxLen-ipLen-icmpHdrLen)
	total := ipLen + icmpHdrLen + quote
	if !g.SetLen(wire.EthernetLen + total) {
		w.free(&g)
		w.extra[ExtraICMPSuppressed]++
		return
	}
	gb := g.Bytes()
	eth, in := wire.Ethernet(gb), wire.Ethernet(b)
	eth.SetDst(in.Src())
	eth.SetSrc(in.Dst())
	eth.SetType(et)
	ipb := gb[wire.EthernetLen:]
	msg := ipb[ipLen:total]
	copy(msg[icmpHdrLen:], inner[:quote])
	if pk.v4 {
		ip := wire.IPv4(ipb)
		ipb[0], ipb[1] = 0x45, 0
		ip.SetTotalLength(uint16(total))
		ip.SetID(w.ipid)
		w.ipid++
		ip.SetFlagsFragment(0)
		ip.SetTTL(64)
		ip.SetProtocol(wire.ProtoICMP)
		ip.SetSrc(src)
		ip.SetDst(pk.src)
		ip.UpdateChecksum()
		msg[0], msg[1] = icmp4DestUnreach, icmp4FragNeeded
		binary.BigEndian.PutUint32(msg[2:], 0) // checksum, unused
		binary.BigEndian.PutUint16(msg[6:], uint16(max(min(mtu, 0xffff), 0)))
		binary.BigEndian.PutUint16(msg[2:], ^wire.Checksum(msg, 0))
	} else {
		ip := wire.IPv6(ipb)
		binary.BigEndian.PutUint32(ipb, 6<<28)
		ip.SetPayloadLength(uint16(icmpHdrLen + quote))
		ip.SetNextHeader(wire.ProtoICMPv6)
		ip.SetHopLimit(255)
		ip.SetSrc(src)
		ip.SetDst(pk.src)
		msg[0], msg[1] = icmp6TooBig, 0
		binary.BigEndian.PutUint16(msg[2:], 0)
		binary.BigEndian.PutUint32(msg[4:], uint32(max(mtu, 0)))
		ps := wire.PseudoHeaderChecksum(wire.ProtoICMPv6, src, pk.src, uint32(len(msg)))
		binary.BigEndian.PutUint16(msg[2:], ^wire.Checksum(msg, ps))
	}
	w.extra[ExtraICMPSent]++
	w.send(pk.slot, &g)
}

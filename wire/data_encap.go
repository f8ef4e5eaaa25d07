package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Outer header templates.
//
// An ITR encapsulates a packet by putting an outer IP header, a UDP header
// to port 4341 and a LISP header in front of it (RFC 9300 §5.1, §5.3). rloc
// builds those 36 (IPv4) or 56 (IPv6) bytes once per RLOC, as a template,
// when a mapping is installed: AppendOuterIPv4 / AppendOuterIPv6. Per
// packet the fast path copies the template into the headroom in front of
// the inner packet and calls PatchOuterIPv4 / PatchOuterIPv6, which fill in
// what depends on the packet:
//
//   - the IPv4 total length or IPv6 payload length, and the UDP length;
//   - outer TTL / hop limit copied from the inner header (RFC 9300 §5.3);
//   - outer DSCP copied from the inner header, and the ECN field copied as
//     well, which is the "normal mode" of RFC 6040 §4.1 (RFC 9300 §5.3 also
//     requires the ECN copy on encapsulation);
//   - the UDP source port from the flow hash (SourcePort: 49152-65535);
//   - for IPv6, the flow label from the flow hash (RFC 6438 §3);
//   - for IPv4, the identification field;
//   - the LISP nonce (when the template has N) and LSBs (when it has L);
//   - the IPv4 header checksum, updated incrementally from the template's
//     precomputed checksum (RFC 1624 eqn. 3), never recomputed in full;
//   - the UDP checksum: a template whose UDP checksum field is zero yields
//     packets with a zero UDP checksum, which is what RFC 9300 §5.3 says an
//     ITR SHOULD send over IPv4 and IPv6 (for IPv6 under the tunnel
//     applicability statement of RFC 6935 §5 and RFC 6936 §4). A template
//     built with Outer.UDPChecksum holds the non-zero checksum of its own
//     empty packet, and the patch then computes the real checksum over the
//     whole datagram (a cost proportional to the packet size).
//
// The inner TTL is not decremented here: that belongs to the forwarding
// decision of the router that calls the patch.

// Lengths of the outer headers the templates hold.
const (
	// OuterIPv4Len is IPv4 (no options) + UDP + LISP: 36 bytes.
	OuterIPv4Len = IPv4MinLen + UDPLen + HeaderLen
	// OuterIPv6Len is IPv6 + UDP + LISP: 56 bytes.
	OuterIPv6Len = IPv6Len + UDPLen + HeaderLen
)

// DefaultOuterTTL is the TTL written into a template when Outer.TTL is
// zero; the patch replaces it with the inner TTL.
const DefaultOuterTTL = 64

var (
	errOuterFamily    = fmt.Errorf("outer header: RLOC addresses not of the template's family: %w", ErrBadAFI)
	errOuterTruncated = fmt.Errorf("outer header: packet shorter than template and inner IP header: %w", ErrTruncated)
	errOuterInner     = fmt.Errorf("outer header: inner packet is not IPv4 or IPv6: %w", ErrBadValue)
	errOuterTooLarge  = fmt.Errorf("outer header: encapsulated packet longer than 65535 bytes: %w", ErrTooLarge)
	errInnerTruncated = fmt.Errorf("inner header: %w", ErrTruncated)
)

// Outer describes the outer headers of one RLOC; AppendOuterIPv4 and
// AppendOuterIPv6 turn it into a template.
type Outer struct {
	// Src and Dst are the source and destination RLOCs (RFC 9300 §5.3,
	// "Outer Header"). Both IPv4, or both IPv6.
	Src, Dst netip.Addr
	// LISP is the LISP header (RFC 9300 §5.3). The nonce and LSBs are
	// patched per packet when N and L are set; the instance-ID and
	// map-versions stay as given.
	LISP HeaderFields
	// TTL is the template's TTL; the patch overwrites it with the inner
	// TTL. Zero means DefaultOuterTTL.
	TTL uint8
	// DontFragment sets DF in an IPv4 outer header (RFC 791 §3.1).
	DontFragment bool
	// UDPChecksum asks for a computed UDP checksum in every packet instead
	// of zero (RFC 9300 §5.3: zero SHOULD be sent; a non-zero value MUST be
	// correct).
	UDPChecksum bool
}

func (o *Outer) ttl() uint8 {
	if o.TTL == 0 {
		return DefaultOuterTTL
	}
	return o.TTL
}

func (o *Outer) check() error {
	if o.LISP.Flags&(FlagN|FlagV) == FlagN|FlagV {
		return errHeaderNV
	}
	return nil
}

// AppendOuterIPv4 appends an OuterIPv4Len-byte template for o to b: IPv4
// (no options, protocol UDP, checksum valid for an empty payload), UDP to
// DataPort, and the LISP header. Src and Dst must be IPv4 (or IPv4-mapped)
// addresses; N together with V is rejected (RFC 9300 §5.3).
func AppendOuterIPv4(b []byte, o *Outer) ([]byte, error) {
	src, dst := o.Src.Unmap(), o.Dst.Unmap()
	if !src.Is4() || !dst.Is4() {
		return b, errOuterFamily
	}
	if err := o.check(); err != nil {
		return b, err
	}
	n := len(b)
	b = append(b, make([]byte, OuterIPv4Len)...)
	t := b[n:]
	ip := IPv4(t)
	t[v4VerIHL] = 0x45
	ip.SetTotalLength(OuterIPv4Len)
	if o.DontFragment {
		ip.SetFlagsFragment(IPv4FlagDF)
	}
	ip.SetTTL(o.ttl())
	ip.SetProtocol(ProtoUDP)
	ip.SetSrc(src)
	ip.SetDst(dst)
	ip.UpdateChecksum()
	u := UDP(t[IPv4MinLen:])
	u.SetSrcPort(SourcePortMin)
	u.SetDstPort(DataPort)
	u.SetLength(UDPLen + HeaderLen)
	Header(t[IPv4MinLen+UDPLen:]).Encode(&o.LISP)
	if o.UDPChecksum {
		u.SetChecksum(UDPChecksum(u, src, dst))
	}
	return b, nil
}

// AppendOuterIPv6 appends an OuterIPv6Len-byte template for o to b: IPv6
// (next header UDP, no extension headers), UDP to DataPort, and the LISP
// header. Src and Dst must be IPv6 addresses (IPv4-mapped ones are
// refused: use AppendOuterIPv4); N together with V is rejected.
func AppendOuterIPv6(b []byte, o *Outer) ([]byte, error) {
	if !o.Src.Is6() || !o.Dst.Is6() || o.Src.Is4In6() || o.Dst.Is4In6() {
		return b, errOuterFamily
	}
	if err := o.check(); err != nil {
		return b, err
	}
	n := len(b)
	b = append(b, make([]byte, OuterIPv6Len)...)
	t := b[n:]
	ip := IPv6(t)
	t[v6VerTCFL] = 0x60
	ip.SetPayloadLength(UDPLen + HeaderLen)
	ip.SetNextHeader(ProtoUDP)
	ip.SetHopLimit(o.ttl())
	ip.SetSrc(o.Src)
	ip.SetDst(o.Dst)
	u := UDP(t[IPv6Len:])
	u.SetSrcPort(SourcePortMin)
	u.SetDstPort(DataPort)
	u.SetLength(UDPLen + HeaderLen)
	Header(t[IPv6Len+UDPLen:]).Encode(&o.LISP)
	if o.UDPChecksum {
		u.SetChecksum(UDPChecksum(u, o.Src, o.Dst))
	}
	return b, nil
}

// AppendOuter appends the template of o's family: AppendOuterIPv4 when Src
// is IPv4 or IPv4-mapped, AppendOuterIPv6 otherwise.
func AppendOuter(b []byte, o *Outer) ([]byte, error) {
	if o.Src.Unmap().Is4() {
		return AppendOuterIPv4(b, o)
	}
	return AppendOuterIPv6(b, o)
}

// EncapParams are the per-packet values PatchOuterIPv4 and PatchOuterIPv6
// write into a copied template.
type EncapParams struct {
	// FlowHash is the inner packet's FlowHash; it gives the UDP source port
	// (SourcePort) and the IPv6 flow label.
	FlowHash uint32
	// Nonce is written when the template's LISP header has N set
	// (RFC 9300 §5.3, §10.1); low 24 bits.
	Nonce uint32
	// LSBs are written when the template's LISP header has L set
	// (RFC 9300 §10); low 8 bits when it also has I.
	LSBs uint32
	// ID is the IPv4 identification (RFC 791 §3.1, RFC 6864 §4); ignored
	// for IPv6.
	ID uint16
}

// PatchOuterIPv4 completes an IPv4 template that has been copied to the
// start of pkt, directly followed by the inner IPv4 or IPv6 packet, so
// that pkt is the whole encapsulated packet. See the list at the top of
// this file for what it writes. It returns ErrTruncated when pkt cannot
// hold the template and an inner fixed IP header, ErrBadValue when the
// inner packet is neither IPv4 nor IPv6, and ErrTooLarge when pkt is
// longer than 65535 bytes; pkt is unchanged then.
func PatchOuterIPv4(pkt []byte, p *EncapParams) error {
	if len(pkt) < OuterIPv4Len+1 {
		return errOuterTruncated
	}
	ttl, tos, err := innerTTLTOS(pkt[OuterIPv4Len:])
	if err != nil {
		return err
	}
	if len(pkt) > 0xffff {
		return errOuterTooLarge
	}
	_ = pkt[OuterIPv4Len-1]
	// RFC 1624 eqn. 3 for the four words that change, folded at the end.
	w0 := uint32(0x45)<<8 | uint32(tos)
	w1 := uint32(len(pkt))
	w2 := uint32(p.ID)
	w4 := uint32(ttl)<<8 | uint32(ProtoUDP)
	s := uint32(^binary.BigEndian.Uint16(pkt[v4Checksum:])) +
		uint32(^binary.BigEndian.Uint16(pkt[0:])) + w0 +
		uint32(^binary.BigEndian.Uint16(pkt[2:])) + w1 +
		uint32(^binary.BigEndian.Uint16(pkt[4:])) + w2 +
		uint32(^binary.BigEndian.Uint16(pkt[8:])) + w4
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	pkt[v4TOS] = tos
	binary.BigEndian.PutUint16(pkt[v4TotalLen:], uint16(w1))
	binary.BigEndian.PutUint16(pkt[v4ID:], p.ID)
	pkt[v4TTL] = ttl
	binary.BigEndian.PutUint16(pkt[v4Checksum:], ^uint16(s))
	patchUDPLISP(pkt[IPv4MinLen:OuterIPv4Len], len(pkt)-IPv4MinLen, p)
	if binary.BigEndian.Uint16(pkt[IPv4MinLen+udpChecksum:]) != 0 {
		// Pseudo-header: addresses, protocol, UDP length (RFC 768).
		cs := Checksum(pkt[v4Src:IPv4MinLen], uint16(ProtoUDP))
		cs = Checksum(pkt[IPv4MinLen+udpLength:IPv4MinLen+udpLength+2], cs)
		setUDPChecksum(pkt[IPv4MinLen:], cs)
	}
	return nil
}

// PatchOuterIPv6 completes an IPv6 template that has been copied to the
// start of pkt, directly followed by the inner IPv4 or IPv6 packet, like
// PatchOuterIPv4. The flow label is set from the flow hash (RFC 6438 §3).
func PatchOuterIPv6(pkt []byte, p *EncapParams) error {
	if len(pkt) < OuterIPv6Len+1 {
		return errOuterTruncated
	}
	ttl, tos, err := innerTTLTOS(pkt[OuterIPv6Len:])
	if err != nil {
		return err
	}
	if len(pkt)-IPv6Len > 0xffff {
		return errOuterTooLarge
	}
	_ = pkt[OuterIPv6Len-1]
	binary.BigEndian.PutUint32(pkt[v6VerTCFL:], 6<<28|uint32(tos)<<20|(p.FlowHash&0xfffff))
	binary.BigEndian.PutUint16(pkt[v6PayLen:], uint16(len(pkt)-IPv6Len))
	pkt[v6HopLimit] = ttl
	patchUDPLISP(pkt[IPv6Len:OuterIPv6Len], len(pkt)-IPv6Len, p)
	if binary.BigEndian.Uint16(pkt[IPv6Len+udpChecksum:]) != 0 {
		// Pseudo-header: addresses, upper-layer length, next header
		// (RFC 8200 §8.1); the UDP length equals the upper-layer length.
		cs := Checksum(pkt[v6Src:IPv6Len], uint16(ProtoUDP))
		cs = Checksum(pkt[IPv6Len+udpLength:IPv6Len+udpLength+2], cs)
		setUDPChecksum(pkt[IPv6Len:], cs)
	}
	return nil
}

// PatchOuter calls PatchOuterIPv4 or PatchOuterIPv6 by the version nibble
// of the template at the start of pkt.
func PatchOuter(pkt []byte, p *EncapParams) error {
	if len(pkt) == 0 {
		return errOuterTruncated
	}
	switch pkt[0] >> 4 {
	case 4:
		return PatchOuterIPv4(pkt, p)
	case 6:
		return PatchOuterIPv6(pkt, p)
	}
	return errOuterFamily
}

// patchUDPLISP writes the UDP source port and length and the LISP nonce
// and LSBs; t is the UDP header followed by the LISP header.
func patchUDPLISP(t []byte, udpLen int, p *EncapParams) {
	_ = t[UDPLen+HeaderLen-1]
	binary.BigEndian.PutUint16(t[udpSrcPort:], SourcePort(p.FlowHash))
	binary.BigEndian.PutUint16(t[udpLength:], uint16(udpLen))
	h := Header(t[UDPLen:])
	f := h[hdrFlags]
	if f&FlagN != 0 {
		h.SetNonce(p.Nonce)
	}
	if f&FlagL != 0 {
		h.SetLSBs(p.LSBs)
	}
}

// setUDPChecksum computes the checksum of the datagram seg given the sum
// of its pseudo-header, and stores it (0 becomes 0xffff, RFC 768).
func setUDPChecksum(seg []byte, pseudo uint16) {
	s := Checksum(seg[:udpChecksum], pseudo)
	s = Checksum(seg[udpChecksum+2:], s)
	c := ^s
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(seg[udpChecksum:], c)
}

func innerTTLTOS(inner []byte) (ttl, tos uint8, err error) {
	switch inner[0] >> 4 {
	case 4:
		if len(inner) < IPv4MinLen {
			return 0, 0, errOuterTruncated
		}
		return inner[v4TTL], inner[v4TOS], nil
	case 6:
		if len(inner) < IPv6Len {
			return 0, 0, errOuterTruncated
		}
		return inner[v6HopLimit], IPv6(inner).TrafficClass(), nil
	}
	return 0, 0, errOuterInner
}

// ECNDecap is the outcome of the decapsulation rules of RFC 6040 §4.2 for
// one packet.
type ECNDecap uint8

// Outcomes of InnerTTLAndECN and ApplyDecap.
const (
	// ECNForward: forward with the computed inner ECN.
	ECNForward ECNDecap = iota
	// ECNForwardAlarm: forward, but the combination of inner and outer ECN
	// is one RFC 6040 §4.2 marks "(!!!)": currently unused, the
	// decapsulator SHOULD log it (count it).
	ECNForwardAlarm
	// ECNDrop: the outer header says CE but the inner packet is Not-ECT;
	// RFC 6040 §4.2 says drop, because the endpoint could not see the
	// congestion mark. (RFC 9300 §5.3 would copy CE into the inner header;
	// rloc follows RFC 6040 here.)
	ECNDrop
)

// String names the outcome.
func (d ECNDecap) String() string {
	switch d {
	case ECNForward:
		return "forward"
	case ECNForwardAlarm:
		return "forward-alarm"
	case ECNDrop:
		return "drop"
	}
	return "ecn-decap-" + itoa(int(d))
}

// InnerTTLAndECN returns the TTL (or hop limit) and ECN field the inner
// header must carry after decapsulation, and what to do with the packet:
//
//   - TTL: the minimum of outer and inner, so that the TTL cannot grow
//     across encapsulation and decapsulation cycles (RFC 9300 §5.3);
//   - ECN: the table of RFC 6040 §4.2 (normal decapsulation): an outer CE
//     is copied into an ECN-capable inner header, an outer ECT(1) replaces
//     an inner ECT(0), an inner CE stays CE, and an outer CE over a
//     Not-ECT inner packet means ECNDrop.
//
// ECN arguments are the 2-bit codepoints (ECNNotECT, ECNECT0, ECNECT1,
// ECNCE); higher bits are ignored.
func InnerTTLAndECN(outerTTL, outerECN, innerTTL, innerECN uint8) (ttl, ecn uint8, d ECNDecap) {
	ttl = min(outerTTL, innerTTL)
	outerECN &= 3
	innerECN &= 3
	switch innerECN {
	case ECNNotECT:
		switch outerECN {
		case ECNNotECT:
			return ttl, ECNNotECT, ECNForward
		case ECNCE:
			return ttl, ECNNotECT, ECNDrop
		}
		return ttl, ECNNotECT, ECNForwardAlarm
	case ECNECT0:
		if outerECN == ECNECT1 || outerECN == ECNCE {
			return ttl, outerECN, ECNForward
		}
		return ttl, ECNECT0, ECNForward
	case ECNECT1:
		if outerECN == ECNCE {
			return ttl, ECNCE, ECNForward
		}
		return ttl, ECNECT1, ECNForward
	}
	// Inner CE.
	if outerECN == ECNECT1 {
		return ttl, ECNCE, ECNForwardAlarm
	}
	return ttl, ECNCE, ECNForward
}

// ApplyDecap rewrites the TTL (hop limit) and ECN field of the inner IPv4
// or IPv6 packet at the start of inner from the outer header's TTL and
// TOS / traffic class, by InnerTTLAndECN, updating an IPv4 header checksum
// incrementally (RFC 1624). On ECNDrop the packet is left unchanged. It
// returns ErrTruncated or ErrBadValue (not IPv4/IPv6) for an inner packet
// without a whole fixed header.
func ApplyDecap(inner []byte, outerTTL, outerTOS uint8) (ECNDecap, error) {
	if len(inner) == 0 {
		return ECNForward, errInnerTruncated
	}
	switch inner[0] >> 4 {
	case 4:
		if len(inner) < IPv4MinLen {
			return ECNForward, errInnerTruncated
		}
		ip := IPv4(inner)
		ttl, ecn, d := InnerTTLAndECN(outerTTL, outerTOS, ip.TTL(), ip.TOS())
		if d == ECNDrop {
			return d, nil
		}
		old0 := binary.BigEndian.Uint16(inner[0:])
		old8 := binary.BigEndian.Uint16(inner[8:])
		inner[v4TOS] = inner[v4TOS]&^3 | ecn
		inner[v4TTL] = ttl
		c := ChecksumUpdate(ip.Checksum(), old0, binary.BigEndian.Uint16(inner[0:]))
		c = ChecksumUpdate(c, old8, binary.BigEndian.Uint16(inner[8:]))
		ip.SetChecksum(c)
		return d, nil
	case 6:
		if len(inner) < IPv6Len {
			return ECNForward, errInnerTruncated
		}
		ip := IPv6(inner)
		tc := ip.TrafficClass()
		ttl, ecn, d := InnerTTLAndECN(outerTTL, outerTOS, ip.HopLimit(), tc)
		if d == ECNDrop {
			return d, nil
		}
		ip.SetTrafficClass(tc&^3 | ecn)
		ip.SetHopLimit(ttl)
		return d, nil
	}
	return ECNForward, errOuterInner
}

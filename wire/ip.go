package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// This file holds the typed views over Ethernet, IPv4, IPv6 and UDP headers
// the fast path reads and writes around the LISP data header. Like Header,
// accessors assume the view is long enough: check IsValid or Validate first.
// Nothing here allocates.

// Lengths of the fixed headers.
const (
	EthernetLen = 14 // IEEE 802.3 header without tags
	VLANTagLen  = 4  // one IEEE 802.1Q / 802.1ad tag
	IPv4MinLen  = 20 // RFC 791 §3.1, IHL = 5
	IPv4MaxLen  = 60 // RFC 791 §3.1, IHL = 15
	IPv6Len     = 40 // RFC 8200 §3
	UDPLen      = 8  // RFC 768
)

// EtherTypes rloc looks at (IEEE 802.3, IANA "IEEE 802 Numbers").
const (
	EtherTypeIPv4 uint16 = 0x0800
	EtherTypeARP  uint16 = 0x0806
	EtherTypeVLAN uint16 = 0x8100 // IEEE 802.1Q customer tag
	EtherTypeQinQ uint16 = 0x88a8 // IEEE 802.1ad service tag
	EtherTypeIPv6 uint16 = 0x86dd
)

// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
const (
	ProtoICMP    uint8 = 1
	ProtoTCP     uint8 = 6
	ProtoUDP     uint8 = 17
	ProtoICMPv6  uint8 = 58
	ProtoSCTP    uint8 = 132
	ProtoUDPLite uint8 = 136
)

// ECN codepoints: the low two bits of the IPv4 TOS byte and of the IPv6
// traffic class (RFC 3168 §5).
const (
	ECNNotECT uint8 = 0 // not ECN-capable transport
	ECNECT1   uint8 = 1 // ECN-capable transport, ECT(1)
	ECNECT0   uint8 = 2 // ECN-capable transport, ECT(0)
	ECNCE     uint8 = 3 // congestion experienced
)

// Errors of the IP and UDP validators. Each wraps one of the package's base
// errors and is a distinct value, so the fast path can count drops by reason
// with a plain comparison.
var (
	// ErrEthernetTruncated: the frame is shorter than its Ethernet header
	// (tags included).
	ErrEthernetTruncated = fmt.Errorf("ethernet: %w", ErrTruncated)
	// ErrIPTruncated: fewer bytes than the fixed IPv4 or IPv6 header.
	ErrIPTruncated = fmt.Errorf("ip header: %w", ErrTruncated)
	// ErrIPVersion: the version nibble is not the expected one.
	ErrIPVersion = fmt.Errorf("ip header: wrong version: %w", ErrBadValue)
	// ErrIPHeaderLength: IPv4 IHL below 5 or beyond the packet or total length.
	ErrIPHeaderLength = fmt.Errorf("ip header: bad IHL: %w", ErrBadLength)
	// ErrIPTotalLength: the IPv4 total length or IPv6 payload length runs
	// beyond the bytes received.
	ErrIPTotalLength = fmt.Errorf("ip header: length beyond frame: %w", ErrBadLength)
	// ErrUDPTruncated: fewer bytes than a UDP header.
	ErrUDPTruncated = fmt.Errorf("udp header: %w", ErrTruncated)
	// ErrUDPLength: the UDP length is below 8 or beyond the bytes received.
	ErrUDPLength = fmt.Errorf("udp header: bad length: %w", ErrBadLength)
)

// Ethernet is a view of an IEEE 802.3 (Ethernet II) header.
type Ethernet []byte

const (
	ethDst  = 0
	ethSrc  = 6
	ethType = 12
)

// IsValid reports whether e holds an untagged Ethernet header.
func (e Ethernet) IsValid() bool { return len(e) >= EthernetLen }

// Dst returns the destination MAC address.
func (e Ethernet) Dst() [6]byte { return [6]byte(e[ethDst:]) }

// Src returns the source MAC address.
func (e Ethernet) Src() [6]byte { return [6]byte(e[ethSrc:]) }

// SetDst sets the destination MAC address.
func (e Ethernet) SetDst(m [6]byte) { copy(e[ethDst:], m[:]) }

// SetSrc sets the source MAC address.
func (e Ethernet) SetSrc(m [6]byte) { copy(e[ethSrc:], m[:]) }

// Type returns the EtherType (or TPID when the frame is tagged).
func (e Ethernet) Type() uint16 { return binary.BigEndian.Uint16(e[ethType:]) }

// SetType sets the EtherType.
func (e Ethernet) SetType(t uint16) { binary.BigEndian.PutUint16(e[ethType:], t) }

// Payload looks through at most one IEEE 802.1Q or 802.1ad tag and returns
// the EtherType of the payload, the offset at which the payload starts and
// the 12-bit VLAN ID (0 when untagged). It returns ErrEthernetTruncated when
// e is too short for its header.
func (e Ethernet) Payload() (etherType uint16, off int, vlan uint16, err error) {
	if len(e) < EthernetLen {
		return 0, 0, 0, ErrEthernetTruncated
	}
	t := e.Type()
	if t != EtherTypeVLAN && t != EtherTypeQinQ {
		return t, EthernetLen, 0, nil
	}
	if len(e) < EthernetLen+VLANTagLen {
		return 0, 0, 0, ErrEthernetTruncated
	}
	vlan = binary.BigEndian.Uint16(e[EthernetLen:]) & 0x0fff
	return binary.BigEndian.Uint16(e[EthernetLen+2:]), EthernetLen + VLANTagLen, vlan, nil
}

// IPv4 is a view of an IPv4 header (RFC 791 §3.1).
type IPv4 []byte

const (
	v4VerIHL   = 0
	v4TOS      = 1
	v4TotalLen = 2
	v4ID       = 4
	v4FlagsOff = 6
	v4TTL      = 8
	v4Proto    = 9
	v4Checksum = 10
	v4Src      = 12
	v4Dst      = 16
)

// IPv4 flag bits in the flags/fragment-offset word (RFC 791 §3.1).
const (
	IPv4FlagDF uint16 = 0x4000 // don't fragment
	IPv4FlagMF uint16 = 0x2000 // more fragments
)

// IsValid reports whether b holds a well-formed IPv4 header for a packet of
// which pktLen bytes were received: see Validate.
func (b IPv4) IsValid(pktLen int) bool { return b.Validate(pktLen) == nil }

// Validate checks the fields a forwarder depends on: at least 20 bytes,
// version 4 (ErrIPVersion), IHL >= 5 and within the total length and the
// data (ErrIPHeaderLength), total length not beyond pktLen or len(b)
// (ErrIPTotalLength). It does not check the header checksum
// (ChecksumValid does).
func (b IPv4) Validate(pktLen int) error {
	if len(b) < IPv4MinLen || pktLen < IPv4MinLen {
		return ErrIPTruncated
	}
	if b[v4VerIHL]>>4 != 4 {
		return ErrIPVersion
	}
	hl := b.HeaderLength()
	tl := int(b.TotalLength())
	if hl < IPv4MinLen || hl > len(b) || hl > tl {
		return ErrIPHeaderLength
	}
	if tl > pktLen || tl > len(b) {
		return ErrIPTotalLength
	}
	return nil
}

// Version returns the version nibble (RFC 791 §3.1).
func (b IPv4) Version() uint8 { return b[v4VerIHL] >> 4 }

// HeaderLength returns IHL in bytes (RFC 791 §3.1).
func (b IPv4) HeaderLength() int { return int(b[v4VerIHL]&0x0f) * 4 }

// TOS returns the whole type-of-service byte: DSCP and ECN (RFC 2474 §3,
// RFC 3168 §5).
func (b IPv4) TOS() uint8 { return b[v4TOS] }

// SetTOS sets the type-of-service byte; the checksum is not updated.
func (b IPv4) SetTOS(v uint8) { b[v4TOS] = v }

// DSCP returns the differentiated-services codepoint (RFC 2474 §3).
func (b IPv4) DSCP() uint8 { return b[v4TOS] >> 2 }

// ECN returns the ECN field (RFC 3168 §5).
func (b IPv4) ECN() uint8 { return b[v4TOS] & 3 }

// TotalLength returns the total length field (RFC 791 §3.1).
func (b IPv4) TotalLength() uint16 { return binary.BigEndian.Uint16(b[v4TotalLen:]) }

// SetTotalLength sets the total length; the checksum is not updated.
func (b IPv4) SetTotalLength(v uint16) { binary.BigEndian.PutUint16(b[v4TotalLen:], v) }

// ID returns the identification field (RFC 791 §3.1, RFC 6864).
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[v4ID:]) }

// SetID sets the identification field; the checksum is not updated.
func (b IPv4) SetID(v uint16) { binary.BigEndian.PutUint16(b[v4ID:], v) }

// FlagsFragment returns the whole flags/fragment-offset word
// (RFC 791 §3.1).
func (b IPv4) FlagsFragment() uint16 { return binary.BigEndian.Uint16(b[v4FlagsOff:]) }

// SetFlagsFragment sets the flags/fragment-offset word; the checksum is not
// updated.
func (b IPv4) SetFlagsFragment(v uint16) { binary.BigEndian.PutUint16(b[v4FlagsOff:], v) }

// DontFragment reports the DF flag (RFC 791 §3.1).
func (b IPv4) DontFragment() bool { return b.FlagsFragment()&IPv4FlagDF != 0 }

// FragmentOffset returns the fragment offset in bytes (RFC 791 §3.1).
func (b IPv4) FragmentOffset() int { return int(b.FlagsFragment()&0x1fff) * 8 }

// IsFragment reports whether the packet is a fragment: MF set or a non-zero
// offset (RFC 791 §3.2).
func (b IPv4) IsFragment() bool { return b.FlagsFragment()&(IPv4FlagMF|0x1fff) != 0 }

// TTL returns the time-to-live (RFC 791 §3.1).
func (b IPv4) TTL() uint8 { return b[v4TTL] }

// SetTTL sets the time-to-live; the checksum is not updated.
func (b IPv4) SetTTL(v uint8) { b[v4TTL] = v }

// Protocol returns the protocol field (RFC 791 §3.1).
func (b IPv4) Protocol() uint8 { return b[v4Proto] }

// SetProtocol sets the protocol field; the checksum is not updated.
func (b IPv4) SetProtocol(v uint8) { b[v4Proto] = v }

// Checksum returns the header checksum field (RFC 791 §3.1).
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[v4Checksum:]) }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[v4Checksum:], v) }

// Src returns the source address (RFC 791 §3.1).
func (b IPv4) Src() netip.Addr { return netip.AddrFrom4([4]byte(b[v4Src:])) }

// Dst returns the destination address (RFC 791 §3.1).
func (b IPv4) Dst() netip.Addr { return netip.AddrFrom4([4]byte(b[v4Dst:])) }

// SetSrc sets the source address; a is unmapped first, and anything but an
// IPv4 address writes 0.0.0.0. The checksum is not updated.
func (b IPv4) SetSrc(a netip.Addr) { putAddr4(b[v4Src:], a) }

// SetDst sets the destination address like SetSrc.
func (b IPv4) SetDst(a netip.Addr) { putAddr4(b[v4Dst:], a) }

func putAddr4(b []byte, a netip.Addr) {
	a = a.Unmap()
	var v [4]byte
	if a.Is4() {
		v = a.As4()
	}
	copy(b, v[:])
}

// Payload returns the bytes after the header up to the total length.
// Validate first.
func (b IPv4) Payload() []byte { return b[b.HeaderLength():b.TotalLength()] }

// ComputeChecksum returns the header checksum for the header as it stands,
// treating the checksum field as zero (RFC 791 §3.1, RFC 1071).
func (b IPv4) ComputeChecksum() uint16 {
	hl := b.HeaderLength()
	s := Checksum(b[:v4Checksum], 0)
	s = Checksum(b[v4Src:hl], s)
	return ^s
}

// UpdateChecksum recomputes and stores the header checksum.
func (b IPv4) UpdateChecksum() { b.SetChecksum(b.ComputeChecksum()) }

// ChecksumValid reports whether the header checksum verifies (RFC 1071 §1).
func (b IPv4) ChecksumValid() bool { return Checksum(b[:b.HeaderLength()], 0) == 0xffff }

// IPv6 is a view of an IPv6 fixed header (RFC 8200 §3).
type IPv6 []byte

const (
	v6VerTCFL  = 0
	v6PayLen   = 4
	v6NextHdr  = 6
	v6HopLimit = 7
	v6Src      = 8
	v6Dst      = 24
)

// IsValid reports whether b holds a well-formed IPv6 header for a packet of
// which pktLen bytes were received: see Validate.
func (b IPv6) IsValid(pktLen int) bool { return b.Validate(pktLen) == nil }

// Validate checks at least 40 bytes (ErrIPTruncated), version 6
// (ErrIPVersion) and that the payload length does not run beyond pktLen or
// len(b) (ErrIPTotalLength). Jumbograms (RFC 2675) are not supported: a
// zero payload length means an empty payload.
func (b IPv6) Validate(pktLen int) error {
	if len(b) < IPv6Len || pktLen < IPv6Len {
		return ErrIPTruncated
	}
	if b[v6VerTCFL]>>4 != 6 {
		return ErrIPVersion
	}
	n := IPv6Len + int(b.PayloadLength())
	if n > pktLen || n > len(b) {
		return ErrIPTotalLength
	}
	return nil
}

// Version returns the version nibble (RFC 8200 §3).
func (b IPv6) Version() uint8 { return b[v6VerTCFL] >> 4 }

// TrafficClass returns the traffic class: DSCP and ECN (RFC 8200 §3, §7).
func (b IPv6) TrafficClass() uint8 {
	return uint8(binary.BigEndian.Uint16(b[v6VerTCFL:]) >> 4)
}

// SetTrafficClass sets the traffic class, keeping version and flow label.
func (b IPv6) SetTrafficClass(tc uint8) {
	b[0] = b[0]&0xf0 | tc>>4
	b[1] = b[1]&0x0f | tc<<4
}

// DSCP returns the differentiated-services codepoint (RFC 2474 §3).
func (b IPv6) DSCP() uint8 { return b.TrafficClass() >> 2 }

// ECN returns the ECN field (RFC 3168 §5).
func (b IPv6) ECN() uint8 { return b.TrafficClass() & 3 }

// FlowLabel returns the 20-bit flow label (RFC 8200 §3, RFC 6437).
func (b IPv6) FlowLabel() uint32 { return binary.BigEndian.Uint32(b[v6VerTCFL:]) & 0xfffff }

// SetFlowLabel sets the low 20 bits of v as the flow label.
func (b IPv6) SetFlowLabel(v uint32) {
	w := binary.BigEndian.Uint32(b[v6VerTCFL:])
	binary.BigEndian.PutUint32(b[v6VerTCFL:], w&^0xfffff|v&0xfffff)
}

// PayloadLength returns the payload length (RFC 8200 §3).
func (b IPv6) PayloadLength() uint16 { return binary.BigEndian.Uint16(b[v6PayLen:]) }

// SetPayloadLength sets the payload length.
func (b IPv6) SetPayloadLength(v uint16) { binary.BigEndian.PutUint16(b[v6PayLen:], v) }

// NextHeader returns the next-header field (RFC 8200 §3).
func (b IPv6) NextHeader() uint8 { return b[v6NextHdr] }

// SetNextHeader sets the next-header field.
func (b IPv6) SetNextHeader(v uint8) { b[v6NextHdr] = v }

// HopLimit returns the hop limit (RFC 8200 §3).
func (b IPv6) HopLimit() uint8 { return b[v6HopLimit] }

// SetHopLimit sets the hop limit.
func (b IPv6) SetHopLimit(v uint8) { b[v6HopLimit] = v }

// Src returns the source address (RFC 8200 §3).
func (b IPv6) Src() netip.Addr { return netip.AddrFrom16([16]byte(b[v6Src:])) }

// Dst returns the destination address (RFC 8200 §3).
func (b IPv6) Dst() netip.Addr { return netip.AddrFrom16([16]byte(b[v6Dst:])) }

// SetSrc sets the source address (an IPv4 address is written IPv4-mapped).
func (b IPv6) SetSrc(a netip.Addr) { putAddr16(b[v6Src:], a) }

// SetDst sets the destination address like SetSrc.
func (b IPv6) SetDst(a netip.Addr) { putAddr16(b[v6Dst:], a) }

func putAddr16(b []byte, a netip.Addr) {
	var v [16]byte
	if a.IsValid() {
		v = a.As16()
	}
	copy(b, v[:])
}

// Payload returns the bytes after the fixed header up to the payload
// length. Validate first.
func (b IPv6) Payload() []byte { return b[IPv6Len : IPv6Len+int(b.PayloadLength())] }

// UDP is a view of a UDP header (RFC 768).
type UDP []byte

const (
	udpSrcPort  = 0
	udpDstPort  = 2
	udpLength   = 4
	udpChecksum = 6
)

// Validate checks at least 8 bytes (ErrUDPTruncated) and 8 <= length <=
// min(pktLen, len(b)) (ErrUDPLength).
func (b UDP) Validate(pktLen int) error {
	if len(b) < UDPLen || pktLen < UDPLen {
		return ErrUDPTruncated
	}
	n := int(b.Length())
	if n < UDPLen || n > pktLen || n > len(b) {
		return ErrUDPLength
	}
	return nil
}

// SrcPort returns the source port (RFC 768).
func (b UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[udpSrcPort:]) }

// DstPort returns the destination port (RFC 768).
func (b UDP) DstPort() uint16 { return binary.BigEndian.Uint16(b[udpDstPort:]) }

// Length returns the length field: header plus data (RFC 768).
func (b UDP) Length() uint16 { return binary.BigEndian.Uint16(b[udpLength:]) }

// Checksum returns the checksum field; 0 means "not computed" (RFC 768,
// RFC 6935 for IPv6 tunnels).
func (b UDP) Checksum() uint16 { return binary.BigEndian.Uint16(b[udpChecksum:]) }

// SetSrcPort sets the source port.
func (b UDP) SetSrcPort(v uint16) { binary.BigEndian.PutUint16(b[udpSrcPort:], v) }

// SetDstPort sets the destination port.
func (b UDP) SetDstPort(v uint16) { binary.BigEndian.PutUint16(b[udpDstPort:], v) }

// SetLength sets the length field.
func (b UDP) SetLength(v uint16) { binary.BigEndian.PutUint16(b[udpLength:], v) }

// SetChecksum sets the checksum field.
func (b UDP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[udpChecksum:], v) }

// Payload returns the data after the header up to the length field.
// Validate first.
func (b UDP) Payload() []byte { return b[UDPLen:b.Length()] }

// Checksum returns the 16-bit one's-complement sum of b (as big-endian
// 16-bit words, an odd last byte padded with zero) added to initial, not
// complemented (RFC 1071 §4.1). Sums of pieces combine by passing one as
// the initial value of the next, as long as every piece but the last has
// an even length.
func Checksum(b []byte, initial uint16) uint16 {
	s := uint64(initial)
	for len(b) >= 32 {
		s += uint64(binary.BigEndian.Uint32(b[0:])) +
			uint64(binary.BigEndian.Uint32(b[4:])) +
			uint64(binary.BigEndian.Uint32(b[8:])) +
			uint64(binary.BigEndian.Uint32(b[12:])) +
			uint64(binary.BigEndian.Uint32(b[16:])) +
			uint64(binary.BigEndian.Uint32(b[20:])) +
			uint64(binary.BigEndian.Uint32(b[24:])) +
			uint64(binary.BigEndian.Uint32(b[28:]))
		b = b[32:]
	}
	for len(b) >= 4 {
		s += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return fold64(s)
}

// fold64 folds a wide sum of 16-bit words into 16 bits with end-around
// carry.
func fold64(s uint64) uint16 {
	s = s&0xffffffff + s>>32 // at most 33 bits
	s = s&0xffffffff + s>>32 // at most 32 bits
	t := uint32(s)
	t = t&0xffff + t>>16
	t = t&0xffff + t>>16
	return uint16(t)
}

// ChecksumUpdate returns the checksum field hc after a 16-bit word of the
// covered data changes from old to new, per RFC 1624 §3 eqn. 3:
// HC' = ~(~HC + ~m + m').
func ChecksumUpdate(hc, old, new uint16) uint16 {
	s := uint32(^hc) + uint32(^old) + uint32(new)
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return ^uint16(s)
}

// PseudoHeaderChecksum returns the one's-complement sum (not complemented)
// of the pseudo-header of RFC 768 (IPv4) or RFC 8200 §8.1 (IPv6) for
// upper-layer protocol proto and upper-layer length length. src and dst
// must be of one family; an IPv4-mapped IPv6 address counts as IPv6.
func PseudoHeaderChecksum(proto uint8, src, dst netip.Addr, length uint32) uint16 {
	var s uint64
	if src.Is4() {
		a, b := src.As4(), dst.As4()
		s = uint64(binary.BigEndian.Uint32(a[:])) + uint64(binary.BigEndian.Uint32(b[:]))
	} else {
		a, b := src.As16(), dst.As16()
		s = uint64(binary.BigEndian.Uint32(a[0:])) + uint64(binary.BigEndian.Uint32(a[4:])) +
			uint64(binary.BigEndian.Uint32(a[8:])) + uint64(binary.BigEndian.Uint32(a[12:])) +
			uint64(binary.BigEndian.Uint32(b[0:])) + uint64(binary.BigEndian.Uint32(b[4:])) +
			uint64(binary.BigEndian.Uint32(b[8:])) + uint64(binary.BigEndian.Uint32(b[12:]))
	}
	s += uint64(proto) + uint64(length)
	return fold64(s)
}

// UDPChecksum returns the checksum field value for the UDP datagram seg
// (header and data, len(seg) bytes; the current checksum field is ignored)
// sent from src to dst (RFC 768; RFC 8200 §8.1). A computed zero is
// returned as 0xffff, since 0 means "no checksum".
func UDPChecksum(seg []byte, src, dst netip.Addr) uint16 {
	s := PseudoHeaderChecksum(ProtoUDP, src, dst, uint32(len(seg)))
	s = Checksum(seg[:udpChecksum], s)
	s = Checksum(seg[udpChecksum+2:], s)
	if c := ^s; c != 0 {
		return c
	}
	return 0xffff
}

// UDPChecksumOK reports whether the checksum of seg verifies, treating a
// zero checksum as "not computed" and so acceptable, which is what an ETR
// does with LISP data over IPv4 and IPv6 (RFC 9300 §5.3, RFC 6935 §5).
// seg must be at least 8 bytes.
func UDPChecksumOK(seg []byte, src, dst netip.Addr) bool {
	c := UDP(seg).Checksum()
	return c == 0 || c == UDPChecksum(seg, src, dst)
}

// IPTTLAndTOS returns the TTL (IPv4) or hop limit (IPv6) and the TOS byte
// or traffic class of the IP packet at the start of b, choosing the family
// by the version nibble. ok is false when b is not long enough for the
// fixed header of its version or the version is neither 4 nor 6.
func IPTTLAndTOS(b []byte) (ttl, tos uint8, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < IPv4MinLen {
			return 0, 0, false
		}
		return b[v4TTL], b[v4TOS], true
	case 6:
		if len(b) < IPv6Len {
			return 0, 0, false
		}
		return b[v6HopLimit], IPv6(b).TrafficClass(), true
	}
	return 0, 0, false
}

package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// MLD message types (ICMPv6 types, RFC 2710 §3, RFC 3810 §5) and lengths.
const (
	MLDQuery    = 130 // Multicast Listener Query, RFC 2710 §3.6, RFC 3810 §5.1
	MLDv1Report = 131 // Multicast Listener Report, RFC 2710 §3.6
	MLDv1Done   = 132 // Multicast Listener Done, RFC 2710 §3.6
	MLDv2Report = 143 // Version 2 Multicast Listener Report, RFC 3810 §5.2

	mldV1Len      = 24 // RFC 2710 §3
	mldV2QueryMin = 28 // RFC 3810 §5.1
	mldV2Hdr      = 8  // RFC 3810 §5.2
	protoICMPv6   = 58
)

// ParseMLD parses an MLD message (the ICMPv6 message, RFC 2710 §3,
// RFC 3810 §5). src and dst are the IPv6 source and destination of the
// packet: when both are valid the ICMPv6 checksum over the pseudo-header
// (RFC 8200 §8.1) is verified; a listener on a raw ICMPv6 socket, where
// the kernel has verified it already and the destination may be unknown,
// passes invalid addresses. MLDv1 reports become one ModeIsExclude record
// without sources, a done one ChangeToInclude record without sources.
// Every group must be a multicast address.
func (m *Membership) ParseMLD(b []byte, src, dst netip.Addr) error {
	m.reset(true)
	if len(b) < mldV1Len && !(len(b) >= mldV2Hdr && b[0] == MLDv2Report) {
		return fmt.Errorf("%w: MLD message of %d bytes", ErrTruncated, len(b))
	}
	if src.IsValid() && dst.IsValid() {
		if !src.Is6() || !dst.Is6() {
			return fmt.Errorf("%w: MLD over %v -> %v", ErrBadAFI, src, dst)
		}
		if Checksum(b, PseudoHeaderChecksum(protoICMPv6, src, dst, uint32(len(b)))) != 0xffff {
			return fmt.Errorf("%w: ICMPv6 checksum", ErrBadValue)
		}
	}
	switch t := b[0]; t {
	case MLDQuery:
		m.Query = true
		m.QueryGroup = addrFrom(b[8:24])
		switch {
		case len(b) == mldV1Len:
			m.Version = 1
		case len(b) >= mldV2QueryMin:
			m.Version = 2
			n := int(binary.BigEndian.Uint16(b[26:28]))
			if len(b) < mldV2QueryMin+16*n {
				return fmt.Errorf("%w: MLDv2 query with %d sources", ErrTruncated, n)
			}
		default:
			return fmt.Errorf("%w: MLD query of %d bytes", ErrBadLength, len(b))
		}
		if g := m.QueryGroup; !g.IsUnspecified() && !g.IsMulticast() {
			return fmt.Errorf("%w: MLD query group %v", ErrBadValue, g)
		}
		return nil
	case MLDv1Report, MLDv1Done:
		m.Version = 1
		return m.addSingle(addrFrom(b[8:24]), t == MLDv1Done, "MLD group")
	case MLDv2Report:
		m.Version = 2
		return m.parseRecords(b[mldV2Hdr:], int(binary.BigEndian.Uint16(b[6:8])), 16, "MLDv2 address record")
	default:
		return fmt.Errorf("%w: ICMPv6 type %d is not MLD", ErrBadType, t)
	}
}

// AppendMLDv2Report appends an MLDv2 report (RFC 3810 §5.2) with the
// records; the checksum is computed for the packet from src to dst.
func AppendMLDv2Report(b []byte, recs []GroupRecord, src, dst netip.Addr) ([]byte, error) {
	if len(recs) > 0xffff {
		return b, fmt.Errorf("%w: %d address records", ErrTooLarge, len(recs))
	}
	start := len(b)
	b = append(b, MLDv2Report, 0, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(recs)))
	for i := range recs {
		r := &recs[i]
		if !r.Group.Is6() || len(r.Sources) > 0xffff {
			return b[:start], fmt.Errorf("%w: MLDv2 record %d", ErrBadValue, i)
		}
		b = append(b, byte(r.Type), 0)
		b = binary.BigEndian.AppendUint16(b, uint16(len(r.Sources)))
		g := r.Group.As16()
		b = append(b, g[:]...)
		for _, s := range r.Sources {
			if !s.Is6() {
				return b[:start], fmt.Errorf("%w: MLDv2 record %d source %v", ErrBadAFI, i, s)
			}
			a := s.As16()
			b = append(b, a[:]...)
		}
	}
	return mldChecksum(b, start, src, dst)
}

// AppendMLDv1 appends an MLDv1 report or, when done is set, a done
// (RFC 2710 §3) for group g; the checksum is computed for the packet from
// src to dst.
func AppendMLDv1(b []byte, g netip.Addr, done bool, src, dst netip.Addr) ([]byte, error) {
	if !g.Is6() {
		return b, fmt.Errorf("%w: MLD group %v", ErrBadAFI, g)
	}
	start := len(b)
	t := byte(MLDv1Report)
	if done {
		t = MLDv1Done
	}
	b = append(b, t, 0, 0, 0, 0, 0, 0, 0)
	a := g.As16()
	b = append(b, a[:]...)
	return mldChecksum(b, start, src, dst)
}

func mldChecksum(b []byte, start int, src, dst netip.Addr) ([]byte, error) {
	if !src.Is6() || !dst.Is6() {
		return b[:start], fmt.Errorf("%w: MLD checksum addresses %v -> %v", ErrBadAFI, src, dst)
	}
	msg := b[start:]
	sum := Checksum(msg, PseudoHeaderChecksum(protoICMPv6, src, dst, uint32(len(msg))))
	binary.BigEndian.PutUint16(msg[2:], ^sum)
	return b, nil
}

package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// ECM is the Encapsulated Control Message (type 8, RFC 9301 §5.8): a 4-byte
// LISP header followed by an inner IPv4 or IPv6 header, an inner UDP header
// and a LISP control message. ITRs send Map-Requests to Map-Resolvers this
// way, Map-Resolvers forward them to Map-Servers (M bit) and Map-Servers to
// ETRs (E bit); DDT Map-Resolvers mark theirs with the D bit (RFC 8111 §6.3).
// The outer IP and UDP headers belong to the socket and are not part of ECM.
//
// Parse checks the inner headers (IP version, header and total lengths, no
// fragment, protocol UDP, UDP length) and exposes the inner addresses, ports
// and the inner LISP message as a sub-slice of its input, without copying
// or allocating. It does not check the inner checksums, so that a peer that
// leaves them zero is not refused; ChecksumsOK reports on them.
//
// The S bit announces LISP-SEC authentication data (ECMAuth, RFC 9303
// §6.1) between the LISP header and the inner IP header (RFC 9301 §5.8):
// Parse reads it into Auth and Append writes Auth when Security is set.
type ECM struct {
	// Security is the S bit (RFC 9301 §5.8): Auth is present.
	Security bool
	// Auth is the LISP-SEC ECM Authentication Data, meaningful when
	// Security is set.
	Auth ECMAuth
	// DDT is the D bit: the encapsulated Map-Request comes from a DDT
	// Map-Resolver (RFC 9301 §5.8, RFC 8111 §6.3).
	DDT bool
	// ToETR is the E bit, set by a Map-Server forwarding a Map-Request to an
	// ETR (RFC 9301 §5.8).
	ToETR bool
	// ToMapServer is the M bit, set by a Map-Resolver forwarding a
	// Map-Request to a Map-Server (RFC 9301 §5.8).
	ToMapServer bool
	// Src and Dst are the inner IP source and destination (RFC 9301 §5.8:
	// RLOCs or EIDs; for a Map-Request the destination is the EID looked
	// up). Both IPv4 or both IPv6.
	Src, Dst netip.Addr
	// SrcPort and DstPort are the inner UDP ports (RFC 9301 §5.8).
	SrcPort, DstPort uint16
	// TTL is the inner IPv4 TTL or IPv6 hop limit, written as is.
	TTL uint8
	// Message is the inner LISP control message (RFC 9301 §5.8 LCM). Parse
	// sets it to a sub-slice of its input; Append copies it.
	Message []byte
	// Inner is set by Parse to the whole inner IP packet (a sub-slice of its
	// input); Append ignores it.
	Inner []byte
}

const (
	ecmHeaderLen = 4  // Type, S, D, E, M and reserved bits (RFC 9301 §5.8)
	ecmIPv4Len   = 20 // inner IPv4 header without options
	ecmIPv6Len   = 40 // inner IPv6 header
	ecmUDPLen    = 8  // inner UDP header
	ecmProtoUDP  = 17 // IP protocol number of UDP

	ecmFlagS = 0x08 // RFC 9301 §5.8 S bit in the first byte
	ecmFlagD = 0x04 // RFC 9301 §5.8 D bit
	ecmFlagE = 0x02 // RFC 9301 §5.8 E bit
	ecmFlagM = 0x01 // RFC 9301 §5.8 M bit
)

// Len returns the encoded length Append produces: the LISP header, a 20-byte
// IPv4 or 40-byte IPv6 header, the UDP header and the message.
func (e *ECM) Len() int {
	ip := ecmIPv6Len
	if e.Src.Is4() {
		ip = ecmIPv4Len
	}
	if e.Security {
		ip += e.Auth.Len()
	}
	return ecmHeaderLen + ip + ecmUDPLen + len(e.Message)
}

// Append appends the ECM to b: the LISP header, an inner IPv4 (without
// options, header checksum set) or IPv6 header, and a UDP header whose
// checksum is computed over the pseudo-header and Message, around Message.
func (e *ECM) Append(b []byte) ([]byte, error) {
	if len(e.Message) == 0 {
		return b, fmt.Errorf("%w: ECM without an inner message", ErrBadValue)
	}
	f := byte(TypeECM) << 4
	if e.DDT {
		f |= ecmFlagD
	}
	if e.ToETR {
		f |= ecmFlagE
	}
	if e.ToMapServer {
		f |= ecmFlagM
	}
	if e.Security {
		f |= ecmFlagS
	}
	start := len(b)
	b, err := e.appendInner(append(b, f, 0, 0, 0))
	if err != nil {
		return b[:start], err
	}
	return b, nil
}

// appendInner appends the authentication data (when Security is set), the
// inner IP and UDP headers and the message.
func (e *ECM) appendInner(b []byte) ([]byte, error) {
	if e.Security {
		var err error
		if b, err = e.Auth.Append(b); err != nil {
			return b, fmt.Errorf("ECM: %w", err)
		}
	}
	ulen := ecmUDPLen + len(e.Message)
	var sum uint32
	switch {
	case e.Src.Is4() && e.Dst.Is4():
		total := ecmIPv4Len + ulen
		if total > 0xffff {
			return b, fmt.Errorf("%w: ECM inner IPv4 packet of %d bytes", ErrTooLarge, total)
		}
		ip := len(b)
		b = append(b, 0x45, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(total))
		b = append(b, 0, 0, 0, 0, e.TTL, ecmProtoUDP, 0, 0)
		s, d := e.Src.As4(), e.Dst.As4()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
		binary.BigEndian.PutUint16(b[ip+10:], ^ecmFold(ecmSum(0, b[ip:ip+ecmIPv4Len])))
		sum = ecmSum(0, b[ip+12:ip+20])
	case e.Src.Is6() && e.Dst.Is6():
		if ulen > 0xffff {
			return b, fmt.Errorf("%w: ECM inner IPv6 payload of %d bytes", ErrTooLarge, ulen)
		}
		ip := len(b)
		b = append(b, 0x60, 0, 0, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(ulen))
		b = append(b, ecmProtoUDP, e.TTL)
		s, d := e.Src.As16(), e.Dst.As16()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
		sum = ecmSum(0, b[ip+8:ip+40])
	default:
		return b, fmt.Errorf("%w: ECM inner addresses %v and %v", ErrBadAFI, e.Src, e.Dst)
	}
	u := len(b)
	b = binary.BigEndian.AppendUint16(b, e.SrcPort)
	b = binary.BigEndian.AppendUint16(b, e.DstPort)
	b = binary.BigEndian.AppendUint16(b, uint16(ulen))
	b = append(b, 0, 0)
	b = append(b, e.Message...)
	sum += ecmProtoUDP + uint32(ulen)
	c := ^ecmFold(ecmSum(sum, b[u:]))
	if c == 0 {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(b[u+6:], c)
	return b, nil
}

// Parse reads a whole ECM from b into e. Message and Inner alias b.
func (e *ECM) Parse(b []byte) error {
	if len(b) < ecmHeaderLen {
		return fmt.Errorf("%w: ECM header", ErrTruncated)
	}
	if t := MessageType(b[0] >> 4); t != TypeECM {
		return fmt.Errorf("%w: %v, want ECM", ErrBadType, t)
	}
	f := b[0]
	e.Security, e.DDT, e.ToETR, e.ToMapServer = f&ecmFlagS != 0, f&ecmFlagD != 0, f&ecmFlagE != 0, f&ecmFlagM != 0
	p := b[ecmHeaderLen:]
	if e.Security {
		n, err := e.Auth.Parse(p)
		if err != nil {
			return err
		}
		p = p[n:]
	}
	if len(p) == 0 {
		return fmt.Errorf("%w: ECM inner IP header", ErrTruncated)
	}
	var udp []byte
	switch p[0] >> 4 {
	case 4:
		if len(p) < ecmIPv4Len {
			return fmt.Errorf("%w: ECM inner IPv4 header", ErrTruncated)
		}
		ihl := int(p[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(p[2:]))
		switch {
		case ihl < ecmIPv4Len:
			return fmt.Errorf("%w: ECM inner IPv4 header length %d", ErrBadLength, ihl)
		case total > len(p):
			return fmt.Errorf("%w: ECM inner IPv4 total length %d, %d bytes present", ErrTruncated, total, len(p))
		case total < len(p):
			return fmt.Errorf("%w: ECM inner IPv4 total length %d, %d bytes present", ErrBadLength, total, len(p))
		case total < ihl+ecmUDPLen:
			return fmt.Errorf("%w: ECM inner IPv4 total length %d with header length %d", ErrBadLength, total, ihl)
		case binary.BigEndian.Uint16(p[6:])&0x3fff != 0:
			return fmt.Errorf("%w: ECM inner IPv4 packet is a fragment", ErrBadValue)
		case p[9] != ecmProtoUDP:
			return fmt.Errorf("%w: ECM inner IPv4 protocol %d, want UDP", ErrBadValue, p[9])
		}
		e.TTL = p[8]
		e.Src = netip.AddrFrom4([4]byte(p[12:16]))
		e.Dst = netip.AddrFrom4([4]byte(p[16:20]))
		udp = p[ihl:]
	case 6:
		if len(p) < ecmIPv6Len {
			return fmt.Errorf("%w: ECM inner IPv6 header", ErrTruncated)
		}
		total := ecmIPv6Len + int(binary.BigEndian.Uint16(p[4:]))
		switch {
		case total > len(p):
			return fmt.Errorf("%w: ECM inner IPv6 payload length %d, %d bytes present", ErrTruncated, total-ecmIPv6Len, len(p)-ecmIPv6Len)
		case total < len(p):
			return fmt.Errorf("%w: ECM inner IPv6 payload length %d, %d bytes present", ErrBadLength, total-ecmIPv6Len, len(p)-ecmIPv6Len)
		case p[6] != ecmProtoUDP:
			// Extension headers are not expected in an ECM and are refused.
			return fmt.Errorf("%w: ECM inner IPv6 next header %d, want UDP", ErrBadValue, p[6])
		case total < ecmIPv6Len+ecmUDPLen:
			return fmt.Errorf("%w: ECM inner IPv6 payload length %d", ErrBadLength, total-ecmIPv6Len)
		}
		e.TTL = p[7]
		e.Src = netip.AddrFrom16([16]byte(p[8:24]))
		e.Dst = netip.AddrFrom16([16]byte(p[24:40]))
		udp = p[ecmIPv6Len:]
	default:
		return fmt.Errorf("%w: ECM inner IP version %d", ErrBadValue, p[0]>>4)
	}
	ulen := int(binary.BigEndian.Uint16(udp[4:]))
	if ulen != len(udp) {
		return fmt.Errorf("%w: ECM inner UDP length %d, IP payload %d", ErrBadLength, ulen, len(udp))
	}
	if ulen == ecmUDPLen {
		return fmt.Errorf("%w: ECM without an inner message", ErrBadLength)
	}
	e.SrcPort = binary.BigEndian.Uint16(udp)
	e.DstPort = binary.BigEndian.Uint16(udp[2:])
	e.Message = udp[ecmUDPLen:]
	e.Inner = p
	return nil
}

// ChecksumsOK reports whether the inner packet of the last Parse has a valid
// IPv4 header checksum (for IPv4) and a valid UDP checksum. A zero UDP
// checksum passes for IPv4 (RFC 768: none computed) and fails for IPv6
// (RFC 8200 §8.1: mandatory).
func (e *ECM) ChecksumsOK() bool {
	p := e.Inner
	if len(p) == 0 {
		return false
	}
	var sum uint32
	var udp []byte
	switch p[0] >> 4 {
	case 4:
		ihl := int(p[0]&0x0f) * 4
		if ihl < ecmIPv4Len || len(p) < ihl+ecmUDPLen || ecmFold(ecmSum(0, p[:ihl])) != 0xffff {
			return false
		}
		udp = p[ihl:]
		if udp[6] == 0 && udp[7] == 0 {
			return true
		}
		sum = ecmSum(0, p[12:20])
	case 6:
		if len(p) < ecmIPv6Len+ecmUDPLen {
			return false
		}
		udp = p[ecmIPv6Len:]
		if udp[6] == 0 && udp[7] == 0 {
			return false
		}
		sum = ecmSum(0, p[8:40])
	default:
		return false
	}
	sum += ecmProtoUDP + uint32(len(udp))
	return ecmFold(ecmSum(sum, udp)) == 0xffff
}

// ecmSum adds data to the one's-complement running sum s as 16-bit
// big-endian words (RFC 1071), padding an odd last byte with zero.
func ecmSum(s uint32, data []byte) uint32 {
	n := len(data) &^ 1
	for i := 0; i < n; i += 2 {
		s += uint32(data[i])<<8 | uint32(data[i+1])
	}
	if len(data)&1 != 0 {
		s += uint32(data[len(data)-1]) << 8
	}
	return s
}

// ecmFold folds the carries of a running sum into 16 bits (RFC 1071).
func ecmFold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// Package gre is Generic Routing Encapsulation (RFC 2784, with the key
// extension of RFC 2890 §2.1) in user space, for a kernel without the GRE
// module: the outer packets go through a raw IP socket of protocol 47, the
// inner ones through a TUN device (Device). The ALT (RFC 6836) joins
// its routers with these tunnels.
//
// This file is the wire format: Parse decodes a header into a reusable
// Header, Append encodes one. Whether a tunnel negotiated a checksum or a
// key is a property of the tunnel (Tunnel), not of the parser.
package gre

import (
	"encoding/binary"
	"errors"
)

// ProtoIPv4 and ProtoIPv6 are the Protocol Type values (RFC 2784 §2.4, an
// Ethernet type) of the payloads a tunnel carries.
const (
	ProtoIPv4 uint16 = 0x0800
	ProtoIPv6 uint16 = 0x86DD
)

// Flag bits of the first 16 bits of the header (bit 0 is the most
// significant).
const (
	// flagC is the Checksum Present bit (RFC 2784 §2.1).
	flagC = 0x8000
	// flagK is the Key Present bit (RFC 2890 §2.1), bit 2 of Reserved0 in
	// RFC 2784 §2.2.
	flagK = 0x2000
	// flagS is the Sequence Number Present bit (RFC 2890 §2.1), bit 3.
	flagS = 0x1000
	// reserved0Must is the part of Reserved0 that RFC 2784 §2.3 requires
	// a receiver to find zero (bits 1 to 5) once K and S (RFC 2890) are
	// taken out: bits 1 and 4 (routing present, strict source route) and
	// bit 5 (the first bit of RFC 1701's recursion control).
	reserved0Must = 0x4000 | 0x0800 | 0x0400
	// versionMask is the Version Number field, bits 13 to 15; it must be
	// 0 (RFC 2784 §2.3.1).
	versionMask = 0x0007
)

// baseLen is the fixed part: flags and version, then Protocol Type
// (RFC 2784 §2).
const baseLen = 4

// Errors Parse returns; each is the reason a packet is dropped and counted.
var (
	// ErrTruncated: shorter than the header its flags announce.
	ErrTruncated = errors.New("gre: truncated header")
	// ErrVersion: a Version Number other than 0 (RFC 2784 §2.3.1).
	ErrVersion = errors.New("gre: version is not 0")
	// ErrReserved0: a bit of Reserved0 that must be zero is set
	// (RFC 2784 §2.3: routing, strict source route, recursion control).
	ErrReserved0 = errors.New("gre: reserved0 bits 1-5 not zero")
	// ErrSequence: sequence numbers (RFC 2890 §2.2), which this
	// implementation never negotiates.
	ErrSequence = errors.New("gre: sequence numbers not supported")
	// ErrBadChecksum: the Checksum field does not verify (RFC 2784 §2.5).
	ErrBadChecksum = errors.New("gre: checksum does not verify")
)

// Header is a decoded GRE header.
type Header struct {
	// Checksum tells that the Checksum field is present (C bit,
	// RFC 2784 §2.1); Parse has verified it (§2.5).
	Checksum bool
	// HasKey tells that the Key field is present (K bit, RFC 2890 §2.1).
	HasKey bool
	// Key is the Key field (RFC 2890 §2.1), when HasKey.
	Key uint32
	// Protocol is the Protocol Type of the payload (RFC 2784 §2.4).
	Protocol uint16
}

// Len returns the encoded length of h.
func (h *Header) Len() int {
	n := baseLen
	if h.Checksum {
		n += 4 // Checksum and Reserved1 (RFC 2784 §2.5, §2.6)
	}
	if h.HasKey {
		n += 4 // Key (RFC 2890 §2.1)
	}
	return n
}

// Parse decodes the GRE header at the start of b into h and returns the
// payload that follows it. It never allocates; the payload aliases b.
func Parse(b []byte, h *Header) ([]byte, error) {
	if len(b) < baseLen {
		return nil, ErrTruncated
	}
	flags := binary.BigEndian.Uint16(b)
	if flags&versionMask != 0 {
		return nil, ErrVersion
	}
	if flags&reserved0Must != 0 {
		return nil, ErrReserved0
	}
	if flags&flagS != 0 {
		return nil, ErrSequence
	}
	*h = Header{Checksum: flags&flagC != 0, HasKey: flags&flagK != 0,
		Protocol: binary.BigEndian.Uint16(b[2:])}
	n := h.Len()
	if len(b) < n {
		return nil, ErrTruncated
	}
	off := baseLen
	if h.Checksum {
		// The checksum covers the GRE header and the payload
		// (RFC 2784 §2.5): summed with the field in place it folds to 0.
		if checksum(b) != 0 {
			return nil, ErrBadChecksum
		}
		off += 4
	}
	if h.HasKey {
		h.Key = binary.BigEndian.Uint32(b[off:])
	}
	return b[n:], nil
}

// Append appends h followed by payload to b and returns the result,
// computing the checksum when h.Checksum.
func Append(b []byte, h *Header, payload []byte) []byte {
	start := len(b)
	var flags uint16
	if h.Checksum {
		flags |= flagC
	}
	if h.HasKey {
		flags |= flagK
	}
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, h.Protocol)
	ck := len(b)
	if h.Checksum {
		b = append(b, 0, 0, 0, 0) // Checksum, Reserved1 (RFC 2784 §2.5, §2.6)
	}
	if h.HasKey {
		b = binary.BigEndian.AppendUint32(b, h.Key)
	}
	b = append(b, payload...)
	if h.Checksum {
		binary.BigEndian.PutUint16(b[ck:], checksum(b[start:]))
	}
	return b
}

// checksum is the IP checksum (RFC 1071) of b: the one's complement of
// the one's complement sum of its 16-bit words, as RFC 2784 §2.5 asks.
func checksum(b []byte) uint16 {
	var sum uint32
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

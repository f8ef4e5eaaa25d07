package wire

import (
	"encoding/binary"
	"fmt"
)

// The LISP data header (RFC 9300 §5.1 figure, fields defined in §5.3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|N|L|E|V|I|R|K|K|            Nonce/Map-Version                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Instance ID/Locator-Status-Bits               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	hdrFlags = 0 // 8 flag bits
	hdrNonce = 1 // 24-bit nonce, or 12+12-bit map versions
	hdrIID   = 4 // 24-bit instance-ID (I set) or high 24 LSBs
	hdrLSB8  = 7 // low 8 bits of the second word
)

// HeaderLen is the length of the LISP data header (RFC 9300 §5.1).
const HeaderLen = 8

// Flag bits in the first byte of the LISP data header (RFC 9300 §5.3).
const (
	// FlagN is the nonce-present bit: the 24-bit Nonce field is in use
	// (RFC 9300 §5.3, §10.1).
	FlagN uint8 = 0x80
	// FlagL is the Locator-Status-Bits-enabled bit: the LSBs in the second
	// word are in use (RFC 9300 §5.3, §10).
	FlagL uint8 = 0x40
	// FlagE is the echo-nonce-request bit; it has meaning only when N is
	// also set and is ignored on receipt otherwise (RFC 9300 §5.3, §10.1).
	FlagE uint8 = 0x20
	// FlagV is the map-version-present bit: the first word carries source
	// and destination map-versions; N must then be 0 (RFC 9300 §5.3,
	// RFC 9302 §3).
	FlagV uint8 = 0x10
	// FlagI is the instance-ID bit: the high 24 bits of the second word are
	// an instance-ID and only 8 LSBs remain (RFC 9300 §5.3, §8).
	FlagI uint8 = 0x08
	// FlagR is the reserved bit; sent as 0 and ignored on receipt
	// (RFC 9300 §5.3).
	FlagR uint8 = 0x04
	// FlagsKK is the 2-bit key-ID field of LISP data-plane confidentiality;
	// 00 when the payload is not encrypted (RFC 9300 §5.3, RFC 8061 §5).
	FlagsKK uint8 = 0x03
)

// MaxNonce is the largest value the 24-bit nonce field holds (RFC 9300 §5.3).
const MaxNonce = 1<<24 - 1

// MaxInstanceID is the largest instance-ID the data header carries: only 24
// bits fit (RFC 9300 §5.3, §8).
const MaxInstanceID = 1<<24 - 1

// MaxMapVersion is the largest 12-bit map-version (RFC 9302 §3).
const MaxMapVersion = 1<<12 - 1

// Prebuilt errors, so that validation on the fast path allocates nothing.
var (
	errHeaderTruncated = fmt.Errorf("lisp data header: %w", ErrTruncated)
	errHeaderNV        = fmt.Errorf("lisp data header: N and V both set: %w", ErrBadValue)
)

// HeaderFields holds the values of a LISP data header in host form. It is
// what Header.Encode writes and Header.Decode fills.
type HeaderFields struct {
	// Flags is the whole first byte: FlagN|FlagL|FlagE|FlagV|FlagI, the
	// reserved bit and the KK bits (RFC 9300 §5.3).
	Flags uint8
	// Nonce is the 24-bit nonce, used when FlagN is set (RFC 9300 §5.3).
	Nonce uint32
	// SourceMapVersion and DestMapVersion are the 12-bit map-versions, used
	// when FlagV is set (RFC 9300 §5.3, RFC 9302 §3).
	SourceMapVersion, DestMapVersion uint16
	// InstanceID is the 24-bit instance-ID, used when FlagI is set
	// (RFC 9300 §5.3, §8).
	InstanceID uint32
	// LSBs are the locator-status-bits: 32 bits, or the low 8 bits only when
	// FlagI is set (RFC 9300 §5.3, §10).
	LSBs uint32
}

// Header is a view of a LISP data header (RFC 9300 §5.3) at the start of a
// byte slice. Accessors assume len(h) >= HeaderLen: check with IsValid or
// Validate (or ParseHeader) before reading a packet that came off the wire.
type Header []byte

// ParseHeader checks b with Validate and returns the header view over its
// first HeaderLen bytes.
func ParseHeader(b []byte) (Header, error) {
	h := Header(b)
	if err := h.Validate(); err != nil {
		return nil, err
	}
	return h[:HeaderLen], nil
}

// IsValid reports whether h is long enough to hold a data header.
func (h Header) IsValid() bool { return len(h) >= HeaderLen }

// Validate reports whether h holds a data header a receiver may accept:
// ErrTruncated if it is shorter than HeaderLen, ErrBadValue if both N and V
// are set (RFC 9300 §5.3: "When [V] is set to 1, the N-bit MUST be 0").
// Bits that are merely ignored on receipt (E without N, the reserved bit)
// do not make a header invalid.
func (h Header) Validate() error {
	if len(h) < HeaderLen {
		return errHeaderTruncated
	}
	if h[hdrFlags]&(FlagN|FlagV) == FlagN|FlagV {
		return errHeaderNV
	}
	return nil
}

// Flags returns the first byte: the N, L, E, V, I, R and KK bits
// (RFC 9300 §5.3).
func (h Header) Flags() uint8 { return h[hdrFlags] }

// SetFlags sets the first byte (RFC 9300 §5.3).
func (h Header) SetFlags(f uint8) { h[hdrFlags] = f }

// NoncePresent reports the N bit (RFC 9300 §5.3).
func (h Header) NoncePresent() bool { return h[hdrFlags]&FlagN != 0 }

// LSBsEnabled reports the L bit (RFC 9300 §5.3).
func (h Header) LSBsEnabled() bool { return h[hdrFlags]&FlagL != 0 }

// EchoNonceRequest reports whether the E bit asks the receiver to echo the
// nonce. E has no meaning without N, so this is E && N (RFC 9300 §5.3,
// §10.1).
func (h Header) EchoNonceRequest() bool {
	return h[hdrFlags]&(FlagE|FlagN) == FlagE|FlagN
}

// MapVersionPresent reports the V bit (RFC 9300 §5.3).
func (h Header) MapVersionPresent() bool { return h[hdrFlags]&FlagV != 0 }

// InstanceIDPresent reports the I bit (RFC 9300 §5.3).
func (h Header) InstanceIDPresent() bool { return h[hdrFlags]&FlagI != 0 }

// KeyID returns the 2-bit KK field: the key used to encrypt the payload, 0
// when it is not encrypted (RFC 9300 §5.3, RFC 8061 §5).
func (h Header) KeyID() uint8 { return h[hdrFlags] & FlagsKK }

// Nonce returns the 24-bit Nonce/Map-Version field as one number; it is the
// nonce when N is set (RFC 9300 §5.3).
func (h Header) Nonce() uint32 {
	return uint32(h[hdrNonce])<<16 | uint32(h[hdrNonce+1])<<8 | uint32(h[hdrNonce+2])
}

// SetNonce writes the low 24 bits of n into the Nonce/Map-Version field
// (RFC 9300 §5.3).
func (h Header) SetNonce(n uint32) {
	h[hdrNonce] = byte(n >> 16)
	h[hdrNonce+1] = byte(n >> 8)
	h[hdrNonce+2] = byte(n)
}

// SourceMapVersion returns the high 12 bits of the Nonce/Map-Version field,
// the source map-version when V is set (RFC 9300 §5.3, RFC 9302 §3).
func (h Header) SourceMapVersion() uint16 {
	return uint16(h[hdrNonce])<<4 | uint16(h[hdrNonce+1])>>4
}

// DestMapVersion returns the low 12 bits of the Nonce/Map-Version field,
// the destination map-version when V is set (RFC 9300 §5.3, RFC 9302 §3).
func (h Header) DestMapVersion() uint16 {
	return uint16(h[hdrNonce+1]&0x0f)<<8 | uint16(h[hdrNonce+2])
}

// SetMapVersions writes the low 12 bits of src and dst into the
// Nonce/Map-Version field (RFC 9300 §5.3, RFC 9302 §3).
func (h Header) SetMapVersions(src, dst uint16) {
	h.SetNonce(uint32(src&MaxMapVersion)<<12 | uint32(dst&MaxMapVersion))
}

// InstanceID returns the high 24 bits of the second word, the instance-ID
// when I is set (RFC 9300 §5.3, §8).
func (h Header) InstanceID() uint32 {
	return binary.BigEndian.Uint32(h[hdrIID:]) >> 8
}

// SetInstanceID writes the low 24 bits of iid into the high 24 bits of the
// second word, keeping the low 8 LSBs (RFC 9300 §5.3, §8).
func (h Header) SetInstanceID(iid uint32) {
	h[hdrIID] = byte(iid >> 16)
	h[hdrIID+1] = byte(iid >> 8)
	h[hdrIID+2] = byte(iid)
}

// LSBs returns the locator-status-bits: the whole second word, or only its
// low 8 bits when I is set (RFC 9300 §5.3, §10). They are meaningful only
// when L is set.
func (h Header) LSBs() uint32 {
	if h[hdrFlags]&FlagI != 0 {
		return uint32(h[hdrLSB8])
	}
	return binary.BigEndian.Uint32(h[hdrIID:])
}

// SetLSBs writes the locator-status-bits: the whole second word, or only
// the low 8 bits of lsb when I is set (RFC 9300 §5.3, §10). Set I first.
func (h Header) SetLSBs(lsb uint32) {
	if h[hdrFlags]&FlagI != 0 {
		h[hdrLSB8] = byte(lsb)
		return
	}
	binary.BigEndian.PutUint32(h[hdrIID:], lsb)
}

// Encode writes f into h following the transmit rules of RFC 9300 §5.3:
// the Nonce/Map-Version field carries the nonce when N is set, the
// map-versions when V is set and zero otherwise; the second word carries
// the instance-ID when I is set, and the LSBs when L is set (zero
// otherwise). Encode writes the flags as given; use Validate to reject N
// together with V.
func (h Header) Encode(f *HeaderFields) {
	h[hdrFlags] = f.Flags
	switch {
	case f.Flags&FlagN != 0:
		h.SetNonce(f.Nonce)
	case f.Flags&FlagV != 0:
		h.SetMapVersions(f.SourceMapVersion, f.DestMapVersion)
	default:
		h.SetNonce(0)
	}
	var w uint32
	if f.Flags&FlagI != 0 {
		w = (f.InstanceID & MaxInstanceID) << 8
		if f.Flags&FlagL != 0 {
			w |= f.LSBs & 0xff
		}
	} else if f.Flags&FlagL != 0 {
		w = f.LSBs
	}
	binary.BigEndian.PutUint32(h[hdrIID:], w)
}

// Decode reads h into f, setting only the fields the flags say are present
// and zeroing the others (RFC 9300 §5.3).
func (h Header) Decode(f *HeaderFields) {
	*f = HeaderFields{Flags: h[hdrFlags]}
	if f.Flags&FlagN != 0 {
		f.Nonce = h.Nonce()
	}
	if f.Flags&FlagV != 0 {
		f.SourceMapVersion = h.SourceMapVersion()
		f.DestMapVersion = h.DestMapVersion()
	}
	if f.Flags&FlagI != 0 {
		f.InstanceID = h.InstanceID()
	}
	if f.Flags&FlagL != 0 {
		f.LSBs = h.LSBs()
	}
}

// AppendHeader appends the encoding of f (HeaderLen bytes) to b.
func AppendHeader(b []byte, f *HeaderFields) []byte {
	n := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	Header(b[n:]).Encode(f)
	return b
}

package wire

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Bits of the first 32-bit word of a Map-Reply (RFC 9301 §5.4):
//
//	|Type=2 |P|E|S|          Reserved               | Record Count  |
const (
	mrepP = 1 << 27 // RFC 9301 §5.4 P: answers an RLOC-probe
	mrepE = 1 << 26 // RFC 9301 §5.4 E: the sender's ETRs can echo nonces
	mrepS = 1 << 25 // RFC 9301 §5.4 S: security (LISP-SEC) data follows
)

// minRecordLen is the shortest mapping record: the fixed part and an AFI.
const minRecordLen = recordFixedLen + minAddressLen

// MapReply is a Map-Reply (type 2, RFC 9301 §5.4). Parse reuses the slices
// held by the struct.
type MapReply struct {
	// Probe is the P bit: the reply answers an RLOC-probe (RFC 9301 §5.4).
	Probe bool
	// EchoNonce is the E bit: the ETRs at the replying site can echo
	// nonces (RFC 9301 §5.4, RFC 9300 §10).
	EchoNonce bool
	// Security is the S bit: LISP-SEC authentication data (Auth) follows
	// the records (RFC 9301 §5.4, RFC 9303 §6.2).
	Security bool
	// Nonce echoes the nonce of the Map-Request (RFC 9301 §5.4).
	Nonce Nonce
	// Records are the mapping records, 0 to 255 (RFC 9301 §5.4).
	Records []Record
	// Auth is the LISP-SEC Map-Reply Authentication Data, meaningful when
	// Security is set; SignMapReply and VerifyMapReply sign and check it.
	Auth MapReplyAuth
}

// Len returns the encoded length of the message.
func (m *MapReply) Len() int {
	n := ctrlHeaderLen
	for i := range m.Records {
		n += m.Records[i].Len()
	}
	if m.Security {
		n += m.Auth.Len()
	}
	return n
}

// Append appends the encoded message to b. On error it returns b unchanged.
func (m *MapReply) Append(b []byte) ([]byte, error) {
	if len(m.Records) > 255 {
		return b, fmt.Errorf("%w: Map-Reply with %d records", ErrTooLarge, len(m.Records))
	}
	w := uint32(TypeMapReply)<<28 | uint32(len(m.Records)) |
		flag(m.Probe, mrepP) | flag(m.EchoNonce, mrepE) | flag(m.Security, mrepS)
	start := len(b)
	b = slices.Grow(b, m.Len())
	b = binary.BigEndian.AppendUint32(b, w)
	b = append(b, m.Nonce[:]...)
	b, err := appendRecords(b, m.Records)
	if err == nil && m.Security {
		b, err = m.Auth.Append(b)
	}
	if err != nil {
		return b[:start], fmt.Errorf("Map-Reply: %w", err)
	}
	return b, nil
}

// Parse reads a whole Map-Reply from b into m, reusing m's slices. With the
// S bit the LISP-SEC authentication data must follow the records and end
// the message; without it, bytes after the last record are an error.
func (m *MapReply) Parse(b []byte) error {
	if len(b) < ctrlHeaderLen {
		return fmt.Errorf("%w: Map-Reply header", ErrTruncated)
	}
	w := binary.BigEndian.Uint32(b)
	if t := MessageType(w >> 28); t != TypeMapReply {
		return fmt.Errorf("%w: %v, want Map-Reply", ErrBadType, t)
	}
	m.Probe = w&mrepP != 0
	m.EchoNonce = w&mrepE != 0
	m.Security = w&mrepS != 0
	copy(m.Nonce[:], b[4:ctrlHeaderLen])
	off, err := parseRecords(b, ctrlHeaderLen, int(w&0xff), &m.Records)
	if err != nil {
		return fmt.Errorf("Map-Reply: %w", err)
	}
	if m.Security {
		n, err := m.Auth.Parse(b[off:])
		if err != nil {
			return fmt.Errorf("Map-Reply: %w", err)
		}
		off += n
	}
	if off != len(b) {
		return fmt.Errorf("%w: %d bytes after the Map-Reply", ErrBadLength, len(b)-off)
	}
	return nil
}

// parseRecords parses count mapping records from b[off:] into *recs,
// reusing its elements, and returns the offset after the last one.
func parseRecords(b []byte, off, count int, recs *[]Record) (int, error) {
	// Refuse counts the remaining bytes cannot hold before growing the slice.
	if count*minRecordLen > len(b)-off {
		return 0, fmt.Errorf("%w: %d records announced, %d bytes left", ErrTruncated, count, len(b)-off)
	}
	*recs = growTo(*recs, count)
	r := *recs
	for i := range r {
		n, err := r[i].Parse(b[off:])
		if err != nil {
			return 0, fmt.Errorf("record %d: %w", i, err)
		}
		off += n
	}
	return off, nil
}

// appendRecords appends recs to b.
func appendRecords(b []byte, recs []Record) ([]byte, error) {
	var err error
	for i := range recs {
		if b, err = recs[i].Append(b); err != nil {
			return b, fmt.Errorf("record %d: %w", i, err)
		}
	}
	return b, nil
}

package wire

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Bits of the first 32-bit word of a Map-Register (RFC 9301 §5.6):
//
//	|Type=3 |P|S|I|R|        Reserved       |E|T|a|-|M| Record Count  |
//
// P, S, I, E, T, a and M are RFC 9301 §5.6. R (bit 7) is the RTR bit of
// draft-ietf-lisp-nat-traversal, where Wireshark's dissector reads it too.
// Bit 22 is reserved in RFC 9301 (lispers.net uses it for LISP-MN).
//
// The merge bit is RFC 9301's "a" (merge-request) bit, bit 21, value 0x400 in
// the first word: this is where lispers.net's lisp_map_register.encode puts
// its merge_register_requested flag (its header comment reads
// "|e|F|T|a|m|M|"), and RFC 9301 §5.6 cites signal-free multicast (RFC 8378)
// as its use: the Map-Server merges the RLOC-records of every xTR
// registering the same EID-record instead of replacing them.
const (
	mregP     = 1 << 27 // RFC 9301 §5.6 P: proxy Map-Reply wanted
	mregS     = 1 << 26 // RFC 9301 §5.6 S: LISP-SEC capable
	mregI     = 1 << 25 // RFC 9301 §5.6 I: xTR-ID and site-ID present
	mregR     = 1 << 24 // draft-ietf-lisp-nat-traversal R: RTR
	mregE     = 1 << 12 // RFC 9301 §5.6 E: EID-notify
	mregT     = 1 << 11 // RFC 9301 §5.6 T: use the record TTL as registration timeout
	mregMerge = 1 << 10 // RFC 9301 §5.6 a: merge-request
	mregM     = 1 << 8  // RFC 9301 §5.6 M: want Map-Notify
)

// authDataOff is the offset of the authentication data in Map-Register,
// Map-Notify and Map-Notify-Ack: first word, nonce, Key ID, Algorithm ID and
// Authentication Data Length (RFC 9301 §5.6).
const authDataOff = ctrlHeaderLen + authFixedLen

// xtrTrailerLen is the 128-bit xTR-ID plus the 64-bit site-ID (RFC 9301 §5.6).
const xtrTrailerLen = 16 + 8

// XTRID is the 128-bit xTR-ID that identifies the sending xTR (RFC 9301
// §5.6). It is opaque.
type XTRID [16]byte

// String formats the xTR-ID as 32 hex digits.
func (x XTRID) String() string {
	const hex = "0123456789abcdef"
	var b [32]byte
	for i, v := range x {
		b[2*i], b[2*i+1] = hex[v>>4], hex[v&15]
	}
	return string(b[:])
}

// MapRegister is a Map-Register (type 3, RFC 9301 §5.6). Parse reuses the
// slices held by the struct. Append writes the authentication data as zeros;
// AppendSigned fills it in, VerifyMapRegister checks it.
type MapRegister struct {
	// ProxyReply is the P bit: the Map-Server answers Map-Requests for these
	// EIDs itself (RFC 9301 §5.6).
	ProxyReply bool
	// Security is the S bit: the ETR is LISP-SEC capable (RFC 9301 §5.6).
	Security bool
	// XTRIDPresent is the I bit: XTRID and SiteID follow the records
	// (RFC 9301 §5.6).
	XTRIDPresent bool
	// RTR is the R bit of draft-ietf-lisp-nat-traversal: the register is
	// sent by an RTR on behalf of an xTR behind a NAT.
	RTR bool
	// EIDNotify is the E bit: an EID-notify sent by a first-hop router
	// (RFC 9301 §5.6).
	EIDNotify bool
	// UseTTL is the T bit: the Map-Server times the registration out after
	// the record TTL rather than the default (RFC 9301 §5.6).
	UseTTL bool
	// Merge is the a (merge-request) bit: the Map-Server merges the
	// RLOC-records of all xTRs registering the same EID-record (RFC 9301
	// §5.6, RFC 8378). Multicast and replication registrations use it.
	Merge bool
	// WantMapNotify is the M bit: the Map-Server confirms with a Map-Notify
	// (RFC 9301 §5.6). Not the M bit of Map-Request.
	WantMapNotify bool
	// Nonce is echoed by the Map-Notify that answers this register
	// (RFC 9301 §5.6).
	Nonce Nonce
	// Auth is the Key ID, Algorithm ID and authentication data (RFC 9301
	// §5.6). For encoding only len(Auth.Data) matters.
	Auth Auth
	// Records are the registered mappings, 0 to 255 (RFC 9301 §5.6).
	Records []Record
	// XTRID is sent when XTRIDPresent is set (RFC 9301 §5.6).
	XTRID XTRID
	// SiteID is sent when XTRIDPresent is set (RFC 9301 §5.6).
	SiteID uint64
}

// Len returns the encoded length of the message.
func (m *MapRegister) Len() int {
	n := ctrlHeaderLen + m.Auth.Len()
	for i := range m.Records {
		n += m.Records[i].Len()
	}
	if m.XTRIDPresent {
		n += xtrTrailerLen
	}
	return n
}

// Append appends the encoded message to b with zeroed authentication data.
// On error it returns b unchanged.
func (m *MapRegister) Append(b []byte) ([]byte, error) {
	if len(m.Records) > 255 {
		return b, fmt.Errorf("%w: Map-Register with %d records", ErrTooLarge, len(m.Records))
	}
	w := uint32(TypeMapRegister)<<28 | uint32(len(m.Records)) |
		flag(m.ProxyReply, mregP) | flag(m.Security, mregS) | flag(m.XTRIDPresent, mregI) |
		flag(m.RTR, mregR) | flag(m.EIDNotify, mregE) | flag(m.UseTTL, mregT) |
		flag(m.Merge, mregMerge) | flag(m.WantMapNotify, mregM)
	start := len(b)
	b = slices.Grow(b, m.Len())
	b, err := appendRegBody(b, w, &m.Nonce, &m.Auth, m.Records)
	if err != nil {
		return b[:start], fmt.Errorf("Map-Register: %w", err)
	}
	if m.XTRIDPresent {
		b = appendXTRTrailer(b, &m.XTRID, m.SiteID)
	}
	return b, nil
}

// AppendSigned appends the encoded message to b and signs it with key: the
// HMAC of m.Auth.Alg with the authentication data zeroed, truncated to
// len(m.Auth.Data), over the whole message (xTR-ID and site-ID included) or,
// when m.Auth.Records is set, through the last record (RFC 9301 §5.6).
// Algorithm 0 cannot be signed and is an error.
func (m *MapRegister) AppendSigned(b []byte, key []byte) ([]byte, error) {
	start := len(b)
	b, err := m.Append(b)
	if err != nil {
		return b, err
	}
	recEnd := len(b) - start
	if m.XTRIDPresent {
		recEnd -= xtrTrailerLen
	}
	if err := signRegAuth(b[start:], recEnd, &m.Auth, key); err != nil {
		return b[:start], fmt.Errorf("Map-Register: %w", err)
	}
	return b, nil
}

// Parse reads a whole Map-Register from b into m, reusing m's slices. It
// does not check the authentication data; VerifyMapRegister does. Bytes
// after the message are an error.
func (m *MapRegister) Parse(b []byte) error {
	w, off, err := parseRegBody(b, TypeMapRegister, &m.Nonce, &m.Auth, &m.Records)
	if err != nil {
		return fmt.Errorf("Map-Register: %w", err)
	}
	m.ProxyReply = w&mregP != 0
	m.Security = w&mregS != 0
	m.XTRIDPresent = w&mregI != 0
	m.RTR = w&mregR != 0
	m.EIDNotify = w&mregE != 0
	m.UseTTL = w&mregT != 0
	m.Merge = w&mregMerge != 0
	m.WantMapNotify = w&mregM != 0
	if off, err = parseXTRTrailer(b, off, m.XTRIDPresent, &m.XTRID, &m.SiteID); err != nil {
		return fmt.Errorf("Map-Register: %w", err)
	}
	if off != len(b) {
		return fmt.Errorf("%w: %d bytes after the Map-Register", ErrBadLength, len(b)-off)
	}
	return nil
}

// VerifyMapRegister parses msg, the received bytes of a Map-Register, into
// m and checks its authentication data against key, in constant time,
// accepting the truncated (12/16-byte) and full (20/32-byte) HMACs and
// either coverage (VerifyRegAuth). A
// message with Algorithm ID 0 (no authentication) fails with ErrAuth; to
// accept one deliberately, call Parse and inspect m.Auth.Alg. On any error
// the contents of m must not be trusted.
func VerifyMapRegister(msg []byte, key []byte, m *MapRegister) error {
	if err := m.Parse(msg); err != nil {
		return err
	}
	return verifyParsedAuth(msg, &m.Auth, key)
}

// verifyParsedAuth checks the authentication data of a parsed Map-Register,
// Map-Notify or Map-Notify-Ack whose bytes are msg.
func verifyParsedAuth(msg []byte, a *Auth, key []byte) error {
	_, err := VerifyRegAuth(msg, a, key)
	return err
}

// appendRegBody appends the first word w, the nonce, the authentication
// field with zeroed data and the records: the layout Map-Register,
// Map-Notify and Map-Notify-Ack share (RFC 9301 §5.6, §5.7).
func appendRegBody(b []byte, w uint32, nonce *Nonce, a *Auth, recs []Record) ([]byte, error) {
	b = binary.BigEndian.AppendUint32(b, w)
	b = append(b, nonce[:]...)
	b, err := a.append(b)
	if err != nil {
		return b, err
	}
	return appendRecords(b, recs)
}

// parseRegBody reads the part appendRegBody writes, checking the message
// type, and returns the first word and the offset after the last record.
func parseRegBody(b []byte, want MessageType, nonce *Nonce, a *Auth, recs *[]Record) (uint32, int, error) {
	if len(b) < ctrlHeaderLen {
		return 0, 0, fmt.Errorf("%w: header", ErrTruncated)
	}
	w := binary.BigEndian.Uint32(b)
	if t := MessageType(w >> 28); t != want {
		return 0, 0, fmt.Errorf("%w: %v, want %v", ErrBadType, t, want)
	}
	copy(nonce[:], b[4:ctrlHeaderLen])
	n, err := a.parse(b[ctrlHeaderLen:])
	if err != nil {
		return 0, 0, err
	}
	if !validAuthLen(a.Alg, len(a.Data)) {
		return 0, 0, fmt.Errorf("%w: %d bytes of authentication data for %v", ErrBadValue, len(a.Data), a.Alg)
	}
	off, err := parseRecords(b, ctrlHeaderLen+n, int(w&0xff), recs)
	if err != nil {
		return 0, 0, err
	}
	return w, off, nil
}

// appendXTRTrailer appends the xTR-ID and the site-ID (RFC 9301 §5.6).
func appendXTRTrailer(b []byte, id *XTRID, site uint64) []byte {
	b = append(b, id[:]...)
	return binary.BigEndian.AppendUint64(b, site)
}

// parseXTRTrailer reads the xTR-ID and site-ID at b[off:] when present, or
// zeroes them, and returns the offset after them.
func parseXTRTrailer(b []byte, off int, present bool, id *XTRID, site *uint64) (int, error) {
	if !present {
		*id, *site = XTRID{}, 0
		return off, nil
	}
	if len(b)-off < xtrTrailerLen {
		return 0, fmt.Errorf("%w: xTR-ID and site-ID", ErrTruncated)
	}
	copy(id[:], b[off:off+16])
	*site = binary.BigEndian.Uint64(b[off+16:])
	return off + xtrTrailerLen, nil
}

package wire

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Bits of the first 32-bit word of a Map-Notify and Map-Notify-Ack
// (RFC 9301 §5.7; the flags as draft-ietf-lisp-nat-traversal defines them
// and Wireshark's dissector reads them):
//
//	|Type=4 |I|R|            Reserved               | Record Count  |
const (
	mnotI = 1 << 27 // I: xTR-ID and site-ID present
	mnotR = 1 << 26 // R: MS-RTR authentication data follows
)

// MapNotify is a Map-Notify (type 4, RFC 9301 §5.7). It has the layout of a
// Map-Register: nonce, authentication field, records and, when XTRIDPresent
// is set, the xTR-ID and site-ID. A Map-Notify that answers a Map-Register
// echoes that register's nonce unchanged. Parse reuses the slices held by
// the struct; Append writes the authentication data as zeros, AppendSigned
// fills it in and VerifyMapNotify checks it.
type MapNotify struct {
	// XTRIDPresent is the I bit: XTRID and SiteID follow the records
	// (RFC 9301 §5.7, draft-ietf-lisp-nat-traversal).
	XTRIDPresent bool
	// RTR is the R bit of draft-ietf-lisp-nat-traversal: an MS-RTR
	// authentication field (RTRAuth) follows the xTR-ID and site-ID.
	RTR bool
	// Nonce is the nonce of the Map-Register being answered, or a fresh one
	// for an unsolicited Map-Notify (RFC 9301 §5.7).
	Nonce Nonce
	// Auth is the Key ID, Algorithm ID and authentication data (RFC 9301
	// §5.7). For encoding only len(Auth.Data) matters.
	Auth Auth
	// Records are the mappings confirmed or notified, 0 to 255 (RFC 9301 §5.7).
	Records []Record
	// XTRID is sent when XTRIDPresent is set (RFC 9301 §5.7).
	XTRID XTRID
	// SiteID is sent when XTRIDPresent is set (RFC 9301 §5.7).
	SiteID uint64
	// RTRAuth is the MS-RTR authentication field, present when RTR is set
	// (draft-ietf-lisp-nat-traversal). It is carried verbatim, neither
	// computed nor checked here.
	RTRAuth Auth
}

// MapNotifyAck is a Map-Notify-Ack (type 5, RFC 9301 §5.7): the layout of a
// Map-Notify, sent by an xTR to acknowledge an unsolicited Map-Notify.
type MapNotifyAck MapNotify

// Len returns the encoded length of the message.
func (m *MapNotify) Len() int {
	n := ctrlHeaderLen + m.Auth.Len()
	for i := range m.Records {
		n += m.Records[i].Len()
	}
	if m.XTRIDPresent {
		n += xtrTrailerLen
	}
	if m.RTR {
		n += m.RTRAuth.Len()
	}
	return n
}

// Append appends the encoded message to b with zeroed authentication data.
// On error it returns b unchanged.
func (m *MapNotify) Append(b []byte) ([]byte, error) { return m.appendType(b, TypeMapNotify) }

// AppendSigned appends the encoded message to b and signs it with key, as
// (*MapRegister).AppendSigned does (RFC 9301 §5.7).
func (m *MapNotify) AppendSigned(b []byte, key []byte) ([]byte, error) {
	return m.appendSigned(b, key, TypeMapNotify)
}

// Parse reads a whole Map-Notify from b into m, reusing m's slices. It does
// not check the authentication data; VerifyMapNotify does.
func (m *MapNotify) Parse(b []byte) error { return m.parseType(b, TypeMapNotify) }

// VerifyMapNotify parses msg into m and checks its authentication data
// against key, like VerifyMapRegister.
func VerifyMapNotify(msg []byte, key []byte, m *MapNotify) error {
	if err := m.Parse(msg); err != nil {
		return err
	}
	return verifyParsedAuth(msg, &m.Auth, key)
}

// Len returns the encoded length of the message.
func (m *MapNotifyAck) Len() int { return (*MapNotify)(m).Len() }

// Append appends the encoded message to b with zeroed authentication data.
// On error it returns b unchanged.
func (m *MapNotifyAck) Append(b []byte) ([]byte, error) {
	return (*MapNotify)(m).appendType(b, TypeMapNotifyAck)
}

// AppendSigned appends the encoded message to b and signs it with key, as
// (*MapRegister).AppendSigned does (RFC 9301 §5.7).
func (m *MapNotifyAck) AppendSigned(b []byte, key []byte) ([]byte, error) {
	return (*MapNotify)(m).appendSigned(b, key, TypeMapNotifyAck)
}

// Parse reads a whole Map-Notify-Ack from b into m, reusing m's slices. It
// does not check the authentication data; VerifyMapNotifyAck does.
func (m *MapNotifyAck) Parse(b []byte) error {
	return (*MapNotify)(m).parseType(b, TypeMapNotifyAck)
}

// VerifyMapNotifyAck parses msg into m and checks its authentication data
// against key, like VerifyMapRegister.
func VerifyMapNotifyAck(msg []byte, key []byte, m *MapNotifyAck) error {
	if err := m.Parse(msg); err != nil {
		return err
	}
	return verifyParsedAuth(msg, &m.Auth, key)
}

func (m *MapNotify) appendType(b []byte, t MessageType) ([]byte, error) {
	if len(m.Records) > 255 {
		return b, fmt.Errorf("%w: %v with %d records", ErrTooLarge, t, len(m.Records))
	}
	if m.RTR && len(m.RTRAuth.Data) > 0xffff {
		return b, fmt.Errorf("%w: %v MS-RTR authentication data of %d bytes", ErrTooLarge, t, len(m.RTRAuth.Data))
	}
	w := uint32(t)<<28 | uint32(len(m.Records)) | flag(m.XTRIDPresent, mnotI) | flag(m.RTR, mnotR)
	start := len(b)
	b = slices.Grow(b, m.Len())
	b, err := appendRegBody(b, w, &m.Nonce, &m.Auth, m.Records)
	if err != nil {
		return b[:start], fmt.Errorf("%v: %w", t, err)
	}
	if m.XTRIDPresent {
		b = appendXTRTrailer(b, &m.XTRID, m.SiteID)
	}
	if m.RTR {
		// Carried verbatim: not zeroed, as this package does not sign it.
		b = append(b, m.RTRAuth.KeyID, byte(m.RTRAuth.Alg))
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.RTRAuth.Data)))
		b = append(b, m.RTRAuth.Data...)
	}
	return b, nil
}

func (m *MapNotify) appendSigned(b []byte, key []byte, t MessageType) ([]byte, error) {
	start := len(b)
	b, err := m.appendType(b, t)
	if err != nil {
		return b, err
	}
	recEnd := len(b) - start
	if m.XTRIDPresent {
		recEnd -= xtrTrailerLen
	}
	if m.RTR {
		recEnd -= m.RTRAuth.Len()
	}
	if err := signRegAuth(b[start:], recEnd, &m.Auth, key); err != nil {
		return b[:start], fmt.Errorf("%v: %w", t, err)
	}
	return b, nil
}

func (m *MapNotify) parseType(b []byte, t MessageType) error {
	w, off, err := parseRegBody(b, t, &m.Nonce, &m.Auth, &m.Records)
	if err != nil {
		return fmt.Errorf("%v: %w", t, err)
	}
	m.XTRIDPresent = w&mnotI != 0
	m.RTR = w&mnotR != 0
	if off, err = parseXTRTrailer(b, off, m.XTRIDPresent, &m.XTRID, &m.SiteID); err != nil {
		return fmt.Errorf("%v: %w", t, err)
	}
	if m.RTR {
		n, err := m.RTRAuth.parse(b[off:])
		if err != nil {
			return fmt.Errorf("%v MS-RTR authentication: %w", t, err)
		}
		off += n
	} else {
		m.RTRAuth = Auth{Data: m.RTRAuth.Data[:0]}
	}
	if off != len(b) {
		return fmt.Errorf("%w: %d bytes after the %v", ErrBadLength, len(b)-off, t)
	}
	return nil
}

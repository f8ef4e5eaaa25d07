package regstore

import (
	"errors"
	"fmt"

	"github.com/rloc-router/rloc/wire"
)

// Length is the HMAC length a key signs with (RFC 9301 §5.6).
type Length uint8

// HMAC lengths.
const (
	// LengthDefault is the context's default: full when registering with a
	// Map-Server, the answered message's length in a Map-Server's answers.
	LengthDefault Length = iota
	// LengthFull is the whole HMAC, 20 or 32 bytes (OOR, lispers.net).
	LengthFull
	// LengthTruncated is RFC 9301's 12 or 16 bytes.
	LengthTruncated
)

// Coverage is what a key's HMAC covers (RFC 9301 §5.6).
type Coverage uint8

// HMAC coverages.
const (
	// CoverageDefault is the context's default: the whole message when
	// registering, the answered message's coverage in answers.
	CoverageDefault Coverage = iota
	// CoverageMessage is the whole message, xTR-ID/site-ID trailer
	// included (OOR, lispers.net).
	CoverageMessage
	// CoverageRecords is RFC 9301 §5.6's: through the last record.
	CoverageRecords
)

// Layout is the Key ID layout a key is configured for (RFC 9301 §5.6).
type Layout uint8

// Key ID layouts. They read the same on the wire when the Key ID is 0,
// which the old layout requires: the difference is a configuration check.
const (
	// LayoutRFC9301 is the 8-bit Key ID + 8-bit Algorithm ID of RFC 9301.
	LayoutRFC9301 Layout = iota
	// LayoutLegacy is the old 16-bit Key ID field (RFC 6833 §4.3) whose
	// value is the algorithm: the 8-bit Key ID must be 0.
	LayoutLegacy
)

// String names the layout as configured: "rfc9301" or "legacy".
func (l Layout) String() string {
	if l == LayoutLegacy {
		return "legacy"
	}
	return "rfc9301"
}

// Key is a shared key of a site, of a Map-Server peer or of a multicast
// domain (RFC 9301 §5.6), with how messages are signed with it. Receiving
// accepts every length and coverage that verifies (wire.VerifyRegAuth).
type Key struct {
	// KeyID is the 8-bit Key ID that selects the key (RFC 9301 §5.6). A
	// peer using the older layout, whose 16-bit Key ID is the algorithm
	// (RFC 6833 §4.3), reads as Key ID 0: configure its key with ID 0.
	KeyID uint8
	// Alg is the HMAC algorithm (RFC 9301 §5.6): wire.AuthHMACSHA1_96,
	// wire.AuthHMACSHA256128 or wire.AuthHMACSHA256128HKDF.
	Alg wire.AuthAlg
	// Secret is the HMAC key (the pre-shared key of RFC 9301 §5.4).
	Secret []byte
	// Length, Coverage and Layout are how messages are signed with the
	// key; Layout only constrains KeyID.
	Length   Length
	Coverage Coverage
	Layout   Layout
}

// Variant returns how k signs a message: its own settings, each default
// taken from like (the variant of the message being answered) when like is
// not nil, else full length and whole-message coverage, which the deployed
// peers (OOR 1.3, lispers.net) require.
func (k *Key) Variant(like *wire.AuthVariant) wire.AuthVariant {
	v := wire.AuthVariant{Alg: k.Alg, Full: true}
	if like != nil {
		v.Full, v.Records = like.Full, like.Records
	}
	switch k.Length {
	case LengthFull:
		v.Full = true
	case LengthTruncated:
		v.Full = false
	}
	switch k.Coverage {
	case CoverageMessage:
		v.Records = false
	case CoverageRecords:
		v.Records = true
	}
	return v
}

// Auth returns the authentication field k signs with (Variant(like)),
// its data backed by *buf, which is reused.
func (k *Key) Auth(like *wire.AuthVariant, buf *[]byte) wire.Auth {
	v := k.Variant(like)
	*buf = append((*buf)[:0], make([]byte, wire.AuthDataLen(v.Alg, v.Full))...)
	return wire.Auth{KeyID: k.KeyID, Alg: v.Alg, Data: *buf, Records: v.Records}
}

// Authentication errors; Verify wraps them with the detail.
var (
	// ErrNoAuth: the message has Algorithm ID 0 (no authentication), which
	// a Map-Server never accepts (RFC 9301 §5.6).
	ErrNoAuth = errors.New("no authentication (algorithm 0)")
	// ErrUnknownKey: no key has the message's Key ID and algorithm.
	ErrUnknownKey = errors.New("unknown key")
	// ErrAuth: the authentication data is of the wrong length or does not
	// match the key.
	ErrAuth = errors.New("authentication failed")
)

// Verify checks the authentication field a, parsed from msg (the received
// bytes of a Map-Register, Map-Notify or Map-Notify-Ack), against the key
// of keys with a's Key ID and algorithm: the HMAC with the data zeroed,
// truncated (12 or 16 bytes) or full (20 or 32), over the whole message or
// through the last record, compared in constant time over all received
// bytes (RFC 9301 §5.6, wire.VerifyRegAuth). It returns the key and the
// variant that verified.
func Verify(msg []byte, a *wire.Auth, keys []Key) (*Key, wire.AuthVariant, error) {
	if a.Alg == wire.AuthNone {
		return nil, wire.AuthVariant{}, ErrNoAuth
	}
	var k *Key
	for i := range keys {
		if keys[i].KeyID == a.KeyID && keys[i].Alg == a.Alg {
			k = &keys[i]
			break
		}
	}
	if k == nil {
		return nil, wire.AuthVariant{}, fmt.Errorf("%w: key ID %d, %v", ErrUnknownKey, a.KeyID, a.Alg)
	}
	v, err := wire.VerifyRegAuth(msg, a, k.Secret)
	if err != nil {
		return nil, v, fmt.Errorf("%w: key ID %d, %d bytes of %v", ErrAuth, a.KeyID, len(a.Data), a.Alg)
	}
	return k, v, nil
}

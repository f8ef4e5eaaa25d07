package wire

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash"
)

// AuthAlg is the Algorithm ID of the authentication field of Map-Register,
// Map-Notify and Info messages (RFC 9301 §5.6). Older peers send a 16-bit
// Key ID whose value is the algorithm; the two encodings agree when the
// 8-bit Key ID is 0 (shared/REFERENCES.md).
type AuthAlg uint8

// Authentication algorithms (RFC 9301 §5.6, IANA "LISP Algorithm ID Numbers").
const (
	AuthNone          AuthAlg = 0 // RFC 9301 §5.6: no authentication
	AuthHMACSHA1_96   AuthAlg = 1 // RFC 9301 §5.6: HMAC-SHA-1-96
	AuthHMACSHA256128 AuthAlg = 2 // RFC 9301 §5.6: HMAC-SHA-256-128
)

// String names the algorithm.
func (a AuthAlg) String() string {
	switch a {
	case AuthNone:
		return "none"
	case AuthHMACSHA1_96:
		return "hmac-sha1-96"
	case AuthHMACSHA256128:
		return "hmac-sha256-128"
	}
	return "alg-" + itoa(int(a))
}

// AuthDataLen returns the length of the authentication data that alg
// produces: the truncated length (12 or 16 bytes, RFC 9301 §5.6) or, when
// full is set, the whole HMAC (20 or 32 bytes) that many deployed
// implementations send.
func AuthDataLen(alg AuthAlg, full bool) int {
	switch alg {
	case AuthHMACSHA1_96:
		if full {
			return sha1.Size
		}
		return 12
	case AuthHMACSHA256128:
		if full {
			return sha256.Size
		}
		return 16
	}
	return 0
}

func (a AuthAlg) hash() func() hash.Hash {
	switch a {
	case AuthHMACSHA1_96:
		return sha1.New
	case AuthHMACSHA256128:
		return sha256.New
	}
	return nil
}

// validAuthLen reports whether n bytes of authentication data are a length
// that alg may be sent with (truncated or full).
func validAuthLen(alg AuthAlg, n int) bool {
	if alg == AuthNone {
		return n == 0
	}
	return n == AuthDataLen(alg, false) || n == AuthDataLen(alg, true)
}

// Auth is the authentication field of Map-Register, Map-Notify and Info
// messages (RFC 9301 §5.6): Key ID, Algorithm ID, Authentication Data Length
// and the data itself.
type Auth struct {
	// KeyID selects the shared key (RFC 9301 §5.6).
	KeyID uint8
	// Alg is the Algorithm ID (RFC 9301 §5.6).
	Alg AuthAlg
	// Data is the authentication data. When encoding, only its length matters
	// (it is written as zeros and filled by Sign); parsing copies it here.
	Data []byte
}

// NewAuth returns an authentication field for alg whose data is sized for
// the truncated HMAC, or for the full HMAC when full is set (RFC 9301 §5.6).
func NewAuth(keyID uint8, alg AuthAlg, full bool) Auth {
	return Auth{KeyID: keyID, Alg: alg, Data: make([]byte, AuthDataLen(alg, full))}
}

// authFixedLen is Key ID, Algorithm ID and the data length field.
const authFixedLen = 4

// Len returns the encoded length of the field.
func (a *Auth) Len() int { return authFixedLen + len(a.Data) }

// append writes the field with zeroed data.
func (a *Auth) append(b []byte) ([]byte, error) {
	if !validAuthLen(a.Alg, len(a.Data)) {
		return b, fmt.Errorf("%w: %d bytes of authentication data for %v", ErrBadValue, len(a.Data), a.Alg)
	}
	b = append(b, a.KeyID, byte(a.Alg))
	b = binary.BigEndian.AppendUint16(b, uint16(len(a.Data)))
	return append(b, make([]byte, len(a.Data))...), nil
}

// parse reads the field from the start of b and returns the bytes used.
func (a *Auth) parse(b []byte) (int, error) {
	if len(b) < authFixedLen {
		return 0, fmt.Errorf("%w: authentication field", ErrTruncated)
	}
	a.KeyID, a.Alg = b[0], AuthAlg(b[1])
	n := int(binary.BigEndian.Uint16(b[2:]))
	if len(b) < authFixedLen+n {
		return 0, fmt.Errorf("%w: %d bytes of authentication data", ErrTruncated, n)
	}
	a.Data = append(a.Data[:0], b[authFixedLen:authFixedLen+n]...)
	return authFixedLen + n, nil
}

// SignAuth computes the HMAC of msg, whose authentication data occupies
// msg[off:off+n], over the whole message with that data zeroed (RFC 9301
// §5.6: the trailing xTR-ID and site-ID are covered too), and writes it
// (truncated to n bytes) in place.
func SignAuth(msg []byte, off, n int, alg AuthAlg, key []byte) error {
	h := alg.hash()
	if h == nil || !validAuthLen(alg, n) {
		return fmt.Errorf("%w: cannot sign with %v and %d bytes", ErrBadValue, alg, n)
	}
	if off < 0 || off+n > len(msg) {
		return fmt.Errorf("%w: authentication data outside the message", ErrBadLength)
	}
	clear(msg[off : off+n])
	m := hmac.New(h, key)
	m.Write(msg)
	var sum [sha256.Size]byte
	copy(msg[off:off+n], m.Sum(sum[:0]))
	return nil
}

// VerifyAuth checks the authentication data at msg[off:off+n] against key,
// in constant time over all n received bytes, accepting the truncated and
// the full HMAC lengths. msg is not modified.
func VerifyAuth(msg []byte, off, n int, alg AuthAlg, key []byte) error {
	h := alg.hash()
	if h == nil {
		return fmt.Errorf("%w: algorithm %v", ErrAuth, alg)
	}
	if !validAuthLen(alg, n) {
		return fmt.Errorf("%w: %d bytes of data for %v", ErrAuth, n, alg)
	}
	if off < 0 || off+n > len(msg) {
		return fmt.Errorf("%w: authentication data outside the message", ErrBadLength)
	}
	var got [sha256.Size]byte
	copy(got[:], msg[off:off+n])
	m := hmac.New(h, key)
	m.Write(msg[:off])
	var zero [sha256.Size]byte
	m.Write(zero[:n])
	m.Write(msg[off+n:])
	var sum [sha256.Size]byte
	want := m.Sum(sum[:0])
	if subtle.ConstantTimeCompare(got[:n], want[:n]) != 1 {
		return ErrAuth
	}
	return nil
}

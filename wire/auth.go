package wire

import (
	"crypto/hkdf"
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

// Authentication algorithms (RFC 9301 §14.5, IANA "LISP Algorithm ID
// Numbers"): the MAC and, for algorithm 3, the key derivation function.
const (
	AuthNone          AuthAlg = 0 // RFC 9301 §14.5: no authentication
	AuthHMACSHA1_96   AuthAlg = 1 // RFC 9301 §14.5: HMAC-SHA-1-96, no KDF
	AuthHMACSHA256128 AuthAlg = 2 // RFC 9301 §14.5: HMAC-SHA-256-128, no KDF
	// AuthHMACSHA256128HKDF is HMAC-SHA256-128 keyed with a per-message key
	// derived by HKDF-SHA256 (RFC 9301 §5.4, §14.5); see perMessageKey.
	AuthHMACSHA256128HKDF AuthAlg = 3
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
	case AuthHMACSHA256128HKDF:
		return "hmac-sha256-128-hkdf"
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
	case AuthHMACSHA256128, AuthHMACSHA256128HKDF:
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
	case AuthHMACSHA256128, AuthHMACSHA256128HKDF:
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

// AuthVariant is one way of computing the authentication data: what a
// sender chose and what a received message verified with.
type AuthVariant struct {
	// Alg is the Algorithm ID (RFC 9301 §5.6).
	Alg AuthAlg
	// Full is the whole HMAC (20 bytes SHA-1, 32 bytes SHA-256) as OOR and
	// lispers.net send and require; false is RFC 9301's truncated HMAC
	// (12 or 16 bytes).
	Full bool
	// Records is RFC 9301 §5.6's coverage: from the type field through the
	// end of the last record, leaving the xTR-ID/site-ID trailer out.
	// False covers the whole message, trailer included, as OOR, lispers.net
	// and earlier rloc releases do. The two agree without a trailer.
	Records bool
	// KeyIDSet is a received non-zero 8-bit Key ID: only RFC 9301's 8+8-bit
	// layout carries one. With Key ID 0 the message reads the same in the
	// old 16-bit Key ID layout, so the layout is not known.
	KeyIDSet bool
}

// Length names the HMAC length: "full" or "truncated".
func (v AuthVariant) Length() string {
	if v.Full {
		return "full"
	}
	return "truncated"
}

// Coverage names what the HMAC covers: "records" or "message".
func (v AuthVariant) Coverage() string {
	if v.Records {
		return "records"
	}
	return "message"
}

// Layout names the Key ID layout a received message shows: "rfc9301" when
// its Key ID is not 0, "either" when it is (the old 16-bit field reads the
// same).
func (v AuthVariant) Layout() string {
	if v.KeyIDSet {
		return "rfc9301"
	}
	return "either"
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
	// Records makes AppendSigned of a Map-Register, Map-Notify or
	// Map-Notify-Ack cover the message only through its last record
	// (RFC 9301 §5.6); false covers the whole message. Not on the wire.
	Records bool
}

// NewAuth returns an authentication field for alg whose data is sized for
// the truncated HMAC, or for the full HMAC when full is set (RFC 9301 §5.6),
// covering the whole message.
func NewAuth(keyID uint8, alg AuthAlg, full bool) Auth {
	return Auth{KeyID: keyID, Alg: alg, Data: make([]byte, AuthDataLen(alg, full))}
}

// NewAuthVariant returns an authentication field that signs as v.
func NewAuthVariant(keyID uint8, v AuthVariant) Auth {
	a := NewAuth(keyID, v.Alg, v.Full)
	a.Records = v.Records
	return a
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
	a.Records = false
	n := int(binary.BigEndian.Uint16(b[2:]))
	if len(b) < authFixedLen+n {
		return 0, fmt.Errorf("%w: %d bytes of authentication data", ErrTruncated, n)
	}
	a.Data = append(a.Data[:0], b[authFixedLen:authFixedLen+n]...)
	return authFixedLen + n, nil
}

// kdfSalt is the string s of RFC 9301 §5.4 for the message type of msg,
// or "" for messages it defines none for.
func kdfSalt(msg []byte) string {
	if len(msg) < ctrlHeaderLen {
		return ""
	}
	switch MessageType(msg[0] >> 4) {
	case TypeMapRegister:
		return "Map-Register Authentication"
	case TypeMapNotify:
		return "Map-Notify Authentication"
	case TypeMapNotifyAck:
		return "Map-Notify-Ack Authentication"
	}
	return ""
}

// perMessageKey returns the key the MAC of msg is computed with.
//
// Algorithms 1 and 2 have no KDF: the key is the pre-shared key itself
// (RFC 9301 §5.4 step 4, "per-msg-key = PSK[Key ID]").
//
// Algorithm 3 (IANA "LISP Algorithm ID Numbers": HMAC-SHA256-128+HKDF-SHA256)
// derives a key per message. RFC 9301 §5.4 step 4 writes it as
//
//	per-msg-key = KDF(nonce + s + PSK[Key ID], s)
//
// where "+" is concatenation, nonce is the message's 8-byte Nonce field as
// sent, and s, "the salt", names the message type: "Map-Register
// Authentication", "Map-Notify Authentication" or "Map-Notify-Ack
// Authentication" (ASCII, no terminator). With KDF = HKDF-SHA256 (RFC 5869)
// rloc reads KDF(x, s) as HKDF with input keying material x, salt s, empty
// info and an output of 32 bytes (the SHA-256 length, the HMAC-SHA-256 key
// size); that reading is ours, as the RFC names neither info nor length.
// (The formula and the strings are those of RFC 9301 §5.4 as published and
// of the IETF 105 slides on draft-ietf-lisp-rfc6833bis that introduced them;
// the Algorithm ID is the IANA registry's 3.)
// Other message types (Info, Map-Subscribe) define no salt, so algorithm 3
// is refused for them.
func perMessageKey(msg []byte, alg AuthAlg, key []byte) ([]byte, error) {
	if alg != AuthHMACSHA256128HKDF {
		return key, nil
	}
	s := kdfSalt(msg)
	if s == "" {
		return nil, fmt.Errorf("%w: %v is not defined for this message type", ErrBadValue, alg)
	}
	ikm := make([]byte, 0, 8+len(s)+len(key))
	ikm = append(ikm, msg[4:ctrlHeaderLen]...)
	ikm = append(ikm, s...)
	ikm = append(ikm, key...)
	return hkdf.Key(sha256.New, ikm, []byte(s), "", sha256.Size)
}

// authSum returns the HMAC of msg[:end] with the n bytes of authentication
// data at off read as zeros, keyed as alg requires (perMessageKey).
func authSum(sum *[sha256.Size]byte, msg []byte, off, n, end int, alg AuthAlg, key []byte) ([]byte, error) {
	k, err := perMessageKey(msg, alg, key)
	if err != nil {
		return nil, err
	}
	m := hmac.New(alg.hash(), k)
	m.Write(msg[:off])
	var zero [sha256.Size]byte
	m.Write(zero[:n])
	m.Write(msg[off+n : end])
	return m.Sum(sum[:0]), nil
}

// checkAuthArgs checks the algorithm, the length and the placement of n
// bytes of authentication data at off, covered through end; a wrong
// algorithm or length is the error kind.
func checkAuthArgs(msg []byte, off, n, end int, alg AuthAlg, kind error) error {
	if alg.hash() == nil || !validAuthLen(alg, n) {
		return fmt.Errorf("%w: %v with %d bytes", kind, alg, n)
	}
	if off < 0 || off+n > end || end > len(msg) {
		return fmt.Errorf("%w: authentication data outside the message", ErrBadLength)
	}
	return nil
}

// signAuth writes into msg[off:off+n] the HMAC of msg[:end] (the data
// zeroed), truncated to n bytes.
func signAuth(msg []byte, off, n, end int, alg AuthAlg, key []byte) error {
	if err := checkAuthArgs(msg, off, n, end, alg, ErrBadValue); err != nil {
		return fmt.Errorf("cannot sign: %w", err)
	}
	var sum [sha256.Size]byte
	mac, err := authSum(&sum, msg, off, n, end, alg, key)
	if err != nil {
		return err
	}
	copy(msg[off:off+n], mac)
	return nil
}

// verifyAuth checks msg[off:off+n] against the HMAC of msg[:end], in
// constant time over all n bytes.
func verifyAuth(msg []byte, off, n, end int, alg AuthAlg, key []byte) error {
	if err := checkAuthArgs(msg, off, n, end, alg, ErrAuth); err != nil {
		return err
	}
	var sum [sha256.Size]byte
	want, err := authSum(&sum, msg, off, n, end, alg, key)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAuth, err)
	}
	if subtle.ConstantTimeCompare(msg[off:off+n], want[:n]) != 1 {
		return ErrAuth
	}
	return nil
}

// SignAuth computes the HMAC of msg, whose authentication data occupies
// msg[off:off+n], over the whole message with that data zeroed, and writes
// it (truncated to n bytes) in place. Map-Register, Map-Notify and
// Map-Notify-Ack are signed by their AppendSigned, which also knows where
// their records end.
func SignAuth(msg []byte, off, n int, alg AuthAlg, key []byte) error {
	return signAuth(msg, off, n, len(msg), alg, key)
}

// VerifyAuth checks the authentication data at msg[off:off+n] against key,
// in constant time over all n received bytes, accepting the truncated and
// the full HMAC lengths, the HMAC covering the whole message. msg is not
// modified.
func VerifyAuth(msg []byte, off, n int, alg AuthAlg, key []byte) error {
	return verifyAuth(msg, off, n, len(msg), alg, key)
}

// signRegAuth signs a Map-Register, Map-Notify or Map-Notify-Ack whose
// records end at recEnd, with the coverage a asks for.
func signRegAuth(msg []byte, recEnd int, a *Auth, key []byte) error {
	end := len(msg)
	if a.Records {
		end = recEnd
	}
	return signAuth(msg, authDataOff, len(a.Data), end, a.Alg, key)
}

// VerifyRegAuth checks the authentication field a, parsed from msg (a
// Map-Register, Map-Notify or Map-Notify-Ack), against key and reports the
// variant that verified: the length is the received Authentication Data
// Length (truncated or full); when the message carries anything after its
// last record (an xTR-ID/site-ID trailer) both coverages are tried, the
// whole message first (what deployed peers send), each compared in
// constant time over all received bytes. Algorithm 0 fails with ErrAuth.
func VerifyRegAuth(msg []byte, a *Auth, key []byte) (AuthVariant, error) {
	v := AuthVariant{Alg: a.Alg, Full: len(a.Data) > 0 && len(a.Data) == AuthDataLen(a.Alg, true), KeyIDSet: a.KeyID != 0}
	if a.Alg == AuthNone {
		return v, fmt.Errorf("%w: message carries no authentication (algorithm 0)", ErrAuth)
	}
	errMsg := verifyAuth(msg, authDataOff, len(a.Data), len(msg), a.Alg, key)
	if errMsg == nil {
		return v, nil
	}
	recEnd := regRecordsEnd(msg, len(a.Data))
	if recEnd <= authDataOff || recEnd >= len(msg) {
		return v, errMsg
	}
	if verifyAuth(msg, authDataOff, len(a.Data), recEnd, a.Alg, key) != nil {
		return v, errMsg
	}
	v.Records = true
	return v, nil
}

// regRecordsEnd returns where the records of msg, a Map-Register,
// Map-Notify or Map-Notify-Ack with n bytes of authentication data, end:
// before the xTR-ID/site-ID trailer (I bit) and, in a Map-Notify with the R
// bit, the MS-RTR authentication field, whose length is only known by
// walking the records. 0 when msg is not one of those or does not parse.
func regRecordsEnd(msg []byte, n int) int {
	if len(msg) < ctrlHeaderLen {
		return 0
	}
	w := binary.BigEndian.Uint32(msg)
	switch MessageType(w >> 28) {
	case TypeMapRegister:
		if w&mregI != 0 {
			return len(msg) - xtrTrailerLen
		}
		return len(msg)
	case TypeMapNotify, TypeMapNotifyAck:
		if w&mnotR == 0 {
			if w&mnotI != 0 {
				return len(msg) - xtrTrailerLen
			}
			return len(msg)
		}
		var recs []Record
		off, err := parseRecords(msg, authDataOff+n, int(w&0xff), &recs)
		if err != nil {
			return 0
		}
		return off
	}
	return 0
}

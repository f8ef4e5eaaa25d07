package wire

import (
	"crypto/aes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash"
)

// LISP-SEC (RFC 9303) authentication data: the ECM Authentication Data an
// ITR, Map-Resolver and Map-Server put between the ECM header and the inner
// IP header (S bit set, RFC 9303 §6.1), and the Map-Reply Authentication
// Data an ETR (or a Map-Server answering for it) appends after the records
// (S bit set, RFC 9303 §6.2).
//
// Keys: the ITR draws a fresh 128-bit ITR-OTK for each Map-Request. The
// Map-Server derives MS-OTK = KDF(ITR-OTK) (DeriveMSOTK), signs the EID-AD
// (the EID prefixes the ETR is authorised for) with the ITR-OTK, and gives
// the MS-OTK to the ETR, which signs the whole Map-Reply with it (PKT-AD).
// The ITR, holding the ITR-OTK, checks both: the ETR cannot forge an EID-AD
// (it never sees the ITR-OTK) and nobody but the ETR and the Map-Server can
// forge the PKT-AD. The OTKs travel wrapped with the pre-shared key of each
// hop (WrapOTK).

// SecHMAC is a LISP-SEC HMAC ID (IANA "LISP-SEC Preferred Authentication
// Data HMAC IDs", RFC 9303 §11): the Requested HMAC ID of an ECM, the EID
// HMAC ID of an EID-AD and the PKT HMAC ID of a PKT-AD.
type SecHMAC uint16

// LISP-SEC HMAC IDs. RFC 9303 requires HMAC-SHA-256-128.
const (
	SecHMACNone      SecHMAC = 0 // no HMAC (no preference in a request)
	SecHMACSHA1_96   SecHMAC = 1 // AUTH-HMAC-SHA-1-96 (RFC 2104, truncated to 12 bytes)
	SecHMACSHA256128 SecHMAC = 2 // AUTH-HMAC-SHA-256-128 (RFC 4868, truncated to 16 bytes)
)

// String names the HMAC ID.
func (h SecHMAC) String() string {
	switch h {
	case SecHMACNone:
		return "none"
	case SecHMACSHA1_96:
		return "hmac-sha1-96"
	case SecHMACSHA256128:
		return "hmac-sha256-128"
	}
	return "hmac-" + itoa(int(h))
}

// Size is the length of the (truncated) HMAC the ID produces, 0 for an
// unknown ID or none.
func (h SecHMAC) Size() int {
	if h.hash() == nil {
		return 0
	}
	return AuthDataLen(AuthAlg(h), false)
}

// hash returns the hash of the HMAC. IDs 1 and 2 are the same algorithms,
// truncated alike, as the LISP Algorithm IDs 1 and 2 (RFC 9301 §14.5).
func (h SecHMAC) hash() func() hash.Hash {
	if h != SecHMACSHA1_96 && h != SecHMACSHA256128 {
		return nil
	}
	return AuthAlg(h).hash()
}

// SecKDF is a LISP-SEC Key Derivation Function ID (IANA "LISP-SEC
// Authentication Data Key Derivation Function IDs", RFC 9303 §11): how the
// Map-Server derives the MS-OTK from the ITR-OTK.
type SecKDF uint16

// LISP-SEC KDF IDs. RFC 9303 requires HKDF-SHA256.
const (
	SecKDFNone   SecKDF = 0 // no preference (in an ITR's request)
	SecKDFSHA1   SecKDF = 1 // HKDF-SHA1-128 (RFC 5869)
	SecKDFSHA256 SecKDF = 2 // HKDF-SHA256-128 (RFC 5869)
)

// String names the KDF ID.
func (k SecKDF) String() string {
	switch k {
	case SecKDFNone:
		return "none"
	case SecKDFSHA1:
		return "hkdf-sha1-128"
	case SecKDFSHA256:
		return "hkdf-sha256-128"
	}
	return "kdf-" + itoa(int(k))
}

// SecKeyWrap is a LISP-SEC OTK Wrapping ID (IANA "LISP-SEC Authentication
// Data Key Wrap IDs", RFC 9303 §11): how an OTK is protected on one hop.
type SecKeyWrap uint16

// LISP-SEC Key Wrap IDs. RFC 9303 requires AES-KEY-WRAP-128+HKDF-SHA256.
const (
	// SecWrapNullKey128 sends the OTK in clear (for hops protected
	// otherwise, e.g. by DTLS): the preamble is zero.
	SecWrapNullKey128 SecKeyWrap = 1
	// SecWrapAES128HKDF wraps the OTK with AES Key Wrap (RFC 3394) under a
	// 128-bit key derived by HKDF-SHA256 from the hop's pre-shared key
	// (wrapKey).
	SecWrapAES128HKDF SecKeyWrap = 2
)

// String names the Key Wrap ID.
func (w SecKeyWrap) String() string {
	switch w {
	case SecWrapNullKey128:
		return "null-key-wrap-128"
	case SecWrapAES128HKDF:
		return "aes-key-wrap-128+hkdf-sha256"
	}
	return "wrap-" + itoa(int(w))
}

// AD types (IANA "LISP ECM Authentication Data Types" and "LISP Map-Reply
// Authentication Data Types", RFC 9303 §11).
const (
	ECMADLispSec      = 1 // LISP-SEC ECM Authentication Data
	MapReplyADLispSec = 1 // LISP-SEC Map-Reply Authentication Data
)

// OTKLen is the length of an OTK (128 bits); otkADLen is that of the
// One-Time-Key Preamble (64 bits, the AES Key Wrap integrity block) and the
// OTK together, the only OTK Length RFC 9303 defines.
const (
	OTKLen   = 16
	otkADLen = 8 + OTKLen
)

// EIDAuth is the EID Authentication Data (EID-AD, RFC 9303 §6.1, §6.2): the
// EID prefixes the Map-Server authorises the replying ETR for, signed by
// the Map-Server with the ITR-OTK. An ITR's request carries only the KDF
// ID it prefers (EID-AD Length 4, Short set).
//
//	|        EID-AD Length          |            KDF ID             |
//	| Record Count  |   Reserved    |         EID HMAC ID           |
//	|   Reserved    | EID mask-len  |           EID-AFI             |  } Record
//	~                          EID-Prefix ...                       ~  } Count times
//	~                            EID HMAC                           ~
//
// rloc reads EID-AD Length as the length of everything above, the length
// field included (the RFC's "4 bytes" for an ITR's request, which holds the
// length and the KDF ID only, reads so).
type EIDAuth struct {
	// Short is set for an EID-AD of the length and KDF ID only (an ITR's
	// request); the fields below it are then absent.
	Short bool
	// KDF is the KDF ID: the ITR's preference in a request, the KDF the
	// Map-Server derived the MS-OTK with in its EID-AD.
	KDF SecKDF
	// HMAC is the EID HMAC ID.
	HMAC SecHMAC
	// Records are the authorised EID prefixes (the reserved byte is sent as
	// zero; Notify is ignored).
	Records []EIDRecord
	// MAC is the EID HMAC. Parse sets it to a sub-slice of its input.
	MAC []byte
	// Raw is set by Parse to the whole encoded EID-AD (a sub-slice of its
	// input), which VerifyEIDAuth checks. When set, Len and Append use it
	// verbatim instead of the fields above: an ETR forwards the Map-Server's
	// EID-AD byte for byte, as its HMAC covers those bytes. Clear it
	// after changing the fields.
	Raw []byte
}

const (
	eidADShortLen = 4 // EID-AD Length + KDF ID
	eidADFixedLen = 8 // + Record Count, Reserved, EID HMAC ID
)

// Len returns the encoded length of the EID-AD.
func (a *EIDAuth) Len() int {
	if len(a.Raw) > 0 {
		return len(a.Raw)
	}
	if a.Short {
		return eidADShortLen
	}
	n := eidADFixedLen + len(a.MAC)
	for i := range a.Records {
		n += a.Records[i].Len()
	}
	return n
}

// Append appends the EID-AD to b.
func (a *EIDAuth) Append(b []byte) ([]byte, error) {
	if len(a.Raw) > 0 {
		return append(b, a.Raw...), nil
	}
	n := a.Len()
	if n > 0xffff {
		return b, fmt.Errorf("%w: EID-AD of %d bytes", ErrTooLarge, n)
	}
	if !a.Short && len(a.Records) > 255 {
		return b, fmt.Errorf("%w: EID-AD with %d records", ErrTooLarge, len(a.Records))
	}
	start := len(b)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = binary.BigEndian.AppendUint16(b, uint16(a.KDF))
	if a.Short {
		return b, nil
	}
	b = append(b, byte(len(a.Records)), 0)
	b = binary.BigEndian.AppendUint16(b, uint16(a.HMAC))
	for i := range a.Records {
		r := a.Records[i]
		r.Notify = false
		var err error
		if b, err = r.Append(b); err != nil {
			return b[:start], fmt.Errorf("EID-AD record %d: %w", i, err)
		}
	}
	return append(b, a.MAC...), nil
}

// Parse reads an EID-AD from the start of b and returns its length.
func (a *EIDAuth) Parse(b []byte) (int, error) {
	if len(b) < eidADShortLen {
		return 0, fmt.Errorf("%w: EID-AD", ErrTruncated)
	}
	n := int(binary.BigEndian.Uint16(b))
	switch {
	case n > len(b):
		return 0, fmt.Errorf("%w: EID-AD length %d, %d bytes left", ErrTruncated, n, len(b))
	case n != eidADShortLen && n < eidADFixedLen:
		return 0, fmt.Errorf("%w: EID-AD length %d", ErrBadLength, n)
	}
	a.KDF = SecKDF(binary.BigEndian.Uint16(b[2:]))
	a.Raw = b[:n]
	a.Short = n == eidADShortLen
	if a.Short {
		a.HMAC, a.Records, a.MAC = 0, a.Records[:0], nil
		return n, nil
	}
	a.HMAC = SecHMAC(binary.BigEndian.Uint16(b[6:]))
	off, err := parseEIDRecords(b[:n], eidADFixedLen, int(b[4]), &a.Records)
	if err != nil {
		return 0, fmt.Errorf("EID-AD: %w", err)
	}
	a.MAC = b[off:n]
	return n, nil
}

// parseEIDRecords parses count EID records from b[off:] into *recs.
func parseEIDRecords(b []byte, off, count int, recs *[]EIDRecord) (int, error) {
	if count*(2+minAddressLen) > len(b)-off {
		return 0, fmt.Errorf("%w: %d EID records announced, %d bytes left", ErrTruncated, count, len(b)-off)
	}
	*recs = growTo(*recs, count)
	r := *recs
	for i := range r {
		n, err := r[i].Parse(b[off:])
		if err != nil {
			return 0, fmt.Errorf("record %d: %w", i, err)
		}
		r[i].Notify = false
		off += n
	}
	return off, nil
}

// ECMAuth is the LISP-SEC ECM Authentication Data (RFC 9303 §6.1), between
// the ECM header and the inner IP header when the ECM's S bit is set:
//
//	|  ECM AD Type  |V|  Reserved   |       Requested HMAC ID       |
//	|          OTK Length           |        OTK Wrapping ID        |
//	|                 One-Time-Key Preamble (64 bits)               |
//	~                    One-Time Key (128 bits)                    ~
//	~                            EID-AD                             ~
//
// OTK Length is the length of the preamble and the OTK (24).
type ECMAuth struct {
	// Type is the ECM AD Type (ECMADLispSec).
	Type uint8
	// Verified is the V bit (RFC 9303 §6.1), carried as received.
	Verified bool
	// HMAC is the Requested HMAC ID: the HMAC the ITR wants for the PKT-AD.
	HMAC SecHMAC
	// Wrap is the OTK Wrapping ID.
	Wrap SecKeyWrap
	// Preamble and OTK are the One-Time-Key Preamble and the (wrapped) OTK:
	// the ITR-OTK on the ITR–Map-Resolver–Map-Server hops, the MS-OTK on the
	// Map-Server–ETR hop. UnwrapOTK recovers the key.
	Preamble [8]byte
	OTK      [OTKLen]byte
	// EID is the EID-AD: the ITR's KDF preference (Short) towards the
	// Map-Server, the signed EID-AD from the Map-Server to the ETR.
	EID EIDAuth
}

const ecmADFixedLen = 8 // type, V, reserved, Requested HMAC ID, OTK Length, Wrapping ID

// Len returns the encoded length.
func (a *ECMAuth) Len() int { return ecmADFixedLen + otkADLen + a.EID.Len() }

// Append appends the ECM Authentication Data to b.
func (a *ECMAuth) Append(b []byte) ([]byte, error) {
	if a.Type != ECMADLispSec {
		return b, fmt.Errorf("%w: ECM AD Type %d", ErrBadValue, a.Type)
	}
	var v byte
	if a.Verified {
		v = 0x80
	}
	b = append(b, a.Type, v)
	b = binary.BigEndian.AppendUint16(b, uint16(a.HMAC))
	b = binary.BigEndian.AppendUint16(b, otkADLen)
	b = binary.BigEndian.AppendUint16(b, uint16(a.Wrap))
	b = append(b, a.Preamble[:]...)
	b = append(b, a.OTK[:]...)
	return a.EID.Append(b)
}

// Parse reads the ECM Authentication Data from the start of b and returns
// its length.
func (a *ECMAuth) Parse(b []byte) (int, error) {
	if len(b) < ecmADFixedLen {
		return 0, fmt.Errorf("%w: ECM authentication data", ErrTruncated)
	}
	a.Type = b[0]
	if a.Type != ECMADLispSec {
		return 0, fmt.Errorf("%w: ECM AD Type %d", ErrBadValue, a.Type)
	}
	a.Verified = b[1]&0x80 != 0
	a.HMAC = SecHMAC(binary.BigEndian.Uint16(b[2:]))
	if l := binary.BigEndian.Uint16(b[4:]); l != otkADLen {
		return 0, fmt.Errorf("%w: OTK Length %d, want %d", ErrBadLength, l, otkADLen)
	}
	a.Wrap = SecKeyWrap(binary.BigEndian.Uint16(b[6:]))
	if len(b) < ecmADFixedLen+otkADLen {
		return 0, fmt.Errorf("%w: ECM OTK", ErrTruncated)
	}
	copy(a.Preamble[:], b[8:16])
	copy(a.OTK[:], b[16:32])
	n, err := a.EID.Parse(b[ecmADFixedLen+otkADLen:])
	if err != nil {
		return 0, fmt.Errorf("ECM authentication data: %w", err)
	}
	return ecmADFixedLen + otkADLen + n, nil
}

// MapReplyAuth is the LISP-SEC Map-Reply Authentication Data (RFC 9303
// §6.2), after the records of a Map-Reply whose S bit is set:
//
//	|  MR AD Type   |                   Reserved                    |
//	~                            EID-AD                             ~
//	|         PKT-AD Length         |          PKT HMAC ID          |
//	~                            PKT HMAC                           ~
//
// rloc reads PKT-AD Length, like EID-AD Length, as the length of the PKT-AD
// with its length and ID fields. The PKT HMAC covers the whole Map-Reply
// with the PKT HMAC field zeroed (SignMapReply).
type MapReplyAuth struct {
	// Type is the MR AD Type (MapReplyADLispSec).
	Type uint8
	// EID is the EID-AD the Map-Server signed.
	EID EIDAuth
	// PKTHMAC is the PKT HMAC ID.
	PKTHMAC SecHMAC
	// PKTMAC is the PKT HMAC. Parse sets it to a sub-slice of its input.
	PKTMAC []byte
}

const (
	mrADFixedLen  = 4 // type, reserved
	pktADFixedLen = 4 // PKT-AD Length, PKT HMAC ID
)

// Len returns the encoded length.
func (a *MapReplyAuth) Len() int {
	return mrADFixedLen + a.EID.Len() + pktADFixedLen + len(a.PKTMAC)
}

// Append appends the Map-Reply Authentication Data to b.
func (a *MapReplyAuth) Append(b []byte) ([]byte, error) {
	if a.Type != MapReplyADLispSec {
		return b, fmt.Errorf("%w: Map-Reply AD Type %d", ErrBadValue, a.Type)
	}
	if pktADFixedLen+len(a.PKTMAC) > 0xffff {
		return b, fmt.Errorf("%w: PKT-AD of %d bytes", ErrTooLarge, pktADFixedLen+len(a.PKTMAC))
	}
	start := len(b)
	b = append(b, a.Type, 0, 0, 0)
	b, err := a.EID.Append(b)
	if err != nil {
		return b[:start], err
	}
	b = binary.BigEndian.AppendUint16(b, uint16(pktADFixedLen+len(a.PKTMAC)))
	b = binary.BigEndian.AppendUint16(b, uint16(a.PKTHMAC))
	return append(b, a.PKTMAC...), nil
}

// Parse reads the Map-Reply Authentication Data from the start of b and
// returns its length (which must be all of b).
func (a *MapReplyAuth) Parse(b []byte) (int, error) {
	if len(b) < mrADFixedLen {
		return 0, fmt.Errorf("%w: Map-Reply authentication data", ErrTruncated)
	}
	a.Type = b[0]
	if a.Type != MapReplyADLispSec {
		return 0, fmt.Errorf("%w: Map-Reply AD Type %d", ErrBadValue, a.Type)
	}
	n, err := a.EID.Parse(b[mrADFixedLen:])
	if err != nil {
		return 0, fmt.Errorf("Map-Reply authentication data: %w", err)
	}
	off := mrADFixedLen + n
	if len(b)-off < pktADFixedLen {
		return 0, fmt.Errorf("%w: PKT-AD", ErrTruncated)
	}
	l := int(binary.BigEndian.Uint16(b[off:]))
	switch {
	case l < pktADFixedLen:
		return 0, fmt.Errorf("%w: PKT-AD length %d", ErrBadLength, l)
	case l > len(b)-off:
		return 0, fmt.Errorf("%w: PKT-AD length %d, %d bytes left", ErrTruncated, l, len(b)-off)
	}
	a.PKTHMAC = SecHMAC(binary.BigEndian.Uint16(b[off+2:]))
	a.PKTMAC = b[off+pktADFixedLen : off+l]
	return off + l, nil
}

// secMAC returns the HMAC (truncated to h.Size()) of data with the n bytes
// at macOff read as zeros.
func secMAC(h SecHMAC, key, data []byte, macOff, n int) []byte {
	m := hmac.New(h.hash(), key)
	m.Write(data[:macOff])
	var zero [sha256.Size]byte
	m.Write(zero[:n])
	m.Write(data[macOff+n:])
	return m.Sum(nil)[:h.Size()]
}

// SignEIDAuth sets a.MAC to the EID HMAC of the EID-AD, keyed with the
// ITR-OTK, computed over the encoded EID-AD with the HMAC field zeroed
// (RFC 9303 §6.2, §6.7.1). a.HMAC names the algorithm.
func SignEIDAuth(a *EIDAuth, itrOTK []byte) error {
	if a.Short || a.HMAC.hash() == nil {
		return fmt.Errorf("%w: cannot sign an EID-AD with %v", ErrBadValue, a.HMAC)
	}
	a.MAC, a.Raw = make([]byte, a.HMAC.Size()), nil
	enc, err := a.Append(nil)
	if err != nil {
		return err
	}
	copy(a.MAC, secMAC(a.HMAC, itrOTK, enc, len(enc)-len(a.MAC), len(a.MAC)))
	return nil
}

// VerifyEIDAuth checks the EID HMAC of a parsed EID-AD (over a.Raw) against
// the ITR-OTK, in constant time. An unknown HMAC ID or a MAC of the wrong
// length fails (ErrAuth).
func VerifyEIDAuth(a *EIDAuth, itrOTK []byte) error {
	if a.Short || a.HMAC.hash() == nil || len(a.MAC) != a.HMAC.Size() || len(a.Raw) < len(a.MAC) {
		return fmt.Errorf("%w: EID-AD with %v and %d bytes of HMAC", ErrAuth, a.HMAC, len(a.MAC))
	}
	off := len(a.Raw) - len(a.MAC)
	if subtle.ConstantTimeCompare(a.MAC, secMAC(a.HMAC, itrOTK, a.Raw, off, len(a.MAC))) != 1 {
		return fmt.Errorf("%w: EID-AD HMAC", ErrAuth)
	}
	return nil
}

// SignMapReply signs the encoded Map-Reply msg, which carries LISP-SEC
// authentication data whose PKT HMAC (of the size of its PKT HMAC ID) ends
// the message: the HMAC, keyed with the MS-OTK, covers the whole message
// with the PKT HMAC zeroed (RFC 9303 §6.2, §6.8) and is written in place.
func SignMapReply(msg []byte, h SecHMAC, msOTK []byte) error {
	n := h.Size()
	if h.hash() == nil || len(msg) < ctrlHeaderLen+n {
		return fmt.Errorf("%w: cannot sign a Map-Reply with %v", ErrBadValue, h)
	}
	copy(msg[len(msg)-n:], secMAC(h, msOTK, msg, len(msg)-n, n))
	return nil
}

// VerifyMapReply checks the PKT HMAC of msg, a Map-Reply that m was parsed
// from (m.Auth.PKTMAC ending msg), against the MS-OTK, in constant time.
func VerifyMapReply(msg []byte, m *MapReply, msOTK []byte) error {
	h, mac := m.Auth.PKTHMAC, m.Auth.PKTMAC
	if !m.Security || h.hash() == nil || len(mac) != h.Size() || len(msg) < len(mac) {
		return fmt.Errorf("%w: PKT-AD with %v and %d bytes of HMAC", ErrAuth, h, len(mac))
	}
	off := len(msg) - len(mac)
	if subtle.ConstantTimeCompare(msg[off:], secMAC(h, msOTK, msg, off, len(mac))) != 1 {
		return fmt.Errorf("%w: PKT-AD HMAC", ErrAuth)
	}
	return nil
}

// DeriveMSOTK derives the MS-OTK from the ITR-OTK with the KDF kdf:
// HKDF (RFC 5869) with the hash the KDF ID names, the ITR-OTK as input
// keying material, the Map-Request's nonce as salt, empty info and 16
// bytes of output (RFC 9303 §6.7.1 writes MS-OTK = KDF(ITR-OTK); the salt
// and info are rloc's reading).
func DeriveMSOTK(kdf SecKDF, itrOTK [OTKLen]byte, nonce Nonce) ([OTKLen]byte, error) {
	var out [OTKLen]byte
	var h func() hash.Hash
	switch kdf {
	case SecKDFSHA1:
		h = sha1.New
	case SecKDFSHA256:
		h = sha256.New
	default:
		return out, fmt.Errorf("%w: KDF %v", ErrBadValue, kdf)
	}
	k, err := hkdf.Key(h, itrOTK[:], nonce[:], "", OTKLen)
	if err != nil {
		return out, err
	}
	copy(out[:], k)
	return out, nil
}

// otkWrapSalt is the string s of the key-wrapping key derivation (wrapKey).
const otkWrapSalt = "OTK-Key-Wrap"

// wrapKey derives the AES-128 key-encryption key of SecWrapAES128HKDF from
// the hop's pre-shared key psk, in the form RFC 9301 §5.4 gives per-message
// keys: HKDF-SHA256 over nonce + s + PSK with salt s, empty info, here 16
// bytes (AES-128). The string s is rloc's choice, documented in
// docs/lisp-sec.md.
func wrapKey(psk []byte, nonce Nonce) ([]byte, error) {
	ikm := make([]byte, 0, len(nonce)+len(otkWrapSalt)+len(psk))
	ikm = append(ikm, nonce[:]...)
	ikm = append(ikm, otkWrapSalt...)
	ikm = append(ikm, psk...)
	return hkdf.Key(sha256.New, ikm, []byte(otkWrapSalt), "", 16)
}

// aesKWIV is the default initial value of AES Key Wrap (RFC 3394 §2.2.3.1).
var aesKWIV = [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}

// WrapOTK protects otk for one hop with the Key Wrap ID w and the hop's
// pre-shared key psk, for the Map-Request whose nonce is nonce, and stores
// the result in a.Wrap, a.Preamble and a.OTK.
func WrapOTK(a *ECMAuth, w SecKeyWrap, otk [OTKLen]byte, psk []byte, nonce Nonce) error {
	switch w {
	case SecWrapNullKey128:
		a.Wrap, a.Preamble, a.OTK = w, [8]byte{}, otk
		return nil
	case SecWrapAES128HKDF:
		kek, err := wrapKey(psk, nonce)
		if err != nil {
			return err
		}
		out, err := aesKeyWrap(kek, otk)
		if err != nil {
			return err
		}
		a.Wrap = w
		copy(a.Preamble[:], out[:8])
		copy(a.OTK[:], out[8:])
		return nil
	}
	return fmt.Errorf("%w: OTK Wrapping ID %v", ErrBadValue, w)
}

// UnwrapOTK recovers the OTK from a (WrapOTK's inverse). A wrapped OTK
// whose integrity check fails (wrong key, tampered) is ErrAuth.
func UnwrapOTK(a *ECMAuth, psk []byte, nonce Nonce) ([OTKLen]byte, error) {
	var out [OTKLen]byte
	switch a.Wrap {
	case SecWrapNullKey128:
		return a.OTK, nil
	case SecWrapAES128HKDF:
		kek, err := wrapKey(psk, nonce)
		if err != nil {
			return out, err
		}
		var in [otkADLen]byte
		copy(in[:8], a.Preamble[:])
		copy(in[8:], a.OTK[:])
		return aesKeyUnwrap(kek, in)
	}
	return out, fmt.Errorf("%w: OTK Wrapping ID %v", ErrBadValue, a.Wrap)
}

// aesKeyWrap wraps a 128-bit key with AES Key Wrap (RFC 3394 §2.2.1, n = 2
// semiblocks) under kek; the first 8 bytes of the result are the integrity
// block (the OTK preamble).
func aesKeyWrap(kek []byte, key [OTKLen]byte) ([otkADLen]byte, error) {
	var out [otkADLen]byte
	c, err := aes.NewCipher(kek)
	if err != nil {
		return out, err
	}
	A := aesKWIV
	R := [2][8]byte{[8]byte(key[:8]), [8]byte(key[8:])}
	var blk [16]byte
	for j := range 6 {
		for i := range 2 {
			copy(blk[:8], A[:])
			copy(blk[8:], R[i][:])
			c.Encrypt(blk[:], blk[:])
			binary.BigEndian.PutUint64(A[:], binary.BigEndian.Uint64(blk[:8])^uint64(2*j+i+1))
			copy(R[i][:], blk[8:])
		}
	}
	copy(out[:8], A[:])
	copy(out[8:16], R[0][:])
	copy(out[16:], R[1][:])
	return out, nil
}

// aesKeyUnwrap is aesKeyWrap's inverse (RFC 3394 §2.2.2); a failed
// integrity check is ErrAuth.
func aesKeyUnwrap(kek []byte, in [otkADLen]byte) ([OTKLen]byte, error) {
	var out [OTKLen]byte
	c, err := aes.NewCipher(kek)
	if err != nil {
		return out, err
	}
	A := [8]byte(in[:8])
	R := [2][8]byte{[8]byte(in[8:16]), [8]byte(in[16:])}
	var blk [16]byte
	for j := 5; j >= 0; j-- {
		for i := 1; i >= 0; i-- {
			binary.BigEndian.PutUint64(blk[:8], binary.BigEndian.Uint64(A[:])^uint64(2*j+i+1))
			copy(blk[8:], R[i][:])
			c.Decrypt(blk[:], blk[:])
			copy(A[:], blk[:8])
			copy(R[i][:], blk[8:])
		}
	}
	if subtle.ConstantTimeCompare(A[:], aesKWIV[:]) != 1 {
		return out, fmt.Errorf("%w: OTK key wrap integrity check", ErrAuth)
	}
	copy(out[:8], R[0][:])
	copy(out[8:], R[1][:])
	return out, nil
}

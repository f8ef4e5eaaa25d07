package slowpath

import (
	"errors"
	"net/netip"

	"github.com/rloc-router/rloc/wire"
)

// SecAnswer is the mapping system's side of LISP-SEC (RFC 9303 §6.7) for one
// Map-Request: the MS-OTK derived from the ITR's OTK and the EID-AD, signed
// with the ITR-OTK, that names the EID prefix an answer may claim. The
// Map-Server uses it for forwarded requests and proxy replies, the
// Map-Resolver for negative replies (in both it does the ETR's part too).
type SecAnswer struct {
	itrOTK, msOTK [wire.OTKLen]byte
	nonce         wire.Nonce
	// HMAC is the PKT and EID HMAC: the ITR's request when supported.
	HMAC wire.SecHMAC
	// EID is the EID-AD, set by Authorise.
	EID wire.EIDAuth
}

// ErrSecNoKey: a wrapped OTK arrived and no key is configured to unwrap it.
var ErrSecNoKey = errors.New("LISP-SEC: no key to unwrap the OTK")

// Unwrap prepares s for answering the LISP-SEC request ecm (S bit set)
// whose Map-Request has nonce: it unwraps the ITR-OTK with key (empty: only
// NULL-KEY-WRAP-128) and derives the MS-OTK with the ITR's preferred KDF
// when supported, else HKDF-SHA256.
func (s *SecAnswer) Unwrap(ecm *wire.ECM, key string, nonce wire.Nonce) error {
	a := &ecm.Auth
	if a.Wrap != wire.SecWrapNullKey128 && key == "" {
		return ErrSecNoKey
	}
	var err error
	if s.itrOTK, err = wire.UnwrapOTK(a, []byte(key), nonce); err != nil {
		return err
	}
	kdf := a.EID.KDF
	if kdf != wire.SecKDFSHA1 && kdf != wire.SecKDFSHA256 {
		kdf = wire.SecKDFSHA256
	}
	s.HMAC = a.HMAC
	if s.HMAC.Size() == 0 {
		s.HMAC = wire.SecHMACSHA256128
	}
	s.nonce = nonce
	if s.msOTK, err = wire.DeriveMSOTK(kdf, s.itrOTK, nonce); err != nil {
		return err
	}
	s.EID = wire.EIDAuth{KDF: kdf, HMAC: s.HMAC, Records: s.EID.Records[:0]}
	return nil
}

// Authorise sets the EID-AD to the prefix p in iid, signed with the ITR-OTK.
func (s *SecAnswer) Authorise(iid uint32, p netip.Prefix) error {
	s.EID.Raw, s.EID.MAC = nil, nil
	s.EID.Records = append(s.EID.Records[:0], wire.EIDRecord{MaskLen: uint8(p.Bits()), EID: EIDAddress(iid, p.Addr())})
	return wire.SignEIDAuth(&s.EID, s.itrOTK[:])
}

// ForwardAuth returns the ECM authentication data for the ETR: the EID-AD
// and the MS-OTK wrapped with the site's key siteKey.
func (s *SecAnswer) ForwardAuth(siteKey []byte) (*wire.ECMAuth, error) {
	a := &wire.ECMAuth{Type: wire.ECMADLispSec, HMAC: s.HMAC, EID: s.EID}
	if err := wire.WrapOTK(a, wire.SecWrapAES128HKDF, s.msOTK, siteKey, s.nonce); err != nil {
		return nil, err
	}
	return a, nil
}

// SignReply turns b, an encoded Map-Reply (header and records), into a
// LISP-SEC one: the S bit, the EID-AD and a PKT-AD signed with the MS-OTK.
func (s *SecAnswer) SignReply(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return b, wire.ErrTruncated
	}
	b[0] |= 0x02 // the S bit (RFC 9301 §5.4: bit 6 of the first word)
	var zero [32]byte
	auth := wire.MapReplyAuth{Type: wire.MapReplyADLispSec, EID: s.EID, PKTHMAC: s.HMAC, PKTMAC: zero[:s.HMAC.Size()]}
	b, err := auth.Append(b)
	if err != nil {
		return b, err
	}
	return b, wire.SignMapReply(b, s.HMAC, s.msOTK[:])
}

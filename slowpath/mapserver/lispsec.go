package mapserver

import (
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// LISP-SEC (RFC 9303), the Map-Server's part: for a Map-Request whose ECM
// carries LISP-SEC data it unwraps the ITR-OTK with the lisp_sec key,
// derives the MS-OTK, and signs with the ITR-OTK an EID-AD naming the
// registered prefix the answer may claim. Forwarding to an ETR, it gives
// the ETR the EID-AD and the MS-OTK wrapped with the site's key; answering
// itself (proxy reply), it also signs the whole reply with the MS-OTK, as
// the ETR would (RFC 9303 §6.7).

// msSec is the LISP-SEC state of the request being answered.
type msSec struct {
	msOTK [wire.OTKLen]byte
	hmac  wire.SecHMAC
	eid   wire.EIDAuth
}

// secFor returns the LISP-SEC state for answering m's request with ent,
// nil when the request asked for none or when its ITR-OTK cannot be
// unwrapped (counted; the answer then carries no LISP-SEC data and an ITR
// that requires it refuses the answer).
func (ms *MapServer) secFor(m *slowpath.Msg, ent *regEntry) *msSec {
	if m.ECM == nil || !m.ECM.Security {
		return nil
	}
	a := &m.ECM.Auth
	nonce := m.Request.Nonce
	itrOTK, err := wire.UnwrapOTK(a, []byte(ms.secKey), nonce)
	if err == nil && a.Wrap == wire.SecWrapAES128HKDF && ms.secKey == "" {
		err = wire.ErrAuth // no key configured: nothing to unwrap with
	}
	if err != nil {
		ms.stats.LispSecUnwrapFailed++
		ms.log.Debug("LISP-SEC Map-Request answered without LISP-SEC: ITR-OTK not unwrapped",
			"src", m.Src, "wrap", a.Wrap.String(), "err", err)
		return nil
	}
	s := &ms.sec
	// The ITR's preferences when supported, else what RFC 9303 requires.
	kdf := a.EID.KDF
	if kdf != wire.SecKDFSHA1 && kdf != wire.SecKDFSHA256 {
		kdf = wire.SecKDFSHA256
	}
	s.hmac = a.HMAC
	if s.hmac.Size() == 0 {
		s.hmac = wire.SecHMACSHA256128
	}
	if s.msOTK, err = wire.DeriveMSOTK(kdf, itrOTK, nonce); err != nil {
		return nil
	}
	s.eid = wire.EIDAuth{KDF: kdf, HMAC: s.hmac, Records: append(s.eid.Records[:0],
		wire.EIDRecord{MaskLen: uint8(ent.key.Prefix.Bits()), EID: slowpath.EIDAddress(ent.key.IID, ent.key.Prefix.Addr())})}
	if err := wire.SignEIDAuth(&s.eid, itrOTK[:]); err != nil {
		return nil
	}
	return s
}

// secForward returns the ECM authentication data for the ETR registered as
// er of ent: the EID-AD and the MS-OTK wrapped with the site's (first)
// key; nil when the site has no key.
func (ms *MapServer) secForward(s *msSec, ent *regEntry, nonce wire.Nonce) *wire.ECMAuth {
	keys := ent.e.Site.Keys
	if len(keys) == 0 {
		return nil
	}
	a := &wire.ECMAuth{Type: wire.ECMADLispSec, HMAC: s.hmac, EID: s.eid}
	if err := wire.WrapOTK(a, wire.SecWrapAES128HKDF, s.msOTK, keys[0].Secret, nonce); err != nil {
		return nil
	}
	ms.stats.LispSecSigned++
	return a
}

// secProxyReply appends to b, a proxy Map-Reply (header and records), the
// LISP-SEC data of s and signs the whole with the MS-OTK.
func (ms *MapServer) secProxyReply(b []byte, s *msSec) ([]byte, error) {
	b[0] |= 0x02 // the S bit (RFC 9301 §5.4: bit 6 of the first word)
	auth := wire.MapReplyAuth{Type: wire.MapReplyADLispSec, EID: s.eid, PKTHMAC: s.hmac, PKTMAC: make([]byte, s.hmac.Size())}
	b, err := auth.Append(b)
	if err != nil {
		return b, err
	}
	if err := wire.SignMapReply(b, s.hmac, s.msOTK[:]); err != nil {
		return b, err
	}
	ms.stats.LispSecSigned++
	return b, nil
}

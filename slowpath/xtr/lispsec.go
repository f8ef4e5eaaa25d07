package xtr

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// LISP-SEC (RFC 9303), the ITR's and the ETR's ends; the Map-Server's is in
// slowpath/mapserver/lispsec.go. docs/lisp-sec.md describes the exchange.

// itrSec is the LISP-SEC state of one Map-Request in flight, kept with it
// in the request tracker (resolution.sec): the ITR-OTK it was sent with.
type itrSec struct {
	otk      [wire.OTKLen]byte
	hmac     wire.SecHMAC
	required bool
	auth     wire.ECMAuth
}

// ITR's LISP-SEC preferences: the algorithms RFC 9303 requires.
const (
	secHMAC = wire.SecHMACSHA256128
	secKDF  = wire.SecKDFSHA256
)

// secApplies reports whether lookups of key use LISP-SEC.
func (t *ITR) secApplies(key slowpath.EIDPrefix) bool {
	l := t.cfg.LispSec
	return l != nil && l.Mode != slowpath.LispSecOff && (len(l.IIDs) == 0 || slices.Contains(l.IIDs, key.IID))
}

// secRequest draws the ITR-OTK of a new Map-Request with nonce n and
// returns its state, the ECM authentication data included: the OTK wrapped
// with the lisp_sec key, the requested PKT HMAC and the preferred KDF.
func (t *ITR) secRequest(n wire.Nonce) (*itrSec, error) {
	l := t.cfg.LispSec
	s := &itrSec{hmac: secHMAC, required: l.Mode == slowpath.LispSecRequired}
	if _, err := rand.Read(s.otk[:]); err != nil {
		return nil, err
	}
	s.auth = wire.ECMAuth{Type: wire.ECMADLispSec, HMAC: secHMAC, EID: wire.EIDAuth{Short: true, KDF: secKDF}}
	wrap := wire.SecWrapAES128HKDF
	if l.Key == "" {
		wrap = wire.SecWrapNullKey128
	}
	if err := wire.WrapOTK(&s.auth, wrap, s.otk, []byte(l.Key), n); err != nil {
		return nil, err
	}
	return s, nil
}

// secTargets returns the Map-Resolvers a LISP-SEC lookup goes to.
func (t *ITR) secTargets() []netip.AddrPort {
	if l := t.cfg.LispSec; l != nil && len(l.MapResolvers) > 0 {
		return l.MapResolvers
	}
	return t.cfg.MapResolvers
}

// Why a Map-Reply's LISP-SEC data was refused.
var (
	errSecUnsigned  = errors.New("no LISP-SEC data")
	errSecDowngrade = errors.New("PKT HMAC other than requested")
	errSecOverclaim = errors.New("a record outside the EID-AD")
)

// secCheck verifies the LISP-SEC data of rep (raw is its encoding), the
// reply to a request sent with s (nil: sent without LISP-SEC): the PKT-AD
// with the MS-OTK derived from the ITR-OTK, the EID-AD with the ITR-OTK,
// the PKT HMAC the one requested, and every record an EID-AD prefix or
// more specific (RFC 9303 §6.6). A reply without LISP-SEC data is
// errSecUnsigned, refused when LISP-SEC is required and accepted (nil)
// otherwise. Counted either way.
func (t *ITR) secCheck(s *itrSec, raw []byte, rep *wire.MapReply) error {
	if s == nil {
		return nil
	}
	if !rep.Security {
		t.stats.LispSecUnsigned++
		if s.required {
			return errSecUnsigned
		}
		return nil
	}
	err := secVerify(s, raw, rep)
	if err != nil {
		t.stats.LispSecRefused++
		return err
	}
	t.stats.LispSecVerified++
	return nil
}

func secVerify(s *itrSec, raw []byte, rep *wire.MapReply) error {
	a := &rep.Auth
	if a.PKTHMAC != s.hmac {
		return fmt.Errorf("%w: %v", errSecDowngrade, a.PKTHMAC)
	}
	msOTK, err := wire.DeriveMSOTK(a.EID.KDF, s.otk, rep.Nonce)
	if err != nil {
		return err
	}
	if err := wire.VerifyMapReply(raw, rep, msOTK[:]); err != nil {
		return err
	}
	if err := wire.VerifyEIDAuth(&a.EID, s.otk[:]); err != nil {
		return err
	}
	for i := range rep.Records {
		iid, p, ok := rep.Records[i].Prefix()
		if !ok || !slices.ContainsFunc(a.EID.Records, func(e wire.EIDRecord) bool {
			eiid, ep, eok := e.Prefix()
			return eok && eiid == iid && ep.Bits() <= p.Bits() && ep.Contains(p.Addr())
		}) {
			return fmt.Errorf("%w: %v", errSecOverclaim, &rep.Records[i].EID)
		}
	}
	return nil
}

// etrSec is what the ETR signs a LISP-SEC reply with: the MS-OTK and the
// Map-Server's EID-AD, copied byte for byte.
type etrSec struct {
	msOTK [wire.OTKLen]byte
	hmac  wire.SecHMAC
	eid   wire.EIDAuth
}

// secFromECM returns the LISP-SEC state of a Map-Request the Map-Server
// forwarded (ecm, from src): the MS-OTK unwrapped with the key shared with
// that Map-Server. ok is false when the request has no LISP-SEC data (nil
// state) or when its OTK cannot be unwrapped (counted; the ETR then does
// not answer, as its answer could not be verified).
func (t *ETR) secFromECM(ecm *wire.ECM, src netip.AddrPort, nonce wire.Nonce) (*etrSec, bool) {
	if ecm == nil || !ecm.Security {
		return nil, true
	}
	a := &ecm.Auth
	s := &t.sec
	var err error
	ok := false
	for _, p := range t.peers {
		if len(t.peers) > 1 && p.cfg.Addr.Addr().Unmap() != src.Addr().Unmap() {
			continue
		}
		var k [wire.OTKLen]byte
		if k, err = wire.UnwrapOTK(a, []byte(p.cfg.Key.Secret), nonce); err == nil {
			s.msOTK, ok = k, true
			break
		}
	}
	if !ok || a.EID.Short {
		t.stats.LispSecUnwrapFailed++
		t.c.Log().Debug("LISP-SEC Map-Request refused: MS-OTK not unwrapped", "src", src, "wrap", a.Wrap.String(), "err", err)
		return nil, false
	}
	s.hmac = a.HMAC
	if s.hmac.Size() == 0 {
		s.hmac = secHMAC
	}
	s.eid = a.EID
	return s, true
}

// secSign adds the LISP-SEC data of s to rep (S bit, the EID-AD, a PKT-AD
// of the requested HMAC) and returns its encoding after b, signed with the
// MS-OTK (RFC 9303 §6.8).
func (t *ETR) secSign(b []byte, rep *wire.MapReply, s *etrSec) ([]byte, error) {
	rep.Security = true
	rep.Auth = wire.MapReplyAuth{Type: wire.MapReplyADLispSec, EID: s.eid, PKTHMAC: s.hmac, PKTMAC: t.secMAC[:s.hmac.Size()]}
	clear(rep.Auth.PKTMAC)
	start := len(b)
	b, err := rep.Append(b)
	if err != nil {
		return b, err
	}
	if err := wire.SignMapReply(b[start:], s.hmac, s.msOTK[:]); err != nil {
		return b[:start], err
	}
	t.stats.LispSecSigned++
	return b, nil
}

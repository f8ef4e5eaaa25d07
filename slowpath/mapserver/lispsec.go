package mapserver

import (
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// LISP-SEC (RFC 9303), the Map-Server's part: for a Map-Request whose ECM
// carries LISP-SEC data it unwraps the ITR-OTK with the lisp_sec key,
// derives the MS-OTK, and signs with the ITR-OTK an EID-AD naming the
// registered prefix the answer may claim (slowpath.SecAnswer). Forwarding
// to an ETR, it gives the ETR the EID-AD and the MS-OTK wrapped with the
// site's key; answering itself (proxy reply), it also signs the whole
// reply with the MS-OTK, as the ETR would (RFC 9303 §6.7).

// secFor returns the LISP-SEC state for answering m's request with ent,
// nil when the request asked for none or when its ITR-OTK cannot be
// unwrapped (counted; the answer then carries no LISP-SEC data and an ITR
// that requires it refuses the answer).
func (ms *MapServer) secFor(m *slowpath.Msg, ent *regEntry) *slowpath.SecAnswer {
	if m.ECM == nil || !m.ECM.Security {
		return nil
	}
	s := &ms.sec
	err := s.Unwrap(m.ECM, ms.secKey, m.Request.Nonce)
	if err == nil {
		err = s.Authorise(ent.key.IID, ent.key.Prefix)
	}
	if err != nil {
		ms.stats.LispSecUnwrapFailed++
		ms.log.Debug("LISP-SEC Map-Request answered without LISP-SEC: ITR-OTK not unwrapped",
			"src", m.Src, "wrap", m.ECM.Auth.Wrap.String(), "err", err)
		return nil
	}
	return s
}

// secForward returns the ECM authentication data for the ETRs of ent: the
// EID-AD and the MS-OTK wrapped with the site's (first) key; nil when the
// site has no key.
func (ms *MapServer) secForward(s *slowpath.SecAnswer, ent *regEntry) *wire.ECMAuth {
	keys := ent.e.Site.Keys
	if len(keys) == 0 {
		return nil
	}
	a, err := s.ForwardAuth(keys[0].Secret)
	if err != nil {
		return nil
	}
	ms.stats.LispSecSigned++
	return a
}

// secProxyReply signs b, a proxy Map-Reply, with s.
func (ms *MapServer) secProxyReply(b []byte, s *slowpath.SecAnswer) ([]byte, error) {
	b, err := s.SignReply(b)
	if err == nil {
		ms.stats.LispSecSigned++
	}
	return b, err
}

// LispSecKey returns the key that unwraps ITR-OTKs (resolver.Database).
func (ms *MapServer) LispSecKey() string { return ms.secKey }

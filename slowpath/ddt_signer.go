package slowpath

import (
	"crypto/rsa"
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// maxDDTSigCache bounds a DDTSigner's cache of signed records.
const maxDDTSigCache = 4096

// ddtSigKey identifies a signed record: what a DDT node or Map-Server
// answers for one XEID-prefix follows from its configuration, so the
// type, prefix and flags name the record (the locators follow from them).
type ddtSigKey struct {
	act       wire.Action
	iid       uint32
	p         netip.Prefix
	auth, inc bool
	locs, ttl uint32
}

type ddtCachedSig struct {
	sig   wire.Signature
	renew time.Time // re-sign after this
}

// DDTSigner signs Map-Referral records with RSA-SHA256 (RFC 8111 §6.4.1)
// for a DDT node or a Map-Server answering DDT: each signature starts a
// minute before it is made (resolvers whose clocks run behind) and lasts
// the configured validity; a record's signature is reused until half of
// its validity has passed (a cache of at most 4096 records). Not safe for
// concurrent use: the event loop owns it.
type DDTSigner struct {
	key      *rsa.PrivateKey
	tag      uint16
	validity time.Duration
	sigs     map[ddtSigKey]ddtCachedSig
	sbuf     []byte
	// Signed counts the signatures made; Errors the records that could
	// not be signed (sent unsigned).
	Signed, Errors uint64
}

// NewDDTSigner loads s's key; nil, nil when s names no key file. validity
// is used when s.Validity is 0.
func NewDDTSigner(s DDTSigning, validity time.Duration) (*DDTSigner, error) {
	if s.KeyFile == "" {
		return nil, nil
	}
	k, err := LoadDDTSigningKey(s.KeyFile)
	if err != nil {
		return nil, err
	}
	g := &DDTSigner{key: k, tag: s.KeyTag, validity: s.Validity, sigs: map[ddtSigKey]ddtCachedSig{}}
	if g.tag == 0 {
		g.tag = DDTKeyTag(&k.PublicKey)
	}
	if g.validity == 0 {
		g.validity = validity
	}
	return g, nil
}

// KeyTag returns the key tag the signatures carry.
func (g *DDTSigner) KeyTag() uint16 { return g.tag }

// Sign returns a signature of rec as it will be sent with SigCount 1, from
// the cache while it has more than half its validity left; ok is false
// when signing failed (counted).
func (g *DDTSigner) Sign(rec *wire.Record, now time.Time) (s wire.Signature, ok bool) {
	iid, p, _ := rec.Prefix()
	k := ddtSigKey{act: rec.Action, iid: iid, p: p, auth: rec.Authoritative, inc: rec.Incomplete,
		locs: uint32(len(rec.Locators)), ttl: rec.TTL}
	if cs, ok := g.sigs[k]; ok && now.Before(cs.renew) {
		return cs.sig, true
	}
	s = wire.Signature{Inception: uint32(now.Add(-time.Minute).Unix()), Expiration: uint32(now.Add(g.validity).Unix()), KeyTag: g.tag}
	sc := rec.SigCount
	rec.SigCount = 1
	var err error
	g.sbuf, err = wire.SignReferral(g.sbuf, rec, &s, g.key)
	rec.SigCount = sc
	if err != nil {
		g.Errors++
		return s, false
	}
	g.Signed++
	if len(g.sigs) >= maxDDTSigCache {
		clear(g.sigs)
	}
	g.sigs[k] = ddtCachedSig{sig: s, renew: now.Add(g.validity / 2)}
	return s, true
}

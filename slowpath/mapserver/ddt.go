package mapserver

import (
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// A DDT Map-Server (RFC 8111 §7.2) answers the Map-Requests a DDT
// Map-Resolver sends it (in an ECM with the D bit) with a Map-Referral
// besides the usual answer: MS-ACK when the EID is registered (the request
// is forwarded to an ETR or proxy-replied to as any other), and
// MS-NOT-REGISTERED for the least-specific prefix inside the site's
// configured space that covers the EID and no registration, so the
// resolver can answer the ITR negatively; NOT-AUTHORITATIVE for an EID
// outside every site. The TTLs come from map_server.ddt; with its peers
// configured (every Map-Server of these sites) MS-ACK and
// MS-NOT-REGISTERED carry them as the referral set with the I bit clear,
// else no locators and the I bit set; with a signing key every record is
// signed (RFC 8111 §6.4.1).

// ddtAnswers is the configuration of the Map-Server's DDT answers.
type ddtAnswers struct {
	cfg  slowpath.DDTMapServerConfig
	sig  *slowpath.DDTSigner
	sigs [1]wire.Signature
}

// newDDTAnswers loads cfg's signing key, if any.
func newDDTAnswers(cfg slowpath.DDTMapServerConfig) (ddtAnswers, error) {
	cfg = cfg.WithDefaults()
	sig, err := slowpath.NewDDTSigner(cfg.Signing, max(cfg.AckTTL, time.Hour))
	return ddtAnswers{cfg: cfg, sig: sig}, err
}

// DDTSigned returns the signatures made and the signing errors of the DDT
// answers (event loop only).
func (ms *MapServer) DDTSigned() (signed, errors uint64) {
	if s := ms.ddt.sig; s != nil {
		return s.Signed, s.Errors
	}
	return 0, 0
}

// onDDTRequest takes the Map-Requests in an ECM with the DDT bit.
func (ms *MapServer) onDDTRequest(m *slowpath.Msg) bool {
	if m.ECM == nil || !m.ECM.DDT {
		return false
	}
	iid, p, ok := m.Request.Records[0].Prefix()
	if !ok {
		ms.c.Msg(wire.TypeMapRequest).Rejected++
		return true
	}
	cfg := &ms.ddt.cfg
	addr := p.Addr()
	var rec wire.Record
	if ent := ms.lookup(iid, addr); ent != nil && len(ent.enc) > 0 && !ent.name {
		ms.Answer(m, iid, addr)
		rec = wire.Record{TTL: slowpath.TTLMinutes(cfg.AckTTL), MaskLen: uint8(ent.key.Prefix.Bits()),
			Action: wire.Action(wire.ReferralMSAck), Authoritative: true, EID: slowpath.EIDAddress(iid, ent.key.Prefix.Addr())}
		ms.ddtReferralSet(&rec)
	} else {
		var buf [2]slowpath.PrefixSet
		neg, inside := slowpath.NegativePrefix(ms.Known(iid, buf[:0]), addr)
		if inside {
			rec = wire.Record{TTL: slowpath.TTLMinutes(cfg.NotRegisteredTTL), MaskLen: uint8(neg.Bits()),
				Action: wire.Action(wire.ReferralMSNotRegistered), Authoritative: true, EID: slowpath.EIDAddress(iid, neg.Addr())}
			ms.ddtReferralSet(&rec)
		} else {
			rec = wire.Record{TTL: slowpath.TTLMinutes(cfg.NotAuthoritativeTTL), MaskLen: uint8(p.Bits()),
				Action: wire.Action(wire.ReferralNotAuthoritative), Incomplete: true, EID: slowpath.EIDAddress(iid, p.Addr())}
		}
	}
	ms.sendReferral(m, &rec)
	return true
}

// ddtReferralSet gives rec the configured peers as its referral set (RFC
// 8111 §6.4), the I bit clear; without peers the set is unknown: I set.
func (ms *MapServer) ddtReferralSet(rec *wire.Record) {
	peers := ms.ddt.cfg.Peers
	rec.Incomplete = len(peers) == 0
	for _, t := range peers {
		rec.Locators = append(rec.Locators, wire.Locator{Priority: t.Priority, Weight: t.Weight, MPriority: 255,
			Reachable: true, Address: wire.IPAddress(t.Addr)})
	}
}

// sendReferral sends a Map-Referral with the one record rec, signed when
// a key is configured, to the DDT Map-Resolver that sent m: the ECM's
// outer source address and port (RFC 8111 §7.2); the inner source and
// port are the ITR's, where the ETR's Map-Reply goes.
func (ms *MapServer) sendReferral(m *slowpath.Msg, rec *wire.Record) {
	recs := [1]wire.Record{*rec}
	ref := wire.MapReferral{Nonce: m.Request.Nonce, Records: recs[:]}
	if g := ms.ddt.sig; g != nil {
		if s, ok := g.Sign(&recs[0], ms.c.Now()); ok {
			recs[0].SigCount = 1
			ms.ddt.sigs[0] = s
			ref.Signatures = ms.ddt.sigs[:]
		}
	}
	b, err := ref.Append(ms.wbuf[:0])
	if err != nil {
		ms.c.Msg(wire.TypeMapReferral).SendErrors++
		return
	}
	ms.wbuf = b
	ms.c.Send(m.Src, b, wire.TypeMapReferral)
}

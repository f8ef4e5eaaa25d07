package mapserver

import (
	"net/netip"
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
// outside every site. The referral set of these records is empty and
// marked incomplete (I bit): rloc's Map-Server is not configured with its
// peer Map-Servers for the prefix.

const (
	// ddtAckTTL is the TTL of MS-ACK records: how long the resolver may
	// send requests for the prefix straight here.
	ddtAckTTL = 1440 * time.Minute
	// ddtNegTTL is the TTL of MS-NOT-REGISTERED and NOT-AUTHORITATIVE
	// records: short, a registration may come any time.
	ddtNegTTL = time.Minute
)

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
	addr := p.Addr()
	var rec wire.Record
	if ent := ms.lookup(iid, addr); ent != nil && len(ent.enc) > 0 && !ent.name {
		ms.Answer(m, iid, addr)
		rec = wire.Record{TTL: slowpath.TTLMinutes(ddtAckTTL), MaskLen: uint8(ent.key.Prefix.Bits()),
			Action: wire.Action(wire.ReferralMSAck), Authoritative: true, Incomplete: true,
			EID: slowpath.EIDAddress(iid, ent.key.Prefix.Addr())}
	} else {
		var buf [2]slowpath.PrefixSet
		neg, inside := slowpath.NegativePrefix(ms.Known(iid, buf[:0]), addr)
		typ := wire.ReferralMSNotRegistered
		if !inside {
			typ, neg = wire.ReferralNotAuthoritative, p
		}
		rec = wire.Record{TTL: slowpath.TTLMinutes(ddtNegTTL), MaskLen: uint8(neg.Bits()), Action: wire.Action(typ),
			Authoritative: inside, Incomplete: true, EID: slowpath.EIDAddress(iid, neg.Addr())}
	}
	ms.sendReferral(m, &rec)
	return true
}

// sendReferral sends a Map-Referral with the one record rec to the DDT
// Map-Resolver that sent m.
func (ms *MapServer) sendReferral(m *slowpath.Msg, rec *wire.Record) {
	recs := [1]wire.Record{*rec}
	ref := wire.MapReferral{Nonce: m.Request.Nonce, Records: recs[:]}
	b, err := ref.Append(ms.wbuf[:0])
	if err != nil {
		ms.c.Msg(wire.TypeMapReferral).SendErrors++
		return
	}
	ms.wbuf = b
	ms.c.Send(netip.AddrPortFrom(m.Src.Addr(), m.Port), b, wire.TypeMapReferral)
}

// Package resolver is the Map-Resolver role (RFC 9301 §8.1) and the front
// end of the mapping system on this router: it takes the Map-Requests sent
// to the mapping system (in an ECM, or plain from lig-like tools), lets the
// local Map-Server answer those for EIDs it knows (through Database),
// forwards the others to the remote Map-Server responsible for them, to
// DDT or into the ALT, and answers negatively for EIDs nobody registered.
//
// The order, for a Map-Request for an EID in instance-ID iid (docs/alt.md,
// "One Map-Resolver, several mapping systems"):
//
//  1. the local Map-Server (a registration, or a proxy reply);
//  2. the interconnect (LISP-MSX: an agreement covering the EID);
//  3. a configured remote Map-Server whose prefixes cover the EID (static
//     configuration, the operator's explicit choice);
//  4. DDT, when roots are configured: its answer is final (MS-ACK,
//     MS-NOT-REGISTERED) unless it says the EID is not delegated
//     (DELEGATION-HOLE, also from the referral cache) or could not be
//     resolved (NOT-AUTHORITATIVE, no progress, hop bound, silence): then
//  5. the ALT, when its table has a route for the EID;
//  6. a negative Map-Reply whose prefix holds no EID prefix known to any
//     of them (DDT's prefix narrowed by the ALT table and the rest).
package resolver

import (
	"net/netip"
	"time"

	"github.com/gaissmai/bart"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// Database is what the resolver asks of a local Map-Server: who can answer
// this EID. Each Answer method answers the request of m (a proxy
// Map-Reply or a forward to a registered ETR) and reports true, or reports
// false, sending nothing, when the Map-Server has nothing for it.
type Database interface {
	// Answer answers for a registered EID address.
	Answer(m *slowpath.Msg, iid uint32, addr netip.Addr) bool
	// AnswerName answers for the group name of the overlay group range g
	// (draft-ietf-lisp-group-mapping).
	AnswerName(m *slowpath.Msg, iid uint32, g netip.Prefix) bool
	// AnswerEIDName answers for a registered distinguished-name EID
	// (AFI 17, slowpath.NameEID).
	AnswerEIDName(m *slowpath.Msg, iid uint32, name string) bool
	// AnswerSG answers for an (S,G) (RFC 8378 §5); false when no site may
	// register the group.
	AnswerSG(m *slowpath.Msg, k slowpath.SGKey) bool
	// Known appends the prefix sets that are EID space it knows in iid
	// (registrations, site prefixes), for negative Map-Replies.
	Known(iid uint32, out []slowpath.PrefixSet) []slowpath.PrefixSet
	// LispSecKey is the Map-Server's LISP-SEC key (RFC 9303), which also
	// signs the negative replies.
	LispSecKey() string
}

// Interconnect is what the resolver asks of the mapping-system
// interconnect (LISP-MSX, docs/interconnect.md): answer for an EID of a
// peer mapping system, from a copy of its table or by invoking its
// Map-Server directly. Answer reports false, sending nothing, when no
// agreement covers the EID. It is asked after the local Map-Server and
// before the configured remote Map-Servers, DDT and the ALT.
type Interconnect interface {
	Answer(m *slowpath.Msg, iid uint32, addr netip.Addr) bool
	// AnswerEIDName answers for a peer's distinguished-name EID (from a
	// copy only).
	AnswerEIDName(m *slowpath.Msg, iid uint32, name string) bool
	// Known appends the peers' EID space in iid (their configured
	// prefixes), for negative Map-Replies: an EID there that nobody
	// answers for is asked again soon, not forwarded natively.
	Known(iid uint32, out []slowpath.PrefixSet) []slowpath.PrefixSet
}

// Resolver is the Map-Resolver role and mapping-system front end.
type Resolver struct {
	c      *slowpath.Core
	cfg    *slowpath.MapResolverConfig
	db     Database
	remote map[uint32]*bart.Table[netip.AddrPort]
	aggr   map[uint32]*bart.Table[struct{}]
	stats  slowpath.Stats
	wbuf   []byte
	// secKey unwraps LISP-SEC OTKs for negative replies; sec is the state
	// of the one being answered.
	secKey string
	sec    slowpath.SecAnswer
	// ddt is the DDT Map-Resolver (ddt.go), nil without DDT roots.
	ddt *ddtResolver
	// alt is the ALT router role (alt.go), nil without one; altSent the
	// last Map-Requests sent into it (a ring from altNext once full).
	alt     ALT
	altSent []ALTSent
	altNext int
	// ic is the mapping-system interconnect, nil without one.
	ic Interconnect
}

// SetInterconnect makes the resolver ask ic for the EIDs of peer mapping
// systems (before the core starts).
func (mr *Resolver) SetInterconnect(ic Interconnect) { mr.ic = ic }

// New builds the front end on c and registers its handlers: plain
// Map-Requests and Map-Requests in an ECM, after those registered before
// (an ETR answers for its own EIDs first). cfg is the Map-Resolver's
// configuration with defaults, nil when this router is only a Map-Server
// (then negative replies use the default TTLs and nothing is forwarded);
// db is the local Map-Server, nil when there is none.
func New(c *slowpath.Core, cfg *slowpath.MapResolverConfig, db Database) *Resolver {
	mr := &Resolver{c: c, cfg: cfg, db: db, remote: map[uint32]*bart.Table[netip.AddrPort]{}, aggr: map[uint32]*bart.Table[struct{}]{}}
	if cfg != nil {
		mr.secKey = cfg.LispSecKey
	}
	if mr.secKey == "" && db != nil {
		mr.secKey = db.LispSecKey()
	}
	if cfg != nil {
		for _, ms := range cfg.MapServers {
			for _, p := range ms.Prefixes {
				t := mr.remote[p.IID]
				if t == nil {
					t = new(bart.Table[netip.AddrPort])
					mr.remote[p.IID] = t
				}
				t.Insert(p.Prefix, ms.Addr)
			}
		}
		for _, p := range cfg.Aggregates {
			t := mr.aggr[p.IID]
			if t == nil {
				t = new(bart.Table[struct{}])
				mr.aggr[p.IID] = t
			}
			t.Insert(p.Prefix, struct{}{})
		}
	}
	mr.newDDT(cfg)
	c.Handle(slowpath.RouteMapRequest, mr.resolve)
	c.Handle(slowpath.RouteECM, mr.resolve)
	return mr
}

// Stats returns the resolver's counters (event loop only).
func (mr *Resolver) Stats() slowpath.Stats { return mr.stats }

// resolve answers a Map-Request as Map-Server and/or Map-Resolver.
func (mr *Resolver) resolve(m *slowpath.Msg) bool {
	req := m.Request
	if k, ok := slowpath.SGKeyOf(&req.Records[0].EID); ok && mr.db != nil {
		if !mr.db.AnswerSG(m, k) {
			mr.negativeReply(m, k.IID, k.Group.Addr())
		}
		return true
	}
	iid, p, ok := req.Records[0].Prefix()
	if !ok {
		if iid, g, err := replicate.ParseGroupNameEID(&req.Records[0].EID); err == nil {
			mr.resolveName(m, iid, g)
			return true
		}
		if iid, name, ok := slowpath.NameEID(&req.Records[0].EID); ok {
			mr.resolveEIDName(m, iid, name)
			return true
		}
		mr.c.Msg(wire.TypeMapRequest).Ignored++
		return true
	}
	if mr.db != nil && mr.db.Answer(m, iid, p.Addr()) {
		return true
	}
	if mr.ic != nil && mr.ic.Answer(m, iid, p.Addr()) {
		return true
	}
	if mr.forwardRemote(m, iid, p.Addr()) {
		return true
	}
	// DDT, when configured, is asked first; it falls back on the ALT
	// itself when its answer is that it does not delegate the EID
	// (ddtEnd).
	if mr.ddtResolve(m, iid, p.Addr()) {
		return true
	}
	if !mr.altRoute(m, iid, p.Addr(), nil) {
		mr.negativeReply(m, iid, p.Addr())
	}
	return true
}

// forwardRemote forwards m's request to the remote Map-Server responsible
// for addr in iid, if there is one. An ECM already marked for a Map-Server
// is not forwarded again.
func (mr *Resolver) forwardRemote(m *slowpath.Msg, iid uint32, addr netip.Addr) bool {
	if t := mr.remote[iid]; t != nil && (m.ECM == nil || !m.ECM.ToMapServer) {
		if ms, ok := t.Lookup(addr); ok {
			if mr.c.Forward(ms, m, addr, false) {
				mr.stats.Forwarded++
			}
			return true
		}
	}
	return false
}

// resolveName answers a lookup of the group name for the overlay group
// range g in iid (draft-ietf-lisp-group-mapping): from the Map-Server's
// configured or registered group mappings, else by forwarding to the remote
// Map-Server whose prefixes in iid cover the group (a provider's Map-Server
// is configured with the overlay group ranges it maps), else with a
// negative Map-Reply for the name, after which the ETR falls back to its
// unicast RLOC.
func (mr *Resolver) resolveName(m *slowpath.Msg, iid uint32, g netip.Prefix) {
	if mr.db != nil && mr.db.AnswerName(m, iid, g) {
		return
	}
	if mr.forwardRemote(m, iid, g.Addr()) {
		return
	}
	ttl := time.Minute
	if mr.cfg != nil {
		ttl = mr.cfg.AggregateTTL
	}
	mr.sendNegative(m, &wire.Record{TTL: slowpath.TTLMinutes(ttl), Action: wire.ActionNativelyForward, EID: m.Request.Records[0].EID})
}

// resolveEIDName answers a lookup of a distinguished-name EID: from the
// Map-Server's registrations, else from an interconnect copy, else with a
// negative Map-Reply for the name (natively-forward, the aggregate TTL):
// names are not forwarded to remote Map-Servers, DDT or the ALT, which
// route by prefix.
func (mr *Resolver) resolveEIDName(m *slowpath.Msg, iid uint32, name string) {
	if mr.db != nil && mr.db.AnswerEIDName(m, iid, name) {
		return
	}
	if mr.ic != nil && mr.ic.AnswerEIDName(m, iid, name) {
		return
	}
	ttl := time.Minute
	if mr.cfg != nil {
		ttl = mr.cfg.AggregateTTL
	}
	mr.sendNegative(m, &wire.Record{TTL: slowpath.TTLMinutes(ttl), Action: wire.ActionNativelyForward, EID: m.Request.Records[0].EID})
}

// known returns the prefix sets that count as EID space known to the
// mapping system in iid, registered prefixes first.
func (mr *Resolver) known(iid uint32, out []slowpath.PrefixSet) []slowpath.PrefixSet {
	if mr.db != nil {
		out = mr.db.Known(iid, out)
	}
	if mr.ic != nil {
		out = mr.ic.Known(iid, out)
	}
	if t := mr.aggr[iid]; t != nil {
		out = append(out, slowpath.BartSet[struct{}]{Table: t})
	}
	if t := mr.remote[iid]; t != nil {
		out = append(out, slowpath.BartSet[netip.AddrPort]{Table: t})
	}
	if mr.alt != nil {
		out = mr.alt.Known(iid, out)
	}
	return out
}

// negativePrefix is slowpath.NegativePrefix (the Map-Server's DDT answers
// use it too).
func negativePrefix(sets []slowpath.PrefixSet, addr netip.Addr) (netip.Prefix, bool) {
	return slowpath.NegativePrefix(sets, addr)
}

// negativeReply sends a negative Map-Reply for addr (RFC 9301 §8.1).
func (mr *Resolver) negativeReply(m *slowpath.Msg, iid uint32, addr netip.Addr) {
	var buf [4]slowpath.PrefixSet
	p, inside := negativePrefix(mr.known(iid, buf[:0]), addr)
	act, ttl := wire.ActionNativelyForward, 15*time.Minute
	if inside {
		act, ttl = wire.ActionSendMapRequest, time.Minute
	}
	if mr.cfg != nil {
		if inside {
			ttl = mr.cfg.AggregateTTL
		} else {
			ttl = mr.cfg.NegativeTTL
		}
	}
	mr.sendNegative(m, &wire.Record{TTL: slowpath.TTLMinutes(ttl), MaskLen: uint8(p.Bits()), Action: act, EID: slowpath.EIDAddress(iid, p.Addr())})
}

// sendNegative answers m's request with the negative record rec (no
// locators), with LISP-SEC data when the request asked for it (RFC 9303:
// the EID-AD names the negative prefix).
func (mr *Resolver) sendNegative(m *slowpath.Msg, rec *wire.Record) {
	c := mr.c
	b, err := rec.Append(slowpath.AppendReplyHeader(mr.wbuf[:0], m.Request.Nonce))
	if err == nil && m.ECM != nil && m.ECM.Security {
		b = mr.secSign(m, rec, b)
	}
	if err != nil {
		c.Msg(wire.TypeMapReply).SendErrors++
		return
	}
	mr.wbuf = b
	c.Send(c.ReplyTarget(m.Request.ITRRLOCs, m.Port, m.Src), b, wire.TypeMapReply)
	mr.stats.NegativeReplies++
}

// secSign signs b, the negative reply rec to m's LISP-SEC request, doing
// the Map-Server's and the ETR's part; when the OTK cannot be unwrapped (or
// rec is not an IP prefix) b goes unsigned, counted.
func (mr *Resolver) secSign(m *slowpath.Msg, rec *wire.Record, b []byte) []byte {
	s := &mr.sec
	iid, p, ok := rec.Prefix()
	err := s.Unwrap(m.ECM, mr.secKey, m.Request.Nonce)
	if err == nil && ok {
		err = s.Authorise(iid, p)
	}
	if err == nil && ok {
		n := len(b)
		var signed []byte
		if signed, err = s.SignReply(b); err == nil {
			mr.stats.LispSecSigned++
			return signed
		}
		b = b[:n]
		b[0] &^= 0x02
	}
	mr.stats.LispSecUnwrapFailed++
	mr.c.Log().Debug("negative reply without LISP-SEC", "src", m.Src, "err", err)
	return b
}

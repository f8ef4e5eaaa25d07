package resolver

import (
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/request"
	"github.com/rloc-router/rloc/wire"
)

// The DDT Map-Resolver (RFC 8111 §7.3): a Map-Request the local Map-Server
// cannot answer is resolved iteratively. The resolver asks the targets of
// the most specific cached referral for the EID (the roots at first) with
// the ITR's Map-Request in an ECM with the D bit, follows each
// NODE-REFERRAL and MS-REFERRAL (caching it), and stops at MS-ACK (the
// Map-Server has forwarded the request to an ETR or answered it itself),
// or answers the ITR with a negative Map-Reply for DELEGATION-HOLE,
// MS-NOT-REGISTERED, NOT-AUTHORITATIVE, a referral that makes no progress,
// a chain longer than maxReferralHops or targets that never answer.

const (
	// maxReferralHops bounds the referrals followed for one request
	// (stretch protection).
	maxReferralHops = 8
	// ddtInterval is the wait after the first DDT Map-Request to a target;
	// it doubles per retransmission.
	ddtInterval = time.Second
	// ddtTriesPerTarget is the number of tries per referral target.
	ddtTriesPerTarget = 2
	// maxDDTPending bounds the resolutions in progress.
	maxDDTPending = 10000
)

// DDTStats counts the DDT Map-Resolver's work.
type DDTStats struct {
	// Resolutions counts resolutions started; Acked those that ended with
	// MS-ACK.
	Resolutions, Acked uint64
	// Referrals counts Map-Referrals taken, by type.
	Referrals [6]uint64
	// NoProgress counts referrals that were no more specific than the one
	// before; TooLong the chains cut at maxReferralHops; TimedOut the
	// resolutions whose targets all stayed silent; Refused the requests
	// not resolved (nonce already pending, too many pending).
	NoProgress, TooLong, TimedOut, Refused uint64
	// Overreach counts DELEGATION-HOLE and MS-NOT-REGISTERED referrals
	// wider than the delegation they came from (answered for the EID
	// alone, not cached).
	Overreach uint64
	// CacheHits counts resolutions that started below the roots, and
	// NegativeHits those answered from a negative cache entry.
	CacheHits, NegativeHits uint64
	// BadReferrals counts Map-Referrals that did not parse or carried no
	// usable record; Unmatched those whose nonce or source matched no
	// pending request.
	BadReferrals, Unmatched uint64
}

// ddtPending is one resolution in progress.
type ddtPending struct {
	src  netip.AddrPort
	port uint16
	ecm  wire.ECM // the ITR's ECM (Message cleared); valid when hasECM
	has  bool
	raw  []byte // the ITR's Map-Request
	iid  uint32
	addr netip.Addr
	last netip.Prefix // prefix of the last referral followed
	hops int
	req  *request.Request
}

// ddtResolver is the DDT state of a Resolver.
type ddtResolver struct {
	cache   *ReferralCache
	tr      *request.Tracker
	pending map[wire.Nonce]*ddtPending
	port    uint16
	stats   DDTStats
	ref     wire.MapReferral
}

// DDTStats returns the DDT Map-Resolver's counters (zero without roots).
func (mr *Resolver) DDTStats() DDTStats {
	if mr.ddt == nil {
		return DDTStats{}
	}
	return mr.ddt.stats
}

// ReferralCache returns the referral cache, nil without DDT roots (event
// loop only).
func (mr *Resolver) ReferralCache() *ReferralCache {
	if mr.ddt == nil {
		return nil
	}
	return mr.ddt.cache
}

// newDDT sets up DDT resolution when cfg names roots.
func (mr *Resolver) newDDT(cfg *slowpath.MapResolverConfig) {
	if cfg == nil || len(cfg.DDTRoots) == 0 {
		return
	}
	port := cfg.DDTPort
	if port == 0 {
		port = wire.ControlPort
	}
	mr.ddt = &ddtResolver{cache: NewReferralCache(cfg.DDTRoots, cfg.DDTCacheSize),
		tr:      request.New(mr.c.Clock(), mr.c, request.Config{Interval: ddtInterval, MaxTries: ddtTriesPerTarget}),
		pending: map[wire.Nonce]*ddtPending{}, port: port}
	mr.c.Handle(slowpath.Route{Type: wire.TypeMapReferral}, mr.onReferral)
}

// ddtResolve starts the DDT resolution of m's request for addr in iid; it
// reports false when there is no DDT (the caller answers as before).
func (mr *Resolver) ddtResolve(m *slowpath.Msg, iid uint32, addr netip.Addr) bool {
	d := mr.ddt
	if d == nil || (m.ECM != nil && (m.ECM.DDT || m.ECM.ToMapServer)) {
		return false
	}
	now := mr.c.Now()
	ref := d.cache.Lookup(iid, addr, now)
	if ref.Negative() {
		d.stats.NegativeHits++
		mr.ddtNegative(m, ref, ref.Type)
		return true
	}
	n := m.Request.Nonce
	if d.pending[n] != nil || len(d.pending) >= maxDDTPending {
		d.stats.Refused++
		return true
	}
	p := &ddtPending{src: m.Src, port: m.Port, raw: append([]byte(nil), m.Raw...), iid: iid, addr: addr}
	if m.ECM != nil {
		p.ecm, p.has = cloneECM(m.ECM), true
	}
	if !ref.Root {
		d.stats.CacheHits++
		p.last = ref.Prefix
	}
	d.stats.Resolutions++
	d.pending[n] = p
	mr.ddtAsk(n, p, ref.Targets)
	return true
}

// ddtAsk sends p's request to targets (a new hop).
func (mr *Resolver) ddtAsk(n wire.Nonce, p *ddtPending, targets []netip.AddrPort) {
	d := mr.ddt
	src := mr.innerSource(p)
	var auth *wire.ECMAuth
	if p.has && p.ecm.Security {
		auth = &p.ecm.Auth // the ITR's LISP-SEC data goes on (RFC 9303 §6.5)
	}
	r, err := d.tr.Start(&request.Spec{Type: wire.TypeMapRequest, Targets: targets, ECM: true, DDT: true,
		InnerSrc: src, InnerDst: p.addr, ECMAuth: auth, MatchSource: true, MaxTries: ddtTriesPerTarget * len(targets),
		Done: func(r *request.Request, o request.Outcome) {
			if o == request.GaveUp && d.pending[n] == p {
				d.stats.TimedOut++
				mr.ddtEnd(n, p, nil, wire.ReferralNotAuthoritative)
			}
		}}, n, p.raw)
	if err != nil {
		d.stats.Refused++
		delete(d.pending, n)
		return
	}
	p.req = r
}

// cloneECM copies e without its message, deep enough to outlive the
// receive buffer e points into.
func cloneECM(e *wire.ECM) wire.ECM {
	c := *e
	c.Message, c.Inner = nil, nil
	c.Auth.EID.MAC = slices.Clone(e.Auth.EID.MAC)
	c.Auth.EID.Records = nil
	for _, r := range e.Auth.EID.Records {
		r.EID = r.EID.Clone()
		c.Auth.EID.Records = append(c.Auth.EID.Records, r)
	}
	return c
}

// innerSource is the inner source of the DDT ECMs for p: the ITR's ECM's,
// else an ITR-RLOC of the EID's family.
func (mr *Resolver) innerSource(p *ddtPending) netip.Addr {
	if p.has && p.ecm.Src.Is4() == p.addr.Is4() {
		return p.ecm.Src
	}
	var req wire.MapRequest
	if req.Parse(p.raw) == nil {
		return slowpath.InnerSource(&req, p.src.Addr(), p.addr)
	}
	return p.src.Addr()
}

// onReferral takes a Map-Referral answering a pending resolution.
func (mr *Resolver) onReferral(m *slowpath.Msg) bool {
	d := mr.ddt
	st := mr.c.Msg(wire.TypeMapReferral)
	st.Parsed++
	if err := d.ref.Parse(m.Raw); err != nil || len(d.ref.Records) == 0 {
		st.BadParse++
		d.stats.BadReferrals++
		return true
	}
	n := d.ref.Nonce
	p := d.pending[n]
	r, status := d.tr.Match(m.Src, n)
	if p == nil || status != request.Matched || r != p.req {
		d.stats.Unmatched++
		return true
	}
	now := mr.c.Now()
	rec := &d.ref.Records[0]
	typ := wire.ReferralType(rec.Action)
	if int(typ) < len(d.stats.Referrals) {
		d.stats.Referrals[typ]++
	}
	ref, ok := ReferralFromRecord(rec, d.port, now)
	if !ok || (typ != wire.ReferralNotAuthoritative && !ref.Prefix.Contains(p.addr)) {
		d.stats.BadReferrals++
		return true
	}
	d.tr.Complete(r)
	switch typ {
	case wire.ReferralMSAck:
		d.stats.Acked++
		delete(d.pending, n)
	case wire.ReferralNode, wire.ReferralMS:
		if len(ref.Targets) == 0 {
			d.stats.BadReferrals++
			mr.ddtEnd(n, p, nil, wire.ReferralNotAuthoritative)
			return true
		}
		if p.last.IsValid() && ref.Prefix.Bits() <= p.last.Bits() {
			d.stats.NoProgress++
			mr.ddtEnd(n, p, nil, wire.ReferralNotAuthoritative)
			return true
		}
		p.hops++
		if p.hops > maxReferralHops {
			d.stats.TooLong++
			mr.ddtEnd(n, p, nil, wire.ReferralNotAuthoritative)
			return true
		}
		d.cache.Insert(ref, now)
		p.last = ref.Prefix
		mr.ddtAsk(n, p, ref.Targets)
	case wire.ReferralDelegationHole, wire.ReferralMSNotRegistered:
		if p.last.IsValid() && ref.Prefix.Bits() < p.last.Bits() {
			// Wider than the delegation it came from: the node speaks
			// for space it was not given. Not cached; the EID alone.
			d.stats.Overreach++
			mr.ddtEnd(n, p, nil, typ)
			return true
		}
		d.cache.Insert(ref, now)
		mr.ddtEnd(n, p, &ref, typ)
	default:
		mr.ddtEnd(n, p, nil, wire.ReferralNotAuthoritative)
	}
	return true
}

// ddtEnd ends p's resolution with a negative Map-Reply: for ref's prefix
// when given, else for the EID alone.
func (mr *Resolver) ddtEnd(n wire.Nonce, p *ddtPending, ref *Referral, typ wire.ReferralType) {
	delete(mr.ddt.pending, n)
	var req wire.MapRequest
	if req.Parse(p.raw) != nil {
		return
	}
	m := &slowpath.Msg{Src: p.src, Raw: p.raw, Port: p.port, Request: &req}
	if p.has {
		e := p.ecm
		e.Message = p.raw
		m.ECM = &e
	}
	if ref == nil {
		ref = &Referral{IID: p.iid, Prefix: netip.PrefixFrom(p.addr, p.addr.BitLen()), Expires: mr.c.Now().Add(time.Minute)}
	}
	mr.ddtNegative(m, ref, typ)
}

// ddtNegative answers m with a negative Map-Reply for ref's prefix: a
// delegation hole is outside the mapping system (native-forward), the
// rest is LISP space for now unanswered (send-map-request); the TTL is
// what is left of ref's.
func (mr *Resolver) ddtNegative(m *slowpath.Msg, ref *Referral, typ wire.ReferralType) {
	act := wire.ActionSendMapRequest
	if typ == wire.ReferralDelegationHole {
		act = wire.ActionNativelyForward
	}
	ttl := max(ref.Expires.Sub(mr.c.Now()), time.Minute)
	mr.sendNegative(m, &wire.Record{TTL: slowpath.TTLMinutes(ttl), MaskLen: uint8(ref.Prefix.Bits()), Action: act,
		EID: slowpath.EIDAddress(ref.IID, ref.Prefix.Addr())})
}

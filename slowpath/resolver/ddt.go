package resolver

import (
	"math/rand/v2"
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
// NODE-REFERRAL and MS-REFERRAL (caching it unless its I bit says the
// referral set is incomplete or its A bit is clear), and stops at MS-ACK
// (the Map-Server has forwarded the request to an ETR or answered it
// itself), or answers the ITR with a negative Map-Reply for
// DELEGATION-HOLE, MS-NOT-REGISTERED (once every Map-Server of the
// referral set said so), NOT-AUTHORITATIVE, a referral that makes no
// progress, a chain longer than the hop bound or targets that never
// answer. With a public key configured for the delegation asked, a
// referral without a valid signature (RFC 8111 §6.4.1) is dropped, as if
// the target had said nothing.

// maxSigsTried bounds the sig sections verified per record (each costs an
// RSA verification).
const maxSigsTried = 4

// DDTStats counts the DDT Map-Resolver's work.
type DDTStats struct {
	// Resolutions counts resolutions started; Acked those that ended with
	// MS-ACK.
	Resolutions, Acked uint64
	// Referrals counts Map-Referrals taken, by type.
	Referrals [6]uint64
	// NoProgress counts referrals that were no more specific than the one
	// before (loops); TooLong the chains cut at the hop bound; TimedOut
	// the resolutions whose targets all stayed silent; Refused the
	// requests not resolved (nonce already pending, too many pending).
	NoProgress, TooLong, TimedOut, Refused uint64
	// Overreach counts DELEGATION-HOLE and MS-NOT-REGISTERED referrals
	// wider than the delegation they came from (answered for the EID
	// alone, not cached).
	Overreach uint64
	// Outside counts referrals for a prefix that does not hold the EID
	// asked about (or in another instance-ID): dropped, as silence.
	Outside uint64
	// CacheHits counts resolutions that started below the roots, and
	// NegativeHits those answered from a negative cache entry.
	CacheHits, NegativeHits uint64
	// BadReferrals counts Map-Referrals that did not parse or carried no
	// usable record; Unmatched those whose nonce or source matched no
	// pending request.
	BadReferrals, Unmatched uint64
	// Verified counts referrals whose signature verified; BadSignature
	// those dropped for a signature that did not (forged, wrong key,
	// outside its validity, unknown algorithm); Unsigned those dropped for
	// carrying none where a key is configured.
	Verified, BadSignature, Unsigned uint64
	// NotCached counts referrals followed or answered but not cached: the
	// I bit (incomplete referral set) or a clear A bit (not
	// authoritative).
	NotCached uint64
	// Stale counts NOT-AUTHORITATIVE answers from a node found through the
	// referral cache: the entry was dropped and the roots asked again.
	Stale uint64
	// NotRegisteredNext counts MS-NOT-REGISTERED answers after which
	// another Map-Server of the referral set was asked.
	NotRegisteredNext uint64
	// ALT counts the resolutions DDT ended with a DELEGATION-HOLE (or a
	// cached one) or NOT-AUTHORITATIVE that were then sent into the ALT,
	// which had a route for the EID.
	ALT uint64
	// Narrowed counts DDT negative answers whose prefix was narrowed
	// because it held EID space known otherwise (an ALT route, a remote
	// Map-Server's prefix, an aggregate, a registration).
	Narrowed uint64
}

// ddtPending is one resolution in progress.
type ddtPending struct {
	src     netip.AddrPort
	port    uint16
	ecm     wire.ECM // the ITR's ECM (Message cleared); valid when hasECM
	has     bool
	raw     []byte // the ITR's Map-Request
	iid     uint32
	addr    netip.Addr
	last    netip.Prefix // prefix of the delegation asked (invalid: the roots)
	hops    int
	cached  bool         // the resolution started from a learned cache entry
	retried bool         // ... and went back to the roots (Stale)
	notReg  *Referral    // an MS-NOT-REGISTERED answer, while other Map-Servers are asked
	tried   []netip.Addr // Map-Servers of this delegation asked before the current set
	started time.Time
	targets []netip.AddrPort
	key     *slowpath.DDTPublicKey
	req     *request.Request
}

// ddtResolver is the DDT state of a Resolver.
type ddtResolver struct {
	cfg     slowpath.DDTResolverConfig
	cache   *ReferralCache
	tr      *request.Tracker
	pending map[wire.Nonce]*ddtPending
	port    uint16
	keys    map[refKey]*slowpath.DDTPublicKey
	rng     *rand.Rand
	stats   DDTStats
	ref     wire.MapReferral
	sbuf    []byte
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

// DDTPending is one resolution in progress, as DDTPending lists it.
type DDTPending struct {
	// Nonce is the ITR's nonce; ITR where the answer goes.
	Nonce wire.Nonce
	ITR   netip.AddrPort
	// IID and EID are what is resolved.
	IID uint32
	EID netip.Addr
	// Delegation is the prefix of the referral being followed (invalid:
	// the roots are asked); Hops the referrals followed.
	Delegation netip.Prefix
	Hops       int
	// Target is the node or Map-Server asked last, Tries the tries at
	// this hop so far, Targets the hop's referral set in asking order.
	Target  netip.AddrPort
	Tries   int
	Targets []netip.AddrPort
	// Started is when the resolution began.
	Started time.Time
}

// DDTPending appends at most max resolutions in progress (oldest first)
// to out and returns it with their number (event loop only).
func (mr *Resolver) DDTPending(out []DDTPending, max int) ([]DDTPending, int) {
	d := mr.ddt
	if d == nil {
		return out, 0
	}
	start := len(out)
	for n, p := range d.pending {
		e := DDTPending{Nonce: n, ITR: p.src, IID: p.iid, EID: p.addr, Delegation: p.last, Hops: p.hops,
			Targets: slices.Clone(p.targets), Started: p.started}
		if p.req != nil {
			e.Target, e.Tries = p.req.Target(), p.req.Tries()
		}
		out = append(out, e)
	}
	l := out[start:]
	slices.SortFunc(l, func(a, b DDTPending) int { return a.Started.Compare(b.Started) })
	if len(l) > max {
		out = out[:start+max]
	}
	return out, len(d.pending)
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
	dc := cfg.DDT
	if cfg.DDTCacheSize != 0 {
		dc.CacheSize = cfg.DDTCacheSize
	}
	dc = dc.WithDefaults()
	d := &ddtResolver{cfg: dc, cache: NewReferralCache(cfg.DDTRoots, dc.CacheSize),
		tr:      request.New(mr.c.Clock(), mr.c, request.Config{Interval: dc.RetransmitInterval, MaxTries: dc.TriesPerTarget}),
		pending: map[wire.Nonce]*ddtPending{}, port: port, keys: map[refKey]*slowpath.DDTPublicKey{},
		rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	for i := range cfg.DDTKeys {
		k := &cfg.DDTKeys[i]
		d.keys[refKey{k.IID, k.Prefix.Masked()}] = k
	}
	mr.ddt = d
	mr.c.Handle(slowpath.Route{Type: wire.TypeMapReferral}, mr.onReferral)
}

// keyFor returns the key the answers of the targets asked for the
// delegation p.last must be signed with: the key configured for exactly
// that XEID-prefix, or for the roots (prefix length 0 of the EID's
// family) while they are asked; nil when none is.
func (d *ddtResolver) keyFor(p *ddtPending) *slowpath.DDTPublicKey {
	if len(d.keys) == 0 {
		return nil
	}
	k := refKey{p.iid, p.last}
	if !p.last.IsValid() {
		k.p = netip.PrefixFrom(p.addr, 0).Masked()
	}
	return d.keys[k]
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
		if ref.Type == wire.ReferralDelegationHole && mr.altRoute(m, iid, addr, ref) {
			d.stats.ALT++
			return true
		}
		mr.ddtNegative(m, iid, addr, ref, ref.Type)
		return true
	}
	n := m.Request.Nonce
	if d.pending[n] != nil || len(d.pending) >= d.cfg.MaxPending {
		d.stats.Refused++
		return true
	}
	p := &ddtPending{src: m.Src, port: m.Port, raw: append([]byte(nil), m.Raw...), iid: iid, addr: addr, started: now}
	if m.ECM != nil {
		p.ecm, p.has = cloneECM(m.ECM), true
	}
	if !ref.Root {
		d.stats.CacheHits++
		p.last, p.cached = ref.Prefix, true
	}
	d.stats.Resolutions++
	d.pending[n] = p
	mr.ddtAsk(n, p, ref)
	return true
}

// ddtAsk sends p's request to the targets of ref (a new hop).
func (mr *Resolver) ddtAsk(n wire.Nonce, p *ddtPending, ref *Referral) {
	d := mr.ddt
	p.targets = ref.Order(d.rng, p.targets)
	p.key = d.keyFor(p)
	src := mr.innerSource(p)
	var auth *wire.ECMAuth
	if p.has && p.ecm.Security {
		auth = &p.ecm.Auth // the ITR's LISP-SEC data goes on (RFC 9303 §6.5)
	}
	r, err := d.tr.Start(&request.Spec{Type: wire.TypeMapRequest, Targets: p.targets, ECM: true, DDT: true,
		InnerSrc: src, InnerSrcPort: p.port, InnerDst: p.addr, ECMAuth: auth, MatchSource: true, MaxTries: d.cfg.TriesPerTarget * len(p.targets),
		Done: func(r *request.Request, o request.Outcome) {
			if o != request.GaveUp || d.pending[n] != p {
				return
			}
			if p.notReg != nil { // every Map-Server asked said not registered, or was silent
				mr.ddtNegativeEnd(n, p, p.notReg)
				return
			}
			d.stats.TimedOut++
			mr.ddtEnd(n, p, nil, wire.ReferralNotAuthoritative)
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

// verify checks the signature of the first record of d.ref against key
// (nil: nothing to check) and counts the outcome.
func (d *ddtResolver) verify(key *slowpath.DDTPublicKey, now time.Time) bool {
	if key == nil {
		return true
	}
	sigs := d.ref.RecordSignatures(0)
	if len(sigs) == 0 {
		d.stats.Unsigned++
		return false
	}
	rec := &d.ref.Records[0]
	for i := range sigs[:min(len(sigs), maxSigsTried)] {
		var err error
		if d.sbuf, err = wire.VerifyReferral(d.sbuf, rec, &sigs[i], key.Key, now); err == nil {
			d.stats.Verified++
			return true
		}
	}
	d.stats.BadSignature++
	return false
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
	ref, ok := ReferralFromRecord(rec, d.port, now)
	if !ok || int(typ) >= len(d.stats.Referrals) {
		d.stats.BadReferrals++
		return true
	}
	if ref.IID != p.iid || !ref.Prefix.Contains(p.addr) {
		// Not about the EID asked: as if the target had said nothing.
		d.stats.Outside++
		return true
	}
	if !d.verify(p.key, now) {
		return true // dropped, as silence: the retransmission goes on
	}
	d.stats.Referrals[typ]++
	cacheable := ref.Authoritative && !ref.Incomplete
	switch typ {
	case wire.ReferralMSAck:
		d.tr.Complete(r)
		d.stats.Acked++
		delete(d.pending, n)
	case wire.ReferralNode, wire.ReferralMS:
		d.tr.Complete(r)
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
		if p.hops > d.cfg.MaxHops {
			d.stats.TooLong++
			mr.ddtEnd(n, p, nil, wire.ReferralNotAuthoritative)
			return true
		}
		if cacheable {
			d.cache.Insert(ref, now)
		} else {
			d.stats.NotCached++ // followed, but not kept as the whole set (RFC 8111 §6.4)
		}
		p.last, p.notReg, p.tried = ref.Prefix, nil, p.tried[:0]
		mr.ddtAsk(n, p, &ref)
	case wire.ReferralMSNotRegistered:
		if r.Tries() < len(p.targets) {
			// Another Map-Server of the referral set may hold the
			// registration: ask it before answering negatively.
			p.notReg = &ref
			d.stats.NotRegisteredNext++
			d.tr.Next(r)
			return true
		}
		d.tr.Complete(r)
		if peers := p.untried(&ref); len(peers.Targets) > 0 {
			// The Map-Server's complete referral set (I clear) names
			// Map-Servers of the site not asked yet: ask them.
			p.notReg = &ref
			d.stats.NotRegisteredNext++
			mr.ddtAsk(n, p, &peers)
			return true
		}
		mr.ddtNegativeEnd(n, p, &ref)
	case wire.ReferralDelegationHole:
		d.tr.Complete(r)
		mr.ddtNegativeEnd(n, p, &ref)
	default: // NOT-AUTHORITATIVE
		d.tr.Complete(r)
		if p.cached && !p.retried && p.hops == 0 {
			// A learned referral led to a node that no longer holds the
			// delegation (RFC 8111 §7.3.1): forget it, start again at
			// the roots, once.
			d.stats.Stale++
			d.cache.Remove(p.iid, p.last)
			p.retried, p.last = true, netip.Prefix{}
			root := d.cache.Lookup(p.iid, p.addr, now)
			if root != nil && root.Root {
				mr.ddtAsk(n, p, root)
				return true
			}
		}
		mr.ddtEnd(n, p, nil, wire.ReferralNotAuthoritative)
	}
	return true
}

// untried returns the part of ref's referral set (a complete one: I bit
// clear) not asked yet in p's delegation, remembering the current targets
// as asked; empty for an incomplete set.
func (p *ddtPending) untried(ref *Referral) Referral {
	for _, t := range p.targets {
		if !slices.Contains(p.tried, t.Addr()) {
			p.tried = append(p.tried, t.Addr())
		}
	}
	var out Referral
	if ref.Incomplete {
		return out
	}
	for i, t := range ref.Targets {
		if !slices.Contains(p.tried, t.Addr()) {
			out.Targets = append(out.Targets, t)
			out.Priorities = append(out.Priorities, ref.Priorities[i])
			out.Weights = append(out.Weights, ref.Weights[i])
		}
	}
	return out
}

// ddtNegativeEnd ends p's resolution with a DELEGATION-HOLE or
// MS-NOT-REGISTERED referral ref: cached and answered for its prefix when
// authoritative and complete; answered for its prefix but not cached with
// the I bit; answered for the EID alone when wider than the delegation it
// came from (counted) or not authoritative.
func (mr *Resolver) ddtNegativeEnd(n wire.Nonce, p *ddtPending, ref *Referral) {
	d := mr.ddt
	switch {
	case p.last.IsValid() && ref.Prefix.Bits() < p.last.Bits():
		// Wider than the delegation it came from: the node speaks for
		// space it was not given. Not cached; the EID alone.
		d.stats.Overreach++
		mr.ddtEnd(n, p, nil, ref.Type)
	case !ref.Authoritative:
		d.stats.NotCached++
		mr.ddtEnd(n, p, nil, ref.Type)
	case ref.Incomplete:
		d.stats.NotCached++
		mr.ddtEnd(n, p, ref, ref.Type)
	default:
		d.cache.Insert(*ref, mr.c.Now())
		mr.ddtEnd(n, p, ref, ref.Type)
	}
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
		ref = &Referral{IID: p.iid, Prefix: netip.PrefixFrom(p.addr, p.addr.BitLen()), Expires: mr.c.Now().Add(time.Minute), Type: typ}
	}
	if typ != wire.ReferralMSNotRegistered && mr.altRoute(m, p.iid, p.addr, &Referral{Type: typ, Prefix: ref.Prefix}) {
		// DDT does not delegate the EID (DELEGATION-HOLE) or could not
		// resolve it (NOT-AUTHORITATIVE and the like): the ALT has a
		// route for it. MS-NOT-REGISTERED is final: the EID is
		// delegated to a Map-Server, which has no registration.
		mr.ddt.stats.ALT++
		return
	}
	mr.ddtNegative(m, p.iid, p.addr, ref, typ)
}

// ddtNegative answers m for addr in iid with a negative Map-Reply for
// ref's prefix, narrowed to the largest prefix around addr that holds no
// EID prefix the resolver knows otherwise (the ALT table, remote
// Map-Servers, aggregates, the local Map-Server, the interconnect): a
// delegation hole is outside the mapping system (native-forward) unless
// the narrowed prefix lies inside known EID space, the rest is LISP space
// for now unanswered (send-map-request); the TTL is what is left of ref's.
func (mr *Resolver) ddtNegative(m *slowpath.Msg, iid uint32, addr netip.Addr, ref *Referral, typ wire.ReferralType) {
	var buf [4]slowpath.PrefixSet
	p := ref.Prefix
	q, inside := negativePrefix(mr.known(iid, buf[:0]), addr)
	if q.Bits() > p.Bits() {
		p = q
		mr.ddt.stats.Narrowed++
	}
	act := wire.ActionSendMapRequest
	if typ == wire.ReferralDelegationHole && !inside {
		act = wire.ActionNativelyForward
	}
	ttl := max(ref.Expires.Sub(mr.c.Now()), time.Minute)
	mr.sendNegative(m, &wire.Record{TTL: slowpath.TTLMinutes(ttl), MaskLen: uint8(p.Bits()), Action: act,
		EID: slowpath.EIDAddress(iid, p.Addr())})
}

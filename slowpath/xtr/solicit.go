package xtr

import (
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/request"
	"github.com/rloc-router/rloc/wire"
)

// ITR-to-ITR map-cache solicitation (LISP-MSX Map-Solicit-Request /
// Map-Solicit-Response, docs/solicit.md), with ITRConfig.Solicit.
//
// Answering: a Map-Solicit-Request is taken only from a configured peer
// (by source address) and only when it verifies with that peer's key;
// anything else is dropped and counted. The first page of a solicitation
// (empty cookie) snapshots the positive map-cache entries (CacheLister),
// within the request's scope, and opens the peer's one session; each page
// answered carries the cookie of the next: the session's random
// identifier and the page number. A page request is answered when its
// cookie names the session's next page, or the page just sent with the
// nonce that asked for it (a retransmission: the same records again); any
// other cookie, a first-page nonce seen before, or a new session sooner
// than MinInterval after the last is refused and counted. Every TTL sent
// is the minutes left in the responder's map-cache.
//
// Requesting: with OnStart, the ITR asks every peer for its map-cache as it
// starts, one page request at a time per peer, each with a fresh nonce,
// retransmitted by a request.Tracker. Records are installed as from a
// Map-Reply, with the TTL the peer had left, their locators' source shown
// as "solicit", and then kept fresh exactly like resolved mappings: at
// their refresh time a mapping still in use is resolved by Map-Request and
// replaced by the mapping system's answer. A mapping the ITR already holds
// from the mapping system is never replaced by a copy, nor a copy by an
// older one (one that expires sooner). Until every peer finished (or
// HoldMisses passed) a miss waits instead of sending a Map-Request; a miss
// that a copy answered sends none at all.

// CacheLister lists the map-cache for the peers' solicitations. The
// Installer of an ITR with solicitation implements it; without it the ITR
// answers with empty pages.
type CacheLister interface {
	// CachedMappings appends to out the positive mappings of the map-cache
	// (not static ones), each with the time left before it expires as its
	// TTL, and returns out.
	CachedMappings(out []slowpath.Resolved) []slowpath.Resolved
}

// SolicitStats counts the ITR's solicitation work, both sides.
type SolicitStats struct {
	// Sessions counts solicitations answered (first pages), PagesSent the
	// pages sent (retransmissions included), PagesResent the pages sent
	// again for a retransmitted request, RecordsSent their records.
	Sessions, PagesSent, PagesResent, RecordsSent uint64
	// UnknownPeer counts requests from addresses that are not peers,
	// BadAuth requests or responses that failed authentication, BadParse
	// those that did not parse, BadCookie page requests whose cookie names
	// no page of the peer's session (unknown, finished, replayed),
	// NonceReplay first pages with a nonce seen before, RateLimited first
	// pages sooner than MinInterval after the last, Truncated snapshots cut
	// at MaxEntries. None of those is answered.
	UnknownPeer, BadAuth, BadParse, BadCookie, NonceReplay, RateLimited, Truncated uint64
	// Solicitations counts the solicitations this ITR started, Completed
	// those that received every page, Failed those a page request of gave
	// up; PagesReceived the pages accepted.
	Solicitations, Completed, Failed, PagesReceived uint64
	// Installed counts records installed from peers, Kept those skipped
	// because the ITR held the mapping already from the mapping system or
	// from a copy that lasts longer, Refused records that were negative,
	// outside the scope asked or beyond MaxEntries, Unmatched responses
	// that answer no outstanding request.
	Installed, Kept, Refused, Unmatched uint64
	// RequestsSent and Retransmits count page requests sent.
	RequestsSent, Retransmits uint64
	// MissesHeld counts misses that waited for the solicitation at start,
	// MissesAnswered those among them a copy answered (no Map-Request),
	// MissesResolved those then resolved by Map-Request.
	MissesHeld, MissesAnswered, MissesResolved uint64
	// Holding is true while misses wait; Copies is the number of mappings
	// the ITR holds from a peer and has not refreshed from the mapping
	// system yet.
	Holding bool
	Copies  int
}

// SolicitPeerState is the solicitation state of one peer, for the API.
type SolicitPeerState struct {
	// Addr is the peer's control address.
	Addr netip.AddrPort
	// Pull is the state of this ITR's solicitation of the peer: "" (none),
	// "pulling", "done" or "failed"; Pages and Installed what it got.
	Pull             string
	Pages, Installed int
	// Session is true while the peer pages through this ITR's map-cache;
	// SessionPages and SessionEntries are its progress.
	Session                      bool
	SessionPages, SessionEntries int
}

// maxHeldMisses bounds the misses that wait for the solicitation; later
// ones are resolved at once.
const maxHeldMisses = 4096

// seenNonces is how many first-page nonces are remembered per peer.
const seenNonces = 64

// cookieLen is the session identifier and the page number.
const cookieLen = 12

type solState struct {
	cfg    *slowpath.SolicitConfig
	lister CacheLister
	tr     *request.Tracker
	stats  SolicitStats

	sessions map[netip.Addr]*solSession
	last     map[netip.Addr]time.Time    // last session start per peer
	seen     map[netip.Addr][]wire.Nonce // first-page nonces per peer, ring
	pulls    map[netip.Addr]*solPull     // this ITR's solicitations
	held     map[slowpath.EIDPrefix]netip.Addr
	holdT    *slowpath.Timer
	holding  bool
	req      wire.MapSolicitRequest
	resp     wire.MapSolicitResponse
	buf      []byte
	rec      wire.Record
	snapshot []slowpath.Resolved
}

// solSession is a peer paging through this ITR's map-cache.
type solSession struct {
	peer    *slowpath.SolicitPeer
	id      [8]byte
	entries []slowpath.Resolved // the snapshot, TTLs as left at taken
	taken   time.Time
	page    uint32     // the next page
	pos     int        // first entry of the next page
	lastPos int        // first entry of the page sent last
	lastN   wire.Nonce // the nonce that asked for it
	expire  *slowpath.Timer
}

// solPull is this ITR's solicitation of one peer.
type solPull struct {
	peer      *slowpath.SolicitPeer
	cookie    []byte
	state     string
	pages     int
	installed int
}

// newSolState builds the solicitation state and registers the handlers.
func (t *ITR) newSolState(cfg *slowpath.SolicitConfig) {
	s := &solState{cfg: cfg,
		sessions: map[netip.Addr]*solSession{}, last: map[netip.Addr]time.Time{},
		seen: map[netip.Addr][]wire.Nonce{}, pulls: map[netip.Addr]*solPull{},
		held: map[slowpath.EIDPrefix]netip.Addr{}}
	s.lister, _ = t.inst.(CacheLister)
	s.tr = request.New(t.c.Clock(), t.c, request.Config{Interval: cfg.RetransmitInterval, MaxTries: cfg.MaxTries})
	t.sol = s
	t.c.Handle(slowpath.SharedRoute(wire.SubTypeMapSolicitRequest), t.onSolicitRequest)
	t.c.Handle(slowpath.SharedRoute(wire.SubTypeMapSolicitResponse), t.onSolicitResponse)
	if cfg.OnStart {
		t.c.OnStart(t.solicitAll)
	}
}

// signed appends m (a request or response) signed with the peer's key.
func (s *solState) signed(m interface {
	Append([]byte) ([]byte, error)
}, p *slowpath.SolicitPeer) ([]byte, error) {
	b, err := m.Append(s.buf[:0])
	if err != nil {
		return nil, err
	}
	s.buf = b
	return b, wire.SignSolicit(b, []byte(p.Key.Secret))
}

// solPeer finds the peer m comes from and checks its authentication with
// the peer's key, counting what fails.
func (t *ITR) solPeer(m *slowpath.Msg, a *wire.Auth) *slowpath.SolicitPeer {
	s := t.sol
	st := t.c.Msg(wire.TypeSharedExtension)
	p := s.cfg.Peer(m.Src.Addr())
	if p == nil {
		s.stats.UnknownPeer++
		st.Rejected++
		return nil
	}
	if a.KeyID != p.Key.KeyID || a.Alg != p.Key.Alg || wire.VerifySolicit(m.Raw, []byte(p.Key.Secret)) != nil {
		s.stats.BadAuth++
		st.BadAuth++
		t.c.Log().Debug("solicitation message authentication failed", "src", m.Src)
		return nil
	}
	return p
}

// onSolicitRequest answers a peer's Map-Solicit-Request with a page of
// the map-cache.
func (t *ITR) onSolicitRequest(m *slowpath.Msg) bool {
	s := t.sol
	st := t.c.Msg(wire.TypeSharedExtension)
	if s.cfg.Peer(m.Src.Addr()) == nil {
		// Not parsed at all: only peers are worth the work.
		s.stats.UnknownPeer++
		st.Rejected++
		return true
	}
	req := &s.req
	if err := req.Parse(m.Raw); err != nil {
		s.stats.BadParse++
		st.BadParse++
		return true
	}
	p := t.solPeer(m, &req.Auth)
	if p == nil {
		return true
	}
	now := t.c.Now()
	a := p.Addr.Addr()
	ss := s.sessions[a]
	var from, page int
	resend := false
	switch {
	case len(req.Cookie) == 0 && ss != nil && ss.page == 1 && ss.lastN == req.Nonce:
		from, page, resend = ss.lastPos, 0, true // the first request again
	case len(req.Cookie) == 0:
		if slices.Contains(s.seen[a], req.Nonce) {
			s.stats.NonceReplay++
			st.Rejected++
			return true
		}
		if at, ok := s.last[a]; ok && now.Sub(at) < s.cfg.MinInterval {
			s.stats.RateLimited++
			st.Rejected++
			return true
		}
		s.last[a] = now
		s.remember(a, req.Nonce)
		ss = t.openSession(p, req)
		from, page = 0, 0
	default:
		pg, ok := ss.cookiePage(req.Cookie)
		switch {
		case ok && pg == ss.page:
			from, page = ss.pos, int(pg)
		case ok && pg+1 == ss.page && pg > 0 && req.Nonce == ss.lastN:
			from, page, resend = ss.lastPos, int(pg), true
		default:
			s.stats.BadCookie++
			st.Rejected++
			return true
		}
	}
	ss.expire.Reset(now.Add(s.cfg.SessionTimeout))
	end, b, err := t.solPage(m, ss, req, from, page)
	if err != nil {
		st.SendErrors++
		return true
	}
	ss.lastPos, ss.lastN = from, req.Nonce
	if !resend {
		ss.pos, ss.page = end, uint32(page+1)
	}
	if resend {
		s.stats.PagesResent++
	}
	s.stats.PagesSent++
	s.stats.RecordsSent += uint64(len(s.resp.Records))
	_ = t.c.Send(m.Src, b, wire.TypeSharedExtension)
	return true
}

// remember records a first-page nonce of peer a.
func (s *solState) remember(a netip.Addr, n wire.Nonce) {
	r := s.seen[a]
	if len(r) >= seenNonces {
		r = r[1:]
	}
	s.seen[a] = append(r, n)
}

// openSession starts the peer's session, replacing any earlier one, with a
// snapshot of the map-cache within the request's scope.
func (t *ITR) openSession(p *slowpath.SolicitPeer, req *wire.MapSolicitRequest) *solSession {
	s := t.sol
	a := p.Addr.Addr()
	if old := s.sessions[a]; old != nil {
		old.expire.Stop()
	}
	ss := &solSession{peer: p, taken: t.c.Now()}
	_, _ = rand.Read(ss.id[:])
	if s.lister != nil {
		s.snapshot = s.lister.CachedMappings(s.snapshot[:0])
	}
	for i := range s.snapshot {
		e := &s.snapshot[i]
		if !req.All && !inScope(req.Scope, e.EIDPrefix) {
			continue
		}
		if len(ss.entries) >= s.cfg.MaxEntries {
			s.stats.Truncated++
			break
		}
		e.RLOCs = slices.Clone(e.RLOCs)
		e.Record = nil
		ss.entries = append(ss.entries, *e)
	}
	clear(s.snapshot)
	slices.SortFunc(ss.entries, func(x, y slowpath.Resolved) int { return compareKeys(x.EIDPrefix, y.EIDPrefix) })
	ss.expire = t.c.Schedule(t.c.Now().Add(s.cfg.SessionTimeout), func(time.Time) {
		if s.sessions[a] == ss {
			delete(s.sessions, a)
		}
	})
	s.sessions[a] = ss
	s.stats.Sessions++
	return ss
}

// compareKeys orders EID prefixes by instance-ID, address and length.
func compareKeys(x, y slowpath.EIDPrefix) int {
	if x.IID != y.IID {
		return int(int64(x.IID) - int64(y.IID))
	}
	if c := x.Prefix.Addr().Compare(y.Prefix.Addr()); c != 0 {
		return c
	}
	return x.Prefix.Bits() - y.Prefix.Bits()
}

// inScope reports whether k lies inside one of the scope's prefixes
// (mask length 0: the whole instance-ID).
func inScope(scope []wire.EIDRecord, k slowpath.EIDPrefix) bool {
	for i := range scope {
		iid, p, ok := scope[i].Prefix()
		if !ok || iid != k.IID {
			continue
		}
		if p.Bits() == 0 || (p.Addr().Is4() == k.Prefix.Addr().Is4() && p.Bits() <= k.Prefix.Bits() && p.Contains(k.Prefix.Addr())) {
			return true
		}
	}
	return false
}

// cookiePage returns the page a cookie of this session names.
func (ss *solSession) cookiePage(c []byte) (uint32, bool) {
	if ss == nil || len(c) != cookieLen || [8]byte(c[:8]) != ss.id {
		return 0, false
	}
	return binary.BigEndian.Uint32(c[8:]), true
}

// solPage encodes the page of ss starting at entry from, as many records
// as the request, PageRecords and PageBytes allow, and returns the entry
// after the last one sent with the signed message.
func (t *ITR) solPage(m *slowpath.Msg, ss *solSession, req *wire.MapSolicitRequest, from, page int) (int, []byte, error) {
	s := t.sol
	maxRec := s.cfg.PageRecords
	if req.MaxRecords > 0 {
		maxRec = min(maxRec, int(req.MaxRecords))
	}
	r := &s.resp
	*r = wire.MapSolicitResponse{Nonce: req.Nonce, Records: r.Records[:0], Cookie: r.Cookie[:0]}
	r.Auth = ss.peer.Key.Auth()
	r.Responder = t.responder(m)
	size := r.Len() + cookieLen
	age := t.c.Now().Sub(ss.taken)
	i := from
	for ; i < len(ss.entries) && len(r.Records) < maxRec; i++ {
		e := &ss.entries[i]
		left := e.TTL - age
		if left < time.Minute {
			continue // about to expire here too: not worth copying
		}
		rec := recordOf(e, left, &s.rec)
		if size+rec.Len() > s.cfg.PageBytes && len(r.Records) > 0 {
			break
		}
		size += rec.Len()
		r.Records = append(r.Records, *rec)
	}
	if i < len(ss.entries) {
		r.More = true
		r.Cookie = append(r.Cookie, ss.id[:]...)
		r.Cookie = binary.BigEndian.AppendUint32(r.Cookie, uint32(page+1))
	}
	b, err := s.signed(r, ss.peer)
	return i, b, err
}

// responder is the address a response names as its sender: where the
// request was sent to, else the first ITR-RLOC.
func (t *ITR) responder(m *slowpath.Msg) wire.Address {
	if a := m.Local(); a.IsValid() && !a.IsUnspecified() {
		return wire.IPAddress(a.Unmap())
	}
	if len(t.itrRLOCs) > 0 {
		return t.itrRLOCs[0]
	}
	return wire.Address{}
}

// recordOf fills rec with the mapping e and ttl left, as a Map-Reply
// record (RFC 9301 §5.4); its locators are fresh slices.
func recordOf(e *slowpath.Resolved, left time.Duration, rec *wire.Record) *wire.Record {
	*rec = wire.Record{
		TTL:           uint32(min(left/time.Minute, time.Duration(wire.TTLReceiverDecides-1))),
		MaskLen:       uint8(e.Prefix.Bits()),
		Authoritative: e.Authoritative,
		MapVersion:    e.MapVersion,
		EID:           slowpath.EIDAddress(e.IID, e.Prefix.Addr()),
		Locators:      make([]wire.Locator, 0, len(e.RLOCs)),
	}
	for _, l := range e.RLOCs {
		rec.Locators = append(rec.Locators, wire.Locator{Priority: l.Priority, Weight: l.Weight,
			MPriority: l.MPriority, MWeight: l.MWeight, Reachable: l.Reachable, Address: wire.IPAddress(l.Addr)})
	}
	return rec
}

// solicitAll asks every peer for its map-cache and holds misses until
// every peer finished or HoldMisses passed.
func (t *ITR) solicitAll() {
	s := t.sol
	s.holding = true
	s.holdT = t.c.Schedule(t.c.Now().Add(s.cfg.HoldMisses), func(time.Time) { t.endHold() })
	for i := range s.cfg.Peers {
		p := &s.cfg.Peers[i]
		s.pulls[p.Addr.Addr()] = &solPull{peer: p, state: "pulling"}
		s.stats.Solicitations++
	}
	// Every pull exists before the first request: one that fails at once
	// must not end the hold while others have not started.
	for i := range s.cfg.Peers {
		t.solRequest(s.pulls[s.cfg.Peers[i].Addr.Addr()])
	}
}

// solRequest asks pl's peer for the page its cookie names (the first
// without) with a fresh nonce.
func (t *ITR) solRequest(pl *solPull) {
	s := t.sol
	n := s.tr.NewNonce()
	req := &wire.MapSolicitRequest{Nonce: n, All: len(s.cfg.Scope) == 0, MaxRecords: uint16(s.cfg.PageRecords),
		Auth: pl.peer.Key.Auth(), Requester: t.requester(pl.peer.Addr.Addr()), Cookie: pl.cookie}
	for _, e := range s.cfg.Scope {
		req.Scope = append(req.Scope, wire.EIDRecord{MaskLen: uint8(e.Prefix.Bits()), EID: slowpath.EIDAddress(e.IID, e.Prefix.Addr())})
	}
	b, err := s.signed(req, pl.peer)
	if err == nil {
		spec := request.Spec{Type: wire.TypeSharedExtension, Targets: []netip.AddrPort{pl.peer.Addr},
			MatchSource: true, Value: pl, Done: t.solDone}
		_, err = s.tr.Start(&spec, n, b)
	}
	if err != nil {
		t.c.Msg(wire.TypeSharedExtension).SendErrors++
		t.pullEnded(pl, "failed")
	}
}

// requester is the ITR-RLOC of the peer's family, else the first.
func (t *ITR) requester(peer netip.Addr) wire.Address {
	for _, a := range t.cfg.ITRRLOCs {
		if a.Unmap().Is4() == peer.Is4() {
			return wire.IPAddress(a.Unmap())
		}
	}
	if len(t.itrRLOCs) > 0 {
		return t.itrRLOCs[0]
	}
	return wire.Address{}
}

// solDone ends a page request; one that gave up fails its solicitation.
func (t *ITR) solDone(q *request.Request, o request.Outcome) {
	if o == request.GaveUp {
		pl := q.Value().(*solPull)
		t.c.Log().Warn("peer ITR did not answer the map-cache solicitation", "peer", pl.peer.Addr, "pages", pl.pages)
		t.pullEnded(pl, "failed")
	}
}

// onSolicitResponse installs a page of a peer's map-cache and asks for the
// next.
func (t *ITR) onSolicitResponse(m *slowpath.Msg) bool {
	s := t.sol
	st := t.c.Msg(wire.TypeSharedExtension)
	r := &s.resp
	if err := r.Parse(m.Raw); err != nil {
		s.stats.BadParse++
		st.BadParse++
		return true
	}
	if t.solPeer(m, &r.Auth) == nil {
		return true
	}
	q, status := s.tr.Match(m.Src, r.Nonce)
	if status != request.Matched {
		s.stats.Unmatched++
		st.Ignored++
		return true
	}
	s.tr.Complete(q)
	pl := q.Value().(*solPull)
	pl.pages++
	s.stats.PagesReceived++
	for i := range r.Records {
		t.solInstall(pl, &r.Records[i])
	}
	if r.More {
		pl.cookie = append(pl.cookie[:0], r.Cookie...)
		t.solRequest(pl)
		return true
	}
	t.pullEnded(pl, "done")
	return true
}

// solInstall installs one record of a peer's map-cache unless the ITR
// holds the mapping already from the mapping system, or a copy that lasts
// longer.
func (t *ITR) solInstall(pl *solPull, rec *wire.Record) {
	s := t.sol
	iid, p, ok := rec.Prefix()
	if !ok || len(rec.Locators) == 0 || rec.TTL == 0 || pl.installed >= s.cfg.MaxEntries ||
		(len(s.cfg.Scope) > 0 && !inConfigScope(s.cfg.Scope, slowpath.EIDPrefix{IID: iid, Prefix: p})) {
		s.stats.Refused++
		return
	}
	key := slowpath.EIDPrefix{IID: iid, Prefix: p}
	ttl := slowpath.TTLDuration(rec.TTL, slowpath.ReceiverDecidesTTL)
	if ent := t.entries[key]; ent != nil && (!ent.solicited || !ent.expires.Before(t.c.Now().Add(ttl))) {
		s.stats.Kept++
		return
	}
	t.installRecord(rec, key, true)
	pl.installed++
	s.stats.Installed++
}

// inConfigScope reports whether k lies in the configured scope.
func inConfigScope(scope []slowpath.EIDPrefix, k slowpath.EIDPrefix) bool {
	for _, e := range scope {
		if e.IID == k.IID && (e.Prefix.Bits() == 0 ||
			(e.Prefix.Addr().Is4() == k.Prefix.Addr().Is4() && e.Prefix.Bits() <= k.Prefix.Bits() && e.Prefix.Contains(k.Prefix.Addr()))) {
			return true
		}
	}
	return false
}

// pullEnded records the end of a solicitation and ends the hold when it
// was the last.
func (t *ITR) pullEnded(pl *solPull, state string) {
	s := t.sol
	if pl.state != "pulling" {
		return
	}
	pl.state = state
	if state == "done" {
		s.stats.Completed++
	} else {
		s.stats.Failed++
	}
	for _, o := range s.pulls {
		if o.state == "pulling" {
			return
		}
	}
	t.endHold()
}

// holdMiss keeps a miss for the end of the solicitation; it reports false
// when misses are not held (any more, or too many).
func (t *ITR) holdMiss(key slowpath.EIDPrefix, src netip.Addr) bool {
	s := t.sol
	if s == nil || !s.holding {
		return false
	}
	if _, ok := s.held[key]; ok {
		return true
	}
	if len(s.held) >= maxHeldMisses {
		return false
	}
	s.held[key] = src
	s.stats.MissesHeld++
	return true
}

// endHold stops holding misses and resolves those no copy answered.
func (t *ITR) endHold() {
	s := t.sol
	if !s.holding {
		return
	}
	s.holding = false
	s.holdT.Stop()
	for key, src := range s.held {
		delete(s.held, key)
		if t.covering(key) != nil {
			s.stats.MissesAnswered++
			continue
		}
		s.stats.MissesResolved++
		if t.byEID[key] == nil {
			t.request(key, src, t.c.Now(), false, false)
		}
	}
}

// SolicitStats returns the solicitation counters (event loop only); zero
// without solicitation.
func (t *ITR) SolicitStats() SolicitStats {
	s := t.sol
	if s == nil {
		return SolicitStats{}
	}
	out := s.stats
	rs := s.tr.Stats()
	out.RequestsSent, out.Retransmits = rs.Sent, rs.Retransmits
	out.Holding = s.holding
	for _, e := range t.entries {
		if e.solicited {
			out.Copies++
		}
	}
	return out
}

// SolicitPeers returns the state of every configured peer (event loop
// only); nil without solicitation.
func (t *ITR) SolicitPeers() []SolicitPeerState {
	s := t.sol
	if s == nil {
		return nil
	}
	var out []SolicitPeerState
	for i := range s.cfg.Peers {
		p := &s.cfg.Peers[i]
		ps := SolicitPeerState{Addr: p.Addr}
		if pl := s.pulls[p.Addr.Addr()]; pl != nil {
			ps.Pull, ps.Pages, ps.Installed = pl.state, pl.pages, pl.installed
		}
		if ss := s.sessions[p.Addr.Addr()]; ss != nil {
			ps.Session, ps.SessionPages, ps.SessionEntries = true, int(ss.page), len(ss.entries)
		}
		out = append(out, ps)
	}
	return out
}

package msx

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"github.com/gaissmai/bart"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/slowpath/request"
	"github.com/rloc-router/rloc/wire"
)

// The requester side: holding a copy of a peer's table (copy mode).
//
// It subscribes first, then pulls the whole scope by bulk; notifications
// that arrive during the pull win over the pages (a page may be older).
// A completed pull sweeps what it did not bring (removed meanwhile). The
// copy is dropped when the peer stays silent for PeerTimeout, and pulled
// again once it answers; a renewal that the peer does not know (it
// restarted, or dropped our subscription after a lost notification) leads
// to a new subscription and a new pull.

// centry is one mapping of the copy.
type centry struct {
	key key
	// enc is the record as the owner sent it, ready for proxy replies.
	enc []byte
	// expires is when the owner's TTL runs out.
	expires time.Time
	// gen is the pull that last brought it; touched the pull during which
	// a notification last changed it.
	gen, touched uint64
	// sub and seq are the subscription and sequence number of the last
	// notification applied (older ones are stale).
	sub, seq uint32
	gone     bool
	// saved is the expiry last written to the store (persist.go).
	saved time.Time
}

// pulling is a bulk transfer under way.
type pulling struct {
	gen     uint64
	started time.Time
	r       *request.Request
}

// requester is an agreement's requester-side state.
type requester struct {
	copy map[key]*centry
	lpm  map[uint32]*bart.Table[*centry]
	// byName holds the live distinguished-name mappings.
	byName   map[slowpath.EIDName]*centry
	size     int
	complete bool
	gen      uint64
	pull     *pulling
	scope    []wire.EIDRecord
	subID    uint32
	subReq   *request.Request
	heard    time.Time
	needSync bool
	tr       *request.Tracker
	// out paces our page requests to the agreement's rate, which the peer
	// holds us to as well.
	out bucket
	// journal keeps the copy across restarts (persist.go), nil without a
	// state file; sv is the entry being written.
	journal regstore.Journal
	sv      regstore.Saved
}

// Values of the requester's requests.
type (
	subTag  struct{ a *agreement }
	pullTag struct{ a *agreement }
)

func (q *requester) init(a *agreement) {
	q.copy = map[key]*centry{}
	q.lpm = map[uint32]*bart.Table[*centry]{}
	q.byName = map[slowpath.EIDName]*centry{}
	for _, p := range a.cfg.PeerPrefixes {
		q.scope = append(q.scope, wire.EIDRecord{MaskLen: uint8(p.Prefix.Bits()), EID: slowpath.EIDAddress(p.IID, p.Prefix.Addr())})
	}
	for _, n := range a.cfg.PeerNames {
		q.scope = append(q.scope, wire.EIDRecord{EID: slowpath.NameAddress(n.IID, n.Name)})
	}
}

// start begins the copy: subscribe (when allowed) and pull; renewals at a
// third of the lifetime, the silence check at a quarter of PeerTimeout.
func (q *requester) start(a *agreement) {
	if a.cfg.Mode != slowpath.MSXModeCopy {
		return
	}
	x := a.x
	if a.cfg.Allows(slowpath.MSXSubscribe) {
		x.subscribe(a)
	} else {
		x.pullStart(a)
	}
	every := max(a.cfg.Lifetime/3, time.Second)
	var renew func(time.Time)
	renew = func(now time.Time) {
		if a.gone {
			return
		}
		x.c.Schedule(now.Add(every), renew)
		if a.cfg.Allows(slowpath.MSXSubscribe) {
			if q.subReq == nil {
				x.subscribe(a)
			}
		} else if q.pull == nil {
			x.pullStart(a) // no subscription: refresh by bulk
		}
	}
	x.c.Schedule(x.c.Now().Add(every), renew)
	check := max(a.cfg.PeerTimeout/4, time.Second)
	var age func(time.Time)
	age = func(now time.Time) {
		if a.gone {
			return
		}
		x.c.Schedule(now.Add(check), age)
		if !q.heard.IsZero() && now.Sub(q.heard) > a.cfg.PeerTimeout && (q.size > 0 || len(q.copy) > 0) {
			a.stats.AgedOut++
			x.log.Warn("peer silent: copy dropped", "agreement", a.cfg.Name, "mappings", q.size, "silent", now.Sub(q.heard))
			q.drop()
		}
	}
	x.c.Schedule(x.c.Now().Add(check), age)
}

// drop forgets the copy; the next answer from the peer resyncs it.
func (q *requester) drop() {
	for k := range q.copy {
		q.forget(k)
	}
	clear(q.copy)
	clear(q.lpm)
	clear(q.byName)
	q.size, q.complete, q.needSync = 0, false, true
}

// subscribe sends (or renews) the subscription to the peer's table.
func (x *MSX) subscribe(a *agreement) {
	q := &a.req
	q.tr.Cancel(q.subReq)
	n := q.tr.NewNonce()
	sub := wire.MapSubscribe{Nonce: n, All: len(q.scope) == 0, Auth: x.authFor(a), SubscriptionID: q.subID,
		Lifetime: uint32(a.cfg.Lifetime / time.Second), Filters: q.scope}
	b, ok := x.encode(a, sub.Append)
	if !ok {
		return
	}
	spec := request.Spec{Type: wire.TypeSharedExtension, Targets: a.cfg.Peers, Value: subTag{a}, Done: x.reqDone}
	var err error
	if q.subReq, err = q.tr.Start(&spec, n, b); err == nil {
		a.stats.Subscribes++
	}
}

// reqDone ends a Map-Subscribe or a page request.
func (x *MSX) reqDone(r *request.Request, o request.Outcome) {
	switch v := r.Value().(type) {
	case subTag:
		if v.a.req.subReq == r {
			v.a.req.subReq = nil
		}
	case pullTag:
		q := &v.a.req
		if q.pull != nil && q.pull.r == r {
			q.pull.r = nil
			if o == request.GaveUp {
				// The peer went silent in the middle: start over at the
				// next renewal (a cookie does not outlive its lifetime).
				v.a.stats.PullRestarts++
				q.pull, q.needSync = nil, true
			}
		}
	}
}

// onSubscribeAck takes the peer's answer to our Map-Subscribe.
func (x *MSX) onSubscribeAck(m *slowpath.Msg) bool {
	ack := &x.sack
	a, st := x.accept(m, ack.Parse)
	if a == nil {
		return true
	}
	q := &a.req
	r, status := q.tr.Match(m.Src, ack.Nonce)
	if status != request.Matched {
		st.Ignored++
		return true
	}
	if _, ok := r.Value().(subTag); !ok {
		st.Ignored++
		return true
	}
	if !a.verify(m.Raw, &ack.Auth) {
		a.stats.ReplyBadAuth++
		st.BadAuth++
		return true // the retransmission may bring the genuine one
	}
	q.tr.Complete(r)
	q.heard = x.c.Now()
	switch ack.Status {
	case wire.SubscribeAccepted, wire.SubscribePartial:
		fresh := ack.SubscriptionID != q.subID
		q.subID = ack.SubscriptionID
		if fresh || q.needSync || (!q.complete && q.pull == nil) {
			x.pullStart(a)
		}
	case wire.SubscribeUnknownID:
		// The peer forgot us (restart, or a notification it could not
		// deliver): subscribe again and resync.
		a.stats.Resubscribes++
		q.subID = 0
		x.subscribe(a)
	default:
		a.stats.SubRefused++
		x.log.Warn("peer refused the subscription", "agreement", a.cfg.Name, "status", ack.Status)
		if !q.complete && q.pull == nil {
			x.pullStart(a)
		}
	}
	return true
}

// pullStart starts a bulk transfer of the peer's scope from the first page.
func (x *MSX) pullStart(a *agreement) {
	q := &a.req
	if q.pull != nil {
		q.tr.Cancel(q.pull.r)
	}
	q.gen++
	q.pull = &pulling{gen: q.gen, started: x.c.Now()}
	a.stats.Pulls++
	x.pullPage(a, nil)
}

// pullPage asks for the page after cookie (nil: the first).
func (x *MSX) pullPage(a *agreement, cookie []byte) {
	q := &a.req
	n := q.tr.NewNonce()
	req := wire.MapBulkRequest{Nonce: n, All: len(q.scope) == 0, Auth: x.authFor(a), Cookie: cookie, Scope: q.scope}
	b, ok := x.encode(a, req.Append)
	if !ok {
		q.pull = nil
		return
	}
	spec := request.Spec{Type: wire.TypeSharedExtension, Targets: a.cfg.Peers, Value: pullTag{a}, Done: x.reqDone}
	var err error
	if q.pull.r, err = q.tr.Start(&spec, n, b); err != nil {
		q.pull = nil
	}
}

// nextPage asks for the page after cookie now, or when the agreement's
// rate allows (the peer would drop a request beyond it).
func (x *MSX) nextPage(a *agreement, cookie []byte) {
	q := &a.req
	ok, wait := q.out.take(x.c.Now(), a.cfg.Rate, a.cfg.Burst)
	if ok {
		x.pullPage(a, cookie)
		return
	}
	pl, ck := q.pull, slices.Clone(cookie)
	x.c.Schedule(x.c.Now().Add(wait), func(time.Time) {
		if q.pull == pl {
			q.out.take(x.c.Now(), a.cfg.Rate, a.cfg.Burst)
			x.pullPage(a, ck)
		}
	})
}

// onBulkReply takes a page of our bulk transfer.
func (x *MSX) onBulkReply(m *slowpath.Msg) bool {
	rep := &x.brepIn
	a, st := x.accept(m, rep.Parse)
	if a == nil {
		return true
	}
	q := &a.req
	r, status := q.tr.Match(m.Src, rep.Nonce)
	if status != request.Matched || q.pull == nil || q.pull.r != r {
		st.Ignored++
		return true
	}
	if rep.Auth.Alg == wire.AuthNone || !a.verify(m.Raw, &rep.Auth) {
		a.stats.ReplyBadAuth++
		st.BadAuth++
		return true
	}
	q.tr.Complete(r)
	now := x.c.Now()
	q.heard = now
	a.stats.PagesIn++
	for i := range rep.Records {
		q.apply(a, &rep.Records[i], now, false, 0, 0)
	}
	if rep.More {
		x.nextPage(a, rep.Cookie)
		return true
	}
	// The last page: what the pull did not bring is gone at the peer.
	g := q.pull.gen
	for k, e := range q.copy {
		if e.gen < g && e.touched < g {
			if q.remove(e) {
				x.published(k, nil)
			}
			q.forget(k)
			delete(q.copy, k)
		}
	}
	q.pull, q.complete, q.needSync = nil, true, false
	a.stats.PullsDone++
	return true
}

// apply puts one record of the peer into the copy: a mapping, or (no
// locators, TTL 0) its withdrawal. From a notification (notify set) it
// wins over the pages of the pull under way; older notifications are stale.
func (q *requester) apply(a *agreement, rec *wire.Record, now time.Time, notify bool, sub, seq uint32) bool {
	k, ok := recordKey(rec)
	if !ok || !q.inScope(a, k) {
		a.stats.RecordsBad++
		return false
	}
	e := q.copy[k]
	gen := q.gen
	if !notify {
		a.stats.RecordsIn++
		if e != nil && q.pull != nil && e.touched == q.pull.gen {
			e.gen = gen
			return true // a notification during this pull is newer
		}
	} else {
		if e != nil && e.sub == sub && seq <= e.seq {
			return false
		}
	}
	if e == nil {
		e = &centry{key: k, gone: true}
		q.copy[k] = e
	}
	if notify {
		e.sub, e.seq = sub, seq
		if q.pull != nil {
			e.touched = q.pull.gen
		}
	} else {
		e.gen = gen
	}
	if rec.TTL == 0 && len(rec.Locators) == 0 {
		if q.remove(e) {
			a.x.published(k, nil)
		}
		q.forget(k)
		return true
	}
	changed, err := q.store(a.x, e, rec)
	if err != nil {
		a.stats.RecordsBad++
		return false
	}
	ttl := slowpath.TTLDuration(rec.TTL, time.Minute)
	e.expires = now.Add(ttl)
	q.save(a, e, changed, ttl)
	if changed {
		defer a.x.published(k, rec)
	}
	if e.gone {
		q.insert(e)
	}
	return true
}

// insert makes e (not live) live: in the lookups and counted.
func (q *requester) insert(e *centry) {
	e.gone = false
	q.size++
	if e.key.name != "" {
		q.byName[e.key.eidName()] = e
		return
	}
	t := q.lpm[e.key.IID]
	if t == nil {
		t = new(bart.Table[*centry])
		q.lpm[e.key.IID] = t
	}
	t.Insert(e.key.Prefix, e)
}

// remove takes e out of the lookups (it stays as a tombstone until the next
// pull sweeps it, so that a stale notification cannot bring it back); it
// reports whether e was live.
func (q *requester) remove(e *centry) bool {
	if e.gone {
		return false
	}
	e.gone = true
	if e.key.name != "" {
		delete(q.byName, e.key.eidName())
	} else if t := q.lpm[e.key.IID]; t != nil {
		t.Delete(e.key.Prefix)
	}
	q.size--
	return true
}

// inScope reports whether k lies in the peer's prefixes and names (all
// when none are configured).
func (q *requester) inScope(a *agreement, k key) bool {
	if len(a.cfg.PeerPrefixes) == 0 && len(a.cfg.PeerNames) == 0 {
		return true
	}
	for _, p := range a.cfg.PeerPrefixes {
		if (scopeEntry{iid: p.IID, prefix: p.Prefix.Masked()}).covers(k) {
			return true
		}
	}
	for _, n := range a.cfg.PeerNames {
		if (scopeEntry{iid: n.IID, name: n.Name}).covers(k) {
			return true
		}
	}
	return false
}

// onNotify takes a Map-Notify of our subscription from a peer: verified
// with the agreement's key, applied unless stale, acknowledged. Map-Notifies
// from others are left to the roles after it.
func (x *MSX) onNotify(m *slowpath.Msg) bool {
	a := x.peer(m.Src)
	if a == nil || a.cfg.Mode != slowpath.MSXModeCopy {
		return false
	}
	st := x.c.Msg(wire.TypeMapNotify)
	n, err := m.MapNotify()
	if err != nil {
		st.BadParse++
		return true
	}
	q := &a.req
	id, seq := binary.BigEndian.Uint32(n.Nonce[:4]), binary.BigEndian.Uint32(n.Nonce[4:])
	if q.subID == 0 || id != q.subID {
		a.stats.NotifyUnknown++
		st.Ignored++
		return true
	}
	key, v, err := verifyKey(m.Raw, &n.Auth, a)
	if err != nil {
		a.stats.NotifyBadAuth++
		st.BadAuth++
		return true
	}
	now := x.c.Now()
	q.heard = now
	applied, stale := 0, 0
	for i := range n.Records {
		if q.apply(a, &n.Records[i], now, true, id, seq) {
			applied++
		} else {
			stale++
		}
	}
	switch {
	case applied > 0:
		a.stats.NotifiesIn++
	case stale > 0:
		a.stats.NotifyDuplicates++
	}
	x.nack = wire.MapNotifyAck(*n)
	x.nack.Auth = key.Auth(&v, &x.auth)
	b, err := x.nack.AppendSigned(x.buf[:0], key.Secret)
	x.nack.Records = nil
	if err != nil {
		x.c.Msg(wire.TypeMapNotifyAck).SendErrors++
		return true
	}
	x.buf = b
	x.c.Send(m.Src, b, wire.TypeMapNotifyAck)
	return true
}

// verifyKey checks a Map-Notify or Map-Notify-Ack with a's key.
func verifyKey(raw []byte, au *wire.Auth, a *agreement) (*regstore.Key, wire.AuthVariant, error) {
	return regstore.Verify(raw, au, []regstore.Key{a.key})
}

// answer sends a proxy Map-Reply from the copy for addr, with the owner's
// record (and TTL); false when the copy has no live mapping for it.
func (q *requester) answer(a *agreement, m *slowpath.Msg, iid uint32, addr netip.Addr) bool {
	t := q.lpm[iid]
	if t == nil {
		return false
	}
	e, ok := t.Lookup(addr)
	return ok && q.reply(a, m, e)
}

// reply sends a proxy Map-Reply from the copy's entry e, with the owner's
// record (and TTL); false when its TTL ran out.
func (q *requester) reply(a *agreement, m *slowpath.Msg, e *centry) bool {
	x := a.x
	if !x.c.Now().Before(e.expires) {
		return false
	}
	b := slowpath.AppendReplyHeader(x.buf[:0], m.Request.Nonce)
	b = append(b, e.enc...)
	x.buf = b
	x.c.Send(x.c.ReplyTarget(m.Request.ITRRLOCs, m.Port, m.Src), b, wire.TypeMapReply)
	a.stats.Answered++
	return true
}

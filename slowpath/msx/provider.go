package msx

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/request"
	"github.com/rloc-router/rloc/wire"
)

// The provider side: serving the local Map-Server's table to a peer.

const (
	// maxUsedCookies bounds the table of cookie serials seen (replay
	// protection); beyond it, after expired ones are swept, a request with
	// a new cookie is refused (Overloaded).
	maxUsedCookies = 1 << 16
	// maxScan bounds the keys one page request walks, so that a sparse
	// scope cannot make one request walk the whole table.
	maxScan = 1 << 16
	// maxRecent bounds the Map-Subscribe nonces remembered per agreement
	// (a retransmitted request is answered again, not granted twice).
	maxRecent = 256
	// maxLifetime caps the granted subscription lifetime.
	maxLifetime = time.Hour
)

// provider is an agreement's provider-side state.
type provider struct {
	subs    map[uint32]*psub
	recent  map[wire.Nonce]uint32
	recentQ []wire.Nonce
	used    map[uint64]usedCookie
	serial  uint64
	notify  *request.Tracker
}

type usedCookie struct {
	nonce   wire.Nonce
	expires time.Time
}

// psub is a peer's subscription held here.
type psub struct {
	id      uint32
	a       *agreement
	dst     netip.AddrPort
	sc      scope
	expires time.Time
	timer   *slowpath.Timer
	seq     uint32
	pending map[key]*request.Request
}

// pnote is the Value of a pending Map-Notify.
type pnote struct {
	s *psub
	k key
}

func (p *provider) init() {
	p.subs = map[uint32]*psub{}
	p.recent = map[wire.Nonce]uint32{}
	p.used = map[uint64]usedCookie{}
	p.serial = rand.Uint64()
}

// onSubscribe takes a Map-Subscribe from a peer (docs/interconnect.md).
// Unauthenticated ones and those from no agreement's peer are dropped
// without an answer (nothing is reflected to a forged source); the others
// are answered with a signed Map-Subscribe-Ack.
func (x *MSX) onSubscribe(m *slowpath.Msg) bool {
	req := &x.subm
	a, st := x.accept(m, req.Parse)
	if a == nil {
		return true
	}
	if !a.verify(m.Raw, &req.Auth) {
		a.stats.Unauthenticated++
		st.BadAuth++
		return true
	}
	a.req.heard = x.c.Now()
	if !a.allow(x.c.Now()) {
		st.RateLimited++
		return true
	}
	p := &a.prov
	if id, ok := p.recent[req.Nonce]; ok {
		// A retransmission: the Ack was lost. Answer as before.
		if s := p.subs[id]; s != nil {
			x.sendAck(a, m.Src, req.Nonce, wire.SubscribeAccepted, id, uint32(s.expires.Sub(x.c.Now())/time.Second))
		} else {
			x.sendAck(a, m.Src, req.Nonce, wire.SubscribeUnknownID, id, 0)
		}
		return true
	}
	if !a.cfg.Allows(slowpath.MSXSubscribe) || x.table == nil {
		a.stats.Denied++
		st.Rejected++
		x.sendAck(a, m.Src, req.Nonce, wire.SubscribeDenied, req.SubscriptionID, 0)
		return true
	}
	now := x.c.Now()
	lt := min(time.Duration(req.Lifetime)*time.Second, maxLifetime)
	switch {
	case req.Lifetime == 0:
		s := p.subs[req.SubscriptionID]
		if s == nil {
			a.stats.SubUnknown++
			x.sendAck(a, m.Src, req.Nonce, wire.SubscribeUnknownID, req.SubscriptionID, 0)
			return true
		}
		x.dropSub(s)
		a.stats.Cancelled++
		x.sendAck(a, m.Src, req.Nonce, wire.SubscribeAccepted, s.id, 0)
	case req.SubscriptionID != 0:
		s := p.subs[req.SubscriptionID]
		if s == nil {
			a.stats.SubUnknown++
			x.sendAck(a, m.Src, req.Nonce, wire.SubscribeUnknownID, req.SubscriptionID, 0)
			return true
		}
		s.dst = m.Src
		s.expires = now.Add(lt)
		s.timer.Reset(s.expires)
		a.stats.Renewed++
		x.sendAck(a, m.Src, req.Nonce, wire.SubscribeAccepted, s.id, uint32(lt/time.Second))
	default:
		rs, bad := requestedScope(req.All, req.Filters)
		sc, clipped := clip(&rs, &a.share)
		if sc.empty() {
			a.stats.OutOfScope++
			x.sendAck(a, m.Src, req.Nonce, wire.SubscribeBadFilter, 0, 0)
			return true
		}
		if len(p.subs) >= a.cfg.MaxSubscriptions {
			a.stats.Overloaded++
			x.sendAck(a, m.Src, req.Nonce, wire.SubscribeOverloaded, 0, 0)
			return true
		}
		id := rand.Uint32()
		for id == 0 || p.subs[id] != nil {
			id = rand.Uint32()
		}
		s := &psub{id: id, a: a, dst: m.Src, sc: sc, expires: now.Add(lt), pending: map[key]*request.Request{}}
		s.timer = x.c.Schedule(s.expires, func(time.Time) {
			if p.subs[s.id] == s {
				a.stats.SubExpired++
				x.dropSub(s)
			}
		})
		p.subs[id] = s
		a.stats.Subscribed++
		status := wire.SubscribeAccepted
		if clipped || bad > 0 {
			a.stats.Clipped++
			status = wire.SubscribePartial
		}
		p.remember(req.Nonce, id)
		x.sendAck(a, m.Src, req.Nonce, status, id, uint32(lt/time.Second))
	}
	return true
}

// remember notes that nonce was answered with subscription id.
func (p *provider) remember(n wire.Nonce, id uint32) {
	if len(p.recentQ) >= maxRecent {
		delete(p.recent, p.recentQ[0])
		p.recentQ = p.recentQ[1:]
	}
	p.recent[n] = id
	p.recentQ = append(p.recentQ, n)
}

// dropSub forgets s and its pending notifications.
func (x *MSX) dropSub(s *psub) {
	p := &s.a.prov
	if p.subs[s.id] != s {
		return
	}
	delete(p.subs, s.id)
	s.timer.Stop()
	for _, r := range s.pending {
		p.notify.Cancel(r)
	}
}

// sendAck sends a signed Map-Subscribe-Ack.
func (x *MSX) sendAck(a *agreement, dst netip.AddrPort, n wire.Nonce, st wire.SubscribeStatus, id, lifetime uint32) {
	ack := wire.MapSubscribeAck{Nonce: n, Status: st, Auth: x.authFor(a), SubscriptionID: id, Lifetime: lifetime}
	if b, ok := x.encode(a, ack.Append); ok {
		x.c.Send(dst, b, wire.TypeSharedExtension)
	}
}

// changed is told of every change of the local table: it keeps the sorted
// index and notifies the subscribers whose scope has k.
func (x *MSX) changed(k key, rec *wire.Record) {
	x.indexChanged(k, rec != nil)
	for _, a := range x.ags {
		for _, s := range a.prov.subs {
			if s.sc.has(k) {
				x.notifyOne(s, k, rec)
			}
		}
	}
}

// notifyOne sends s a signed Map-Notify with k's new mapping (or its
// withdrawal: no locators, TTL 0), replacing an unacknowledged older one
// for k, retransmitted until the Map-Notify-Ack. Its nonce is the
// subscription ID and a sequence number (docs/interconnect.md). A
// subscriber that lets MaxPending notifications pile up, or never
// acknowledges one, loses the subscription: its next renewal learns so and
// it resubscribes and resyncs by bulk.
func (x *MSX) notifyOne(s *psub, k key, rec *wire.Record) {
	a := s.a
	p := &a.prov
	if r := s.pending[k]; r != nil {
		p.notify.Cancel(r)
	}
	if len(s.pending) >= a.cfg.MaxPending {
		a.stats.SubOverflow++
		x.log.Warn("peer's subscription dropped: notifications pile up", "agreement", a.cfg.Name, "id", s.id)
		x.dropSub(s)
		return
	}
	var gone wire.Record
	if rec == nil {
		gone = wire.Record{Action: wire.ActionSendMapRequest}
		gone.MaskLen, gone.EID = k.eid()
		rec = &gone
	}
	s.seq++
	var n wire.Nonce
	binary.BigEndian.PutUint32(n[:4], s.id)
	binary.BigEndian.PutUint32(n[4:], s.seq)
	x.rec[0] = *rec
	msg := wire.MapNotify{Nonce: n, Auth: x.authFor(a), Records: x.rec[:]}
	b, err := msg.AppendSigned(x.buf[:0], a.key.Secret)
	x.rec[0] = wire.Record{}
	if err != nil {
		x.c.Msg(wire.TypeMapNotify).SendErrors++
		return
	}
	x.buf = b
	spec := request.Spec{Type: wire.TypeMapNotify, Targets: []netip.AddrPort{s.dst}, Value: pnote{s, k}, Done: x.notifyDone}
	r, err := p.notify.Start(&spec, n, b)
	if err != nil {
		x.c.Msg(wire.TypeMapNotify).SendErrors++
		return
	}
	s.pending[k] = r
}

// notifyDone ends a Map-Notify; one never acknowledged drops the
// subscription.
func (x *MSX) notifyDone(r *request.Request, o request.Outcome) {
	pn := r.Value().(pnote)
	s := pn.s
	if s.pending[pn.k] == r {
		delete(s.pending, pn.k)
	}
	if o == request.GaveUp && s.a.prov.subs[s.id] == s {
		s.a.stats.SubOverflow++
		x.log.Info("peer's subscription dropped: Map-Notify unacknowledged", "agreement", s.a.cfg.Name, "id", s.id)
		x.dropSub(s)
	}
}

// onNotifyAck takes the Map-Notify-Acks of the provider's notifications
// (by nonce), checked with the agreement's key; others go to the roles
// after it.
func (x *MSX) onNotifyAck(m *slowpath.Msg) bool {
	n, ok := m.Nonce()
	if !ok {
		return false
	}
	for _, a := range x.ags {
		p := &a.prov
		if !p.notify.Knows(n) {
			continue
		}
		st := x.c.Msg(wire.TypeMapNotifyAck)
		if err := x.ack.Parse(m.Raw); err != nil {
			st.BadParse++
			return true
		}
		r, status := p.notify.Match(m.Src, n)
		if status != request.Matched {
			st.Ignored++
			return true
		}
		if _, _, err := verifyKey(m.Raw, &x.ack.Auth, a); err != nil {
			a.stats.AckBadAuth++
			st.BadAuth++
			return true
		}
		a.req.heard = x.c.Now()
		p.notify.Complete(r)
		return true
	}
	return false
}

// onBulkRequest answers a Map-Bulk-Request with one page
// (docs/interconnect.md). Unauthenticated requests, those from no
// agreement's peer, those the agreement does not allow, those over its
// rate and those with a bad, expired or replayed cookie are dropped
// without an answer and counted.
func (x *MSX) onBulkRequest(m *slowpath.Msg) bool {
	req := &x.breq
	a, st := x.accept(m, req.Parse)
	if a == nil {
		return true
	}
	if req.Auth.Alg == wire.AuthNone || !a.verify(m.Raw, &req.Auth) {
		a.stats.Unauthenticated++
		st.BadAuth++
		return true
	}
	now := x.c.Now()
	a.req.heard = now
	if !a.cfg.Allows(slowpath.MSXBulk) || x.table == nil {
		a.stats.Denied++
		st.Rejected++
		return true
	}
	if !a.allow(now) {
		st.RateLimited++
		return true
	}
	rs, bad := requestedScope(req.All, req.Scope)
	sc, clipped := clip(&rs, &a.share)
	h := rs.hash()
	p := &a.prov
	start := 0
	x.index()
	if len(req.Cookie) > 0 {
		ck, err := parseCookie(req.Cookie, x.secret, m.Src, a.cfg.Name)
		if err == nil && ck.scope != h {
			err = errCookieBad
		}
		if err == nil {
			err = ck.fresh(now, x.cfg.CookieLifetime)
		}
		if err != nil {
			if err == errCookieExpired {
				a.stats.CookieExpired++
			} else {
				a.stats.CookieBad++
			}
			st.Rejected++
			return true
		}
		if u, seen := p.used[ck.serial]; seen {
			if u.nonce != req.Nonce {
				a.stats.CookieReplayed++
				st.Rejected++
				return true
			}
			a.stats.BulkResent++
		} else {
			if len(p.used) >= maxUsedCookies {
				p.sweepCookies(now)
			}
			if len(p.used) >= maxUsedCookies {
				a.stats.Overloaded++
				st.Rejected++
				return true
			}
			p.used[ck.serial] = usedCookie{nonce: req.Nonce, expires: time.Unix(0, ck.issued).Add(x.cfg.CookieLifetime)}
		}
		i, found := slices.BinarySearchFunc(x.keys, ck.last, keyCompare)
		if found {
			i++
		}
		start = i
	} else if clipped || bad > 0 {
		a.stats.Clipped++
	}
	if sc.empty() && len(req.Cookie) == 0 {
		a.stats.OutOfScope++
	}
	a.stats.BulkRequests++
	x.sendPage(a, m.Src, req, &sc, h, start)
	return true
}

// sendPage sends the page of the scope sc that starts at x.keys[start].
func (x *MSX) sendPage(a *agreement, dst netip.AddrPort, req *wire.MapBulkRequest, sc *scope, h uint64, start int) {
	maxRec := 255
	if req.MaxRecords > 0 && int(req.MaxRecords) < maxRec {
		maxRec = int(req.MaxRecords)
	}
	rep := &x.brep
	rep.Nonce, rep.More, rep.Cookie = req.Nonce, false, rep.Cookie[:0]
	rep.Auth = x.authFor(a)
	budget := x.cfg.PageBytes - (12 + rep.Auth.Len() + 2 + cookieMaxLen)
	rep.Records = rep.Records[:0]
	i, scanned, size := start, 0, 0
	for ; i < len(x.keys) && len(rep.Records) < maxRec && scanned < maxScan; i++ {
		scanned++
		k := x.keys[i]
		if sc.empty() || !sc.has(k) {
			continue
		}
		rec, ok := x.mapping(k)
		if !ok {
			continue
		}
		if n := rec.Len(); size+n > budget && len(rep.Records) > 0 {
			break
		} else {
			size += n
		}
		rep.Records = append(rep.Records, *rec)
	}
	if i < len(x.keys) && !sc.empty() {
		p := &a.prov
		p.serial++
		rep.More = true
		rep.Cookie = appendCookie(rep.Cookie, &cookie{scope: h, issued: x.c.Now().UnixNano(), serial: p.serial, last: x.keys[i-1]},
			x.secret, dst, a.cfg.Name)
	}
	b, ok := x.encode(a, rep.Append)
	n := len(rep.Records)
	clear(rep.Records)
	if !ok {
		return
	}
	a.stats.BulkPages++
	a.stats.BulkRecords += uint64(n)
	x.c.Send(dst, b, wire.TypeSharedExtension)
}

// sweepCookies forgets the serials of expired cookies.
func (p *provider) sweepCookies(now time.Time) {
	for s, u := range p.used {
		if now.After(u.expires) {
			delete(p.used, s)
		}
	}
}

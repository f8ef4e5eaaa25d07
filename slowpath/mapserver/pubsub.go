package mapserver

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/slowpath/request"
	"github.com/rloc-router/rloc/wire"
)

// The Map-Server's side of publish/subscribe (RFC 9437): an ITR subscribes
// with a Map-Request whose EID record has the N bit and whose I bit brings
// its xTR-ID and site-ID (§4); the Map-Server keeps the subscription and,
// whenever a registration overlapping the subscribed prefix changes (a new
// registration, a new RLOC set, a more-specific registration inside it, a
// withdrawal or an expiry), sends the subscriber a Map-Notify with the
// mapping, signed with the key it shares with the subscriber, and
// retransmits it until the Map-Notify-Ack (§5, RFC 9301 §5.7). The first
// Map-Notify of a subscription carries the subscribing request's nonce,
// each later one that nonce plus one (§5), so that the ITR can refuse a
// replayed one.
//
// Who may subscribe (§7 asks that subscribers be authenticated; a
// Map-Request has no authentication field): an xTR-ID that is registered
// here (an xTR's ETR side registers with the I bit; its site's first key
// signs the Map-Notifies) or one listed in PubSubConfig.Subscribers with
// its own key. Anybody else's subscription is refused and counted; the
// request is still answered as any Map-Request is. Only the holder of the
// key can verify and use what it is sent.

// PubSubStats counts the Map-Server's publish/subscribe work.
type PubSubStats struct {
	// Subscribed counts new subscriptions, Renewed subscriptions renewed
	// by a later subscribing request, Unsubscribed those the subscriber
	// withdrew (ITR-RLOC AFI 0).
	Subscribed, Renewed, Unsubscribed uint64
	// Refused counts subscribing requests from xTR-IDs neither registered
	// nor configured; NoXTRID those with the N bit but no xTR-ID.
	Refused, NoXTRID uint64
	// OverSubscriber and OverTotal count subscriptions dropped at the
	// per-subscriber and the total bound.
	OverSubscriber, OverTotal uint64
	// Notifies counts Map-Notifies started, Retransmits their resends,
	// Acked those acknowledged, GaveUp those never acknowledged (the
	// subscription is then removed: Lapsed), SendErrors those that could
	// not be built or sent.
	Notifies, Retransmits, Acked, GaveUp, Lapsed, SendErrors uint64
	// AckUnknown counts Map-Notify-Acks with a nonce of no outstanding
	// Map-Notify; AckBadAuth those that failed authentication.
	AckUnknown, AckBadAuth uint64
	// Active is the number of subscriptions.
	Active int
}

// subKey identifies a subscription: the subscriber and the subscribed
// EID prefix (RFC 9437 §5).
type subKey struct {
	xtr  wire.XTRID
	site uint64
	eid  slowpath.EIDPrefix
}

// subscription is one ITR's subscription to an EID prefix.
type subscription struct {
	k     subKey
	rlocs []netip.Addr   // the ITR-RLOCs of the latest subscribing request
	dst   netip.AddrPort // where the Map-Notifies go
	key   regstore.Key   // signs them and checks the Acks
	// next is the nonce of the next Map-Notify (RFC 9437 §5).
	next    uint64
	since   time.Time
	renewed time.Time
	pending *request.Request
	sent    uint64
}

// pubsub is the Map-Server's subscription state.
type pubsub struct {
	ms    *MapServer
	cfg   slowpath.PubSubConfig
	tr    *request.Tracker
	subs  map[subKey]*subscription
	byIID map[uint32]map[subKey]*subscription
	perX  map[wire.XTRID]int
	conf  map[wire.XTRID]regstore.Key
	// regd indexes the registered xTR-IDs: the keys they registered (or
	// did: a withdrawn one is found stale and dropped when looked up).
	regd  map[wire.XTRID]map[uniKey]struct{}
	stats PubSubStats
	msg   wire.MapNotify
	rec   [1]wire.Record
	buf   []byte
	spec  request.Spec
	dst   [1]netip.AddrPort
}

func (ms *MapServer) newPubSub(cfg slowpath.PubSubConfig) *pubsub {
	cfg = cfg.WithDefaults()
	ps := &pubsub{
		ms: ms, cfg: cfg,
		subs:  map[subKey]*subscription{},
		byIID: map[uint32]map[subKey]*subscription{},
		perX:  map[wire.XTRID]int{},
		conf:  map[wire.XTRID]regstore.Key{},
		regd:  map[wire.XTRID]map[uniKey]struct{}{},
	}
	for _, s := range cfg.Subscribers {
		ps.conf[s.XTRID] = s.Key.RegKey()
	}
	ps.tr = request.New(ms.c.Clock(), ms.c, request.Config{Interval: cfg.NotifyInterval, MaxTries: cfg.NotifyTries})
	ps.spec = request.Spec{Type: wire.TypeMapNotify, Done: ps.done}
	return ps
}

// registered notes that xtr registered k (told by the store's accepted
// events: one lookup per record, however many registrants k has).
func (ps *pubsub) registered(xtr wire.XTRID, k uniKey) {
	ks := ps.regd[xtr]
	if ks == nil {
		ks = map[uniKey]struct{}{}
		ps.regd[xtr] = ks
	}
	ks[k] = struct{}{}
}

// unregistered forgets that xtr registered k (withdrawn or expired), so
// that the index stays as large as the registrations.
func (ps *pubsub) unregistered(xtr wire.XTRID, k uniKey) {
	if ks := ps.regd[xtr]; ks != nil {
		delete(ks, k)
		if len(ks) == 0 {
			delete(ps.regd, xtr)
		}
	}
}

// keyOf returns the key that signs the Map-Notifies to xtr: its configured
// key, else its site's first key when it is registered here.
func (ps *pubsub) keyOf(xtr wire.XTRID) (regstore.Key, bool) {
	if k, ok := ps.conf[xtr]; ok {
		return k, true
	}
	ks := ps.regd[xtr]
	for k := range ks {
		if e := ps.ms.uni.Entry(k); e != nil && len(e.Site.Keys) > 0 {
			if r := ps.ms.uni.Registrant(k, regstore.ID{XTRID: xtr}); r != nil && r.HasXTRID {
				return e.Site.Keys[0], true
			}
		}
		delete(ks, k) // withdrawn or expired since
	}
	if ks != nil {
		delete(ps.regd, xtr)
	}
	return regstore.Key{}, false
}

// onRequest takes the subscriptions of a Map-Request (RFC 9437 §5): every
// record with the N bit subscribes the requester, or unsubscribes it when
// its only ITR-RLOC has AFI 0. It reports true when the request was an
// unsubscription, which is not answered.
func (ps *pubsub) onRequest(m *slowpath.Msg) bool {
	req := m.Request
	n := 0
	for i := range req.Records {
		if req.Records[i].Notify {
			n++
		}
	}
	if n == 0 {
		return false
	}
	if !req.XTRIDPresent || req.XTRID == (wire.XTRID{}) {
		ps.stats.NoXTRID++
		return false
	}
	unsub := len(req.ITRRLOCs) == 1 && req.ITRRLOCs[0].AFI == 0
	key, ok := ps.keyOf(req.XTRID)
	if !ok {
		ps.stats.Refused++
		ps.ms.log.Debug("subscription refused: unknown xTR-ID", "xtr_id", req.XTRID, "src", m.Src)
		return unsub
	}
	for i := range req.Records {
		r := &req.Records[i]
		if !r.Notify {
			continue
		}
		iid, p, ok := r.Prefix()
		if !ok {
			continue
		}
		eid := slowpath.EIDPrefix{IID: iid, Prefix: p}
		if k, _, ok := ps.ms.answering(eid); ok {
			// Kept under the registration (or the copied mapping, see
			// Publisher) that answers, as the ITR installs and renews
			// it: more-specifics registered inside it later are the
			// subscriber's business too.
			eid = k
		}
		k := subKey{xtr: req.XTRID, site: req.SiteID, eid: eid}
		if unsub {
			if s := ps.subs[k]; s != nil {
				ps.remove(s)
				ps.stats.Unsubscribed++
			}
			continue
		}
		ps.subscribe(m, k, key)
	}
	return unsub
}

// subscribe adds or renews the subscription k of m's requester and sends
// it the current mapping.
func (ps *pubsub) subscribe(m *slowpath.Msg, k subKey, key regstore.Key) {
	c := ps.ms.c
	req := m.Request
	s := ps.subs[k]
	if s == nil {
		switch {
		case len(ps.subs) >= ps.cfg.MaxTotal:
			ps.stats.OverTotal++
			return
		case ps.perX[k.xtr] >= ps.cfg.MaxPerSubscriber:
			ps.stats.OverSubscriber++
			return
		}
		s = &subscription{k: k, since: c.Now()}
		ps.subs[k] = s
		t := ps.byIID[k.eid.IID]
		if t == nil {
			t = map[subKey]*subscription{}
			ps.byIID[k.eid.IID] = t
		}
		t[k] = s
		ps.perX[k.xtr]++
		ps.stats.Subscribed++
	} else {
		ps.stats.Renewed++
		// The subscriber counts from the new nonce now: a Map-Notify of
		// the old sequence would go unacknowledged and drop the
		// subscription. Its request is answered with the current state.
		ps.tr.Cancel(s.pending)
	}
	s.key = key
	s.renewed = c.Now()
	s.rlocs = s.rlocs[:0]
	for _, a := range req.ITRRLOCs {
		if a.AFI == wire.AFIIPv4 || a.AFI == wire.AFIIPv6 {
			s.rlocs = append(s.rlocs, a.IP.Unmap())
		}
	}
	s.dst = c.ReplyTarget(req.ITRRLOCs, m.Port, m.Src)
	// The subscription's Map-Notifies count from the request's nonce
	// (RFC 9437 §5).
	s.next = binary.BigEndian.Uint64(req.Nonce[:])
	if _, rec, ok := ps.ms.answering(k.eid); ok {
		ps.send(s, rec)
	}
}

// lookupPrefix returns the registration answering for p: the most specific
// one covering p.
func (ms *MapServer) lookupPrefix(p slowpath.EIDPrefix) *regEntry {
	t := ms.regs[p.IID]
	if t == nil {
		return nil
	}
	_, ent, ok := t.LookupPrefixLPM(p.Prefix)
	if !ok || len(ent.enc) == 0 {
		return nil
	}
	return ent
}

// changed tells the subscribers whose prefix overlaps k that its mapping
// changed: rec is the new mapping, nil when k's last registration went
// (withdrawn or expired), which is sent as a record without locators and
// with TTL 0 (RFC 9301 §5.4: remove now).
func (ps *pubsub) changed(k slowpath.EIDPrefix, rec *wire.Record) {
	subs := ps.byIID[k.IID]
	if len(subs) == 0 {
		return
	}
	var gone wire.Record
	if rec == nil {
		gone = wire.Record{TTL: 0, MaskLen: uint8(k.Prefix.Bits()), EID: slowpath.EIDAddress(k.IID, k.Prefix.Addr()),
			Action: wire.ActionSendMapRequest}
		rec = &gone
	}
	for _, s := range subs {
		if s.k.eid.Prefix.Overlaps(k.Prefix) {
			ps.send(s, rec)
		}
	}
}

// send sends s a Map-Notify with rec, signed with s's key, replacing an
// unacknowledged older one, and retransmits it until the Ack.
func (ps *pubsub) send(s *subscription, rec *wire.Record) {
	ps.tr.Cancel(s.pending) // its Done clears s.pending
	if ps.subs[s.k] != s {
		return
	}
	var nonce wire.Nonce
	binary.BigEndian.PutUint64(nonce[:], s.next)
	s.next++
	m := &ps.msg
	ps.rec[0] = *rec
	m.Nonce, m.Records = nonce, ps.rec[:]
	m.XTRIDPresent, m.XTRID, m.SiteID = true, s.k.xtr, s.k.site
	m.Auth = signingAuth(&s.key, m.Auth.Data)
	b, err := m.AppendSigned(ps.buf[:0], s.key.Secret)
	m.Records, ps.rec[0] = nil, wire.Record{}
	if err != nil {
		ps.stats.SendErrors++
		return
	}
	ps.buf = b
	spec := ps.spec
	ps.dst[0] = s.dst
	spec.Targets, spec.Value = ps.dst[:], s
	r, err := ps.tr.Start(&spec, nonce, b)
	if err != nil {
		ps.stats.SendErrors++
		return
	}
	s.pending = r
	s.sent++
}

// signingAuth returns an authentication field sized for k (the truncated
// HMAC, RFC 9301 §5.6), reusing buf.
func signingAuth(k *regstore.Key, buf []byte) wire.Auth {
	return k.Auth(nil, &buf)
}

// done ends a Map-Notify: a subscriber that never acknowledged it is
// removed (RFC 9437 §5: its state would only cost retransmissions).
func (ps *pubsub) done(r *request.Request, o request.Outcome) {
	s := r.Value().(*subscription)
	if s.pending == r {
		s.pending = nil
	}
	if o == request.GaveUp && ps.subs[s.k] == s {
		ps.stats.Lapsed++
		ps.ms.log.Info("subscription removed: Map-Notify unacknowledged", "xtr_id", s.k.xtr,
			"iid", s.k.eid.IID, "eid", s.k.eid.Prefix, "dst", s.dst)
		ps.remove(s)
	}
}

// remove forgets s.
func (ps *pubsub) remove(s *subscription) {
	delete(ps.subs, s.k)
	if t := ps.byIID[s.k.eid.IID]; t != nil {
		delete(t, s.k)
		if len(t) == 0 {
			delete(ps.byIID, s.k.eid.IID)
		}
	}
	if ps.perX[s.k.xtr]--; ps.perX[s.k.xtr] <= 0 {
		delete(ps.perX, s.k.xtr)
	}
	ps.tr.Cancel(s.pending)
}

// ack matches a Map-Notify-Ack to a subscriber's Map-Notify and checks it
// with the subscriber's key. It reports false when the nonce is none of
// the subscriptions' (another store's Map-Notify, or unknown).
func (ps *pubsub) ack(m *slowpath.Msg, ack *wire.MapNotifyAck) bool {
	if !ps.tr.Knows(ack.Nonce) {
		return false
	}
	st := ps.ms.c.Msg(wire.TypeMapNotifyAck)
	r, status := ps.tr.Match(m.Src, ack.Nonce)
	if status != request.Matched {
		ps.stats.AckUnknown++
		st.Ignored++
		return true
	}
	s := r.Value().(*subscription)
	if _, _, err := regstore.Verify(m.Raw, &ack.Auth, []regstore.Key{s.key}); err != nil {
		ps.stats.AckBadAuth++
		st.BadAuth++
		ps.ms.log.Warn("subscriber's Map-Notify-Ack authentication failed", "src", m.Src, "xtr_id", s.k.xtr)
		return true
	}
	ps.tr.Complete(r)
	return true
}

// Stats returns the counters, the tracker's included.
func (ps *pubsub) Stats() PubSubStats {
	s := ps.stats
	ts := ps.tr.Stats()
	s.Notifies, s.Retransmits, s.Acked, s.GaveUp = ts.Started, ts.Retransmits, ts.Answered, ts.GaveUp
	s.SendErrors += ts.SendErrors
	s.Active = len(ps.subs)
	return s
}

// Subscription is one subscription as listed by Subscriptions.
type Subscription struct {
	// XTRID and SiteID identify the subscriber (RFC 9437 §4).
	XTRID wire.XTRID
	// SiteID is the subscriber's site-ID.
	SiteID uint64
	// EID is the subscribed EID prefix.
	EID slowpath.EIDPrefix
	// ITRRLOCs are the subscriber's ITR-RLOCs; Notify is where the
	// Map-Notifies go.
	ITRRLOCs []netip.Addr
	// Notify is the destination of the Map-Notifies.
	Notify netip.AddrPort
	// Since is when it subscribed, Renewed when it last renewed.
	Since, Renewed time.Time
	// Notifies counts the Map-Notifies sent to it; Pending says one
	// awaits its Ack.
	Notifies uint64
	// Pending says a Map-Notify awaits its Ack.
	Pending bool
}

// Subscriptions lists the subscriptions, sorted by subscriber and prefix
// (event loop only).
func (ms *MapServer) Subscriptions() []Subscription {
	out := make([]Subscription, 0, len(ms.ps.subs))
	for _, s := range ms.ps.subs {
		out = append(out, Subscription{XTRID: s.k.xtr, SiteID: s.k.site, EID: s.k.eid, ITRRLOCs: slices.Clone(s.rlocs),
			Notify: s.dst, Since: s.since, Renewed: s.renewed, Notifies: s.sent, Pending: s.pending != nil})
	}
	slices.SortFunc(out, func(a, b Subscription) int {
		if c := slices.Compare(a.XTRID[:], b.XTRID[:]); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.EID.IID, b.EID.IID), a.EID.Prefix.Addr().Compare(b.EID.Prefix.Addr()),
			cmp.Compare(a.EID.Prefix.Bits(), b.EID.Prefix.Bits()), cmp.Compare(a.SiteID, b.SiteID))
	})
	return out
}

// PubSubStats returns the publish/subscribe counters (event loop only).
func (ms *MapServer) PubSubStats() PubSubStats { return ms.ps.Stats() }

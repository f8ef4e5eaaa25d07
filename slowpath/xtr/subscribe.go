package xtr

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/slowpath/request"
	"github.com/rloc-router/rloc/wire"
)

// The ITR's side of publish/subscribe (RFC 9437). With ITRConfig.Subscribe,
// every Map-Request for a mapping of a subscribed instance-ID sets the N bit
// on its record and the I bit with the xTR-ID and site-ID (§4): the
// Map-Server then keeps the ITR subscribed and sends a Map-Notify whenever
// the mapping changes (§5). The ITR verifies each with its keys, installs
// or withdraws what it carries and answers with a Map-Notify-Ack (RFC 9301
// §5.7).
//
// Nonces: the first Map-Notify of a subscription carries the nonce of the
// subscribing Map-Request and each later one that nonce plus one (§5). The
// ITR indexes each subscription by the last nonce it accepted; a
// Map-Notify must come after it, within notifyWindow (the Map-Server
// skips the numbers of Map-Notifies it replaced before they were
// acknowledged), or repeat it (a retransmission: acknowledged again, not
// installed again). Anything else is stale or unknown and dropped.
//
// Renewal: a subscribed mapping in use is requested again (with the N bit)
// before its TTL runs out, as without subscription, and at the latest
// Resubscribe after the last Map-Notify or Map-Reply. That renews the
// subscription at a Map-Server that restarted or dropped it after
// unacknowledged Map-Notifies; a Map-Notify received counts as proof that
// the subscription is alive. A mapping no longer in use (idle at its
// refresh) is unsubscribed: a Map-Request with the N bit whose only
// ITR-RLOC has AFI 0 (§5), sent once.

// notifyWindow is how far past the last accepted nonce a subscription's
// Map-Notify may be.
const notifyWindow = 64

// SubscribeStats counts the ITR's publish/subscribe work.
type SubscribeStats struct {
	// Requests counts subscribing Map-Requests sent, Unsubscribes the
	// unsubscribing ones.
	Requests, Unsubscribes uint64
	// Notifies counts Map-Notifies accepted and installed, Withdrawals
	// the records among them that withdrew a mapping, Duplicates
	// retransmissions acknowledged again, Acks the Map-Notify-Acks sent.
	Notifies, Withdrawals, Duplicates, Acks uint64
	// Unknown counts Map-Notifies that belong to no subscription (nonce
	// outside every window, or another xTR-ID), BadAuth those whose
	// authentication failed, Rejected records outside the subscription's
	// instance-ID. None of them is installed.
	Unknown, BadAuth, Rejected uint64
	// Active is the number of subscriptions.
	Active int
}

// itrSub is one subscription of the ITR.
type itrSub struct {
	key slowpath.EIDPrefix
	// last is the nonce of the last accepted Map-Notify; the nonce of the
	// subscribing request minus one before the first.
	last uint64
}

// subState is the ITR's subscription state.
type subState struct {
	cfg   *slowpath.SubscribeConfig
	keys  []regstore.Key
	subs  map[slowpath.EIDPrefix]*itrSub
	byN   map[uint64]*itrSub
	unsub *request.Tracker
	stats SubscribeStats
	ack   wire.MapNotifyAck
	auth  []byte
	buf   []byte
}

// newSubState builds the subscription state of cfg and registers the
// Map-Notify handler.
func (t *ITR) newSubState(cfg *slowpath.SubscribeConfig) {
	ss := &subState{cfg: cfg, subs: map[slowpath.EIDPrefix]*itrSub{}, byN: map[uint64]*itrSub{}}
	for _, k := range cfg.Keys {
		ss.keys = append(ss.keys, k.RegKey())
	}
	// An unsubscription is sent once and answered by nothing.
	ss.unsub = request.New(t.c.Clock(), t.c, request.Config{Interval: t.cfg.RetransmitInterval, MaxTries: 1})
	t.sub = ss
	t.c.Handle(slowpath.RouteMapNotify, t.onMapNotify)
}

// subscribes reports whether requests for key subscribe.
func (t *ITR) subscribes(key slowpath.EIDPrefix) bool {
	return t.sub != nil && t.sub.cfg.Covers(key.IID)
}

// markSubscribe sets the N and I bits of req, the request for key with
// nonce n, and (re)starts the subscription's nonce sequence.
func (t *ITR) markSubscribe(req *wire.MapRequest, key slowpath.EIDPrefix, n wire.Nonce) {
	ss := t.sub
	req.Records[0].Notify = true
	req.XTRIDPresent, req.XTRID, req.SiteID = true, ss.cfg.XTRID, ss.cfg.SiteID
	s := ss.subs[key]
	if s == nil {
		s = &itrSub{key: key}
		ss.subs[key] = s
	} else if ss.byN[s.last] == s {
		delete(ss.byN, s.last)
	}
	s.last = binary.BigEndian.Uint64(n[:]) - 1
	ss.byN[s.last] = s
	ss.stats.Requests++
}

// moveSub files the subscription made for the requested prefix from under
// the installed prefix to: the Map-Server keeps it under the registration
// that answers (pubsub.go in mapserver), and the ITR renews it by the
// installed entry.
func (t *ITR) moveSub(from, to slowpath.EIDPrefix) {
	if t.sub == nil || from == to {
		return
	}
	ss := t.sub
	s := ss.subs[from]
	if s == nil {
		return
	}
	delete(ss.subs, from)
	if old := ss.subs[to]; old != nil && ss.byN[old.last] == old {
		delete(ss.byN, old.last)
	}
	s.key = to
	ss.subs[to] = s
}

// dropSub forgets the subscription of key.
func (t *ITR) dropSub(key slowpath.EIDPrefix) *itrSub {
	if t.sub == nil {
		return nil
	}
	ss := t.sub
	s := ss.subs[key]
	if s == nil {
		return nil
	}
	delete(ss.subs, key)
	if ss.byN[s.last] == s {
		delete(ss.byN, s.last)
	}
	return s
}

// unsubscribe tells the Map-Server that key is no longer wanted: a
// Map-Request with the N bit and one ITR-RLOC of AFI 0 (RFC 9437 §5).
func (t *ITR) unsubscribe(key slowpath.EIDPrefix) {
	if t.dropSub(key) == nil {
		return
	}
	ss := t.sub
	n := ss.unsub.NewNonce()
	eid := key.Prefix.Addr()
	req := &wire.MapRequest{
		Nonce:        n,
		ITRRLOCs:     []wire.Address{{}},
		Records:      []wire.EIDRecord{{Notify: true, MaskLen: uint8(key.Prefix.Bits()), EID: slowpath.EIDAddress(key.IID, eid)}},
		XTRIDPresent: true, XTRID: ss.cfg.XTRID, SiteID: ss.cfg.SiteID,
	}
	b, err := req.Append(ss.buf[:0])
	if err != nil {
		return
	}
	ss.buf = b
	spec := request.Spec{Type: wire.TypeMapRequest, Targets: t.cfg.MapResolvers, ECM: true,
		InnerSrc: slowpath.InnerSource(&wire.MapRequest{ITRRLOCs: t.itrRLOCs}, netip.Addr{}, eid), InnerDst: eid}
	if _, err := ss.unsub.Start(&spec, n, b); err == nil {
		ss.stats.Unsubscribes++
	}
}

// onMapNotify takes a Map-Notify of a subscription: it finds the
// subscription by nonce, verifies the authentication, installs the
// records and acknowledges. A Map-Notify of no subscription is dropped and
// counted; one that fails authentication is never installed.
func (t *ITR) onMapNotify(m *slowpath.Msg) bool {
	c := t.c
	ss := t.sub
	st := c.Msg(wire.TypeMapNotify)
	n, err := m.MapNotify()
	if err != nil {
		st.BadParse++
		return true
	}
	x := binary.BigEndian.Uint64(n.Nonce[:])
	s, dup := ss.byN[x], true
	if s == nil {
		dup = false
		for d := uint64(1); d <= notifyWindow && s == nil; d++ {
			s = ss.byN[x-d]
		}
	}
	if s == nil || (n.XTRIDPresent && n.XTRID != ss.cfg.XTRID) {
		ss.stats.Unknown++
		st.Ignored++
		return true
	}
	key, v, err := ss.verify(m.Raw, &n.Auth)
	if err != nil {
		ss.stats.BadAuth++
		st.BadAuth++
		c.Log().Warn("subscription Map-Notify authentication failed", "src", m.Src, "iid", s.key.IID, "eid", s.key.Prefix, "err", err)
		return true
	}
	if dup {
		ss.stats.Duplicates++
	} else {
		delete(ss.byN, s.last)
		s.last = x
		ss.byN[x] = s
		for i := range n.Records {
			t.notified(s, &n.Records[i])
		}
		ss.stats.Notifies++
	}
	t.ackNotify(m.Src, n, key, &v)
	return true
}

// verify checks a Map-Notify against each key in turn: two Map-Servers'
// keys may share a Key ID and algorithm, which regstore.Verify would take
// as one.
func (ss *subState) verify(raw []byte, a *wire.Auth) (*regstore.Key, wire.AuthVariant, error) {
	var err error
	for i := range ss.keys {
		k, v, e := regstore.Verify(raw, a, ss.keys[i:i+1])
		if e == nil {
			return k, v, nil
		}
		err = e
	}
	return nil, wire.AuthVariant{}, err
}

// notified installs one record of a subscription's Map-Notify: a mapping,
// or with no locators and TTL 0 its withdrawal, after which the next
// packet asks the mapping system again (a send-map-request entry).
func (t *ITR) notified(s *itrSub, rec *wire.Record) {
	iid, p, ok := rec.Prefix()
	if !ok || iid != s.key.IID {
		t.sub.stats.Rejected++
		return
	}
	key := slowpath.EIDPrefix{IID: iid, Prefix: p}
	if rec.TTL == 0 && len(rec.Locators) == 0 {
		t.sub.stats.Withdrawals++
		t.inst.InstallNegative(key, time.Minute, wire.ActionSendMapRequest)
		// Tracked briefly: in use, it is resolved (and subscribed) again
		// at its refresh; idle, it is unsubscribed.
		t.track(key, time.Minute, nil)
		return
	}
	t.installRecord(rec, key, false)
}

// ackNotify answers n with a Map-Notify-Ack: the same nonce and records,
// signed with key in the layout n came in (RFC 9301 §5.7).
func (t *ITR) ackNotify(dst netip.AddrPort, n *wire.MapNotify, key *regstore.Key, v *wire.AuthVariant) {
	ss := t.sub
	ss.ack = wire.MapNotifyAck(*n)
	ss.ack.Auth = key.Auth(v, &ss.auth) // the variant the notify verified with
	b, err := ss.ack.AppendSigned(ss.buf[:0], key.Secret)
	ss.ack.Records = nil
	if err != nil {
		return
	}
	ss.buf = b
	if t.c.Send(dst, b, wire.TypeMapNotifyAck) == nil {
		ss.stats.Acks++
	}
}

// SubscribeStats returns the publish/subscribe counters (event loop only);
// zero without subscription.
func (t *ITR) SubscribeStats() SubscribeStats {
	if t.sub == nil {
		return SubscribeStats{}
	}
	s := t.sub.stats
	s.Active = len(t.sub.subs)
	return s
}

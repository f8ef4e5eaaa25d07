// Package msx is the mapping-system interconnect role (LISP-MSX,
// docs/interconnect.md): the agreements of this mapping system with peer
// mapping systems, and for each the two sides of the exchange.
//
// As provider it serves the local Map-Server's registrations to the peer:
// Map-Bulk-Requests answered in pages with authenticated continuation
// cookies, Map-Subscribes (type 15) kept as bounded subscriptions whose
// every change goes out as a signed Map-Notify, retransmitted until its
// Map-Notify-Ack. As requester it holds a copy of the peer's table (bulk
// once, then the subscription's notifications; resync by bulk after a
// gap) and answers Map-Requests for the peer's EIDs from it, or in invoke
// mode forwards them to the peer's Map-Server. Everything is signed with
// the agreement's key, bounded and counted.
//
// The role meets the Map-Server through Table (and publishes its copies
// to the Map-Server's subscribers through Watch and Covering) and the
// Map-Resolver through the resolver's Interconnect interface (Answer); it
// imports neither.
package msx

import (
	"crypto/rand"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"time"

	"github.com/gaissmai/bart"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/wire"
)

// Table is what the provider side asks of the local Map-Server: its
// registered EID-prefix mappings and word of their changes
// (mapserver.MapServer implements it).
type Table interface {
	// Mapping returns the mapping answered for exactly k; the record is
	// valid on the event loop until the next change.
	Mapping(k slowpath.EIDPrefix) (*wire.Record, bool)
	// EachMapping calls fn with every registered EID prefix.
	EachMapping(fn func(k slowpath.EIDPrefix))
	// Watch has fn called on every change of a mapping (rec nil: gone).
	Watch(fn func(k slowpath.EIDPrefix, rec *wire.Record))
}

// NameTable is what the provider side asks of a local Map-Server that
// holds distinguished-name EIDs (AFI 17) too (mapserver.MapServer
// implements it): they are served, paged and notified with the prefixes.
type NameTable interface {
	// NameMapping returns the mapping answered for the name k.
	NameMapping(k slowpath.EIDName) (*wire.Record, bool)
	// EachName calls fn with every registered name.
	EachName(fn func(k slowpath.EIDName))
	// WatchNames has fn called on every change of a name's mapping.
	WatchNames(fn func(k slowpath.EIDName, rec *wire.Record))
}

// Stats counts one agreement's interconnect work, both sides.
type Stats struct {
	// Provider side. BulkRequests counts authenticated Map-Bulk-Requests
	// answered, BulkPages and BulkRecords what was sent, BulkResent the
	// pages sent again for a retransmitted request.
	BulkRequests, BulkPages, BulkRecords, BulkResent uint64
	// InvokedBy counts the peer's invocations (Map-Requests it forwarded
	// here in an ECM) passed to the Map-Server; InvokeDenied those refused
	// because the agreement does not allow invocation, InvokeOutOfScope
	// those for an EID outside the agreement's filters (invocation.go).
	InvokedBy, InvokeDenied, InvokeOutOfScope uint64
	// InvokeUnauthenticated counts invocations refused for their
	// authentication: a plain ECM from the peer (no Map-Invoke), or a
	// Map-Invoke that fails the agreement's key; InvokeStale Map-Invokes
	// whose timestamp is too far from our clock, InvokeReplayed those
	// whose nonce was seen before (invocation.go).
	InvokeUnauthenticated, InvokeStale, InvokeReplayed uint64
	// Unauthenticated counts bulk and subscribe requests that failed
	// authentication (or carried none); Denied those for a primitive the
	// agreement does not allow; RateLimited those over the agreement's
	// rate; Clipped scopes wider than the agreement (served clipped);
	// OutOfScope scopes entirely outside it.
	Unauthenticated, Denied, RateLimited, Clipped, OutOfScope uint64
	// CookieBad counts forged or malformed cookies, CookieExpired old ones,
	// CookieReplayed cookies used again with another nonce, Overloaded
	// requests refused because the cookie table, the subscription bound
	// or the table of Map-Invoke nonces (invocation.go) was full.
	CookieBad, CookieExpired, CookieReplayed, Overloaded uint64
	// Subscribed counts subscriptions granted, Renewed renewals,
	// Cancelled cancels, SubExpired those that lapsed, SubUnknown renewals
	// of unknown IDs, SubOverflow subscriptions dropped because their
	// notifications went unacknowledged or piled up.
	Subscribed, Renewed, Cancelled, SubExpired, SubUnknown, SubOverflow uint64
	// Notifies counts Map-Notifies started, NotifyRetransmits their
	// resends, NotifyAcked those acknowledged, NotifyGaveUp the others,
	// AckBadAuth acks that failed authentication.
	Notifies, NotifyRetransmits, NotifyAcked, NotifyGaveUp, AckBadAuth uint64

	// Requester side. Pulls counts bulk transfers started, PullsDone those
	// completed, PullRestarts those abandoned after the peer stopped
	// answering (started over at the next renewal), PagesIn and RecordsIn
	// what arrived, PageRetransmits page requests and Map-Subscribes sent
	// again.
	Pulls, PullsDone, PullRestarts, PagesIn, RecordsIn, PageRetransmits uint64
	// NotifiesIn counts notifications applied, NotifyDuplicates those
	// seen before (acked again), NotifyStale those older than the copy,
	// NotifyBadAuth those failing authentication, NotifyUnknown those of
	// no current subscription.
	NotifiesIn, NotifyDuplicates, NotifyStale, NotifyBadAuth, NotifyUnknown uint64
	// Subscribes counts Map-Subscribes sent (renewals included),
	// Resubscribes new subscriptions after the peer forgot ours,
	// SubRefused acks that refused.
	Subscribes, Resubscribes, SubRefused uint64
	// ReplyBadAuth counts bulk replies and acks that failed
	// authentication; RecordsBad records outside the peer's prefixes.
	ReplyBadAuth, RecordsBad uint64
	// Answered counts Map-Requests answered from the copy, Invoked those
	// forwarded to the peer's Map-Server; AgedOut copies dropped after the
	// peer's silence. InvokeFailovers counts the ITRs' retransmissions of
	// a Map-Request forwarded to one of the peers, sent to the next
	// candidate; InvokeGaveUp those left to the rest of the Map-Resolver
	// after every candidate had its try (invocation.go).
	Answered, Invoked, AgedOut, InvokeFailovers, InvokeGaveUp uint64
}

// agreement is one configured agreement and its state on both sides.
type agreement struct {
	x     *MSX
	cfg   *slowpath.MSXAgreement
	key   regstore.Key
	share scope // what the peer may retrieve from us
	stats Stats
	// in is the agreement's rate bucket for the peer's requests
	// (provider side).
	in   bucket
	prov provider
	req  requester
	// cur is the peer invocations go to first: the one after the last
	// that stayed silent (invocation.go).
	cur int
	// gone is set when the agreement was removed at run time (dynamic.go):
	// its periodic work stops.
	gone bool
}

// MSX is the interconnect role.
type MSX struct {
	c      *slowpath.Core
	log    *slog.Logger
	cfg    *slowpath.MSXConfig
	ags    []*agreement
	byPeer map[netip.AddrPort]*agreement
	byAddr map[netip.Addr]*agreement // nil value: the address is ambiguous
	// space holds the peers' configured prefixes by instance-ID (Known).
	space  map[uint32]*bart.Table[struct{}]
	table  Table
	names  NameTable // table, when it holds names too
	secret []byte
	// keys is the local table's EID prefixes in keyCompare order
	// (provider side), brought up to date lazily: present is the truth,
	// added the keys registered since the last merge, stale whether some
	// were removed since (index.go).
	keys    []key
	present map[key]struct{}
	added   []key
	stale   bool
	buf     []byte
	auth    []byte
	// Messages parsed and built, reused.
	subm   wire.MapSubscribe
	sack   wire.MapSubscribeAck
	breq   wire.MapBulkRequest
	brep   wire.MapBulkReply
	brepIn wire.MapBulkReply
	ack    wire.MapNotifyAck
	nack   wire.MapNotifyAck
	rec    [1]wire.Record
	// watch are told of every change of a copy (publish.go); pubRec is
	// the record Covering returns, encBuf a record being stored.
	watch  []func(slowpath.EIDPrefix, *wire.Record)
	pubRec wire.Record
	encBuf []byte
	// invs are the recent invocations (invocation.go).
	invs invocations
	// Invocation, provider side: inv is the Map-Invoke parsed, seen the
	// nonces taken, invBy the agreement whose Map-Invoke's ECM is being
	// dispatched; requester side: ecmBuf the ECM being wrapped.
	inv    wire.MapInvoke
	seen   nonces
	invBy  *agreement
	ecmBuf []byte
	// store keeps the copies across restarts, nil without (persist.go).
	store CopyStore
}

// New builds the role of cfg (defaults applied) on c and registers its
// handlers: Map-Subscribe and Map-Bulk-Request (provider), their answers
// and the subscription's Map-Notifies (requester), the Map-Notify-Acks of
// its own notifications. Build it before the roles that take every
// Map-Notify (the ITR's subscriptions); it takes only its peers'.
func New(c *slowpath.Core, cfg *slowpath.MSXConfig) *MSX {
	x := &MSX{c: c, log: c.Log().With("role", "msx"), cfg: cfg,
		byPeer: map[netip.AddrPort]*agreement{}, byAddr: map[netip.Addr]*agreement{}, space: map[uint32]*bart.Table[struct{}]{}}
	x.secret = make([]byte, 32)
	rand.Read(x.secret)
	for i := range cfg.Agreements {
		x.addAgreement(&cfg.Agreements[i])
	}
	c.Handle(slowpath.SharedRoute(wire.SubTypeMapSubscribe), x.onSubscribe)
	c.Handle(slowpath.SharedRoute(wire.SubTypeMapBulkRequest), x.onBulkRequest)
	c.Handle(slowpath.SharedRoute(wire.SubTypeMapSubscribeAck), x.onSubscribeAck)
	c.Handle(slowpath.SharedRoute(wire.SubTypeMapBulkReply), x.onBulkReply)
	c.Handle(slowpath.SharedRoute(wire.SubTypeMapInvoke), x.onInvoke)
	c.Handle(slowpath.RouteMapNotify, x.onNotify)
	c.Handle(slowpath.RouteMapNotifyAck, x.onNotifyAck)
	c.Handle(slowpath.RouteECM, x.onInvoked)
	c.OnStart(x.start)
	return x
}

// Serve makes the role serve t (the local Map-Server) to its peers; without
// it the role only holds copies and invokes. Call before the core starts.
func (x *MSX) Serve(t Table) {
	x.table = t
	x.present = map[key]struct{}{}
	t.EachMapping(func(k slowpath.EIDPrefix) { x.indexChanged(prefixKey(k), true) })
	t.Watch(func(k slowpath.EIDPrefix, rec *wire.Record) { x.changed(prefixKey(k), rec) })
	if nt, ok := t.(NameTable); ok {
		x.names = nt
		nt.EachName(func(k slowpath.EIDName) { x.indexChanged(nameKey(k), true) })
		nt.WatchNames(func(k slowpath.EIDName, rec *wire.Record) { x.changed(nameKey(k), rec) })
	}
}

// mapping returns the local table's mapping of k.
func (x *MSX) mapping(k key) (*wire.Record, bool) {
	if k.name == "" {
		return x.table.Mapping(k.EIDPrefix)
	}
	if x.names == nil {
		return nil, false
	}
	return x.names.NameMapping(k.eidName())
}

// peer finds the agreement of a message's source: by address and port,
// else by address when only one agreement has a peer there.
func (x *MSX) peer(src netip.AddrPort) *agreement {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	if a := x.byPeer[src]; a != nil {
		return a
	}
	return x.byAddr[src.Addr()]
}

// bucket is a token bucket.
type bucket struct {
	tokens float64
	filled time.Time
}

// take takes a token at now, refilled at rate per second up to burst; when
// there is none it returns how long until there is one.
func (b *bucket) take(now time.Time, rate float64, burst int) (bool, time.Duration) {
	if !b.filled.IsZero() {
		b.tokens = min(float64(burst), b.tokens+now.Sub(b.filled).Seconds()*rate)
	}
	b.filled = now
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) / rate * float64(time.Second))
	}
	b.tokens--
	return true, 0
}

// allow takes a token of a's rate bucket for the peer's requests.
func (a *agreement) allow(now time.Time) bool {
	if ok, _ := a.in.take(now, a.cfg.Rate, a.cfg.Burst); !ok {
		a.stats.RateLimited++
		return false
	}
	return true
}

// sign signs an encoded type-15 message of a's (its auth field sized by
// authFor) with a's key.
func (a *agreement) sign(b []byte) error { return wire.SignSubscription(b, a.key.Secret) }

// authFor returns an authentication field for a's key, backed by x.auth.
func (x *MSX) authFor(a *agreement) wire.Auth { return a.key.Auth(nil, &x.auth) }

// verify checks a received type-15 message with an authentication field
// against a's key (Key ID and algorithm must be the agreement's).
func (a *agreement) verify(raw []byte, au *wire.Auth) bool {
	if au.Alg != a.key.Alg || au.KeyID != a.key.KeyID {
		return false
	}
	return wire.VerifySubscription(raw, a.key.Secret) == nil
}

// accept parses a received type-15 message with parse and finds its
// agreement by source; nil (counted) when it does not parse or comes from
// no agreement's peer.
func (x *MSX) accept(m *slowpath.Msg, parse func([]byte) error) (*agreement, *slowpath.MsgStats) {
	st := x.c.Msg(wire.TypeSharedExtension)
	if err := parse(m.Raw); err != nil {
		st.BadParse++
		return nil, st
	}
	a := x.peer(m.Src)
	if a == nil {
		st.Rejected++
	}
	return a, st
}

// encode appends a message of a's with appendTo to x.buf and signs it with
// a's key; false (counted) when that fails.
func (x *MSX) encode(a *agreement, appendTo func([]byte) ([]byte, error)) ([]byte, bool) {
	b, err := appendTo(x.buf[:0])
	if err == nil {
		err = a.sign(b)
	}
	if err != nil {
		x.c.Msg(wire.TypeSharedExtension).SendErrors++
		return nil, false
	}
	x.buf = b
	return b, true
}

// start runs when the core starts: the requesters subscribe and pull.
func (x *MSX) start() {
	for _, a := range x.ags {
		a.req.start(a)
	}
	x.c.Flush() // the loop flushes after events; start-up is none
}

// Answer answers a Map-Request for a peer's EID (the resolver's
// Interconnect): from a copy, with a proxy Map-Reply carrying the owner's
// TTL, or by forwarding it to the peer's Map-Server (invoke mode). It
// reports false, sending nothing, when no agreement covers the EID.
func (x *MSX) Answer(m *slowpath.Msg, iid uint32, addr netip.Addr) bool {
	for i, a := range x.ags {
		switch a.cfg.Mode {
		case slowpath.MSXModeCopy:
			if a.req.answer(a, m, iid, addr) {
				return true
			}
		case slowpath.MSXModeInvoke:
			if a.covers(iid, addr) {
				return x.invoke(i, m, iid, addr)
			}
		}
	}
	return false
}

// Known appends the peers' configured EID space in iid (the resolver's
// Interconnect), for negative Map-Replies.
func (x *MSX) Known(iid uint32, out []slowpath.PrefixSet) []slowpath.PrefixSet {
	if t := x.space[iid]; t != nil {
		out = append(out, slowpath.BartSet[struct{}]{Table: t})
	}
	return out
}

// covers reports whether addr lies in a's peer prefixes.
func (a *agreement) covers(iid uint32, addr netip.Addr) bool {
	k := prefixKey(slowpath.EIDPrefix{IID: iid, Prefix: netip.PrefixFrom(addr, addr.BitLen())})
	for _, p := range a.cfg.PeerPrefixes {
		if (scopeEntry{iid: p.IID, prefix: p.Prefix}).covers(k) {
			return true
		}
	}
	return false
}

// snapshot returns a's counters with its trackers'.
func (a *agreement) snapshot() Stats {
	s := a.stats
	ns := a.prov.notify.Stats()
	s.Notifies, s.NotifyRetransmits, s.NotifyAcked, s.NotifyGaveUp = ns.Started, ns.Retransmits, ns.Answered, ns.GaveUp
	s.PageRetransmits = a.req.tr.Stats().Retransmits
	return s
}

// Agreement is one agreement as listed by Agreements: its configuration,
// the state of both sides and its counters.
type Agreement struct {
	// Name, Peers, Mode, Allow, Filters, InstanceIDs, PeerPrefixes, Rate
	// and Burst are the configuration (the key is never listed).
	Name         string
	Peers        []netip.AddrPort
	Mode         string
	Allow        []string
	Filters      []slowpath.EIDPrefix
	InstanceIDs  []uint32
	PeerPrefixes []slowpath.EIDPrefix
	// Names and PeerNames are the distinguished names shared and asked
	// for.
	Names, PeerNames []slowpath.SiteName
	Rate             float64
	Burst            int
	// KeyID and Alg identify the key.
	KeyID uint8
	Alg   string
	// Subscription is the peer's ID of our subscription (0: none);
	// SubscribedBy the number of the peer's subscriptions held here.
	Subscription uint32
	SubscribedBy int
	// Copy is the number of mappings in the copy; Complete says a bulk
	// transfer completed since the copy was last dropped; Pulling says
	// one is under way.
	Copy     int
	Complete bool
	Pulling  bool
	// LastHeard is when the peer last sent an authenticated message.
	LastHeard time.Time
	// Stats are the agreement's counters.
	Stats Stats
}

// Agreements lists the agreements (event loop only).
func (x *MSX) Agreements() []Agreement {
	out := make([]Agreement, 0, len(x.ags))
	for _, a := range x.ags {
		c := a.cfg
		allow := c.Allow
		if len(allow) == 0 {
			allow = []string{slowpath.MSXSubscribe, slowpath.MSXBulk, slowpath.MSXInvocation}
		}
		st := a.snapshot()
		out = append(out, Agreement{
			Name: c.Name, Peers: slices.Clone(c.Peers), Mode: c.Mode, Allow: slices.Clone(allow),
			Filters: slices.Clone(c.Filters), InstanceIDs: slices.Clone(c.InstanceIDs), PeerPrefixes: slices.Clone(c.PeerPrefixes),
			Names: slices.Clone(c.Names), PeerNames: slices.Clone(c.PeerNames),
			Rate: c.Rate, Burst: c.Burst, KeyID: c.Key.KeyID, Alg: c.Key.Alg.String(),
			Subscription: a.req.subID, SubscribedBy: len(a.prov.subs),
			Copy: a.req.size, Complete: a.req.complete, Pulling: a.req.pull != nil, LastHeard: a.req.heard,
			Stats: st,
		})
	}
	return out
}

// add adds every counter of o to s.
func (s *Stats) add(o *Stats) {
	sv, ov := reflect.ValueOf(s).Elem(), reflect.ValueOf(o).Elem()
	for i := range sv.NumField() {
		f := sv.Field(i)
		f.SetUint(f.Uint() + ov.Field(i).Uint())
	}
}

// Stats sums every agreement's counters (event loop only).
func (x *MSX) Stats() Stats {
	var s Stats
	for _, a := range x.ags {
		st := a.snapshot()
		s.add(&st)
	}
	return s
}

// Copy returns the copy held under the agreement name: the live EID-prefix
// mappings' records as the owner sent them (event loop only).
func (x *MSX) Copy(name string) (map[slowpath.EIDPrefix][]byte, bool) {
	out := map[slowpath.EIDPrefix][]byte{}
	ok := x.eachCopied(name, func(k key, enc []byte) {
		if k.name == "" {
			out[k.EIDPrefix] = enc
		}
	})
	return out, ok
}

// CopyNames returns the distinguished-name mappings of the copy held under
// the agreement name, as Copy does for prefixes (event loop only).
func (x *MSX) CopyNames(name string) (map[slowpath.EIDName][]byte, bool) {
	out := map[slowpath.EIDName][]byte{}
	ok := x.eachCopied(name, func(k key, enc []byte) {
		if k.name != "" {
			out[k.eidName()] = enc
		}
	})
	return out, ok
}

// eachCopied calls fn with a copy of every live mapping of the agreement
// name's copy; false when there is no such agreement.
func (x *MSX) eachCopied(name string, fn func(k key, enc []byte)) bool {
	for _, a := range x.ags {
		if a.cfg.Name == name {
			for k, e := range a.req.copy {
				if !e.gone {
					fn(k, slices.Clone(e.enc))
				}
			}
			return true
		}
	}
	return false
}

package regstore

import (
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/slowpath/request"
	"github.com/rloc-router/rloc/wire"
)

// DefaultTimeout is the registration lifetime without the T bit: 3 times
// the 60 s register interval (RFC 9301 §8.2).
const DefaultTimeout = 3 * time.Minute

// Default bounds of a Store (Config). They fit real sites with room to
// spare: a site has a few xTRs, each with a few RLOCs, and registers
// hundreds of prefixes, thousands when hosts move with /32s; what an
// attacker with one site key can hold is their product, not unbounded.
const (
	// DefaultMaxRegistrants bounds the registrants (xTR-IDs, or sources
	// without one) of one key: well under the 255 locators a merged
	// record can carry.
	DefaultMaxRegistrants = 32
	// DefaultMaxSiteKeys bounds the keys (prefixes) one site registers.
	DefaultMaxSiteKeys = 10000
	// DefaultMaxRecords bounds the records of one Map-Register: 255, the
	// record count field's limit and what rloc's ETR puts in one message.
	DefaultMaxRecords = 255
	// DefaultMaxRLOCs bounds the locators of one registered record.
	DefaultMaxRLOCs = 32
	// DefaultMaxRegistrations bounds the registrants of a store, all
	// keys and sites together.
	DefaultMaxRegistrations = 200000
	// DefaultReplayWindow is how many of its latest accepted nonces each
	// registrant's registration remembers (Config.ReplayWindow).
	DefaultReplayWindow = 8
	// withdrawnMemory is how many withdrawals (key and nonce) a store
	// remembers, so that a replayed withdrawal cannot remove a
	// registration made again since.
	withdrawnMemory = 4096
)

// Refusals of a Map-Register or of one of its records (Result.Err,
// Event.Reason), besides the authentication errors.
var (
	// ErrNoRecords: the Map-Register has no record.
	ErrNoRecords = errors.New("no records")
	// ErrNotThisKind: the first record is not of the store's kind (the
	// role dispatched the message to the wrong store).
	ErrNotThisKind = errors.New("record of another kind")
	// ErrNoSite: no site may register the first record.
	ErrNoSite = errors.New("no site may register the record")
	// ErrXTRIDRequired: the site requires the xTR-ID (RFC 9301 §5.6).
	ErrXTRIDRequired = errors.New("xTR-ID required")
	// ErrOutsideSite: a record is not of the site the message was
	// authenticated for.
	ErrOutsideSite = errors.New("record outside the site's prefixes")
	// ErrTooManyRegistrants: the key has Config.MaxRegistrants registrants
	// already and this one is new.
	ErrTooManyRegistrants = errors.New("too many registrants")
	// ErrNothingAccepted: every record was refused.
	ErrNothingAccepted = errors.New("no record accepted")
	// ErrSiteFull: the site has Config.MaxSiteKeys keys registered and
	// this one is new.
	ErrSiteFull = errors.New("site has too many prefixes registered")
	// ErrTooManyRecords: the Map-Register has more than Config.MaxRecords
	// records.
	ErrTooManyRecords = errors.New("too many records in one Map-Register")
	// ErrTooManyRLOCs: the record has more than Config.MaxRLOCs locators.
	ErrTooManyRLOCs = errors.New("too many RLOCs in one record")
	// ErrStoreFull: the store has Config.MaxRegistrations registrants and
	// this one is new.
	ErrStoreFull = errors.New("registration table full")
	// ErrReplayed: the record's registration accepted this nonce already,
	// from another source: a replayed Map-Register.
	ErrReplayed = errors.New("replayed Map-Register (nonce already accepted)")
)

// IsLimit reports whether err is the refusal of one of a Store's bounds
// (registrants per key, keys per site, records per message, RLOCs per
// record, registrations in all).
func IsLimit(err error) bool {
	return errors.Is(err, ErrTooManyRegistrants) || errors.Is(err, ErrSiteFull) || errors.Is(err, ErrTooManyRecords) ||
		errors.Is(err, ErrTooManyRLOCs) || errors.Is(err, ErrStoreFull)
}

// Kind is what a role tells a Store about its records: how a record maps
// to a key, which prefix authorises it, what a registrant contributes,
// and what to do when a key's registrants change. K is the key type
// (an EID prefix, a group name's range, an (S,G)); V is what one
// registrant contributes (a record copy, RLE entries, a tree child).
type Kind[K comparable, V any] interface {
	// Key returns what rec is registered under, false when rec is not of
	// this kind.
	Key(rec *wire.Record) (K, bool)
	// Scope returns the instance-ID and prefix whose site may register k
	// (the EID prefix, the group name's range, the (S,G)'s group).
	Scope(k K) (iid uint32, p netip.Prefix)
	// Value reads what rec contributes into v, reusing v's storage. e is
	// the entry of k (nil when k has no registrant yet) and r the
	// registrant being refreshed (nil when new), so that a bound on the
	// merged result can be checked. An error refuses the record.
	Value(e *Entry[K, V], r *Registrant[K, V], rec *wire.Record, v *V) error
	// Changed runs after e's registrants changed (added, refreshed,
	// withdrawn, expired): the role rebuilds its merged answer, notifies
	// subscribers. With no registrants left, e is being removed.
	Changed(e *Entry[K, V])
	// Unchanged reports whether refreshing r (of entry e) with rec would
	// leave e's merged answer as it is, so that the store can skip Value
	// and Changed: a refresh then costs the same however many
	// registrants e has. Reporting false is always correct.
	Unchanged(e *Entry[K, V], r *Registrant[K, V], rec *wire.Record) bool
	// Confirm returns the record a Map-Notify confirms rec with: rec
	// itself, or the merged mapping when reg asked for a merge (RFC 9301
	// §5.6, RFC 8378). e is nil when rec withdrew the last registrant.
	Confirm(e *Entry[K, V], rec *wire.Record, reg *wire.MapRegister) wire.Record
}

// NameKind is implemented by a Kind whose keys may be distinguished
// names (AFI 17) rather than prefixes: such a key is authorised by the
// sites' names (Sites.ForName), not by Scope.
type NameKind[K comparable] interface {
	// NameScope returns the instance-ID and name of k, false when k is
	// no distinguished name.
	NameScope(k K) (iid uint32, name string, ok bool)
}

// Config sets a Store's policy.
type Config struct {
	// Timeout is the lifetime of a registration without the T bit;
	// 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxRegistrants bounds the registrants of one key; 0 means
	// DefaultMaxRegistrants.
	MaxRegistrants int
	// MaxSiteKeys bounds the keys one site registers; 0 means
	// DefaultMaxSiteKeys.
	MaxSiteKeys int
	// MaxRecords bounds the records of one Map-Register (a longer one is
	// refused whole); 0 means DefaultMaxRecords.
	MaxRecords int
	// MaxRLOCs bounds the locators of one record; 0 means
	// DefaultMaxRLOCs.
	MaxRLOCs int
	// MaxRegistrations bounds the registrants of the store; 0 means
	// DefaultMaxRegistrations.
	MaxRegistrations int
	// ReplayWindow is how many of its latest nonces a registration
	// remembers: a record whose registration accepted its nonce already is
	// a retransmission when it comes from the registration's source (the
	// Map-Notify is sent again, the registration left as it is) and a
	// replay otherwise (refused: ErrReplayed). The store also remembers
	// its latest 4096 withdrawals (TTL 0) by key and nonce, so that a
	// replayed withdrawal cannot remove a registration made again since.
	// Nonce 0, which RFC 9301 §5.6 allows when no Map-Notify is asked
	// for, is never checked. 0 means DefaultReplayWindow; -1 turns the
	// checks off.
	ReplayWindow int
	// Notify configures unsolicited Map-Notifies (Store.Notify).
	Notify NotifyConfig
}

// ID identifies a registrant of a key: its xTR-ID when it sends one
// (RFC 9301 §5.6), else its source address and port.
type ID struct {
	// XTRID is the registrant's xTR-ID, zero when it sent none.
	XTRID wire.XTRID
	// Source is the registrant's address when it sent no xTR-ID.
	Source netip.AddrPort
}

// Registrant is one registrant's registration of a key.
type Registrant[K comparable, V any] struct {
	// ID identifies the registrant.
	ID ID
	// Source is where its latest Map-Register came from.
	Source netip.AddrPort
	// HasXTRID says it sent an xTR-ID and site-ID (I bit, RFC 9301 §5.6).
	HasXTRID bool
	// SiteID is its site-ID (RFC 9301 §5.6).
	SiteID uint64
	// ProxyReply and Merge are the P and merge bits of its latest
	// Map-Register (RFC 9301 §5.6).
	ProxyReply, Merge bool
	// Static marks a configured registration (AddStatic): it never
	// expires and has no source.
	Static bool
	// Expires is when it times out.
	Expires time.Time
	// Value is what it contributes (Kind.Value).
	Value V
	// Nonces are the latest nonces its registration accepted, oldest
	// first (Config.ReplayWindow).
	Nonces []wire.Nonce

	entry *Entry[K, V]
	index int
	timer request.Timer
	// saved and jkey are its record's encoding and its key in the
	// journal, when the store has one (persist.go).
	saved, jkey []byte
}

// Entry is one registered key with its registrants.
type Entry[K comparable, V any] struct {
	// Key is the registered key.
	Key K
	// Site is the site the key belongs to.
	Site *Site
	// Aux is the role's own state for the key (merged answer, encoding,
	// subscribers); the store leaves it alone.
	Aux any

	regs []*Registrant[K, V]
}

// Registrants returns e's registrants, for reading only.
func (e *Entry[K, V]) Registrants() []*Registrant[K, V] { return e.regs }

// Result is what Register did with a Map-Register.
type Result struct {
	// Accepted counts records stored or refreshed, Withdrawn records with
	// TTL 0 that were authorised, Rejected records refused (Limited and
	// Replayed among them: refused by a bound, as replays).
	// Retransmitted counts records whose registration had accepted the
	// message already (same nonce, same source): confirmed again, not
	// stored again.
	Accepted, Withdrawn, Rejected, Limited, Replayed, Retransmitted int
	// Site is the site the message was authenticated for, nil before.
	Site *Site
	// Err is why the message as a whole was refused, or
	// ErrNothingAccepted; nil when a record was accepted. errors.Is
	// ErrNoAuth, ErrUnknownKey or ErrAuth is an authentication failure.
	Err error
	// Verified is set when the message's authentication verified, Auth
	// then being the variant it verified with and Key the key.
	Verified bool
	Auth     wire.AuthVariant
	Key      *Key
}

// Stats counts a Store's work.
type Stats struct {
	// Accepted, Withdrawn and Rejected count records; BadAuth counts
	// messages refused by authentication; Expired registrations that
	// timed out.
	Accepted, Withdrawn, Rejected, BadAuth, Expired uint64
	// Limited counts records refused by a bound (IsLimit), Replayed
	// records refused as replays (ErrReplayed), Retransmitted records
	// confirmed again without being stored again (Config.ReplayWindow).
	Limited, Replayed, Retransmitted uint64
	// Keys is the number of registered keys.
	Keys int
	// Registrants is the number of live registrants.
	Registrants int
	// NotifySendErrors counts Map-Notifies that could not be encoded or
	// sent; AckBadAuth Map-Notify-Acks refused by authentication.
	NotifySendErrors, AckBadAuth uint64
}

// regKey indexes registrants by key and registrant: merging a refresh is
// one map lookup, however many registrants a key has.
type regKey[K comparable] struct {
	k  K
	id ID
}

// nonceKey indexes the remembered nonces of the registrations of a key.
type nonceKey[K comparable] struct {
	k K
	n wire.Nonce
}

// Store keeps registrations of one kind. It is not safe for concurrent
// use; every method and callback runs on the caller's event loop.
type Store[K comparable, V any] struct {
	clk   request.Clock
	snd   request.Sender
	kind  Kind[K, V]
	names NameKind[K] // kind, when its keys may be names
	sites *Sites
	sink  Sink[K]
	cfg   Config

	entries map[K]*Entry[K, V]
	byID    map[regKey[K]]*Registrant[K, V]
	nonces  map[nonceKey[K]]*Registrant[K, V]
	// siteKeys counts the keys of each site, by name.
	siteKeys map[string]int
	// gone remembers the latest withdrawals and where they came from, in
	// the ring goneRing (withdrawnMemory).
	gone     map[nonceKey[K]]netip.AddrPort
	goneRing []nonceKey[K]
	goneNext int
	spare    V
	stats    Stats

	// Buffers reused by every Map-Notify.
	recs    []wire.Record
	notify  wire.MapNotify
	authBuf []byte
	msgBuf  []byte
	ev      Event[K]

	notes notes[K]

	journal Journal
	sv      Saved
}

// New returns a Store of records of kind, authorised by sites, reporting
// to sink (nil: no events).
func New[K comparable, V any](clk request.Clock, snd request.Sender, kind Kind[K, V], sites *Sites, sink Sink[K], cfg Config) *Store[K, V] {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	cfg = cfg.withDefaults()
	s := &Store[K, V]{
		clk: clk, snd: snd, kind: kind, sites: sites, sink: sink, cfg: cfg,
		entries:  map[K]*Entry[K, V]{},
		byID:     map[regKey[K]]*Registrant[K, V]{},
		nonces:   map[nonceKey[K]]*Registrant[K, V]{},
		siteKeys: map[string]int{},
		gone:     map[nonceKey[K]]netip.AddrPort{},
	}
	s.names, _ = kind.(NameKind[K])
	s.notes.init(clk, snd, cfg.Notify)
	return s
}

// siteOf returns the site that may register k.
func (s *Store[K, V]) siteOf(sites *Sites, k K) *Site {
	if s.names != nil {
		if iid, name, ok := s.names.NameScope(k); ok {
			return sites.ForName(iid, name)
		}
	}
	return sites.For(s.kind.Scope(k))
}

// withDefaults fills in the zero fields.
func (cfg Config) withDefaults() Config {
	for _, f := range []struct {
		v *int
		d int
	}{
		{&cfg.MaxRegistrants, DefaultMaxRegistrants}, {&cfg.MaxSiteKeys, DefaultMaxSiteKeys},
		{&cfg.MaxRecords, DefaultMaxRecords}, {&cfg.MaxRLOCs, DefaultMaxRLOCs},
		{&cfg.MaxRegistrations, DefaultMaxRegistrations}, {&cfg.ReplayWindow, DefaultReplayWindow},
	} {
		if *f.v == 0 {
			*f.v = f.d
		}
	}
	return cfg
}

// Stats returns the store's counters.
func (s *Store[K, V]) Stats() Stats {
	st := s.stats
	st.Registrants = len(s.byID)
	st.Keys = len(s.entries)
	st.NotifySendErrors += s.notes.err
	st.AckBadAuth = s.notes.badAuth
	return st
}

// Entry returns the entry of k, or nil.
func (s *Store[K, V]) Entry(k K) *Entry[K, V] { return s.entries[k] }

// Registrant returns the registration of id for k, or nil.
func (s *Store[K, V]) Registrant(k K, id ID) *Registrant[K, V] { return s.byID[regKey[K]{k, id}] }

// Entries iterates over the entries, in no order. The store must not be
// changed during the iteration.
func (s *Store[K, V]) Entries() iter.Seq[*Entry[K, V]] { return maps.Values(s.entries) }

// Len returns the number of registered keys.
func (s *Store[K, V]) Len() int { return len(s.entries) }

// Register authenticates, authorises and stores a parsed Map-Register
// (RFC 9301 §8.2) whose received bytes are raw (for the HMAC), and answers
// it with a Map-Notify to src when its M bit asks. The site is the one
// that may register the first record; the key is the site's key of the
// message's Key ID and algorithm; every record must belong to that site.
// Registrants are told apart by xTR-ID when sent, else by source; a record
// with TTL 0 withdraws the registrant's registration.
func (s *Store[K, V]) Register(src netip.AddrPort, raw []byte, reg *wire.MapRegister) Result {
	var res Result
	if len(reg.Records) == 0 {
		res.Err = ErrNoRecords
		s.stats.Rejected++
		s.event(Rejected, nil, nil, src, reg, res.Err)
		return res
	}
	k0, ok := s.kind.Key(&reg.Records[0])
	if !ok {
		return s.refuse(&res, nil, nil, src, reg, ErrNotThisKind)
	}
	site := s.siteOf(s.sites, k0)
	if site == nil {
		return s.refuse(&res, nil, &k0, src, reg, ErrNoSite)
	}
	res.Site = site
	key, v, err := Verify(raw, &reg.Auth, site.Keys)
	if err != nil {
		s.stats.BadAuth++
		return s.refuse(&res, site, nil, src, reg, err)
	}
	res.Verified, res.Auth, res.Key = true, v, key
	if site.RequireXTRID && !reg.XTRIDPresent {
		return s.refuse(&res, site, nil, src, reg, ErrXTRIDRequired)
	}
	if len(reg.Records) > s.cfg.MaxRecords {
		res.Limited = len(reg.Records)
		s.stats.Limited += uint64(len(reg.Records))
		return s.refuse(&res, site, nil, src, reg, fmt.Errorf("%w: %d, at most %d", ErrTooManyRecords, len(reg.Records), s.cfg.MaxRecords))
	}
	id := ID{Source: src}
	if reg.XTRIDPresent {
		id = ID{XTRID: reg.XTRID}
	}
	s.recs = s.recs[:0]
	for i := range reg.Records {
		rec := &reg.Records[i]
		k, ok := s.kind.Key(rec)
		if !ok || s.siteOf(s.sites, k) != site {
			res.Rejected++
			s.stats.Rejected++
			s.event(Rejected, site, nil, src, reg, ErrOutsideSite)
			continue
		}
		if rec.TTL == 0 {
			switch s.withdrawal(k, src, reg.Nonce) {
			case errReplayedAgain:
				res.Retransmitted++
				s.stats.Retransmitted++
			case ErrReplayed:
				res.Rejected++
				res.Replayed++
				s.stats.Rejected++
				s.stats.Replayed++
				s.event(Rejected, site, &k, src, reg, ErrReplayed)
				continue
			default:
				res.Withdrawn++
				s.stats.Withdrawn++
				if r := s.byID[regKey[K]{k, id}]; r != nil {
					s.event(Withdrawn, site, &k, src, reg, nil)
					s.drop(r)
				}
			}
		} else if again, err := s.store(k, site, id, src, reg, rec); err != nil {
			res.Rejected++
			s.stats.Rejected++
			switch {
			case IsLimit(err):
				res.Limited++
				s.stats.Limited++
			case errors.Is(err, ErrReplayed):
				res.Replayed++
				s.stats.Replayed++
			}
			s.event(Rejected, site, &k, src, reg, err)
			continue
		} else if again {
			res.Retransmitted++
			s.stats.Retransmitted++
		} else {
			res.Accepted++
			s.stats.Accepted++
			s.event(Accepted, site, &k, src, reg, nil)
		}
		s.recs = append(s.recs, s.kind.Confirm(s.entries[k], rec, reg))
	}
	if len(s.recs) == 0 {
		res.Err = ErrNothingAccepted
		return res
	}
	if reg.WantMapNotify {
		s.confirm(src, reg, key, &v)
	}
	return res
}

// refuse refuses the whole message: every record counts as rejected.
func (s *Store[K, V]) refuse(res *Result, site *Site, k *K, src netip.AddrPort, reg *wire.MapRegister, err error) Result {
	res.Err = err
	res.Rejected = len(reg.Records)
	s.stats.Rejected += uint64(len(reg.Records))
	s.event(Rejected, site, k, src, reg, err)
	return *res
}

// lifetime is how long rec's registration lives: the record TTL with the
// T bit (RFC 9301 §5.6), else the configured timeout.
func (s *Store[K, V]) lifetime(reg *wire.MapRegister, rec *wire.Record) time.Duration {
	if reg.UseTTL && rec.TTL != wire.TTLReceiverDecides {
		return time.Duration(min(int64(rec.TTL), math.MaxInt64/int64(time.Minute))) * time.Minute
	}
	return s.cfg.Timeout
}

// store adds or refreshes the registration of id for k. It reports again
// when the registration had accepted reg's nonce from src already: a
// retransmission, confirmed but not stored again.
func (s *Store[K, V]) store(k K, site *Site, id ID, src netip.AddrPort, reg *wire.MapRegister, rec *wire.Record) (again bool, err error) {
	if len(rec.Locators) > s.cfg.MaxRLOCs {
		return false, fmt.Errorf("%w: %d, at most %d", ErrTooManyRLOCs, len(rec.Locators), s.cfg.MaxRLOCs)
	}
	e := s.entries[k]
	r := s.byID[regKey[K]{k, id}]
	if s.cfg.ReplayWindow > 0 && reg.Nonce != (wire.Nonce{}) {
		if o := s.nonces[nonceKey[K]{k, reg.Nonce}]; o != nil {
			if o == r && o.Source == src {
				return true, nil
			}
			return false, ErrReplayed
		}
	}
	switch {
	case r != nil:
	case e != nil && len(e.regs) >= s.cfg.MaxRegistrants:
		return false, fmt.Errorf("%w: %d", ErrTooManyRegistrants, len(e.regs))
	case len(s.byID) >= s.cfg.MaxRegistrations:
		return false, fmt.Errorf("%w: %d registrations", ErrStoreFull, len(s.byID))
	case e == nil && s.siteKeys[site.Name] >= s.cfg.MaxSiteKeys:
		return false, fmt.Errorf("%w: %d", ErrSiteFull, s.siteKeys[site.Name])
	}
	// A refresh that changes nothing the merged answer depends on skips
	// Value and Changed: its cost does not grow with the registrants.
	same := r != nil && r.Source == src && r.HasXTRID == reg.XTRIDPresent && r.SiteID == reg.SiteID &&
		r.ProxyReply == reg.ProxyReply && r.Merge == reg.Merge && s.kind.Unchanged(e, r, rec)
	if !same {
		if err := s.kind.Value(e, r, rec, &s.spare); err != nil {
			return false, err
		}
	}
	expires := s.clk.Now().Add(s.lifetime(reg, rec))
	if e == nil {
		e = s.newEntry(k, site)
	}
	if r == nil {
		r = &Registrant[K, V]{ID: id, entry: e, index: len(e.regs)}
		e.regs = append(e.regs, r)
		s.byID[regKey[K]{k, id}] = r
		r.timer = s.clk.Schedule(expires, func(now time.Time) { s.expire(r, now) })
	} else if expires.Before(r.Expires) {
		r.timer.Reset(expires)
	}
	// A later deadline is left to the timer: it fires at the old one and
	// moves itself (expire), sparing a reschedule per refresh.
	r.Expires = expires
	s.remember(r, reg.Nonce)
	if same {
		s.save(r, nil)
		return false, nil
	}
	r.Source = src
	r.HasXTRID = reg.XTRIDPresent
	r.SiteID = reg.SiteID
	r.ProxyReply = reg.ProxyReply
	r.Merge = reg.Merge
	r.Value, s.spare = s.spare, r.Value
	s.save(r, rec)
	s.kind.Changed(e)
	return false, nil
}

// errReplayedAgain: a withdrawal seen already, from the same source.
var errReplayedAgain = errors.New("withdrawal retransmitted")

// withdrawal checks a withdrawal of k from src with nonce n against the
// latest ones and remembers it: nil when new, errReplayedAgain when src
// sent it already, ErrReplayed when another source did.
func (s *Store[K, V]) withdrawal(k K, src netip.AddrPort, n wire.Nonce) error {
	if s.cfg.ReplayWindow <= 0 || n == (wire.Nonce{}) {
		return nil
	}
	nk := nonceKey[K]{k, n}
	if from, ok := s.gone[nk]; ok {
		if from == src {
			return errReplayedAgain
		}
		return ErrReplayed
	}
	if len(s.goneRing) < withdrawnMemory {
		s.goneRing = append(s.goneRing, nk)
	} else {
		delete(s.gone, s.goneRing[s.goneNext])
		s.goneRing[s.goneNext] = nk
		s.goneNext = (s.goneNext + 1) % withdrawnMemory
	}
	s.gone[nk] = src
	return nil
}

// newEntry adds the entry of k for site.
func (s *Store[K, V]) newEntry(k K, site *Site) *Entry[K, V] {
	e := &Entry[K, V]{Key: k, Site: site}
	s.entries[k] = e
	s.siteKeys[site.Name]++
	return e
}

// remember notes that r's registration accepted nonce n, forgetting its
// oldest beyond the replay window.
func (s *Store[K, V]) remember(r *Registrant[K, V], n wire.Nonce) {
	if s.cfg.ReplayWindow <= 0 || n == (wire.Nonce{}) {
		return
	}
	if len(r.Nonces) >= s.cfg.ReplayWindow {
		s.forget(r, r.Nonces[0])
		r.Nonces = append(r.Nonces[:0], r.Nonces[1:]...)
	}
	r.Nonces = append(r.Nonces, n)
	s.nonces[nonceKey[K]{r.entry.Key, n}] = r
}

// forget drops the index of r's nonce n.
func (s *Store[K, V]) forget(r *Registrant[K, V], n wire.Nonce) {
	nk := nonceKey[K]{r.entry.Key, n}
	if s.nonces[nk] == r {
		delete(s.nonces, nk)
	}
}

// AddStatic adds a configured registration of k for site with value v: it
// never expires and is left alone by SetSites. The registrant's ID is
// zero.
func (s *Store[K, V]) AddStatic(k K, site *Site, v V) error {
	if s.byID[regKey[K]{k: k}] != nil {
		return fmt.Errorf("regstore: %v configured twice", k)
	}
	e := s.entries[k]
	if e == nil {
		e = s.newEntry(k, site)
	}
	r := &Registrant[K, V]{Static: true, Value: v, entry: e, index: len(e.regs)}
	e.regs = append(e.regs, r)
	s.byID[regKey[K]{k: k}] = r
	s.kind.Changed(e)
	return nil
}

// expire drops r when its deadline passed, else moves its timer there.
func (s *Store[K, V]) expire(r *Registrant[K, V], now time.Time) {
	if now.Before(r.Expires) {
		r.timer.Reset(r.Expires)
		return
	}
	s.stats.Expired++
	if s.sink != nil {
		s.ev = Event[K]{Kind: Expired, Site: r.entry.Site.Name, Key: r.entry.Key, HasKey: true,
			Source: r.Source, XTRID: r.ID.XTRID, HasXTRID: r.HasXTRID}
		s.sink.RegistrationEvent(&s.ev)
	}
	s.drop(r)
}

// Remove drops the registration of id for k, as a TTL-0 record does, and
// reports whether there was one.
func (s *Store[K, V]) Remove(k K, id ID) bool {
	r := s.byID[regKey[K]{k, id}]
	if r == nil {
		return false
	}
	s.drop(r)
	return true
}

// drop removes r from its entry (constant time: the last registrant takes
// its place) and the entry when it was the last.
func (s *Store[K, V]) drop(r *Registrant[K, V]) {
	e := r.entry
	if r.timer != nil {
		r.timer.Stop()
	}
	last := len(e.regs) - 1
	e.regs[r.index] = e.regs[last]
	e.regs[r.index].index = r.index
	e.regs[last] = nil
	e.regs = e.regs[:last]
	delete(s.byID, regKey[K]{e.Key, r.ID})
	for _, n := range r.Nonces {
		s.forget(r, n)
	}
	if s.journal != nil && r.jkey != nil {
		s.journal.Delete(r.jkey)
	}
	s.kind.Changed(e)
	if len(e.regs) == 0 {
		delete(s.entries, e.Key)
		if s.siteKeys[e.Site.Name]--; s.siteKeys[e.Site.Name] <= 0 {
			delete(s.siteKeys, e.Site.Name)
		}
	}
}

// SetSites replaces the sites. Registrations no longer allowed to the
// site they were made for (matched by name) are dropped, without events;
// the others move to the new site.
func (s *Store[K, V]) SetSites(sites *Sites) {
	s.sites = sites
	var drop []*Registrant[K, V]
	for _, e := range s.entries {
		site := s.siteOf(sites, e.Key)
		if site != nil && site.Name == e.Site.Name {
			e.Site = site
			s.kind.Changed(e)
			continue
		}
		for _, r := range e.regs {
			if !r.Static {
				drop = append(drop, r)
			}
		}
	}
	for _, r := range drop {
		s.drop(r)
	}
}

// confirm answers reg with a Map-Notify echoing its nonce, xTR-ID and
// site-ID, carrying s.recs, signed with key (RFC 9301 §5.7): with the
// Key ID and algorithm of the register, and the length and coverage it
// verified with (v) unless the site key sets them.
func (s *Store[K, V]) confirm(dst netip.AddrPort, reg *wire.MapRegister, key *Key, v *wire.AuthVariant) {
	n := &s.notify
	n.XTRIDPresent, n.XTRID, n.SiteID, n.RTR = reg.XTRIDPresent, reg.XTRID, reg.SiteID, false
	n.Nonce = reg.Nonce
	n.Auth = key.Auth(v, &s.authBuf)
	n.Records = s.recs
	b, err := n.AppendSigned(s.msgBuf[:0], key.Secret)
	if err != nil {
		s.stats.NotifySendErrors++
		return
	}
	s.msgBuf = b
	if s.snd.Send(dst, b, wire.TypeMapNotify) != nil {
		s.stats.NotifySendErrors++
	}
}

// event reports an event to the sink, if any.
func (s *Store[K, V]) event(kind EventKind, site *Site, k *K, src netip.AddrPort, reg *wire.MapRegister, reason error) {
	if s.sink == nil {
		return
	}
	s.ev = Event[K]{Kind: kind, Source: src, Reason: reason, XTRID: reg.XTRID, HasXTRID: reg.XTRIDPresent}
	if site != nil {
		s.ev.Site = site.Name
	}
	if k != nil {
		s.ev.Key, s.ev.HasKey = *k, true
	}
	s.sink.RegistrationEvent(&s.ev)
}

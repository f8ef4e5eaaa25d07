package mapserver

import (
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// What the mapping-system interconnect (slowpath/msx, msx.Table) asks of
// the Map-Server: its registered EID-prefix mappings, one by one, and word
// of every change. The answers are the merged mappings proxy replies carry.

// Mapping returns the mapping answered for exactly the registered EID
// prefix k (not a covering one), false when k is not registered. The
// record is the Map-Server's: valid on the event loop until the next
// change, not to be modified.
func (ms *MapServer) Mapping(k slowpath.EIDPrefix) (*wire.Record, bool) {
	t := ms.regs[k.IID]
	if t == nil {
		return nil, false
	}
	ent, ok := t.Get(k.Prefix)
	if !ok || len(ent.enc) == 0 {
		return nil, false
	}
	return &ent.merged, true
}

// EachMapping calls fn with every registered EID prefix (group names and
// (S,G) registrations are not EID mappings and are left out).
func (ms *MapServer) EachMapping(fn func(k slowpath.EIDPrefix)) {
	for _, t := range ms.regs {
		for _, ent := range t.All() {
			if len(ent.enc) > 0 {
				fn(ent.key)
			}
		}
	}
}

// Watch has fn called, on the event loop, whenever the answer for a
// registered EID prefix changes (a new registration, a new RLOC set, a
// withdrawal or an expiry: rec nil), as RFC 9437 subscribers are told.
func (ms *MapServer) Watch(fn func(k slowpath.EIDPrefix, rec *wire.Record)) {
	ms.watch = append(ms.watch, fn)
}

// watched tells the watchers of a change.
func (ms *MapServer) watched(k slowpath.EIDPrefix, rec *wire.Record) {
	for _, fn := range ms.watch {
		fn(k, rec)
	}
}

// Publisher is a source of mappings beside the registrations whose changes
// the RFC 9437 subscribers hear of as they hear of a registration's: the
// interconnect's copies of peer mapping systems (msx.MSX), whose answers
// the Map-Resolver sends on behalf of the peers. A subscription to an EID
// that a publisher answers for (and no registration here) is kept under
// the publisher's prefix and sent its mapping at once (pubsub.go).
type Publisher interface {
	// Covering returns the most specific mapping it holds covering p;
	// the record is valid on the event loop until the next call.
	Covering(p slowpath.EIDPrefix) (slowpath.EIDPrefix, *wire.Record, bool)
	// Watch has fn called, on the event loop, on every change of one of
	// its mappings (rec nil: withdrawn).
	Watch(fn func(k slowpath.EIDPrefix, rec *wire.Record))
}

// Publish makes the Map-Server's subscribers hear of pub's mappings too.
// Call before the core starts.
func (ms *MapServer) Publish(pub Publisher) {
	ms.pubs = append(ms.pubs, pub)
	pub.Watch(ms.published)
}

// published passes a publisher's change on to the subscribers, unless a
// registration here answers for the prefix (the Map-Resolver asks this
// Map-Server first: its answer is what the subscribers hold).
func (ms *MapServer) published(k slowpath.EIDPrefix, rec *wire.Record) {
	if ent := ms.lookupPrefix(k); ent != nil && ent.key == k {
		return
	}
	ms.ps.changed(k, rec)
}

// answering returns the mapping answered for p: the most specific
// registration covering it, else the first publisher's.
func (ms *MapServer) answering(p slowpath.EIDPrefix) (slowpath.EIDPrefix, *wire.Record, bool) {
	if ent := ms.lookupPrefix(p); ent != nil {
		return ent.key, &ent.merged, true
	}
	for _, pub := range ms.pubs {
		if k, rec, ok := pub.Covering(p); ok {
			return k, rec, true
		}
	}
	return slowpath.EIDPrefix{}, nil, false
}

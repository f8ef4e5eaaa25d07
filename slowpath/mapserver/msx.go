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

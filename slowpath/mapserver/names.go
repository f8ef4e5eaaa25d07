package mapserver

import (
	"bytes"
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/wire"
)

// Distinguished-name EIDs (AFI 17, slowpath.NameEID): a site lists the
// names it may register (map_server.sites[].names, exact or "*.suffix");
// their registrations are kept, merged, expired and withdrawn in the
// unicast store like prefixes, and a Map-Request for a registered name is
// answered with a proxy reply or forwarded to one of its ETRs, as for a
// prefix. Names are matched exactly (no longest match): a name is an
// identifier, not a range. LISP-SEC is not offered for names (the EID-AD
// names prefixes), nor RFC 9437 subscriptions.

// nameChanged keeps the index and the answer of a name's entry in step
// with its registrants (uniKind.Changed for names).
func (ms *MapServer) nameChanged(e *regstore.Entry[uniKey, wire.Record], ent *regEntry) {
	k := slowpath.EIDName{IID: e.Key.IID, Name: e.Key.dn}
	if len(e.Registrants()) == 0 {
		delete(ms.dns, k)
		ms.watchedName(k, nil)
		return
	}
	if ent == nil {
		ent = &regEntry{key: e.Key.EIDPrefix, dn: e.Key.dn, e: e}
		e.Aux = ent
		ms.dns[k] = ent
	}
	ent.prev = append(ent.prev[:0], ent.enc...)
	ms.rebuild(ent)
	if !bytes.Equal(ent.prev, ent.enc) {
		ms.watchedName(k, &ent.merged)
	}
}

// AnswerEIDName handles a Map-Request for the distinguished-name EID name
// in iid: a proxy Map-Reply when the registration asked for one (or the
// site does), otherwise the request is forwarded in an ECM to one of the
// registered ETRs, round-robin (RFC 9301 §8.2). A plain Map-Request's
// ECM gets the ETR's address as inner destination (a name has none). It
// reports false when the name is not registered.
func (ms *MapServer) AnswerEIDName(m *slowpath.Msg, iid uint32, name string) bool {
	ent := ms.dns[slowpath.EIDName{IID: iid, Name: name}]
	if ent == nil || len(ent.enc) == 0 {
		return false
	}
	ms.answerEntry(m, ent, netip.Addr{}, nil)
	return true
}

// NameMapping returns the mapping answered for the registered name k,
// false when k is not registered (msx.NameTable). The record is the
// Map-Server's: valid on the event loop until the next change.
func (ms *MapServer) NameMapping(k slowpath.EIDName) (*wire.Record, bool) {
	ent := ms.dns[k]
	if ent == nil || len(ent.enc) == 0 {
		return nil, false
	}
	return &ent.merged, true
}

// EachName calls fn with every registered distinguished name.
func (ms *MapServer) EachName(fn func(k slowpath.EIDName)) {
	for k, ent := range ms.dns {
		if len(ent.enc) > 0 {
			fn(k)
		}
	}
}

// WatchNames has fn called, on the event loop, whenever the answer for a
// registered name changes (rec nil: withdrawn or expired).
func (ms *MapServer) WatchNames(fn func(k slowpath.EIDName, rec *wire.Record)) {
	ms.watchNames = append(ms.watchNames, fn)
}

// watchedName tells the name watchers of a change.
func (ms *MapServer) watchedName(k slowpath.EIDName, rec *wire.Record) {
	for _, fn := range ms.watchNames {
		fn(k, rec)
	}
}

// nameRegistrations appends the registrations of names after the cursor
// (whose DN is set, or which lies before every name) up to limit, in
// instance-ID and name order, and reports whether more follow.
func (ms *MapServer) nameRegistrations(out []Registration, after *RegistrationCursor, limit int) ([]Registration, bool) {
	keys := slices.SortedFunc(maps.Keys(ms.dns), func(a, b slowpath.EIDName) int {
		return cmp.Or(cmp.Compare(a.IID, b.IID), strings.Compare(a.Name, b.Name))
	})
	for _, k := range keys {
		c := 1
		if after != nil && after.DN != "" {
			if c = cmp.Or(cmp.Compare(k.IID, after.IID), strings.Compare(k.Name, after.DN)); c < 0 {
				continue
			}
		}
		var full bool
		if out, full = ms.appendRegistrants(out, ms.dns[k], c == 0, after, limit); full {
			return out, true
		}
	}
	return out, false
}

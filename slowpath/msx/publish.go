package msx

import (
	"bytes"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// The copies as a publication source: the local Map-Server's RFC 9437
// subscribers (ITRs that subscribe with the N bit) hear of every change of
// a copied mapping as they hear of a registration's (mapserver.Publisher).
// A change is a mapping that appears, whose record (locators, TTL, flags)
// differs from what the copy held, or that the peer withdrew (a
// notification of a withdrawal, or a pull that no longer brings it). A
// copy dropped because the peer went silent is not a withdrawal: nothing
// is published, the subscribers keep the mappings until their TTLs.

// Watch has fn called, on the event loop, on every change of a mapping of
// a copy (rec nil: withdrawn). Call before the core starts.
func (x *MSX) Watch(fn func(k slowpath.EIDPrefix, rec *wire.Record)) {
	x.watch = append(x.watch, fn)
}

// Covering returns the most specific live mapping of a copy covering p,
// from the first copy-mode agreement that has one (the order in which
// Answer asks them). The record is valid on the event loop until the next
// call.
func (x *MSX) Covering(p slowpath.EIDPrefix) (slowpath.EIDPrefix, *wire.Record, bool) {
	now := x.c.Now()
	for _, a := range x.ags {
		if a.cfg.Mode != slowpath.MSXModeCopy {
			continue
		}
		t := a.req.lpm[p.IID]
		if t == nil {
			continue
		}
		_, e, ok := t.LookupPrefixLPM(p.Prefix)
		if !ok || !now.Before(e.expires) {
			continue
		}
		if _, err := x.pubRec.Parse(e.enc); err != nil {
			continue // encoded by apply: does not happen
		}
		return e.key.EIDPrefix, &x.pubRec, true
	}
	return slowpath.EIDPrefix{}, nil, false
}

// published tells the watchers that k's mapping in a copy changed. Names
// are not published: the Map-Server's RFC 9437 subscriptions are to
// prefixes.
func (x *MSX) published(k key, rec *wire.Record) {
	if k.name != "" {
		return
	}
	for _, fn := range x.watch {
		fn(k.EIDPrefix, rec)
	}
}

// store encodes rec into e, reporting whether the copy's answer for e's
// prefix changed (it was withdrawn, or held another record).
func (q *requester) store(x *MSX, e *centry, rec *wire.Record) (bool, error) {
	b, err := rec.Append(x.encBuf[:0])
	if err != nil {
		return false, err
	}
	x.encBuf = b
	changed := e.gone || !bytes.Equal(e.enc, b)
	e.enc = append(e.enc[:0], b...)
	return changed, nil
}

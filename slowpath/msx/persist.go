package msx

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/wire"
)

// Keeping the copies across restarts. With a state file (the Map-Server's
// map_server.state_file, regdb) each copy-mode agreement keeps its copy in
// the bucket "msx-copy/<name>": one entry per mapping, the record as the
// owner sent it and when its TTL runs out, written behind as the
// registrations are. A restarted requester loads the mappings whose TTL
// has not run out, answers from them at once, and resyncs by bulk: its
// first completed pull removes what the peer no longer has (the loaded
// mappings count as brought by no pull). A mapping is written when it
// changes, and when only its TTL was renewed once the expiry moved by more
// than a quarter of the TTL, so that a pull of an unchanged table does not
// rewrite it whole.

// CopyStore keeps the copies (regdb.DB implements it).
type CopyStore interface {
	// Load returns what bucket holds.
	Load(bucket string) ([]regstore.Saved, error)
	// Journal returns the journal kept in bucket.
	Journal(bucket string) regstore.Journal
}

// copyBucket is the bucket of agreement name's copy.
func copyBucket(name string) string { return "msx-copy/" + name }

// Persist loads the copies st holds and keeps them there from now on; the
// agreements added at run time (dynamic.go) are kept there too. It returns
// how many mappings were restored and how many dropped (expired,
// undecodable or outside the agreement). Call before the core starts.
func (x *MSX) Persist(st CopyStore) (restored, dropped int, err error) {
	x.store = st
	for _, a := range x.ags {
		r, d, err := x.persist(a, true)
		restored, dropped = restored+r, dropped+d
		if err != nil {
			return restored, dropped, err
		}
	}
	return restored, dropped, nil
}

// persist keeps a's copy in the store from now on (when there is one and
// a holds a copy), first loading what it holds when load is set.
func (x *MSX) persist(a *agreement, load bool) (restored, dropped int, err error) {
	if x.store == nil || a.cfg.Mode != slowpath.MSXModeCopy {
		return 0, 0, nil
	}
	b := copyBucket(a.cfg.Name)
	q := &a.req
	q.journal = x.store.Journal(b)
	if !load {
		return 0, 0, nil
	}
	saved, err := x.store.Load(b)
	if err != nil {
		return 0, 0, fmt.Errorf("msx agreement %s: %w", a.cfg.Name, err)
	}
	now := x.c.Now()
	for i := range saved {
		if q.restore(a, &saved[i], now) {
			restored++
		} else {
			dropped++
		}
	}
	return restored, dropped, nil
}

// restore puts one saved mapping back into the copy; false when it has
// expired, does not decode or lies outside the agreement (it is then
// deleted from the store).
func (q *requester) restore(a *agreement, s *regstore.Saved, now time.Time) bool {
	var rec wire.Record
	n, err := rec.Parse(s.Record)
	k, ok := recordKey(&rec)
	if err != nil || n != len(s.Record) || !ok || !s.Expires.After(now) || !q.inScope(a, k) || q.copy[k] != nil {
		if ok {
			q.journal.Delete(journalKey(k))
		}
		return false
	}
	e := &centry{key: k, enc: append([]byte(nil), s.Record...), expires: s.Expires, saved: s.Expires}
	q.copy[k] = e
	q.insert(e)
	return true
}

// journalKey is k's key in the store: instance-ID, mask length, address;
// for a name instance-ID, 0xff (no mask length) and the name.
func journalKey(k key) []byte {
	if k.name != "" {
		b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+1+len(k.name)), k.IID)
		return append(append(b, 0xff), k.name...)
	}
	a := k.Prefix.Addr().AsSlice()
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+1+len(a)), k.IID)
	b = append(b, uint8(k.Prefix.Bits()))
	return append(b, a...)
}

// save writes e to the store when it changed or its expiry moved by more
// than a quarter of ttl since it was last written.
func (q *requester) save(a *agreement, e *centry, changed bool, ttl time.Duration) {
	if q.journal == nil || (!changed && e.expires.Sub(e.saved) <= ttl/4) {
		return
	}
	e.saved = e.expires
	q.sv = regstore.Saved{Site: a.cfg.Name, Expires: e.expires, Record: e.enc}
	q.journal.Save(journalKey(e.key), &q.sv)
}

// forget deletes k from the store.
func (q *requester) forget(k key) {
	if q.journal != nil {
		q.journal.Delete(journalKey(k))
	}
}

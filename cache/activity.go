package cache

import (
	"math/bits"
	"net/netip"
	"sync/atomic"
)

// Activity marking. Every live entry has a small id (its slot in the
// writer's byID table), stored beside the *Entry in the trie value, so a
// lookup marks the entry used by setting bit id in its reader's activity
// bitmap: it never reads or writes the entry. A bit is tested before it is
// set, so a busy entry costs one store per fold interval, not per packet.
// The writer folds the bitmaps (Apply, Expire and Refreshable do it before
// they advance the epoch): every set bit is cleared and its entry's mark
// becomes the epoch published at that moment, which is the epoch a lookup
// of the interval saw unless a Tick moved it in between (then the mark is
// later by at most that interval). An entry keeps its id when an update
// replaces it, so lookups in the replaced snapshot still count for it; an id
// freed by a removal is reused, and a reader still holding the old snapshot
// can then mark the new entry once, which only makes a freshly installed
// entry (already marked at install) look used for one more interval.
//
// A bitmap is a fixed array of chunk pointers, so it grows (chunk by chunk,
// before any entry with an id in the new chunk is published) without moving
// the words readers write to: no mark is ever lost.
const (
	chunkBits  = 15 // ids per chunk: 32768 (4 KiB of bits)
	chunkWords = 1 << (chunkBits - 6)
	maxChunks  = 2048 // at most 64M ids, far beyond any MaxEntries that fits in memory
	maxIDs     = maxChunks << chunkBits
)

type chunk [chunkWords]atomic.Uint64

// activity is one reader's bitmap of entry ids used since the last fold.
type activity struct {
	chunks [maxChunks]atomic.Pointer[chunk]
}

// mark sets bit id. Readers call it after every hit; it stores only when the
// bit is clear, so the line stays shared between the reader and the writer.
func (a *activity) mark(id uint32) {
	ch := a.chunks[(id>>chunkBits)&(maxChunks-1)].Load()
	if ch == nil { // cannot happen: the writer adds chunks before publishing ids
		return
	}
	w := &ch[(id>>6)&(chunkWords-1)]
	if b := uint64(1) << (id & 63); w.Load()&b == 0 {
		w.Or(b)
	}
}

// pending reports whether bit id is set.
func (a *activity) pending(id uint32) bool {
	ch := a.chunks[id>>chunkBits].Load()
	return ch != nil && ch[(id>>6)&(chunkWords-1)].Load()&(1<<(id&63)) != 0
}

// Reader is one reader's handle on the cache, for a goroutine that looks up
// continuously (a fast-path worker): lookups through it mark activity in a
// bitmap of its own, so no two workers ever write to the same activity word.
// Its methods are those of the Cache (which uses one shared Reader) and have
// the same semantics; they never lock or allocate. A Reader belongs to one
// goroutine at a time; Close it when that goroutine stops for good.
type Reader struct {
	c   *Cache
	act *activity
}

// NewReader returns a new handle on c (see Reader).
func (c *Cache) NewReader() *Reader {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &Reader{c: c, act: new(activity)}
	for i := 0; i < c.nChunks; i++ {
		r.act.chunks[i].Store(new(chunk))
	}
	c.readers = append(c.readers, r)
	return r
}

// Close folds the reader's pending marks and forgets it. Lookups through a
// closed Reader still work but no longer mark entries active.
func (r *Reader) Close() {
	c := r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.readers {
		if x == r {
			c.foldOne(r.act, c.epoch.Load())
			c.readers = append(c.readers[:i], c.readers[i+1:]...)
			return
		}
	}
}

// Lookup returns the longest-prefix match for dst within instance-ID iid and
// marks the entry active in r's bitmap (see Cache.Lookup).
func (r *Reader) Lookup(iid uint32, dst netip.Addr) (*Entry, bool) {
	in := r.c.dir.Load().get(iid)
	if in == nil {
		return nil, false
	}
	v, ok := in.lookup(dst)
	if ok {
		r.act.mark(v.id)
	}
	return v.e, ok
}

// LookupMAC returns the entry of a MAC EID within iid and marks it active.
func (r *Reader) LookupMAC(iid uint32, mac [6]byte) (*Entry, bool) {
	in := r.c.dir.Load().get(iid)
	if in == nil {
		return nil, false
	}
	v, ok := in.mac.p.Load().Lookup(macAddr(mac))
	if ok {
		r.act.mark(v.id)
	}
	return v.e, ok
}

// LookupMulticast returns the entry for a packet from src to group within
// iid (see Cache.LookupMulticast) and marks it active.
func (r *Reader) LookupMulticast(iid uint32, src, group netip.Addr) (*Entry, bool) {
	in := r.c.dir.Load().get(iid)
	if in == nil {
		return nil, false
	}
	f := 1
	if group.Is4() {
		f = 0
	}
	v, ok := in.mc[f].Load().lookup(src, group)
	if ok {
		r.act.mark(v.id)
	}
	return v.e, ok
}

// MarkActive marks e used, as a lookup through r does for the entry it
// returns: for readers that found e in their own memo of an earlier lookup.
// Unlike a lookup it reads e (its id), which such a reader is about to use.
func (r *Reader) MarkActive(e *Entry) { r.act.mark(e.id) }

// ids: the writer's table of live entries by id, and its free list.

// allocID gives e a fresh id, growing every reader's bitmap first when the
// id starts a new chunk. It reports false when every id is taken.
func (c *Cache) allocID(e *Entry) bool {
	var id uint32
	if n := len(c.freeIDs); n > 0 {
		id = c.freeIDs[n-1]
		c.freeIDs = c.freeIDs[:n-1]
		c.byID[id] = e
	} else {
		if len(c.byID) >= maxIDs {
			return false
		}
		id = uint32(len(c.byID))
		c.byID = append(c.byID, e)
		if need := int(id>>chunkBits) + 1; need > c.nChunks {
			for _, r := range c.readers {
				r.act.chunks[c.nChunks].Store(new(chunk))
			}
			c.nChunks = need
		}
	}
	e.id = id
	return true
}

// inheritID gives e the id of old, which e replaces.
func (c *Cache) inheritID(e, old *Entry) {
	e.id = old.id
	c.byID[e.id] = e
}

// freeID returns the id of e, which is no longer in any table, to the pool.
func (c *Cache) freeID(e *Entry) {
	if c.byID[e.id] == e {
		c.byID[e.id] = nil
		c.freeIDs = append(c.freeIDs, e.id)
	}
}

// fold moves every reader's marks onto their entries with the published
// epoch and clears them. Writer only (c.mu held); call it before advance.
func (c *Cache) fold() {
	ep := c.epoch.Load()
	for _, r := range c.readers {
		c.foldOne(r.act, ep)
	}
}

func (c *Cache) foldOne(a *activity, ep uint32) {
	for ci := 0; ci < c.nChunks; ci++ {
		ch := a.chunks[ci].Load()
		for wi := range ch {
			w := &ch[wi]
			if w.Load() == 0 {
				continue
			}
			for x := w.Swap(0); x != 0; x &= x - 1 {
				id := ci<<chunkBits | wi<<6 | bits.TrailingZeros64(x)
				if e := c.byID[id]; e != nil {
					e.used.Store(ep)
				}
			}
		}
	}
}

// markPending reports whether a reader marked e since the last fold.
func (c *Cache) markPending(e *Entry) bool {
	if c.byID[e.id] != e {
		return false
	}
	for _, r := range c.readers {
		if r.act.pending(e.id) {
			return true
		}
	}
	return false
}

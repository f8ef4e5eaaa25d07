package cache

import (
	"math/bits"
	"net/netip"
	"sync/atomic"
	"time"
)

// Activity marking. Every live entry has a small id (its slot in the
// writer's byID table), stored beside the *Entry in the trie value, so a
// lookup marks the entry used by setting bit id in its reader's activity
// bitmap: it never reads or writes the entry. The shared bitmap's bit is
// tested before it is set and a Reader filters the ids it already noted, so
// a busy entry costs one store per fold interval, not per packet. The writer
// folds the bitmaps when Apply or Expire is about to move the epoch, and
// before it reads activity (eviction, Refreshable): every set bit is cleared
// and its entry's mark becomes the epoch published at that moment, which is
// the epoch a lookup of the interval saw unless a Tick moved it in between
// (then the mark is later by at most that interval). An entry keeps its id
// when an update replaces it, so lookups in the replaced snapshot still count
// for it; an id freed by a removal is reused, and a reader still holding the
// old snapshot can then mark the new entry once, which only makes a freshly
// installed entry (already marked at install) look used for one more
// interval.
//
// A bitmap is one flat array of words, replaced by one twice its size when
// the ids outgrow it, before any entry with an id beyond it is published: a
// lookup that loads the bitmap after the trie (Cache.Lookup, Flush) thus
// always finds its id covered, and a mark is one load of the bitmap and one
// of its word. Readers may still mark a replaced bitmap they loaded before
// the replacement, so the writer keeps folding the replaced ones (together
// less than the current one): no mark is ever lost.
const (
	chunkBits  = 15 // ids of the first bitmap: 32768 (4 KiB of bits); it grows by doubling
	chunkWords = 1 << (chunkBits - 6)
	maxChunks  = 2048 // at most 64M ids, far beyond any MaxEntries that fits in memory
	maxIDs     = maxChunks << chunkBits
)

// bitmap is one activity bitmap: bit id is word id>>6, bit id&63.
type bitmap []atomic.Uint64

// activity is one reader's bitmap of entry ids used since the last fold.
type activity struct {
	cur atomic.Pointer[bitmap]
	old []*bitmap // writer only: replaced bitmaps, still folded
}

// mark sets bit id. Cache lookups call it after every hit; it stores only
// when the bit is clear, so the line stays shared between the readers and
// the writer.
func (a *activity) mark(id uint32) {
	a.cur.Load().mark(id)
}

// mark is activity.mark on a loaded bitmap.
func (bm *bitmap) mark(id uint32) {
	m := *bm
	w := uint(id >> 6)
	if w >= uint(len(m)) { // cannot happen: the bitmap is loaded after the id
		return
	}
	if b := uint64(1) << (id & 63); m[w].Load()&b == 0 {
		m[w].Or(b)
	}
}

// markOwned is mark for a bitmap only its owner sets bits in (a Reader's): a
// plain load and an unconditional store instead of a test and a locked
// read-modify-write. Neither a lock nor a branch on the loaded word (taken
// at random when the lookups are) then stops the misses of consecutive
// marks from overlapping in Flush's loop.
// If the writer's fold clears the word between the load and the store, the
// store puts back bits the fold has already counted: those entries are
// counted again by the next fold (marked used one interval later than they
// were), and no mark is ever lost.
func (bm *bitmap) markOwned(id uint32) {
	m := *bm
	w := uint(id >> 6)
	if w >= uint(len(m)) {
		return
	}
	m[w].Store(m[w].Load() | 1<<(id&63))
}

// pending reports whether bit id is set in the bitmap or a replaced one.
func (a *activity) pending(id uint32) bool {
	for _, bm := range a.old {
		if bm.has(id) {
			return true
		}
	}
	return a.cur.Load().has(id)
}

// has reports whether bit id is set.
func (bm *bitmap) has(id uint32) bool {
	m := *bm
	w := uint(id >> 6)
	return w < uint(len(m)) && m[w].Load()>>(id&63)&1 != 0
}

// Reader is one reader's handle on the cache, for a goroutine that looks up
// continuously (a fast-path worker). Its lookups have the semantics of the
// Cache's but note the ids they hit in a small private list, and Flush (when
// the list is full, and by the owner at the end of each batch of packets)
// sets them in a bitmap of the Reader's own: the bitmap words, scattered over
// memory when lookups are random, are then touched in a tight loop whose cache
// misses overlap, instead of one miss on every lookup's critical path, and no
// two workers ever write the same word. Lookups never lock or allocate. A
// Reader belongs to one goroutine; Close it when that goroutine stops.
type Reader struct {
	c *Cache
	// key and in are the last instance Lookup resolved: key is its
	// instance-ID, or 1<<32 (no instance-ID) while in is nil.
	key uint64
	in  *instance
	// bits is the bitmap the last Flush marked (act's current one then),
	// kept here so that a lookup tests its entry's bit with one load of the
	// words from the Reader's own line instead of a chain through act. A
	// hit whose bit is set there (flushed since the writer's last fold) is
	// not noted again, so a busy entry is noted about once per fold
	// interval, not once per lookup. When the writer has replaced act's
	// bitmap since, bits is a replaced one, which the writer still folds: a
	// set bit there is still a pending mark. An id beyond bits (the bitmap
	// grew since the last Flush) is noted; the Flush marks the current one.
	bits bitmap
	n    int // ids noted since the last Flush
	ids  [noteLen]uint32
	act  activity // the Reader's bitmaps, as the writer sees them
}

// noteLen is how many hits a Reader notes before it flushes on its own.
const noteLen = 256

// NewReader returns a new handle on c (see Reader).
func (c *Cache) NewReader() *Reader {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &Reader{c: c, key: 1 << 32}
	c.addActivity(&r.act)
	r.bits = *r.act.cur.Load()
	return r
}

// addActivity registers a, giving it a bitmap that covers every id.
func (c *Cache) addActivity(a *activity) {
	bm := make(bitmap, c.nChunks*chunkWords)
	a.cur.Store(&bm)
	c.acts = append(c.acts, a)
}

// Flush marks the entries of the lookups noted since the last Flush. The
// owner calls it when a batch of lookups ends (a worker: once per packet
// batch), so that the writer's fold sees them; it never locks or allocates.
func (r *Reader) Flush() {
	bm := r.act.cur.Load()
	for _, id := range r.ids[:r.n] {
		bm.markOwned(id)
	}
	r.n = 0
	r.bits = *bm
}

// note records a hit on id, unless its bit is set in r.bits: then a Flush
// since the writer's last fold has marked it, and the next fold counts it (a
// fold clears the bit before it counts it, so a hit skipped here is one the
// fold has not consumed yet). A hit noted but not yet flushed is noted
// again: the list only fills sooner.
func (r *Reader) note(id uint32) {
	if m, w := r.bits, uint(id>>6); w >= uint(len(m)) || m[w].Load()>>(id&63)&1 == 0 {
		r.add(id)
	}
}

// add queues id for the next Flush. Kept out of line so note, the part run
// on every hit, inlines into the lookups.
//
//go:noinline
func (r *Reader) add(id uint32) {
	r.ids[r.n] = id
	if r.n++; r.n == noteLen {
		r.Flush()
	}
}

// Close flushes and folds the reader's marks and forgets its bitmap. Call it
// from the owner (or after the owner stopped). Lookups through a closed
// Reader still work but no longer mark entries active.
func (r *Reader) Close() {
	r.Flush()
	c := r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, a := range c.acts {
		if a == &r.act { // unregistered, the bitmap gets no new chunks:
			// marks of ids beyond it go nowhere, the others are never folded
			c.foldOne(a, c.epoch.Load())
			c.acts = append(c.acts[:i], c.acts[i+1:]...)
			return
		}
	}
}

// hit marks v's entry through r (or the shared bitmap) and returns it.
func (c *Cache) hit(r *Reader, v slot) (*Entry, bool) {
	if r != nil {
		r.note(v.id)
	} else {
		c.shared.mark(v.id)
	}
	return v.e, true
}

func (c *Cache) lookupMAC(r *Reader, iid uint32, mac [6]byte) (*Entry, bool) {
	in := c.dir.Load().get(iid)
	if in == nil {
		return nil, false
	}
	if v, ok := in.mac.p.Load().Lookup(macAddr(mac)); ok {
		return c.hit(r, v)
	}
	return nil, false
}

func (c *Cache) lookupMulticast(r *Reader, iid uint32, src, group netip.Addr) (*Entry, bool) {
	in := c.dir.Load().get(iid)
	if in == nil {
		return nil, false
	}
	f := 1
	if group.Is4() {
		f = 0
	}
	if v, ok := in.mc[f].Load().lookup(src, group); ok {
		return c.hit(r, v)
	}
	return nil, false
}

// Lookup returns the longest-prefix match for dst within instance-ID iid and
// notes it for marking (see Cache.Lookup and Flush).
// It never locks or allocates; a lookup in the instance-ID of the previous one
// does not touch the directory.
func (r *Reader) Lookup(iid uint32, dst netip.Addr) (*Entry, bool) {
	in := r.in
	if uint64(iid) != r.key { // in is nil when no iid matches
		return r.lookupNew(iid, dst) // a call only on this path: nothing spilled on the other
	}
	v, ok := in.ip.p.Load().Lookup(dst)
	if !ok {
		return nil, false
	}
	// r.note(v.id), written out (one bounds check, no call): the per-packet path
	if m, w := r.bits, uint(v.id>>6); w >= uint(len(m)) || m[w].Load()>>(v.id&63)&1 == 0 {
		return r.added(v) // a call that returns the result: nothing kept across it
	}
	return v.e, true
}

// added notes v's id and returns its entry: Lookup's path for an entry whose
// bit is clear.
//
//go:noinline
func (r *Reader) added(v slot) (*Entry, bool) {
	r.add(v.id)
	return v.e, true
}

// lookupNew is Lookup in an instance-ID other than the last one's. An
// instance is never removed nor replaced once created, so the Reader keeps
// the last one it found without looking at the directory again; an iid
// without one is looked up again next time.
//
//go:noinline
func (r *Reader) lookupNew(iid uint32, dst netip.Addr) (*Entry, bool) {
	in := r.c.dir.Load().get(iid)
	if in == nil {
		return nil, false
	}
	r.key, r.in = uint64(iid), in
	return r.Lookup(iid, dst)
}

// LookupMAC returns the entry of a MAC EID within iid and notes it for marking.
func (r *Reader) LookupMAC(iid uint32, mac [6]byte) (*Entry, bool) {
	return r.c.lookupMAC(r, iid, mac)
}

// LookupMulticast returns the entry for a packet from src to group within
// iid (see Cache.LookupMulticast) and notes it for marking.
func (r *Reader) LookupMulticast(iid uint32, src, group netip.Addr) (*Entry, bool) {
	return r.c.lookupMulticast(r, iid, src, group)
}

// MarkActive notes e as used, as a lookup through r does for the entry it
// returns: for readers that found e in their own memo of an earlier lookup.
// Unlike a lookup it reads e (its id), which such a reader is about to use.
func (r *Reader) MarkActive(e *Entry) { r.note(e.id) }

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
		if int(id>>chunkBits) >= c.nChunks {
			c.nChunks *= 2
			for _, a := range c.acts {
				bm := make(bitmap, c.nChunks*chunkWords)
				a.old = append(a.old, a.cur.Load())
				a.cur.Store(&bm) // before e, with its id, is published
			}
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

// foldBefore folds when the epoch of now is later than the published one,
// before advance publishes it, so marks keep the epoch they were made in;
// otherwise it leaves the fold to the first reader of the marks (victim,
// Refreshable), so a writer applying updates one by one within a tick does
// not scan the bitmaps for each.
func (c *Cache) foldBefore(now time.Time) {
	if c.epochAt(now) > c.epoch.Load() {
		c.fold()
	} else {
		c.unfolded = true
	}
}

// fold moves every reader's marks onto their entries with the published
// epoch and clears them. Writer only (c.mu held); call it before advance.
func (c *Cache) fold() {
	c.unfolded = false
	ep := c.epoch.Load()
	for _, a := range c.acts {
		c.foldOne(a, ep)
	}
	c.folds.Add(1) // after the bitmaps are cleared (see Folds)
}

func (c *Cache) foldOne(a *activity, ep uint32) {
	for _, bm := range a.old {
		c.foldBitmap(*bm, ep)
	}
	c.foldBitmap(*a.cur.Load(), ep)
}

func (c *Cache) foldBitmap(bm bitmap, ep uint32) {
	for wi := range bm {
		w := &bm[wi]
		if w.Load() == 0 {
			continue
		}
		for x := w.Swap(0); x != 0; x &= x - 1 {
			id := wi<<6 | bits.TrailingZeros64(x)
			if e := c.byID[id]; e != nil {
				e.used.Store(ep)
			}
		}
	}
}

// markPending reports whether a reader marked e since the last fold (ids a
// Reader noted but has not flushed are not seen).
func (c *Cache) markPending(e *Entry) bool {
	if c.byID[e.id] != e {
		return false
	}
	for _, a := range c.acts {
		if a.pending(e.id) {
			return true
		}
	}
	return false
}

package cache

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaissmai/bart"
)

// table is the LPM structure of one shard. bart.Fast was measured faster for
// lookups than bart.Table at the same persistent-update cost (see
// BenchmarkBartVariant and bench/results/cache.md). Its value carries the
// entry's activity id beside the pointer, so a lookup marks the entry used
// without touching it (see activity.go).
type table = bart.Fast[slot]

// slot is a table value: an entry and its activity id.
type slot struct {
	e  *Entry
	id uint32
}

func slotOf(e *Entry) slot { return slot{e, e.id} }

// IPv4 and IPv6 are one table per instance-ID (instance.ip: bart keeps one
// root per family, so a lookup does not test the family; BenchmarkLookupRef
// and bench/RESULTS.md, session 25), and IPv4 is not split by prefix range:
// a split (4096 sub-tables by the first 12 bits until this change, then 256
// by the first octet with the octet stripped) cut the writer's cost per
// update by a quarter but made no lookup faster, and the lookup is the
// per-packet side of the trade (BenchmarkSplit at commit 1d5351f,
// bench/results/cache.md).

// shard is one unicast table snapshot and the writer's batch state for it.
type shard struct {
	p atomic.Pointer[table]

	// writer-only
	work  *table // the batch's version; nil when untouched
	pend  *table // inserts of the batch not yet in work (work not owned), merged at publish; nil when none
	ops   int32  // persistent updates in this batch
	owned bool   // work is private to the writer: mutate in place
}

// Config configures a Cache. Zero fields take the documented defaults.
type Config struct {
	// MaxEntries bounds the number of entries (default 1<<21). Static entries
	// count towards it but are never evicted; a static insert may exceed it.
	MaxEntries int
	// MaxNegative bounds the non-static negative entries (default
	// MaxEntries/16), so a flood of misses cannot push out real mappings.
	MaxNegative int
	// MaxTTL caps record TTLs, in minutes (default 1440, at most 65535); a
	// TTL of 0xFFFFFFFF ("receiver decides") becomes MaxTTL.
	MaxTTL uint32
	// ActivityTick is the granularity of the activity mark (default 1s):
	// a reader writes an entry's mark at most once per tick.
	ActivityTick time.Duration
	// BuildTemplate, if set, builds the outer-header template of an RLOC (or
	// RLE hop, passed as an RLOC with only Addr set) for entries of the given
	// instance-ID and EID family. The writer calls it when it installs a new
	// locator set; the result is shared by every entry with the same
	// instance-ID, family and locators, so it must depend on nothing else.
	BuildTemplate func(iid uint32, fam Family, r *RLOC) []byte
	// Published, if set, is called by the writer after each batch it
	// published that changed what a lookup may return (after Generation
	// moved), with the keys of the entries the batch may have inserted,
	// replaced or removed (Apply: its updates' keys and those it evicted;
	// Expire: the expired ones; a key may come twice): for holders of copies
	// of lookup results outside the cache's readers, such as the fast
	// path's kernel offload (fastpath.Offload.MapChanged), which must drop
	// those a changed key covers before the writer goes on. changed is
	// only valid during the call.
	Published func(changed []Key)
	// Now returns the current time (default time.Now); tests inject a clock.
	Now func() time.Time
}

// Cache is the map-cache. Lookups are lock-free and allocation-free and may
// run on any number of goroutines; Apply, Expire and the other writer methods
// are serialised by an internal mutex and belong to the slow path.
type Cache struct {
	// direct holds the direct slots of the directory, in the Cache so that
	// Cache.Lookup loads the instance from here without loading the
	// directory: slot i holds the first instance whose iid%dirDirect is i
	// (never changed again: instances are never removed nor replaced), or
	// none while there is none. A lookup compares the iid of the instance
	// it loaded, so a slot is one load, no nil test and no second load for
	// the iid.
	direct [dirDirect]atomic.Pointer[instance]
	none   *instance // the free slots' instance: empty tables, in no directory

	dir   atomic.Pointer[directory]
	epoch atomic.Uint32
	folds atomic.Uint32 // activity folds so far, from 1 (see Folds)
	gen   atomic.Uint64 // bumped after every publish that changed a snapshot

	_ [40]byte // keep the reader-shared lines apart from writer state

	mu     sync.Mutex
	cfg    Config
	start  time.Time
	insts  map[uint32]*instance
	heaps  [2]entryHeap // 0: positive, 1: negative (non-static only)
	hands  [2]int       // sweep position for eviction
	noIdle [2]uint32    // epoch in which a whole sweep found no idle entry
	intern map[string]*Locators
	// tslots numbers the templates of the interned sets (RLOC.TemplateSlot):
	// the next number never given, and those given back.
	tslots struct {
		next uint32
		free []uint32
	}
	kbuf   []byte
	dirty  []*shard
	mcDirt []mcRef
	empty  *table // shared empty table, never modified
	n      int    // all entries
	nNeg   int    // non-static negative entries
	nStat  int
	nMC    int
	st     Stats

	acts     []*activity // every activity bitmap: the shared one and each Reader's
	byID     []*Entry    // live entries by activity id; nil: free
	freeIDs  []uint32
	nChunks  int  // every bitmap covers nChunks<<chunkBits ids (a power of two)
	unfolded bool // marks may be pending: victim folds before it reads them

	shared activity // marked by Cache.Lookup and the other Cache lookups
}

// directory maps instance-IDs to instances. It is immutable, replaced as a
// whole when an instance-ID is added: a direct-mapped array by the low bits
// of the instance-ID (no hash, no bounds check: a lookup is one load and one
// compare) and a map of the instances whose slot was taken.
type directory struct {
	direct [dirDirect]dirSlot
	more   map[uint32]*instance // nil when every instance has its slot
}

// dirDirect is the number of direct slots: instance-IDs that differ in their
// low 6 bits never collide.
const dirDirect = 64

type dirSlot struct {
	iid uint32
	in  *instance // nil: free (then iid is one that maps to another slot)
}

// get returns iid's instance, nil if none. The direct slot is checked first:
// an instance goes to the map only when its slot holds another instance-ID.
func (d *directory) get(iid uint32) *instance {
	if s := &d.direct[iid%dirDirect]; s.iid == iid {
		return s.in
	}
	return d.more[iid]
}

func newDirectory(insts map[uint32]*instance) *directory {
	d := new(directory)
	for i := range d.direct {
		d.direct[i].iid = uint32(i) + 1 // free: an iid of slot i+1, so no lookup matches it
	}
	for iid, in := range insts {
		if s := &d.direct[iid%dirDirect]; s.in == nil {
			*s = dirSlot{iid, in}
			continue
		}
		if d.more == nil {
			d.more = make(map[uint32]*instance)
		}
		d.more[iid] = in
	}
	return d
}

// all calls fn for every instance until it returns false.
func (d *directory) all(fn func(*instance) bool) {
	for i := range d.direct {
		if in := d.direct[i].in; in != nil && !fn(in) {
			return
		}
	}
	for _, in := range d.more {
		if !fn(in) {
			return
		}
	}
}

// instance holds the shards of one instance-ID. Each shard is an immutable
// snapshot behind an atomic pointer. Readers never see the writer-only fields.
// An instance is never removed nor replaced once created (a Reader keeps the
// last one it found).
type instance struct {
	ip  shard // IPv4 and IPv6 unicast: bart keeps a root per family, so no lookup tests the family
	iid uint32
	mac shard
	mc  [2]atomic.Pointer[mcTable] // by family: IPv4, IPv6

	// writer-only
	mcAll   [2]map[Key]*Entry
	mcDirty [2]bool
}

type mcRef struct {
	in *instance
	f  int
}

// shards calls fn for every unicast shard of the instance.
func (in *instance) shards(fn func(*shard) bool) bool {
	return fn(&in.ip) && fn(&in.mac)
}

// Stats are the cache's counters.
type Stats struct {
	Entries     int `json:"entries"`      // current entries
	Negative    int `json:"negative"`     // current non-static negative entries
	Static      int `json:"static"`       // current static entries
	Multicast   int `json:"multicast"`    // current multicast entries
	LocatorSets int `json:"locator_sets"` // distinct interned locator sets
	Instances   int `json:"instances"`    // instance-IDs seen

	Inserted        uint64 `json:"inserted"`
	Replaced        uint64 `json:"replaced"`
	Deleted         uint64 `json:"deleted"`
	Expired         uint64 `json:"expired"`
	Evicted         uint64 `json:"evicted"` // all evictions, negative ones included
	EvictedNegative uint64 `json:"evicted_negative"`
	Rejected        uint64 `json:"rejected"`
}

// New returns an empty cache.
func New(cfg Config) *Cache {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 1 << 21
	}
	if cfg.MaxNegative <= 0 {
		cfg.MaxNegative = max(cfg.MaxEntries/16, 1)
	}
	if cfg.MaxTTL == 0 {
		cfg.MaxTTL = 1440
	}
	cfg.MaxTTL = min(cfg.MaxTTL, 65535)
	if cfg.ActivityTick <= 0 {
		cfg.ActivityTick = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Cache{
		cfg:    cfg,
		start:  cfg.Now(),
		insts:  make(map[uint32]*instance),
		intern: make(map[string]*Locators),
	}
	c.empty = new(table)
	c.dir.Store(newDirectory(c.insts))
	// A free slot's instance has empty tables: a lookup of its iid, which no
	// instance has (the first instance of the slot would be there), misses.
	c.none = &instance{iid: ^uint32(0)}
	c.none.shards(func(s *shard) bool { s.p.Store(c.empty); return true })
	for i := range c.direct {
		c.direct[i].Store(c.none)
	}
	c.epoch.Store(1)
	c.folds.Store(1)
	c.nChunks = 1
	c.addActivity(&c.shared)
	return c
}

// Lookup returns the longest-prefix match for dst within instance-ID iid and
// marks the entry active (without reading or writing it: see activity.go).
// dst must be a plain IPv4 or IPv6 address (unmap IPv4-mapped IPv6 first). It
// never locks or allocates. Lookup may run on any number of goroutines; a
// worker that looks up continuously does better with a Reader of its own
// (NewReader).
func (c *Cache) Lookup(iid uint32, dst netip.Addr) (*Entry, bool) {
	in := c.direct[iid%dirDirect].Load()
	if in.iid != iid { // a free slot's c.none matches only an iid no instance has
		return c.lookupMore(iid, dst) // a call only on this path: nothing spilled on the other
	}
	v, ok := in.ip.p.Load().Lookup(dst)
	if !ok {
		return nil, false
	}
	// c.shared.mark(v.id), written out (fewer instructions)
	m := *c.shared.cur.Load()
	if w := uint(v.id >> 6); w < uint(len(m)) && m[w].Load()>>(v.id&63)&1 == 0 {
		m[w].Or(1 << (v.id & 63))
	}
	return v.e, true
}

// lookupMore is Lookup for an instance-ID that is not in its direct slot.
//
//go:noinline
func (c *Cache) lookupMore(iid uint32, dst netip.Addr) (*Entry, bool) {
	in := c.dir.Load().get(iid)
	if in == nil {
		return nil, false
	}
	v, ok := in.ip.p.Load().Lookup(dst)
	if !ok {
		return nil, false
	}
	c.shared.mark(v.id)
	return v.e, true
}

// Generation returns a number that changes whenever a batch published by
// Apply or Expire changed what a lookup may return. It is bumped after the
// new snapshots are stored, so a reader that sees generation g and then looks
// up sees every change published before g. Readers that memoise lookup
// results (the fast path's per-worker memo) compare it once per batch and
// forget their results when it moved. Never locks or allocates.
func (c *Cache) Generation() uint64 { return c.gen.Load() }

// Folds returns the number of times the writer has folded the readers'
// activity marks into the entries (see Reader). It is bumped after the
// bitmaps are cleared, so an entry a Reader noted after it read folds f is
// counted by a fold after f. A reader that memoises lookups can thus leave a
// memo hit unmarked while neither Folds nor Generation moved since the
// lookup (or mark) that filled the memo slot: that lookup already marked the
// entry for the current interval. Never locks or allocates.
func (c *Cache) Folds() uint32 { return c.folds.Load() }

// MarkActive marks e used, as Lookup does for the entry it returns: for
// readers that found e in their own memo of an earlier Lookup. Unlike Lookup
// it reads e (its id), which such a reader is about to use anyway.
func (c *Cache) MarkActive(e *Entry) { c.shared.mark(e.id) }

// LookupMAC returns the entry of a MAC EID within iid and marks it active.
func (c *Cache) LookupMAC(iid uint32, mac [6]byte) (*Entry, bool) {
	return c.lookupMAC(nil, iid, mac)
}

// LookupMulticast returns the entry for a packet from src to group within
// iid: the (S,G) entry with the longest matching G-prefix (and within it the
// longest S-prefix) first, then the (*,G) entry with the longest G-prefix.
func (c *Cache) LookupMulticast(iid uint32, src, group netip.Addr) (*Entry, bool) {
	return c.lookupMulticast(nil, iid, src, group)
}

// macAddr encodes a MAC as the first 48 bits of an IPv6 address, so MAC
// shards reuse the persistent trie (every MAC key is a /48: exact match).
func macAddr(m [6]byte) netip.Addr {
	var b [16]byte
	copy(b[:], m[:])
	return netip.AddrFrom16(b)
}

func macPrefix(m [6]byte) netip.Prefix { return netip.PrefixFrom(macAddr(m), 48) }

// Walk calls fn for every entry of the current snapshots, shard by shard,
// until fn returns false. It takes no lock: each shard is seen whole, but
// shards may be from different batches. For management listings only.
func (c *Cache) Walk(fn func(e *Entry) bool) {
	c.dir.Load().all(func(in *instance) bool {
		ok := in.shards(func(s *shard) bool {
			t := s.p.Load()
			if t.Size() == 0 {
				return true
			}
			for _, v := range t.All() {
				if !fn(v.e) {
					return false
				}
			}
			return true
		})
		if !ok {
			return false
		}
		for f := range in.mc {
			if !in.mc[f].Load().walk(fn) {
				return false
			}
		}
		return true
	})
}

// Len returns the number of entries.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	s.Entries, s.Negative, s.Static, s.Multicast = c.n, c.nNeg, c.nStat, c.nMC
	s.LocatorSets, s.Instances = len(c.intern), len(c.insts)
	return s
}

// LastUsed returns the start of the activity tick in which e was last looked
// up (or installed). A lookup not yet folded by the writer counts as a use in
// the published tick.
func (c *Cache) LastUsed(e *Entry) time.Time {
	c.mu.Lock()
	u := e.used.Load()
	if c.markPending(e) {
		u = c.epoch.Load()
	}
	c.mu.Unlock()
	if u == 0 {
		return c.start
	}
	return c.start.Add(time.Duration(u-1) * c.cfg.ActivityTick)
}

// epochAt returns the activity epoch of time t (1 at start).
func (c *Cache) epochAt(t time.Time) uint32 {
	d := t.Sub(c.start)
	if d < 0 {
		return 1
	}
	return uint32(d/c.cfg.ActivityTick) + 1
}

// Tick publishes the activity epoch of now, so that lookups from then on mark
// entries with it. Apply, Expire and Refreshable do it too; the slow path
// calls one of them at least once per Config.ActivityTick. Safe to call from
// any goroutine; never blocks.
func (c *Cache) Tick(now time.Time) { c.advance(now) }

// advance moves the published epoch forward to now's, never backwards.
func (c *Cache) advance(now time.Time) {
	ep := c.epochAt(now)
	for {
		cur := c.epoch.Load()
		if ep <= cur || c.epoch.CompareAndSwap(cur, ep) {
			return
		}
	}
}

// Get returns the entry installed for exactly k, without marking it active
// (for the slow path and management listings; Lookup is the fast path's
// longest-prefix match).
func (c *Cache) Get(k Key) (*Entry, bool) {
	k, ok := normKey(k)
	if !ok {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	in := c.insts[k.IID]
	if in == nil {
		return nil, false
	}
	e := c.get(in, k)
	return e, e != nil
}

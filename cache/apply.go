package cache

import (
	"errors"
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// Errors reported in ApplyResult.Err for rejected updates.
var (
	ErrInvalidKey   = errors.New("cache: invalid key")
	ErrInvalidRLOC  = errors.New("cache: invalid RLOC or RLE address")
	ErrTooManyRLOCs = errors.New("cache: more than 255 RLOCs")
	ErrStatic       = errors.New("cache: key is held by a static entry")
	ErrFull         = errors.New("cache: full of entries that cannot be evicted")
)

// Update is one change in a batch given to Apply: insert or replace the
// mapping of Key, or delete it.
type Update struct {
	Key    Key  // the entry to change
	Delete bool // remove the entry (no error when absent)
	// RLOCs and RLE are copied; the caller may reuse the slices.
	RLOCs []RLOC
	RLE   []RLEHop
	// TTL in minutes (RFC 9301 §5.4): 0 removes the entry unless Static,
	// 0xFFFFFFFF means Config.MaxTTL; larger values are capped to MaxTTL.
	TTL           uint32
	MapVersion    uint16      // RFC 9300 §13.2
	Authoritative bool        // A bit, RFC 9301 §5.4
	Action        wire.Action // ACT for negative mappings, RFC 9301 §5.4
	// Static marks an entry installed by configuration: it never expires, is
	// never evicted, and non-static updates cannot replace it.
	Static bool
}

// ApplyResult reports what a batch did.
type ApplyResult struct {
	Inserted int
	Replaced int
	Deleted  int
	Rejected int
	Err      error // the first rejection's reason
	Evicted  []Key // entries evicted to make room
}

func (r *ApplyResult) reject(err error) {
	r.Rejected++
	if r.Err == nil {
		r.Err = err
	}
}

// Apply applies a batch of updates copy-on-write and publishes every touched
// shard with one atomic swap at the end, so readers see either none or all of
// the batch's changes to a shard.
func (c *Cache) Apply(ups []Update) ApplyResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	c.foldBefore(now)
	c.advance(now)
	var res ApplyResult
	for i := range ups {
		c.apply1(&ups[i], now, &res)
	}
	var changed []Key
	if c.cfg.Published != nil {
		changed = make([]Key, 0, len(ups)+len(res.Evicted))
		for i := range ups {
			if k, ok := normKey(ups[i].Key); ok {
				changed = append(changed, k)
			}
		}
		changed = append(changed, res.Evicted...)
	}
	c.publish(changed)
	c.st.Rejected += uint64(res.Rejected)
	return res
}

func (c *Cache) apply1(u *Update, now time.Time, res *ApplyResult) {
	k, ok := normKey(u.Key)
	if !ok {
		res.reject(ErrInvalidKey)
		return
	}
	in := c.instance(k.IID, !u.Delete)
	var old *Entry
	if in != nil {
		old = c.get(in, k)
	}
	if u.Delete || (u.TTL == 0 && !u.Static) {
		if old != nil {
			c.remove(in, old)
			res.Deleted++
			c.st.Deleted++
		}
		return
	}
	if old != nil && old.Static() && !u.Static {
		res.reject(ErrStatic)
		return
	}
	e, err := c.newEntry(k, u, now)
	if err != nil {
		res.reject(err)
		return
	}
	if old != nil {
		e.used.Store(old.used.Load())
		c.unlink(old)
	}
	if !c.makeRoom(e, res) {
		c.release(e.loc)
		if old != nil { // old is already unlinked: it goes too
			c.del(in, old)
			c.freeID(old)
			res.Deleted++
			c.st.Deleted++
		}
		res.reject(ErrFull)
		return
	}
	if old != nil {
		c.inheritID(e, old)
	} else if !c.allocID(e) {
		c.release(e.loc)
		res.reject(ErrFull)
		return
	}
	c.link(e)
	c.put(in, k, e)
	if old != nil {
		res.Replaced++
		c.st.Replaced++
	} else {
		res.Inserted++
		c.st.Inserted++
	}
}

// normKey validates and canonicalises a key.
func normKey(k Key) (Key, bool) {
	switch k.Kind {
	case KindIP:
		if !k.Prefix.IsValid() || k.Prefix.Addr().Is4In6() || k.Prefix.Addr().Zone() != "" {
			return k, false
		}
		return Key{IID: k.IID, Kind: KindIP, Prefix: k.Prefix.Masked()}, true
	case KindMAC:
		return Key{IID: k.IID, Kind: KindMAC, MAC: k.MAC}, true
	case KindMulticast:
		g := k.Group
		if !g.IsValid() || !g.Addr().IsMulticast() {
			return k, false
		}
		s := k.Prefix
		if s.IsValid() {
			if s.Addr().Is4() != g.Addr().Is4() || s.Addr().Zone() != "" {
				return k, false
			}
			if s.Bits() == 0 {
				s = netip.Prefix{}
			}
		}
		return Key{IID: k.IID, Kind: KindMulticast, Prefix: s.Masked(), Group: g.Masked()}, true
	}
	return k, false
}

// newEntry builds the entry for u (not yet linked or published).
func (c *Cache) newEntry(k Key, u *Update, now time.Time) (*Entry, error) {
	l, err := c.locators(k, u.RLOCs, u.RLE)
	if err != nil {
		return nil, err
	}
	e := &Entry{loc: l, vf: u.MapVersion & versionMask, kind: k.Kind, action: u.Action, hidx: -1}
	if u.Authoritative {
		e.vf |= flagAuthoritative
	}
	ttl := u.TTL
	if ttl > c.cfg.MaxTTL {
		ttl = c.cfg.MaxTTL
	}
	e.ttl = uint16(ttl)
	if u.Static {
		e.vf |= flagStatic
	} else {
		e.expires = uint32(now.Unix() + 60*int64(ttl))
	}
	e.used.Store(c.epoch.Load())
	switch k.Kind {
	case KindMAC:
		copy(e.addr[:], k.MAC[:])
		e.bits = 48
		return e, nil
	}
	if !k.Prefix.IsValid() {
		e.bits = 0xff
		return e, nil
	}
	a := k.Prefix.Addr()
	if a.Is4() {
		a4 := a.As4()
		copy(e.addr[:], a4[:])
	} else {
		e.addr = a.As16()
	}
	e.bits = uint8(k.Prefix.Bits())
	return e, nil
}

// locators returns the interned locator set for the given key's instance-ID,
// family (and group) and locator contents, creating it (templates and
// selection table included) when new. The caller owns one reference.
func (c *Cache) locators(k Key, rl []RLOC, rle []RLEHop) (*Locators, error) {
	if len(rl) > 255 || len(rle) > 255 {
		return nil, ErrTooManyRLOCs
	}
	iid, fam := k.IID, k.Family()
	b := c.kbuf[:0]
	b = append(b, byte(iid>>24), byte(iid>>16), byte(iid>>8), byte(iid), byte(fam), byte(len(rl)))
	if k.Kind == KindMulticast {
		g := k.Group.Addr().As16()
		b = append(b, g[:]...)
		b = append(b, byte(k.Group.Bits()))
	}
	for i := range rl {
		r := &rl[i]
		if !r.Addr.IsValid() {
			return nil, ErrInvalidRLOC
		}
		a := r.Addr.As16()
		var rf byte
		if r.Reachable {
			rf = 1
		}
		if r.Addr.Is4() {
			rf |= 2
		}
		b = append(b, a[:]...)
		b = append(b, r.Priority, r.Weight, r.MPriority, r.MWeight, rf, byte(r.Source))
	}
	for i := range rle {
		h := &rle[i]
		if !h.Addr.IsValid() {
			return nil, ErrInvalidRLOC
		}
		a := h.Addr.As16()
		var f byte
		if h.Addr.Is4() {
			f = 1
		}
		b = append(b, a[:]...)
		b = append(b, h.Level, f)
	}
	c.kbuf = b
	if l, ok := c.intern[string(b)]; ok {
		l.refs++
		return l, nil
	}
	l := &Locators{refs: 1, key: string(b), iid: iid, fam: fam}
	if k.Kind == KindMulticast {
		l.group = k.Group
	}
	if len(rl) > 0 {
		l.RLOCs = make([]RLOC, len(rl))
		for i := range rl {
			r := rl[i]
			r.Template, r.tslot = nil, 0
			if c.cfg.BuildTemplate != nil {
				r.Template = c.cfg.BuildTemplate(iid, fam, &r)
			}
			if r.Template != nil {
				r.tslot = c.takeTSlot()
			}
			l.RLOCs[i] = r
		}
	}
	if len(rle) > 0 {
		l.RLE = make([]RLEHop, len(rle))
		for i := range rle {
			h := rle[i]
			h.Template = nil
			if c.cfg.BuildTemplate != nil {
				h.Template = c.cfg.BuildTemplate(iid, fam, &RLOC{Addr: h.Addr})
			}
			l.RLE[i] = h
		}
	}
	l.buildSelection()
	c.intern[l.key] = l
	return l, nil
}

func (c *Cache) release(l *Locators) {
	l.refs--
	if l.refs == 0 {
		delete(c.intern, l.key)
		for i := range l.RLOCs {
			if s := l.RLOCs[i].tslot; s != 0 {
				c.tslots.free = append(c.tslots.free, s)
			}
		}
	}
}

// takeTSlot returns a template number (RLOC.TemplateSlot) no template of
// an interned set holds: the last one given back if any, else a new one.
func (c *Cache) takeTSlot() uint32 {
	if n := len(c.tslots.free); n > 0 {
		s := c.tslots.free[n-1]
		c.tslots.free = c.tslots.free[:n-1]
		return s
	}
	c.tslots.next++
	return c.tslots.next
}

// heapOf returns which expiry heap holds e: 0 positive, 1 negative, -1 none.
func heapOf(e *Entry) int {
	if e.Static() {
		return -1
	}
	if e.Negative() {
		return 1
	}
	return 0
}

// link counts e and schedules its expiry.
func (c *Cache) link(e *Entry) {
	c.n++
	switch {
	case e.Static():
		c.nStat++
	case e.Negative():
		c.nNeg++
	}
	if e.kind == KindMulticast {
		c.nMC++
	}
	if h := heapOf(e); h >= 0 {
		c.heaps[h].push(e)
	}
}

// unlink reverses link and drops e's locator reference; the caller removes e
// from its table (or overwrites it).
func (c *Cache) unlink(e *Entry) {
	c.n--
	switch {
	case e.Static():
		c.nStat--
	case e.Negative():
		c.nNeg--
	}
	if e.kind == KindMulticast {
		c.nMC--
	}
	if h := heapOf(e); h >= 0 {
		c.heaps[h].remove(int(e.hidx))
	}
	c.release(e.loc)
}

// remove takes e out of the cache: counts, expiry heap, table and id.
func (c *Cache) remove(in *instance, e *Entry) {
	c.unlink(e)
	c.del(in, e)
	c.freeID(e)
}

// makeRoom evicts entries so that e fits: the negative bound for non-static
// negative entries, then the overall bound. Static entries never get evicted;
// a static insert may exceed MaxEntries when nothing else can go.
func (c *Cache) makeRoom(e *Entry, res *ApplyResult) bool {
	if heapOf(e) == 1 {
		for c.nNeg >= c.cfg.MaxNegative {
			if !c.evict(1, res) {
				return false
			}
		}
	}
	for c.n >= c.cfg.MaxEntries {
		h := 0
		if len(c.heaps[0]) == 0 || (len(c.heaps[1]) > 0 && c.older(1, 0)) {
			h = 1
		}
		if !c.evict(h, res) {
			return e.Static()
		}
	}
	return true
}

// Eviction sweeps a rotating hand over the expiry heap's array (CLOCK-like):
// it looks at evictSample entries at least and keeps going until the least
// recently used entry it has seen was idle for a whole activity tick. If a
// whole sweep finds nothing idle, that is remembered for the current epoch
// (marks only age when the epoch advances), and until then eviction takes the
// least recently used of evictSample entries. So idle entries always go before
// active ones, and the scanning costs O(heap size) per epoch at most beyond
// evictSample per eviction.
const evictSample = 16

// victim returns the heap index of the entry to evict from heap h, or -1.
func (c *Cache) victim(h int) int {
	if c.unfolded {
		c.fold()
	}
	hp := c.heaps[h]
	n := len(hp)
	if n == 0 {
		return -1
	}
	ep := c.epoch.Load()
	idle := ep - 1 // marks below this were not used in the last whole tick
	limit := n
	if c.noIdle[h] == ep {
		limit = min(evictSample, n)
	}
	i := c.hands[h] % n
	best, bu := i, hp[i].used.Load()
	j := 1
	for ; j < limit; j++ {
		if j >= evictSample && bu < idle {
			break
		}
		k := (i + j) % n
		if u := hp[k].used.Load(); u < bu {
			best, bu = k, u
		}
	}
	if j == n && bu >= idle {
		c.noIdle[h] = ep
	}
	c.hands[h] = i + j
	return best
}

// older reports whether heap a's next victim is less recently used than b's.
func (c *Cache) older(a, b int) bool {
	ha, hb := c.hands[a], c.hands[b]
	va, vb := c.victim(a), c.victim(b)
	c.hands[a], c.hands[b] = ha, hb
	return c.heaps[a][va].used.Load() <= c.heaps[b][vb].used.Load()
}

func (c *Cache) evict(h int, res *ApplyResult) bool {
	i := c.victim(h)
	if i < 0 {
		return false
	}
	e := c.heaps[h][i]
	c.remove(c.insts[e.loc.iid], e)
	c.st.Evicted++
	if h == 1 {
		c.st.EvictedNegative++
	}
	res.Evicted = append(res.Evicted, e.Key())
	return true
}

// Expire removes every non-static entry whose TTL has run out at now and
// returns their keys; readers never do expiry work.
func (c *Cache) Expire(now time.Time) []Key {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.foldBefore(now)
	c.advance(now)
	t := uint32(now.Unix())
	var out []Key
	for h := range c.heaps {
		for len(c.heaps[h]) > 0 && c.heaps[h][0].expires <= t {
			e := c.heaps[h][0]
			c.remove(c.insts[e.loc.iid], e)
			c.st.Expired++
			out = append(out, e.Key())
		}
	}
	c.publish(out)
	return out
}

// NextExpiry returns when the next entry expires (false when none will).
func (c *Cache) NextExpiry() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var t uint32
	for h := range c.heaps {
		if len(c.heaps[h]) > 0 && (t == 0 || c.heaps[h][0].expires < t) {
			t = c.heaps[h][0].expires
		}
	}
	return time.Unix(int64(t), 0), t != 0
}

// Refreshable returns the non-static entries that expire within the given
// time after now and were used within activeWithin before now: the ones the
// slow path should re-request before they expire. Idle entries are left to
// expire.
func (c *Cache) Refreshable(now time.Time, within, activeWithin time.Duration) []*Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fold()
	c.advance(now)
	limit := uint32(now.Add(within).Unix())
	active := c.epochAt(now.Add(-activeWithin))
	var out []*Entry
	for h := range c.heaps {
		out = c.heaps[h].collect(0, limit, active, out)
	}
	return out
}

// instance returns the instance of iid, creating and publishing it if create.
func (c *Cache) instance(iid uint32, create bool) *instance {
	if in, ok := c.insts[iid]; ok || !create {
		return in
	}
	in := &instance{iid: iid}
	in.shards(func(s *shard) bool { s.p.Store(c.empty); return true })
	for f := range in.mc {
		in.mc[f].Store(&mcTable{})
		in.mcAll[f] = make(map[Key]*Entry)
	}
	c.insts[iid] = in
	c.dir.Store(newDirectory(c.insts))
	if s := &c.direct[iid%dirDirect]; s.Load() == c.none {
		s.Store(in)
	}
	return in
}

// shardOf returns the unicast shard and trie prefix of a key.
func shardOf(in *instance, k Key) (*shard, netip.Prefix) {
	if k.Kind == KindMAC {
		return &in.mac, macPrefix(k.MAC)
	}
	return &in.ip, k.Prefix
}

func mcFam(k Key) int {
	if k.Group.Addr().Is4() {
		return 0
	}
	return 1
}

// get returns the entry of k in the writer's current view (published state
// plus this batch's changes).
func (c *Cache) get(in *instance, k Key) *Entry {
	if k.Kind == KindMulticast {
		return in.mcAll[mcFam(k)][k]
	}
	s, p := shardOf(in, k)
	if s.pend != nil {
		if v, ok := s.pend.Get(p); ok {
			return v.e
		}
	}
	t := s.work
	if t == nil {
		t = s.p.Load()
	}
	v, _ := t.Get(p)
	return v.e
}

// cloneFactor: a shard switches from per-update persistent inserts to one
// private deep copy plus in-place updates once a batch has made more than
// 4+size/cloneFactor persistent updates to it (a deep copy costs about as
// much as size/cloneFactor persistent updates, garbage collection included;
// see BenchmarkBulkLoad and BenchmarkLookup/apply1k).
const cloneFactor = 32

// wtable returns the batch's working table of a unicast shard.
func (c *Cache) wtable(s *shard) *table {
	if s.work == nil {
		cur := s.p.Load()
		if cur.Size() == 0 {
			s.work, s.owned = new(table), true
		} else {
			s.work, s.owned = cur, false
		}
		s.ops = 0
		c.dirty = append(c.dirty, s)
	}
	t := s.work
	if !s.owned {
		s.ops++
		if int(s.ops) > 4+t.Size()/cloneFactor {
			t = t.Clone()
			if s.pend != nil {
				t.Union(s.pend)
				s.pend = nil
			}
			s.work, s.owned = t, true
		}
	}
	return t
}

// put installs e under k in the batch's view. In a shard the batch does not
// own, an insert goes to the batch's pending table (in place), merged into
// the shared one by a single persistent union when the batch publishes
// (merge): a path of trie nodes that several of the batch's inserts share is
// then copied once, not once per insert (the nodes of a table of a million
// prefixes are large, and copying them was most of a writer's update).
func (c *Cache) put(in *instance, k Key, e *Entry) {
	if k.Kind == KindMulticast {
		f := mcFam(k)
		in.mcAll[f][k] = e
		c.mcMark(in, f)
		return
	}
	s, p := shardOf(in, k)
	t := c.wtable(s)
	if s.owned {
		t.Insert(p, slotOf(e))
		return
	}
	if s.pend == nil {
		s.pend = new(table)
	}
	s.pend.Insert(p, slotOf(e))
}

func (c *Cache) del(in *instance, e *Entry) {
	k := e.Key()
	if k.Kind == KindMulticast {
		f := mcFam(k)
		delete(in.mcAll[f], k)
		c.mcMark(in, f)
		return
	}
	s, p := shardOf(in, k)
	t := c.wtable(s)
	if s.owned {
		t.Delete(p)
		return
	}
	if s.pend != nil {
		s.pend.Delete(p) // inserted by this batch: the later delete wins
	}
	if _, ok := t.Get(p); ok {
		s.work = t.DeletePersist(p)
	}
}

// merge puts the batch's pending inserts of shard s into its working table.
func (s *shard) merge() {
	if s.pend != nil {
		if s.pend.Size() > 0 {
			s.work = s.work.UnionPersist(s.pend)
		}
		s.pend = nil
	}
}

func (c *Cache) mcMark(in *instance, f int) {
	if !in.mcDirty[f] {
		in.mcDirty[f] = true
		c.mcDirt = append(c.mcDirt, mcRef{in, f})
	}
}

// publish swaps every shard the batch touched: one atomic store per shard,
// then bumps the generation when anything was swapped and tells
// Config.Published the batch's keys, changed.
func (c *Cache) publish(changed []Key) {
	if len(c.dirty) == 0 && len(c.mcDirt) == 0 {
		return
	}
	defer func() {
		c.gen.Add(1)
		if c.cfg.Published != nil {
			c.cfg.Published(changed)
		}
	}()
	for _, s := range c.dirty {
		s.merge()
		s.p.Store(s.work)
		s.work, s.owned, s.ops = nil, false, 0
	}
	c.dirty = c.dirty[:0]
	for _, r := range c.mcDirt {
		r.in.mc[r.f].Store(buildMC(r.in.mcAll[r.f]))
		r.in.mcDirty[r.f] = false
	}
	c.mcDirt = c.mcDirt[:0]
}

// entryHeap is a min-heap of entries by expiry time; each entry knows its
// index (hidx) so it can be removed from the middle.
type entryHeap []*Entry

func (h *entryHeap) push(e *Entry) {
	e.hidx = int32(len(*h))
	*h = append(*h, e)
	h.up(len(*h) - 1)
}

func (h *entryHeap) remove(i int) {
	s := *h
	n := len(s) - 1
	e := s[i]
	if i != n {
		s[i] = s[n]
		s[i].hidx = int32(i)
	}
	s[n] = nil
	*h = s[:n]
	if i != n {
		if !h.down(i) {
			h.up(i)
		}
	}
	e.hidx = -1
}

func (h entryHeap) less(i, j int) bool { return h[i].expires < h[j].expires }

func (h entryHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = int32(i), int32(j)
}

func (h entryHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h entryHeap) down(i int) bool {
	start := i
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > start
}

// collect appends the entries of the subtree at i that expire by limit and
// whose activity mark is at least active; subtrees past limit are skipped.
func (h entryHeap) collect(i int, limit uint32, active uint32, out []*Entry) []*Entry {
	if i >= len(h) || h[i].expires > limit {
		return out
	}
	if h[i].used.Load() >= active {
		out = append(out, h[i])
	}
	out = h.collect(2*i+1, limit, active, out)
	return h.collect(2*i+2, limit, active, out)
}

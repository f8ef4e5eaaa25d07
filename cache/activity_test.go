package cache

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReaderActivityKeepsEntryAlive: two workers' Readers; entry A is looked
// up only through worker 2's, entry B by nobody. A is listed for refresh and
// survives, B expires; and when the cache overflows, B-like idle entries are
// evicted before A.
func TestReaderActivityKeepsEntryAlive(t *testing.T) {
	clk := &fakeClock{t: time.Unix(5_000_000, 0)}
	c := New(Config{Now: clk.now, MaxEntries: 4})
	w1, w2 := c.NewReader(), c.NewReader()
	kA := IPKey(1, netip.MustParsePrefix("10.1.0.0/16"))
	kB := IPKey(1, netip.MustParsePrefix("10.2.0.0/16"))
	c.Apply([]Update{{Key: kA, TTL: 2, RLOCs: up1}, {Key: kB, TTL: 2, RLOCs: up1}})
	a := netip.MustParseAddr("10.1.2.3")

	clk.t = clk.t.Add(90 * time.Second)
	c.Tick(clk.t)
	if _, ok := w2.Lookup(1, a); !ok {
		t.Fatal("A not found")
	}
	if _, ok := w1.Lookup(1, netip.MustParseAddr("10.3.0.1")); ok {
		t.Fatal("worker 1 hit an address nothing covers")
	}
	w1.Flush() // each worker at the end of its batch
	w2.Flush()
	ref := c.Refreshable(clk.t, 60*time.Second, 10*time.Second)
	if len(ref) != 1 || ref[0].Key() != kA {
		t.Fatalf("Refreshable = %v, want only A (looked up by worker 2)", keysOf(ref))
	}
	c.Apply([]Update{{Key: kA, TTL: 2, RLOCs: up1}}) // the slow path refreshes A
	clk.t = clk.t.Add(40 * time.Second)
	if got := c.Expire(clk.t); len(got) != 1 || got[0] != kB {
		t.Fatalf("Expire = %v, want only B (looked up by nobody)", got)
	}
	if _, ok := w1.Lookup(1, a); !ok {
		t.Fatal("A expired although worker 2 used it")
	}

	// Overflow: C and D installed after A's refresh, A then used by worker 2
	// only; three inserts into a cache bounded at 4 evict two entries: C and
	// D, never A (which, unused, would be the least recently used).
	c.Apply([]Update{
		{Key: IPKey(1, netip.MustParsePrefix("10.3.0.0/16")), TTL: 5, RLOCs: up1},
		{Key: IPKey(1, netip.MustParsePrefix("10.4.0.0/16")), TTL: 5, RLOCs: up1},
	})
	clk.t = clk.t.Add(5 * time.Second)
	c.Expire(clk.t)
	w2.Lookup(1, a)
	w2.Flush()
	clk.t = clk.t.Add(5 * time.Second)
	res := c.Apply([]Update{
		{Key: IPKey(1, netip.MustParsePrefix("10.5.0.0/16")), TTL: 5, RLOCs: up1},
		{Key: IPKey(1, netip.MustParsePrefix("10.6.0.0/16")), TTL: 5, RLOCs: up1},
		{Key: IPKey(1, netip.MustParsePrefix("10.7.0.0/16")), TTL: 5, RLOCs: up1},
	})
	kC, kD := IPKey(1, netip.MustParsePrefix("10.3.0.0/16")), IPKey(1, netip.MustParsePrefix("10.4.0.0/16"))
	if len(res.Evicted) != 2 || !hasKey(res.Evicted, kC) || !hasKey(res.Evicted, kD) {
		t.Fatalf("evicted %v, want the idle C and D and not A", res.Evicted)
	}
}

// TestLookupLeavesEntryUntouched: a lookup does not write the entry; its mark
// reaches the entry when the writer folds (here Expire, as the epoch moves),
// with the epoch the lookup was made in, and LastUsed counts a mark that is
// still pending.
func TestLookupLeavesEntryUntouched(t *testing.T) {
	start := time.Unix(6_000_000, 0)
	clk := &fakeClock{t: start}
	c := New(Config{Now: clk.now})
	k := IPKey(2, netip.MustParsePrefix("192.0.2.0/24"))
	c.Apply([]Update{{Key: k, TTL: 600, RLOCs: up1}})
	e, _ := c.Get(k)
	before := e.used.Load()
	clk.t = start.Add(time.Hour)
	c.Tick(clk.t)
	r := c.NewReader()
	if _, ok := r.Lookup(2, netip.MustParseAddr("192.0.2.9")); !ok {
		t.Fatal("miss")
	}
	r.Flush()
	if e.used.Load() != before {
		t.Fatal("the lookup wrote the entry")
	}
	if lu := c.LastUsed(e); lu.Before(clk.t.Add(-time.Second)) {
		t.Fatalf("pending mark: last used %v, want the tick of %v", lu, clk.t)
	}
	used := clk.t
	clk.t = clk.t.Add(time.Second)
	c.Expire(clk.t) // the epoch moves: the writer folds first
	if e.used.Load() != c.epochAt(used) {
		t.Fatalf("after the fold the mark is %d, want epoch %d (the lookup's)", e.used.Load(), c.epochAt(used))
	}
	// Close folds what the reader marked since, and its later lookups no
	// longer mark anything.
	clk.t = clk.t.Add(time.Hour)
	c.Tick(clk.t)
	r.Lookup(2, netip.MustParseAddr("192.0.2.9"))
	r.Close()
	if e.used.Load() != c.epochAt(clk.t) {
		t.Fatal("Close did not fold the reader's marks")
	}
	c.Tick(clk.t.Add(time.Hour))
	r.Lookup(2, netip.MustParseAddr("192.0.2.9"))
	if c.LastUsed(e).After(clk.t) {
		t.Fatal("a closed reader still marks entries")
	}
}

// TestReplacementKeepsActivityID: an update replaces an entry under the same
// activity id, so a worker still holding the replaced entry (from a memo or
// an old snapshot) marks its replacement; a deleted entry's id goes to the
// next new entry.
func TestReplacementKeepsActivityID(t *testing.T) {
	c, clk, r := readerCache(7_000_000)
	start := clk.t
	k := IPKey(3, netip.MustParsePrefix("10.0.0.0/8"))
	c.Apply([]Update{{Key: k, TTL: 60, RLOCs: up1}})
	old, _ := c.Get(k)
	c.Apply([]Update{{Key: k, TTL: 30, RLOCs: up1}})
	cur, _ := c.Get(k)
	if cur == old || cur.id != old.id {
		t.Fatalf("replacement: new entry %p id %d, old %p id %d; want a new entry with the same id", cur, cur.id, old, old.id)
	}
	clk.t = start.Add(10 * time.Minute)
	c.Tick(clk.t)
	r.MarkActive(old)
	r.Flush()
	if ref := c.Refreshable(clk.t, time.Hour, time.Second); len(ref) != 1 || ref[0] != cur {
		t.Fatalf("Refreshable = %v, want the replacement marked through the old entry", keysOf(ref))
	}
	id := cur.id
	c.Apply([]Update{{Key: k, Delete: true}})
	k2 := IPKey(3, netip.MustParsePrefix("11.0.0.0/8"))
	c.Apply([]Update{{Key: k2, TTL: 60, RLOCs: up1}})
	if e2, _ := c.Get(k2); e2.id != id {
		t.Fatalf("new entry got id %d, want the freed id %d", e2.id, id)
	}
}

// TestReadersDuringApply: two Readers look up continuously while the writer
// inserts enough entries to add activity chunks under them, replaces and
// deletes entries, and folds (Expire); run it with -race. Every hit is an
// entry covering the destination, and the readers' marks all land.
func TestReadersDuringApply(t *testing.T) {
	clk := &fakeClock{t: time.Unix(8_000_000, 0)}
	var mu sync.Mutex // guards clk between the writer and Now
	c := New(Config{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clk.t }})
	n := 3 * (1 << chunkBits) / 2 // ids spill into a second chunk
	if raceOn {
		n = (1 << chunkBits) + 1000
	}
	pfx := func(i int) netip.Prefix { return v4pfx(0x0a000000+i<<8, 24) }
	var stop atomic.Bool
	var wg sync.WaitGroup
	var hits [2]atomic.Int64
	errs := make(chan string, 2)
	readers := []*Reader{c.NewReader(), c.NewReader()}
	for w, rd := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 3))
			for k := 1; !stop.Load(); k++ {
				if k%32 == 0 { // a worker's batch ends
					rd.Flush()
				}
				i := r.IntN(n)
				dst := netip.AddrFrom4(pfx(i).Addr().As4())
				e, ok := rd.Lookup(1, dst)
				if !ok {
					continue
				}
				hits[w].Add(1)
				if !e.Key().Prefix.Contains(dst) {
					errs <- "hit an entry that does not cover the destination"
					return
				}
			}
		}()
	}
	batch := make([]Update, 0, 1000)
	flush := func() {
		c.Apply(batch)
		batch = batch[:0]
		mu.Lock()
		clk.t = clk.t.Add(time.Second)
		mu.Unlock()
		c.Expire(clk.t)
	}
	for i := range n {
		batch = append(batch, Update{Key: IPKey(1, pfx(i)), TTL: 60, RLOCs: up1})
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	r := rand.New(rand.NewPCG(9, 9))
	for range 5_000 {
		i := r.IntN(n)
		if r.IntN(3) == 0 {
			batch = append(batch, Update{Key: IPKey(1, pfx(i)), Delete: true})
		} else {
			batch = append(batch, Update{Key: IPKey(1, pfx(i)), TTL: 30, RLOCs: up1})
		}
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	for hits[0].Load() == 0 || hits[1].Load() == 0 { // slow machines: make sure readers ran
		mu.Lock()
		clk.t = clk.t.Add(time.Second)
		mu.Unlock()
		c.Expire(clk.t)
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Fatal(msg)
	}
	for _, rd := range readers { // the workers' last batches end
		rd.Flush()
	}
	if c.nChunks < 2 {
		t.Fatalf("activity chunks %d: the test did not grow the bitmaps", c.nChunks)
	}
	// Every entry each reader looks up now is marked in the next fold, and
	// only those (the earlier marks were folded with older epochs).
	mu.Lock()
	clk.t = clk.t.Add(10 * time.Second)
	mu.Unlock()
	c.Expire(clk.t)
	var want []*Entry
	for i := 0; i < n; i += 97 {
		if e, ok := readers[i%2].Lookup(1, pfx(i).Addr()); ok {
			want = append(want, e)
		}
	}
	readers[0].Flush()
	readers[1].Flush()
	ref := c.Refreshable(clk.t, 24*time.Hour, time.Second)
	got := map[*Entry]bool{}
	for _, e := range ref {
		got[e] = true
	}
	for _, e := range want {
		if !got[e] {
			t.Fatalf("%v looked up after the writes but not marked active", e.Key())
		}
	}
	if len(want) == 0 || len(ref) != len(want) {
		t.Fatalf("%d entries active, want the %d looked up", len(ref), len(want))
	}
}

func TestReaderLookupsAllocateNothing(t *testing.T) {
	c := New(Config{})
	c.Apply([]Update{
		{Key: IPKey(1, netip.MustParsePrefix("10.0.0.0/8")), TTL: 5, RLOCs: up1},
		{Key: IPKey(1, netip.MustParsePrefix("2001:db8::/32")), TTL: 5, RLOCs: up1},
		{Key: MACKey(1, [6]byte{2, 0, 0, 0, 0, 1}), TTL: 5, RLOCs: up1},
		{Key: MulticastKey(1, netip.Prefix{}, netip.MustParsePrefix("239.0.0.0/8")), TTL: 5, RLE: []RLEHop{{Addr: netip.MustParseAddr("192.0.2.9")}}},
	})
	r := c.NewReader()
	a4, a6 := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("2001:db8::1")
	src, grp := netip.MustParseAddr("10.9.9.9"), netip.MustParseAddr("239.1.2.3")
	hits := 0
	allocs := testing.AllocsPerRun(1000, func() {
		for _, ok := range []bool{
			ok2(r.Lookup(1, a4)), ok2(r.Lookup(1, a6)), ok2(r.LookupMAC(1, [6]byte{2, 0, 0, 0, 0, 1})),
			ok2(r.LookupMulticast(1, src, grp)),
		} {
			if ok {
				hits++
			}
		}
		e, _ := r.Lookup(1, a4)
		r.MarkActive(e)
	})
	if allocs != 0 {
		t.Fatalf("Reader lookups allocate %.1f times per run, want 0", allocs)
	}
	if hits != 1001*4 {
		t.Fatalf("hits %d, want %d", hits, 1001*4)
	}
}

func ok2(_ *Entry, ok bool) bool { return ok }

func keysOf(es []*Entry) []Key {
	ks := make([]Key, 0, len(es))
	for _, e := range es {
		ks = append(ks, e.Key())
	}
	return ks
}

// TestReaderFlushes: a Reader's lookups are marked when its owner flushes
// (the end of a batch) or when its note list fills, whichever comes first;
// Close flushes too.
func TestReaderFlushes(t *testing.T) {
	start := time.Unix(9_000_000, 0)
	clk := &fakeClock{t: start}
	c := New(Config{Now: clk.now})
	var ups []Update
	for i := range noteLen + 10 {
		ups = append(ups, Update{Key: IPKey(4, v4pfx(0x0a000000+i<<8, 24)), TTL: 600, RLOCs: up1})
	}
	c.Apply(ups)
	r := c.NewReader()
	clk.t = start.Add(time.Minute)
	c.Tick(clk.t)
	active := func() int { return len(c.Refreshable(clk.t, time.Hour*24, time.Second)) }
	for i := range noteLen - 1 {
		r.Lookup(4, v4pfx(0x0a000000+i<<8, 32).Addr())
	}
	if n := active(); n != 0 {
		t.Fatalf("%d entries active before the note list filled or a flush", n)
	}
	r.Lookup(4, v4pfx(0x0a000000+(noteLen-1)<<8, 32).Addr()) // the list is full: flushed
	if n := active(); n != noteLen {
		t.Fatalf("%d entries active after %d lookups, want all of them", n, noteLen)
	}
	clk.t = clk.t.Add(time.Minute)
	c.Tick(clk.t)
	r.Lookup(4, v4pfx(0x0a000000+noteLen<<8, 32).Addr())
	r.Flush()
	r.Lookup(4, v4pfx(0x0a000000+(noteLen+1)<<8, 32).Addr())
	r.Close()
	if n := active(); n != 2 {
		t.Fatalf("%d entries active after a Flush and a Close, want 2", n)
	}
}

// TestReplacedBitmapStillFolded: when the ids outgrow the activity bitmaps,
// each is replaced by a larger one, but a lookup that loaded the old bitmap
// before the replacement may still mark it; the writer keeps folding it (and
// LastUsed sees its pending marks), for the shared bitmap and a Reader's.
func TestReplacedBitmapStillFolded(t *testing.T) {
	c, clk, r := readerCache(10_000_000)
	start := clk.t
	kA, kB := IPKey(5, netip.MustParsePrefix("10.0.0.0/8")), IPKey(5, netip.MustParsePrefix("11.0.0.0/8"))
	c.Apply([]Update{{Key: kA, TTL: 600, RLOCs: up1}, {Key: kB, TTL: 600, RLOCs: up1}})
	a, _ := c.Get(kA)
	b, _ := c.Get(kB)
	oldShared, oldReader := c.shared.cur.Load(), r.act.cur.Load()
	var ups []Update
	for i := range 1 << chunkBits { // ids beyond the first bitmap
		ups = append(ups, Update{Key: IPKey(5, v4pfx(0x0c000000+i<<8, 24)), TTL: 600, RLOCs: up1})
	}
	c.Apply(ups)
	if c.shared.cur.Load() == oldShared || r.act.cur.Load() == oldReader {
		t.Fatal("the bitmaps were not replaced")
	}
	clk.t = start.Add(time.Hour)
	c.Tick(clk.t)
	oldShared.mark(a.id) // a Cache.Lookup that loaded the bitmap before it was replaced
	oldReader.markOwned(b.id)
	for _, e := range []*Entry{a, b} {
		if lu := c.LastUsed(e); lu.Before(clk.t.Add(-time.Second)) {
			t.Fatalf("%v: pending mark in a replaced bitmap not seen: last used %v", e.Key(), lu)
		}
	}
	used := clk.t
	clk.t = clk.t.Add(time.Second)
	c.Expire(clk.t) // folds
	for _, e := range []*Entry{a, b} {
		if e.used.Load() != c.epochAt(used) {
			t.Fatalf("%v: mark %d after the fold, want epoch %d: a replaced bitmap was not folded", e.Key(), e.used.Load(), c.epochAt(used))
		}
	}
}

// TestReaderNotesUnmarkedOnly: a Reader notes a hit only while the entry's
// bit is clear in its own bitmap: after a Flush, lookups of the entry note
// nothing until the writer's fold clears the bit; then the next lookup notes
// it again and the next fold marks it with its epoch. Lookups and MarkActive
// alike.
func TestReaderNotesUnmarkedOnly(t *testing.T) {
	c, clk, r := readerCache(11_000_000)
	k := IPKey(6, netip.MustParsePrefix("10.0.0.0/8"))
	c.Apply([]Update{{Key: k, TTL: 600, RLOCs: up1}})
	e, _ := c.Get(k)
	a := netip.MustParseAddr("10.9.9.9")
	for round := range 3 {
		clk.t = clk.t.Add(time.Minute)
		c.Expire(clk.t) // the epoch moves: the writer folds
		used := clk.t
		r.Lookup(6, a)
		r.MarkActive(e)
		if r.n != 2 {
			t.Fatalf("round %d: %d ids noted before a flush, want 2 (the bit is clear)", round, r.n)
		}
		r.Flush()
		for range 10 {
			r.Lookup(6, a)
			r.MarkActive(e)
		}
		if r.n != 0 {
			t.Fatalf("round %d: %d ids noted after the flush, want none (the bit is set)", round, r.n)
		}
		clk.t = clk.t.Add(time.Minute)
		c.Expire(clk.t)
		if e.used.Load() != c.epochAt(used) {
			t.Fatalf("round %d: mark %d, want epoch %d", round, e.used.Load(), c.epochAt(used))
		}
	}
}

// readerCache returns a cache on a fake clock set to the Unix time sec, and a
// Reader of it.
func readerCache(sec int64) (*Cache, *fakeClock, *Reader) {
	clk := &fakeClock{t: time.Unix(sec, 0)}
	c := New(Config{Now: clk.now})
	return c, clk, c.NewReader()
}

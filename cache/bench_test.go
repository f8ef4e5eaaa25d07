package cache

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchSets returns n distinct two-RLOC sets, shared round-robin by the
// benchmark prefixes (about 100 prefixes per set at 1M prefixes).
func benchSets(n int) [][]RLOC {
	sets := make([][]RLOC, n)
	for i := range sets {
		sets[i] = []RLOC{
			{Addr: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), Priority: 1, Weight: 50, Reachable: true},
			{Addr: netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), Priority: 1, Weight: 50, Reachable: true},
		}
	}
	return sets
}

func benchTemplate(iid uint32, fam Family, r *RLOC) []byte {
	b := make([]byte, 50) // Ethernet + IPv4 + UDP + LISP
	copy(b[30:], r.Addr.AsSlice())
	return b
}

func loadUpdates(iid uint32, pfx []netip.Prefix, sets [][]RLOC) []Update {
	ups := make([]Update, len(pfx))
	for i, p := range pfx {
		ups[i] = Update{Key: IPKey(iid, p), TTL: 1440, RLOCs: sets[i%len(sets)]}
	}
	return ups
}

type benchData struct {
	c            *Cache
	p4, p6       []netip.Prefix
	hot4, rand4  []netip.Addr
	miss4        []netip.Addr
	hot6, rand6  []netip.Addr
	miss6        []netip.Addr
	sgSrc, sgGrp []netip.Addr
}

const benchIID = 100

// newBenchData builds the cache of the lookup benchmarks: 1M IPv4 prefixes
// (80% /24, 12% /16-/22, 8% /32) and 500k IPv6 prefixes in one instance-ID,
// 10k RLOC sets, and 10k (S,G) plus 1k (*,G) entries.
func newBenchData(b *testing.B) *benchData {
	r := rand.New(rand.NewPCG(1, 2))
	d := &benchData{c: New(Config{MaxEntries: 4 << 20, BuildTemplate: benchTemplate})}
	d.p4, d.p6 = genV4(r, 1_000_000), genV6(r, 500_000)
	sets := benchSets(10_000)
	for _, ps := range [][]netip.Prefix{d.p4, d.p6} {
		if res := d.c.Apply(loadUpdates(benchIID, ps, sets)); res.Rejected != 0 {
			b.Fatal(res.Err)
		}
	}
	const q = 1 << 20
	mk := func(n int, f func() netip.Addr) []netip.Addr {
		out := make([]netip.Addr, n)
		for i := range out {
			out[i] = f()
		}
		return out
	}
	d.hot4 = mk(64, func() netip.Addr { return hitAddr(r, d.p4[r.IntN(len(d.p4))]) })
	d.rand4 = mk(q, func() netip.Addr { return hitAddr(r, d.p4[r.IntN(len(d.p4))]) })
	d.hot6 = mk(64, func() netip.Addr { return hitAddr(r, d.p6[r.IntN(len(d.p6))]) })
	d.rand6 = mk(q, func() netip.Addr { return hitAddr(r, d.p6[r.IntN(len(d.p6))]) })
	miss := func(v4 bool) netip.Addr {
		for {
			a := randAddr(r, v4)
			if _, ok := d.c.Lookup(benchIID, a); !ok {
				return a
			}
		}
	}
	d.miss4 = mk(q, func() netip.Addr { return miss(true) })
	d.miss6 = mk(q, func() netip.Addr { return miss(false) })
	var ups []Update
	rle := []RLEHop{{Addr: netip.MustParseAddr("192.0.2.1"), Level: 0}, {Addr: netip.MustParseAddr("192.0.2.2"), Level: 1}}
	for i := range 10_000 {
		s := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
		g := netip.PrefixFrom(netip.AddrFrom4([4]byte{232, byte(i % 1000 >> 8), byte(i % 1000), 0}), 24)
		ups = append(ups, Update{Key: MulticastKey(benchIID, s, g), TTL: 60, RLE: rle})
	}
	for i := range 1_000 {
		g := netip.PrefixFrom(netip.AddrFrom4([4]byte{233, byte(i >> 8), byte(i), 0}), 24)
		ups = append(ups, Update{Key: MulticastKey(benchIID, netip.Prefix{}, g), TTL: 60, RLE: rle})
	}
	d.c.Apply(ups)
	d.sgSrc = mk(q, func() netip.Addr {
		return netip.AddrFrom4([4]byte{10, byte(r.IntN(40)), byte(r.Uint32()), byte(r.Uint32())})
	})
	d.sgGrp = mk(q, func() netip.Addr {
		if r.IntN(2) == 0 {
			return netip.AddrFrom4([4]byte{232, byte(r.IntN(4)), byte(r.Uint32()), byte(r.Uint32())})
		}
		return netip.AddrFrom4([4]byte{233, byte(r.IntN(4)), byte(r.Uint32()), byte(r.Uint32())})
	})
	return d
}

func benchLookups(b *testing.B, c *Cache, q []netip.Addr, wantHit bool) {
	b.ReportAllocs()
	mask := len(q) - 1
	hits := 0
	for i := 0; b.Loop(); i++ {
		if e, ok := c.Lookup(benchIID, q[i&mask]); ok && e.Select(uint32(i)) != nil {
			hits++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/lookup")
	if wantHit != (hits > 0) {
		b.Fatalf("hits %d, want hits: %v", hits, wantHit)
	}
}

// BenchmarkLookup: one goroutine, 1M IPv4 + 500k IPv6 prefixes. "hot" cycles
// over 64 destinations (cache-resident, like a few busy flows), "random"
// over 1M destinations spread over all prefixes (memory-bound), "miss" over
// 1M random addresses that match nothing.
func BenchmarkLookup(b *testing.B) {
	d := newBenchData(b)
	b.Run("v4/hit/hot", func(b *testing.B) { benchLookups(b, d.c, d.hot4, true) })
	b.Run("v4/hit/random", func(b *testing.B) { benchLookups(b, d.c, d.rand4, true) })
	b.Run("v4/miss/random", func(b *testing.B) { benchLookups(b, d.c, d.miss4, false) })
	b.Run("v6/hit/hot", func(b *testing.B) { benchLookups(b, d.c, d.hot6, true) })
	b.Run("v6/hit/random", func(b *testing.B) { benchLookups(b, d.c, d.rand6, true) })
	b.Run("v6/miss/random", func(b *testing.B) { benchLookups(b, d.c, d.miss6, false) })
	b.Run("SG/random", func(b *testing.B) {
		b.ReportAllocs()
		mask := len(d.sgSrc) - 1
		hits := 0
		for i := 0; b.Loop(); i++ {
			if _, ok := d.c.LookupMulticast(benchIID, d.sgSrc[i&mask], d.sgGrp[(i*7)&mask]); ok {
				hits++
			}
		}
		if hits == 0 {
			b.Fatal("no (S,G) hits")
		}
		b.ReportMetric(float64(hits)/float64(b.N), "hit-ratio")
	})
	b.Run("parallel2/v4/random+writer10k", func(b *testing.B) { benchReadersWithWriter(b, d, d.rand4) })
	b.Run("parallel2/v4/hot+writer10k", func(b *testing.B) { benchReadersWithWriter(b, d, d.hot4) })
	b.Run("apply1k", func(b *testing.B) {
		// One batch of 1k updates (80% replace with another set, 10% new
		// prefix, 10% delete) on the loaded cache, until its shards are swapped.
		r := rand.New(rand.NewPCG(8, 8))
		sets := benchSets(100)
		batch := make([]Update, 1000)
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			for i := range batch {
				p := d.p4[r.IntN(len(d.p4))]
				switch x := r.IntN(10); {
				case x == 0:
					batch[i] = Update{Key: IPKey(benchIID, p), Delete: true}
				case x == 1:
					batch[i] = Update{Key: IPKey(benchIID, netip.PrefixFrom(randAddr(r, true), 28).Masked()), TTL: 60, RLOCs: sets[r.IntN(100)]}
				default:
					batch[i] = Update{Key: IPKey(benchIID, p), TTL: 60, RLOCs: sets[r.IntN(100)]}
				}
			}
			b.StartTimer()
			d.c.Apply(batch)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/batch")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/update")
	})
}

// BenchmarkBulkLoad loads 1M IPv4 prefixes (10k shared RLOC sets) into an
// empty cache in batches of 100k and reports time and the heap it holds.
// An empty shard is filled in place (the table is private until published);
// later batches clone it once and update in place (see cloneFactor).
func BenchmarkBulkLoad(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	p4 := genV4(r, 1_000_000)
	ups := loadUpdates(1, p4, benchSets(10_000))
	for _, batch := range []int{1_000_000, 100_000} {
		b.Run("batch"+itoa(uint64(batch)), func(b *testing.B) {
			var ms runtime.MemStats
			var heap uint64
			var took time.Duration
			for range b.N {
				runtime.GC()
				runtime.ReadMemStats(&ms)
				before := ms.HeapAlloc
				start := time.Now()
				c := New(Config{MaxEntries: 2 << 20, BuildTemplate: benchTemplate})
				for i := 0; i < len(ups); i += batch {
					c.Apply(ups[i:min(i+batch, len(ups))])
				}
				took += time.Since(start)
				runtime.GC()
				runtime.ReadMemStats(&ms)
				heap = ms.HeapAlloc - before
				if c.Len() != len(ups) {
					b.Fatalf("Len %d", c.Len())
				}
				runtime.KeepAlive(c)
			}
			b.ReportMetric(float64(took.Milliseconds())/float64(b.N), "ms/load")
			b.ReportMetric(float64(heap)/(1<<20), "MiB")
			b.ReportMetric(float64(heap)/float64(len(ups)), "B/prefix")
		})
	}
	b.Run("persist-only/50k", func(b *testing.B) {
		// For comparison: the same load with a persistent insert per prefix
		// (what Apply would cost without the in-place path), 50k prefixes.
		for b.Loop() {
			t := new(table)
			e := slot{e: &Entry{}}
			for _, p := range p4[:50_000] {
				t = t.InsertPersist(p, e)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/50_000, "ns/insert")
	})
}

// benchReadersWithWriter runs two reader goroutines (b.N lookups in all)
// while a writer applies 100 updates every 10 ms (10k updates/s) to the
// IPv4 table. GOMAXPROCS is 3 during the run so the writer has a P of its own
// (as the slow path has its own core in rlocd) instead of waiting for the
// scheduler to preempt a reader; on the 2-core test machine the OS then
// shares the two cores between the three threads.
func benchReadersWithWriter(b *testing.B, d *benchData, q []netip.Addr) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	var stop atomic.Bool
	var wg sync.WaitGroup
	var applied atomic.Int64
	var writerBusy atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(5, 5))
		sets := benchSets(100)
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		batch := make([]Update, 100)
		for !stop.Load() {
			<-tk.C
			for i := range batch {
				batch[i] = Update{Key: IPKey(benchIID, d.p4[r.IntN(len(d.p4))]), TTL: 1440, RLOCs: sets[r.IntN(len(sets))]}
			}
			st := time.Now()
			d.c.Apply(batch)
			writerBusy.Add(int64(time.Since(st)))
			applied.Add(int64(len(batch)))
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var rw sync.WaitGroup
	for g := range 2 {
		rw.Add(1)
		go func() {
			defer rw.Done()
			mask := len(q) - 1
			i := g * 1_000_003
			for range b.N / 2 {
				if e, ok := d.c.Lookup(benchIID, q[i&mask]); ok {
					e.Select(uint32(i))
				}
				i++
			}
		}()
	}
	rw.Wait()
	el := time.Since(start)
	b.StopTimer()
	stop.Store(true)
	wg.Wait()
	b.ReportMetric(float64(b.N)/el.Seconds()/1e6, "Mlookups/s")
	b.ReportMetric(float64(applied.Load())/el.Seconds(), "updates/s")
	if n := applied.Load(); n > 0 {
		b.ReportMetric(float64(writerBusy.Load())/float64(n), "writer-ns/update")
	}
}

package cache

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/gaissmai/bart"
)

// BenchmarkSplit measures both sides of splitting IPv4 by the first octet
// (Config.splitV4) over 1M IPv4 prefixes (80% /24), unsplit and split caches
// side by side in one process: lookups (hot and random, interleaved with a
// raw bart.Fast as in BenchmarkLookupRef) and the writer's cost per update,
// for batches of 1000 updates (80% replace, 10% new /28, 10% delete: what
// BenchmarkLookup/apply1k does) and for single-update batches (what the
// slow path applies per Map-Reply). Writer batches alternate between the two
// caches and include the garbage collection they cause.
func BenchmarkSplit(b *testing.B) {
	r := rand.New(rand.NewPCG(21, 22))
	p4 := genV4(r, 1_000_000)
	sets := benchSets(10_000)
	names := []string{"bart", "unsplit", "split"}
	caches := []*Cache{
		New(Config{MaxEntries: 4 << 20, BuildTemplate: benchTemplate}),
		New(Config{MaxEntries: 4 << 20, BuildTemplate: benchTemplate, splitV4: true}),
	}
	ft := new(bart.Fast[*Entry])
	for _, c := range caches {
		if res := c.Apply(loadUpdates(benchIID, p4, sets)); res.Rejected != 0 {
			b.Fatal(res.Err)
		}
	}
	for _, p := range p4 {
		e, _ := caches[0].Get(IPKey(benchIID, p))
		ft.Insert(p, e)
	}
	vs := []blockLookups{func(q []netip.Addr, from, to int) (hits int) {
		mask := len(q) - 1
		for i := from; i < to; i++ {
			if _, ok := ft.Lookup(q[i&mask]); ok {
				hits++
			}
		}
		return hits
	}}
	for k, c := range caches {
		off := (k + 1) * (1 << 20) / 3
		vs = append(vs, func(q []netip.Addr, from, to int) (hits int) {
			mask := len(q) - 1
			for i := from + off; i < to+off; i++ {
				if _, ok := c.Lookup(benchIID, q[i&mask]); ok {
					hits++
				}
			}
			return hits
		})
	}
	for _, load := range []struct {
		name string
		n    int
	}{{"hot", 64}, {"random", 1 << 20}} {
		q := make([]netip.Addr, load.n)
		for i := range q {
			q[i] = hitAddr(r, p4[r.IntN(len(p4))])
		}
		b.Run("lookup/"+load.name, func(b *testing.B) { pairedLookups(b, q, names, vs) })
	}
	for _, size := range []int{1000, 1} {
		b.Run("apply/batch"+itoa(uint64(size)), func(b *testing.B) {
			wr := rand.New(rand.NewPCG(23, 24))
			wsets := benchSets(100)
			batch := make([]Update, size)
			var took [2]time.Duration
			updates := 0
			for b.Loop() {
				for i := range batch {
					p := p4[wr.IntN(len(p4))]
					switch x := wr.IntN(10); {
					case x == 0:
						batch[i] = Update{Key: IPKey(benchIID, p), Delete: true}
					case x == 1:
						batch[i] = Update{Key: IPKey(benchIID, netip.PrefixFrom(randAddr(wr, true), 28).Masked()), TTL: 60, RLOCs: wsets[wr.IntN(100)]}
					default:
						batch[i] = Update{Key: IPKey(benchIID, p), TTL: 60, RLOCs: wsets[wr.IntN(100)]}
					}
				}
				for k, c := range caches {
					t0 := time.Now()
					c.Apply(batch)
					took[k] += time.Since(t0)
				}
				updates += size
			}
			for k := range caches {
				ns := float64(took[k].Nanoseconds()) / float64(updates)
				b.ReportMetric(ns, names[k+1]+"-ns/update")
				b.ReportMetric(1e9/ns, names[k+1]+"-updates/s")
			}
		})
	}
}

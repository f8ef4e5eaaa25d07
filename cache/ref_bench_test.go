package cache

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/gaissmai/bart"
)

// blockLookups looks up q[from:to] (indices masked by len(q)-1) and returns
// the hits. A variant's loop is written out in its own function, so the only
// indirect call is one per block.
type blockLookups func(q []netip.Addr, from, to int) int

// refBlock is the number of lookups a variant does before the next one runs.
const refBlock = 1024

// pairedLookups runs the variants in turn, block by block (rotating which
// goes first), b.N lookups each, and reports each one's ns/lookup and its
// ratio to the first variant (the reference). Interleaving blocks means every
// variant sees the same machine: on a shared 2-vCPU VM the noise between two
// separate benchmark runs is larger than the differences measured here. Each
// variant reads q from its own offset (a third of q apart), so that no
// variant finds the trie nodes the one before it has just loaded.
func pairedLookups(b *testing.B, q []netip.Addr, names []string, vs []blockLookups) {
	took := make([]time.Duration, len(vs))
	b.ResetTimer()
	for i, blk := 0, 0; i < b.N; i, blk = i+refBlock, blk+1 {
		to := min(i+refBlock, b.N)
		for k := range vs {
			v := (blk + k) % len(vs)
			t0 := time.Now()
			if hits := vs[v](q, i, to); hits != to-i {
				b.Fatalf("%s: %d hits in %d lookups, want all", names[v], hits, to-i)
			}
			took[v] += time.Since(t0)
		}
	}
	b.StopTimer()
	for v := range vs {
		ns := float64(took[v].Nanoseconds()) / float64(b.N)
		b.ReportMetric(ns, names[v]+"-ns")
		if v > 0 {
			b.ReportMetric(ns/(float64(took[0].Nanoseconds())/float64(b.N)), names[v]+"/"+names[0])
		}
	}
}

// BenchmarkLookupRef puts the cache's lookup beside a raw bart.Fast holding
// the identical prefixes (and the same *Entry values), in the same binary:
// 1M IPv4 prefixes (80% /24) and 500k IPv6 prefixes in one instance-ID,
// looked up "hot" (64 destinations, cache-resident) and "random" (1M
// destinations over all prefixes, memory-bound). "bart" is the reference,
// "rloc" is Cache.Lookup, activity mark included; refExtra adds the variants
// a build has beyond those (Reader.Lookup). Metrics: each variant's
// ns/lookup and its ratio to bart, measured interleaved (pairedLookups).
func BenchmarkLookupRef(b *testing.B) {
	r := rand.New(rand.NewPCG(11, 12))
	p4, p6 := genV4(r, 1_000_000), genV6(r, 500_000)
	c := New(Config{MaxEntries: 4 << 20, BuildTemplate: benchTemplate})
	sets := benchSets(10_000)
	ft := new(bart.Fast[*Entry])
	for _, ps := range [][]netip.Prefix{p4, p6} {
		if res := c.Apply(loadUpdates(benchIID, ps, sets)); res.Rejected != 0 {
			b.Fatal(res.Err)
		}
		for _, p := range ps {
			e, ok := c.Get(IPKey(benchIID, p))
			if !ok {
				b.Fatal("prefix missing after load")
			}
			ft.Insert(p, e)
		}
	}
	names := []string{"bart", "rloc"}
	vs := []blockLookups{
		func(q []netip.Addr, from, to int) (hits int) {
			mask := len(q) - 1
			for i := from; i < to; i++ {
				if _, ok := ft.Lookup(q[i&mask]); ok {
					hits++
				}
			}
			return hits
		},
		func(q []netip.Addr, from, to int) (hits int) {
			mask := len(q) - 1
			for i := from + len(q)/3; i < to+len(q)/3; i++ {
				if _, ok := c.Lookup(benchIID, q[i&mask]); ok {
					hits++
				}
			}
			return hits
		},
	}
	names, vs = refExtra(c, names, vs)
	for _, fam := range []struct {
		name string
		ps   []netip.Prefix
	}{{"v4", p4}, {"v6", p6}} {
		for _, load := range []struct {
			name string
			n    int
		}{{"hot", 64}, {"random", 1 << 20}} {
			q := make([]netip.Addr, load.n)
			for i := range q {
				q[i] = hitAddr(r, fam.ps[r.IntN(len(fam.ps))])
			}
			b.Run(fam.name+"/"+load.name, func(b *testing.B) { pairedLookups(b, q, names, vs) })
		}
	}
}

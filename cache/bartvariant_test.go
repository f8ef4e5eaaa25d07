package cache

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/gaissmai/bart"
)

type payload struct{ _ int }

// BenchmarkBartVariant compares bart.Table and bart.Fast for 1M IPv4 and
// 500k IPv6 prefixes (lookup of hits), to justify the variant the cache uses.
func BenchmarkBartVariant(b *testing.B) {
	qn := 1 << 10
	r := rand.New(rand.NewPCG(1, 2))
	p4 := genV4(r, 1_000_000)
	p6 := genV6(r, 500_000)
	q4 := make([]netip.Addr, qn)
	q6 := make([]netip.Addr, qn)
	for i := range q4 {
		q4[i] = hitAddr(r, p4[r.IntN(len(p4))])
		q6[i] = hitAddr(r, p6[r.IntN(len(p6))])
	}
	v := &payload{}
	var tt bart.Table[*payload]
	var ft bart.Fast[*payload]
	for _, p := range p4 {
		tt.Insert(p, v)
		ft.Insert(p, v)
	}
	for _, p := range p6 {
		tt.Insert(p, v)
		ft.Insert(p, v)
	}
	run := func(name string, q []netip.Addr, f func(netip.Addr) bool) {
		b.Run(name, func(b *testing.B) {
			n := 0
			for i := 0; b.Loop(); i++ {
				if f(q[i&(len(q)-1)]) {
					n++
				}
			}
			if n == 0 {
				b.Fatal("no hits")
			}
		})
	}
	run("Table/v4", q4, func(a netip.Addr) bool { _, ok := tt.Lookup(a); return ok })
	run("Fast/v4", q4, func(a netip.Addr) bool { _, ok := ft.Lookup(a); return ok })
	run("Table/v6", q6, func(a netip.Addr) bool { _, ok := tt.Lookup(a); return ok })
	run("Fast/v6", q6, func(a netip.Addr) bool { _, ok := ft.Lookup(a); return ok })
	b.Run("Table/InsertPersist", func(b *testing.B) {
		t := &tt
		for i := 0; b.Loop(); i++ {
			_ = t.InsertPersist(p4[i%len(p4)], v)
		}
	})
	b.Run("Fast/InsertPersist", func(b *testing.B) {
		t := &ft
		for i := 0; b.Loop(); i++ {
			_ = t.InsertPersist(p4[i%len(p4)], v)
		}
	})
	b.Run("Table/Clone", func(b *testing.B) {
		for b.Loop() {
			_ = tt.Clone()
		}
	})
	b.Run("Fast/Clone", func(b *testing.B) {
		for b.Loop() {
			_ = ft.Clone()
		}
	})
}

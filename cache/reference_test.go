package cache

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// refTable is the naive reference: per instance-ID, the list of prefixes,
// grouped by length so a lookup masks the address once per present length
// (longest first) instead of comparing with every prefix. naiveScan checks
// this grouping against a plain scan of the whole list.
type refTable struct {
	byLen map[uint32]map[int]map[[16]byte]bool
	lens  map[uint32][]int
	all   map[uint32][]netip.Prefix
}

func newRef() *refTable {
	return &refTable{byLen: map[uint32]map[int]map[[16]byte]bool{}, lens: map[uint32][]int{}, all: map[uint32][]netip.Prefix{}}
}

func (r *refTable) add(iid uint32, p netip.Prefix) {
	m := r.byLen[iid]
	if m == nil {
		m = map[int]map[[16]byte]bool{}
		r.byLen[iid] = m
	}
	if m[p.Bits()] == nil {
		m[p.Bits()] = map[[16]byte]bool{}
		r.lens[iid] = append(r.lens[iid], p.Bits())
		slices.Sort(r.lens[iid])
		slices.Reverse(r.lens[iid])
	}
	m[p.Bits()][p.Addr().As16()] = true
}

func (r *refTable) has(iid uint32, p netip.Prefix) bool {
	return r.byLen[iid][p.Bits()][p.Addr().As16()]
}

func (r *refTable) del(iid uint32, p netip.Prefix) { delete(r.byLen[iid][p.Bits()], p.Addr().As16()) }

func (r *refTable) lookup(iid uint32, a netip.Addr) (netip.Prefix, bool) {
	for _, l := range r.lens[iid] {
		if l > a.BitLen() {
			continue
		}
		p := netip.PrefixFrom(a, l).Masked()
		if r.byLen[iid][l][p.Addr().As16()] {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

func (r *refTable) naiveScan(iid uint32, a netip.Addr) (netip.Prefix, bool) {
	best, ok := netip.Prefix{}, false
	for _, p := range r.all[iid] {
		if p.Contains(a) && (!ok || p.Bits() > best.Bits()) {
			best, ok = p, true
		}
	}
	return best, ok
}

// clusteredAddr returns one of a few base addresses with random bits flipped
// at or after bit `from`, so that prefixes nest at every length.
func clusteredAddr(r *rand.Rand, bases []netip.Addr, from int) netip.Addr {
	b := bases[r.IntN(len(bases))]
	s := b.AsSlice()
	bl := len(s) * 8
	for range 1 + r.IntN(4) {
		if from >= bl {
			break
		}
		i := from + r.IntN(bl-from)
		s[i/8] ^= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(s)
	return a
}

func TestLookupMatchesReference(t *testing.T) {
	const nPrefixes = 100_000
	nLookups := 1_000_000
	if testing.Short() {
		nLookups = 100_000
	}
	iids := []uint32{0, 1, 7, 0xffffff}
	for _, v4 := range []bool{true, false} {
		name := "IPv6"
		if v4 {
			name = "IPv4"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(42, uint64(len(name))))
			bases := make([]netip.Addr, 6)
			for i := range bases {
				bases[i] = randAddr(r, v4)
			}
			bl := 128
			lens := []int{0, 1, 8, 12, 16, 20, 24, 28, 29, 32, 36, 40, 44, 47, 48, 52, 56, 60, 63, 64, 72, 80, 96, 112, 120, 127, 128}
			if v4 {
				bl = 32
				lens = lens[:0]
				for l := range 33 {
					lens = append(lens, l)
				}
			}
			c := New(Config{MaxEntries: 4 * nPrefixes})
			ref := newRef()
			var ups []Update
			for len(ups) < nPrefixes {
				iid := iids[r.IntN(len(iids))]
				bits := lens[r.IntN(len(lens))]
				a := clusteredAddr(r, bases, r.IntN(bl))
				p := netip.PrefixFrom(a, bits).Masked()
				if ref.has(iid, p) {
					continue
				}
				ref.add(iid, p)
				ref.all[iid] = append(ref.all[iid], p)
				ups = append(ups, Update{Key: IPKey(iid, p), TTL: 60, RLOCs: []RLOC{{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(iid)}), Reachable: true}}})
			}
			for i := 0; i < len(ups); i += 10_000 {
				if res := c.Apply(ups[i:min(i+10_000, len(ups))]); res.Rejected != 0 {
					t.Fatalf("rejected %d: %v", res.Rejected, res.Err)
				}
			}
			if got := c.Len(); got != nPrefixes {
				t.Fatalf("Len = %d, want %d", got, nPrefixes)
			}
			check := func(n int, scan bool) {
				t.Helper()
				hits := 0
				for i := range n {
					iid := iids[r.IntN(len(iids))]
					var a netip.Addr
					if i%4 == 0 {
						a = randAddr(r, v4)
					} else {
						a = clusteredAddr(r, bases, 0)
					}
					want, wok := ref.lookup(iid, a)
					if scan && i < 2000 { // the reference itself against a plain list scan
						if w2, ok2 := ref.naiveScan(iid, a); w2 != want || ok2 != wok {
							t.Fatalf("reference disagrees with scan for %v: %v %v vs %v %v", a, want, wok, w2, ok2)
						}
					}
					e, ok := c.Lookup(iid, a)
					if ok != wok {
						t.Fatalf("Lookup(%d, %v) ok=%v, reference %v (%v)", iid, a, ok, wok, want)
					}
					if !ok {
						continue
					}
					hits++
					if k := e.Key(); k.Prefix != want || k.IID != iid {
						t.Fatalf("Lookup(%d, %v) = %v, reference [%d]%v", iid, a, k, iid, want)
					}
				}
				if hits < n/10 {
					t.Fatalf("only %d of %d lookups hit: test data too sparse", hits, n)
				}
			}
			check(nLookups, true)

			// Copy-on-write path: delete 20% and re-insert 5% as replacements.
			ups = ups[:0]
			for _, iid := range iids {
				for _, p := range ref.all[iid] {
					switch x := r.IntN(100); {
					case x < 20:
						ref.del(iid, p)
						ups = append(ups, Update{Key: IPKey(iid, p), Delete: true})
					case x < 25:
						ups = append(ups, Update{Key: IPKey(iid, p), TTL: 30, RLOCs: []RLOC{{Addr: netip.MustParseAddr("198.51.100.1"), Reachable: true}}})
					}
				}
			}
			for i := 0; i < len(ups); i += 1000 {
				c.Apply(ups[i:min(i+1000, len(ups))])
			}
			check(nLookups/10, false)
		})
	}
}

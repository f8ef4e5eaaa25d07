package fastpath

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/wire"
)

// outerDst sends one frame to dst from the site and returns the outer
// destination of what the core receives (invalid when nothing left).
func outerDst(t *testing.T, r *rig, src, dst netip.Addr) netip.Addr {
	t.Helper()
	r.fromSite(siteFrame(t, innerSpec{src: src, dst: dst, ttl: 9, payload: 20, sport: 7}))
	out := drain(r.core)
	if len(out) == 0 {
		return netip.Addr{}
	}
	if len(out) != 1 {
		t.Fatalf("%d frames out for one in", len(out))
	}
	d := decodeLISP(t, out[0])
	if d.ip4 != nil {
		return netip.AddrFrom4([4]byte(d.ip4.DstIP))
	}
	return netip.AddrFrom16([16]byte(d.ip6.DstIP))
}

// TestMemoSeesMappingChange: destinations answered from the worker's lookup
// memo follow a mapping change in the very next batch: a more-specific
// prefix inserted, turned negative, and deleted again.
func TestMemoSeesMappingChange(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst netip.Addr
		more     netip.Prefix
	}{
		{"IPv4", hostA, remote4, netip.MustParsePrefix("10.2.0.0/24")},
		{"IPv6", hostA6, remote6, netip.MustParsePrefix("2001:db8:2::/64")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			if got := outerDst(t, r, tc.src, tc.dst); got != rlocRemote4 {
				t.Fatalf("first packet to %v", got)
			}
			hits := r.w.Extra(ExtraMemoHit)
			if got := outerDst(t, r, tc.src, tc.dst); got != rlocRemote4 {
				t.Fatalf("second packet to %v", got)
			}
			if r.w.Extra(ExtraMemoHit) != hits+1 {
				t.Fatalf("second lookup of %v was not a memo hit (hits %d -> %d)", tc.dst, hits, r.w.Extra(ExtraMemoHit))
			}
			r.install([]StaticMapping{{IID: iidSite, Prefix: tc.more, RLOCs: []StaticRLOC{{Addr: rlocOther4, Weight: 1}}}})
			if got := outerDst(t, r, tc.src, tc.dst); got != rlocOther4 {
				t.Fatalf("after inserting %v: packet to %v, want %v", tc.more, got, rlocOther4)
			}
			if got := outerDst(t, r, tc.src, tc.dst); got != rlocOther4 {
				t.Fatalf("memo hit after the change: packet to %v, want %v", got, rlocOther4)
			}
			r.install([]StaticMapping{{IID: iidSite, Prefix: tc.more, Action: wire.ActionDrop}})
			before := r.counters()
			if got := outerDst(t, r, tc.src, tc.dst); got.IsValid() {
				t.Fatalf("negative drop entry: packet still sent to %v", got)
			}
			expectDrop(t, before, r.counters(), DropNegative)
			res := r.c.Apply([]cache.Update{{Key: cache.IPKey(iidSite, tc.more), Delete: true}})
			if res.Deleted != 1 {
				t.Fatalf("delete: %+v", res)
			}
			if got := outerDst(t, r, tc.src, tc.dst); got != rlocRemote4 {
				t.Fatalf("after deleting %v: packet to %v, want %v", tc.more, got, rlocRemote4)
			}
		})
	}
}

// TestMemoMarksActive: a memo hit marks the entry active in the current
// activity tick, as a cache lookup does.
func TestMemoMarksActive(t *testing.T) {
	start := time.Unix(3_000_000, 0)
	now := start
	c := cache.New(cache.Config{BuildTemplate: defaultOuter().BuildTemplate, Now: func() time.Time { return now }})
	r := newRig(t, func(cfg *Config) { cfg.Cache = c })
	if got := outerDst(t, r, hostA, remote4); got != rlocRemote4 {
		t.Fatalf("packet to %v", got)
	}
	e, ok := c.Get(cache.IPKey(iidSite, netip.MustParsePrefix("10.2.0.0/16")))
	if !ok {
		t.Fatal("entry missing")
	}
	now = start.Add(time.Hour)
	c.Tick(now)
	hits := r.w.Extra(ExtraMemoHit)
	if got := outerDst(t, r, hostA, remote4); got != rlocRemote4 {
		t.Fatalf("packet to %v", got)
	}
	if r.w.Extra(ExtraMemoHit) != hits+1 {
		t.Fatal("second lookup was not a memo hit")
	}
	if lu := c.LastUsed(e); lu.Before(now.Add(-time.Second)) {
		t.Fatalf("memo hit left the entry last used at %v, want the tick of %v", lu, now)
	}
}

// TestMemoMatchesCache: with a tiny memo (collisions in every set), random
// lookups interleaved with random inserts and deletes of nested prefixes
// return exactly what cache.Lookup returns, IPv4 and IPv6, two instance-IDs.
func TestMemoMatchesCache(t *testing.T) {
	c := cache.New(cache.Config{})
	rng := rand.New(rand.NewPCG(7, 8))
	r4 := []cache.RLOC{{Addr: rlocRemote4, Reachable: true}}
	var keys []cache.Key
	randPrefix := func() (uint32, netip.Prefix) {
		iid := uint32(1 + rng.IntN(2))
		if rng.IntN(2) == 0 {
			a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(4)), byte(rng.IntN(4))})
			return iid, netip.PrefixFrom(a, []int{8, 16, 24, 30, 32}[rng.IntN(5)]).Masked()
		}
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(rng.IntN(4)), 7: byte(rng.IntN(4))})
		return iid, netip.PrefixFrom(a, []int{32, 48, 64, 120, 128}[rng.IntN(5)]).Masked()
	}
	randDst := func() (uint32, netip.Addr) {
		iid := uint32(1 + rng.IntN(2))
		if rng.IntN(2) == 0 {
			return iid, netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(4)), byte(rng.IntN(8))})
		}
		return iid, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(rng.IntN(8)), 7: byte(rng.IntN(4))})
	}
	for _, size := range []int{2, 4, 64} {
		m := newLookupMemo(c, size)
		for round := 0; round < 300; round++ {
			var ups []cache.Update
			for range rng.IntN(3) {
				iid, p := randPrefix()
				k := cache.IPKey(iid, p)
				if len(keys) > 0 && rng.IntN(3) == 0 {
					i := rng.IntN(len(keys))
					ups = append(ups, cache.Update{Key: keys[i], Delete: true})
					keys = append(keys[:i], keys[i+1:]...)
					continue
				}
				keys = append(keys, k)
				ups = append(ups, cache.Update{Key: k, TTL: 10, RLOCs: r4})
			}
			c.Apply(ups)
			m.sync()
			for range 50 {
				iid, dst := randDst()
				want, wok := c.Lookup(iid, dst)
				got, gok := m.lookup(iid, dst)
				if got != want || gok != wok {
					t.Fatalf("size %d round %d: memo lookup [%d]%v = %v %v, cache %v %v", size, round, iid, dst, got, gok, want, wok)
				}
			}
		}
		if m.hits == 0 || m.miss == 0 {
			t.Errorf("size %d: hits %d misses %d: the test did not exercise both", size, m.hits, m.miss)
		}
	}
}

// lookup is probe and mark in one call, as the worker's lookup stages do
// them in two: what cache.Lookup returns, from the memo when it holds that
// exact destination for the current generation.
func (m *lookupMemo) lookup(iid uint32, dst netip.Addr) (*cache.Entry, bool) {
	e, ok, hit := m.probe(iid, dst)
	if hit {
		m.mark(e)
	}
	return e, ok
}

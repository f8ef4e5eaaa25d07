package fastpath

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/cache"
)

// TestLiveIndex: covered finds the entries a prefix covers in its
// instance-ID, longer prefixes through their one bucket and shorter ones
// through the buckets they overlap, counts the key, the buckets and the
// entries it looks at, and stops past its work limit; remove
// forgets an entry and its bucket once empty.
func TestLiveIndex(t *testing.T) {
	var x liveIndex
	key := func(a string, bkt uint8) offloadKey { return offloadKey{dst: netip.MustParseAddr(a), bkt: bkt} }
	for _, k := range []offloadKey{key("10.2.0.7", 1), key("10.2.0.7", 2), key("10.2.0.200", 1), key("10.2.1.7", 1), key("2001:db8:2::7", 1)} {
		x.add(100, k)
	}
	x.add(100, key("10.2.0.7", 1)) // again: no second entry
	x.add(200, key("10.2.0.7", 1)) // another instance-ID's
	if x.n != 6 || len(x.buckets) != 4 {
		t.Fatalf("%d entries in %d buckets, want 6 in 4", x.n, len(x.buckets))
	}
	find := func(iid uint32, p string, limit int) ([]offloadKey, bool, int) {
		var got []offloadKey
		work := 0
		ok := x.covered(cache.IPKey(iid, netip.MustParsePrefix(p)), &work, limit, func(k offloadKey) { got = append(got, k) })
		slices.SortFunc(got, func(a, b offloadKey) int {
			if c := a.dst.Compare(b.dst); c != 0 {
				return c
			}
			return int(a.bkt) - int(b.bkt)
		})
		return got, ok, work
	}
	for _, c := range []struct {
		iid  uint32
		p    string
		want []offloadKey
	}{
		{100, "10.2.0.7/32", []offloadKey{key("10.2.0.7", 1), key("10.2.0.7", 2)}},
		{100, "10.2.0.128/25", []offloadKey{key("10.2.0.200", 1)}},
		{100, "10.2.0.0/16", []offloadKey{key("10.2.0.7", 1), key("10.2.0.7", 2), key("10.2.0.200", 1), key("10.2.1.7", 1)}},
		{100, "2001:db8:2::/64", []offloadKey{key("2001:db8:2::7", 1)}},
		{100, "10.9.0.0/24", nil},
		{200, "10.2.0.0/24", []offloadKey{key("10.2.0.7", 1)}},
		{300, "10.0.0.0/8", nil},
	} {
		if got, ok, _ := find(c.iid, c.p, 100); !ok || !slices.Equal(got, c.want) {
			t.Errorf("instance-ID %d, %s: %v (ok %v), want %v", c.iid, c.p, got, ok, c.want)
		}
	}
	if _, ok, work := find(100, "10.9.0.7/32", 1); !ok || work != 1 {
		t.Errorf("a key of an empty bucket: ok %v, work %d, want one look", ok, work)
	}
	if _, ok, work := find(100, "10.9.0.7/32", 0); ok || work != 1 {
		t.Errorf("a key past the limit: ok %v, work %d", ok, work)
	}
	if _, ok, work := find(100, "10.2.0.0/24", 1); ok || work != 2 {
		t.Errorf("a look past the limit: ok %v, work %d", ok, work)
	}
	x.remove(100, key("2001:db8:2::7", 1))
	x.remove(100, key("2001:db8:2::7", 1))
	if x.n != 5 || len(x.buckets) != 3 {
		t.Fatalf("after a remove: %d entries in %d buckets, want 5 in 3", x.n, len(x.buckets))
	}
}

// BenchmarkMapChanged measures Offload.MapChanged's look through a site
// table's index of n entries (the even addresses of 10.2.0.0/15, 128 to a
// /24 bucket) for a one-key batch that covers none of them: a /32 of
// another /16 (one empty bucket), an odd /32 of an indexed /24 (128
// entries compared) and another /16 (every bucket compared), and for a
// batch of 4096 /32s of another /16. Metric: ns per batch.
func BenchmarkMapChanged(b *testing.B) {
	for _, n := range []int{1024, 49152} {
		for _, p := range []string{"10.9.0.7/32", "10.2.3.7/32", "10.9.0.0/16", "bulk4096"} {
			b.Run(fmt.Sprintf("entries=%d/%s", n, strings.ReplaceAll(p, "/", "_")), func(b *testing.B) {
				off := NewOffload(0)
				if err := off.Add(newFakeOffload(), iidSite); err != nil {
					b.Fatal(err)
				}
				for i := range n {
					dst := netip.AddrFrom4([4]byte{10, byte(2 + i>>15), byte(i >> 7), byte(2 * (i & 127))})
					off.ts[0].live.add(iidSite, offloadKey{dst: dst, bkt: byte(i)})
				}
				var keys []cache.Key
				if p == "bulk4096" {
					for i := range 4096 {
						keys = append(keys, cache.IPKey(iidSite, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), 32)))
					}
				} else {
					keys = []cache.Key{cache.IPKey(iidSite, netip.MustParsePrefix(p))}
				}
				b.ResetTimer()
				for range b.N {
					off.MapChanged(keys)
				}
				if st := off.Stats(); st.Invalidations != 0 || st.MapDeleted != 0 {
					b.Fatalf("stats %+v: want no epoch and nothing deleted", st)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/batch")
			})
		}
	}
}

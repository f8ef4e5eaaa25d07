package fastpath

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/rloc-router/rloc/cache"
)

// TestLiveIndex: covered finds the entries a prefix covers in its
// instance-ID, longer prefixes through their one bucket and shorter ones
// through the buckets they overlap, and stops past its work limit; remove
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
	if _, ok, work := find(100, "10.2.0.0/24", 1); ok || work != 2 {
		t.Errorf("a look past the limit: ok %v, work %d", ok, work)
	}
	x.remove(100, key("2001:db8:2::7", 1))
	x.remove(100, key("2001:db8:2::7", 1))
	if x.n != 5 || len(x.buckets) != 3 {
		t.Fatalf("after a remove: %d entries in %d buckets, want 5 in 3", x.n, len(x.buckets))
	}
}

package cache

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestPublishedKeys: Config.Published gets, after each batch that changed
// something, the keys the batch inserted, replaced or removed, those it
// evicted to make room, and those Expire removed; nothing for a batch that
// changed nothing.
func TestPublishedKeys(t *testing.T) {
	clk := &fakeClock{t: time.Unix(5_000_000, 0)}
	var got [][]Key
	c := New(Config{Now: clk.now, MaxEntries: 2, Published: func(changed []Key) { got = append(got, slices.Clone(changed)) }})
	k := func(p string) Key { return IPKey(1, netip.MustParsePrefix(p)) }
	c.Apply([]Update{{Key: k("10.1.0.0/16"), TTL: 1, RLOCs: up1}, {Key: k("10.2.0.0/16"), TTL: 5, RLOCs: up1}})
	c.Apply([]Update{{Key: k("10.2.0.0/16"), Delete: true}, {Key: k("10.3.0.7/16"), TTL: 5, RLOCs: up1}}) // unmasked: normalized
	c.Apply([]Update{{Key: k("10.9.0.0/16"), Delete: true}})                                              // nothing to delete
	c.Apply([]Update{{Key: k("10.4.0.0/16"), TTL: 5, RLOCs: up1}})                                        // full: evicts one
	want := [][]Key{
		{k("10.1.0.0/16"), k("10.2.0.0/16")},
		{k("10.2.0.0/16"), k("10.3.0.0/16")},
	}
	if len(got) != 3 || !slices.Equal(got[0], want[0]) || !slices.Equal(got[1], want[1]) {
		t.Fatalf("published %v, want %v and then an insert with an eviction", got, want)
	}
	if ev := got[2]; len(ev) != 2 || ev[0] != k("10.4.0.0/16") || (ev[1] != k("10.1.0.0/16") && ev[1] != k("10.3.0.0/16")) {
		t.Fatalf("published %v for an insert that evicted", ev)
	}
	clk.t = clk.t.Add(10 * time.Minute)
	got = nil
	exp := c.Expire(clk.t)
	if len(got) != 1 || !slices.Equal(got[0], exp) || len(exp) == 0 {
		t.Fatalf("published %v for Expire, which removed %v", got, exp)
	}
}

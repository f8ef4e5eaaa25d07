package cache

import (
	"net/netip"
	"testing"
	"time"
)

// TestGenerationAndMarkActive: the generation moves on every Apply or Expire
// that changed a snapshot and on nothing else, and MarkActive marks an entry
// as Lookup does.
func TestGenerationAndMarkActive(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	now := start
	c := New(Config{Now: func() time.Time { return now }})
	r := []RLOC{{Addr: netip.MustParseAddr("192.0.2.1"), Reachable: true}}
	g0 := c.Generation()
	if res := c.Apply([]Update{{Key: IPKey(7, netip.MustParsePrefix("10.1.0.0/16")), TTL: 10, RLOCs: r}}); res.Inserted != 1 {
		t.Fatal(res.Err)
	}
	g1 := c.Generation()
	if g1 == g0 {
		t.Fatal("Apply of an insert left the generation unchanged")
	}
	c.Lookup(7, netip.MustParseAddr("10.1.2.3"))
	c.Apply(nil)
	c.Apply([]Update{{Key: IPKey(7, netip.MustParsePrefix("10.9.0.0/16")), Delete: true}}) // nothing to delete
	c.Expire(now)
	if g := c.Generation(); g != g1 {
		t.Fatalf("lookups and no-op batches moved the generation %d -> %d", g1, g)
	}
	if res := c.Apply([]Update{{Key: IPKey(7, netip.MustParsePrefix("10.1.2.0/24")), TTL: 10, RLOCs: r}}); res.Inserted != 1 {
		t.Fatal(res.Err)
	}
	g2 := c.Generation()
	if g2 == g1 {
		t.Fatal("a more-specific insert left the generation unchanged")
	}
	now = start.Add(11 * time.Minute)
	if len(c.Expire(now)) != 2 || c.Generation() == g2 {
		t.Fatalf("Expire removed entries but the generation stayed %d", g2)
	}

	if res := c.Apply([]Update{{Key: IPKey(7, netip.MustParsePrefix("10.1.0.0/16")), TTL: 10, RLOCs: r}}); res.Inserted != 1 {
		t.Fatal(res.Err)
	}
	e, ok := c.Get(IPKey(7, netip.MustParsePrefix("10.1.0.0/16")))
	if !ok {
		t.Fatal("entry not found")
	}
	before := c.LastUsed(e)
	now = now.Add(time.Hour)
	c.Tick(now)
	c.MarkActive(e)
	if got := c.LastUsed(e); !got.After(before) || got.Before(now.Add(-time.Second)) {
		t.Fatalf("MarkActive: last used %v, want the tick of %v (was %v)", got, now, before)
	}
	if n := testing.AllocsPerRun(100, func() { c.MarkActive(e); _ = c.Generation() }); n != 0 {
		t.Fatalf("MarkActive/Generation allocate %.0f times", n)
	}
}

package cache

import (
	"net/netip"
	"testing"
	"time"
)

func TestGetExactWithoutActivity(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	now := start
	c := New(Config{Now: func() time.Time { return now }})
	p := netip.MustParsePrefix("10.1.0.0/16")
	r := []RLOC{{Addr: netip.MustParseAddr("192.0.2.1"), Reachable: true}}
	if res := c.Apply([]Update{{Key: IPKey(7, p), TTL: 10, RLOCs: r}}); res.Inserted != 1 {
		t.Fatal(res.Err)
	}
	if _, ok := c.Get(IPKey(7, netip.MustParsePrefix("10.1.0.0/24"))); ok {
		t.Fatal("Get matched a longer prefix by LPM")
	}
	if _, ok := c.Get(IPKey(8, p)); ok {
		t.Fatal("Get found the entry in another instance-ID")
	}
	now = start.Add(time.Hour)
	c.Tick(now)
	e, ok := c.Get(IPKey(7, p))
	if !ok || e.Key() != IPKey(7, p) {
		t.Fatalf("Get = %v, %v", e, ok)
	}
	if !c.LastUsed(e).Before(start.Add(time.Minute)) {
		t.Fatalf("Get marked the entry active: last used %v", c.LastUsed(e))
	}
}

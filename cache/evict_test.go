package cache

import (
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time { return f.t }

func v4pfx(i int, bits int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}), bits).Masked()
}

var up1 = []RLOC{{Addr: netip.MustParseAddr("192.0.2.1"), Priority: 1, Weight: 1, Reachable: true}}

// TestNegativeFlood applies 1M distinct negative entries (what a scan of
// random destinations produces) to a cache holding real mappings: the
// negative bound holds, every real and static mapping survives, and every
// eviction is counted.
func TestNegativeFlood(t *testing.T) {
	const (
		maxEntries = 50_000
		maxNeg     = 5_000
		positives  = 40_000
		statics    = 1_000
	)
	flood := 1_000_000
	if raceOn || testing.Short() {
		flood = 250_000 // still 50x the negative bound
		t.Logf("race detector or -short: flood of %d misses instead of 1M", flood)
	}
	c := New(Config{MaxEntries: maxEntries, MaxNegative: maxNeg})
	var ups []Update
	for i := range positives {
		ups = append(ups, Update{Key: IPKey(1, v4pfx(0x0a000000+i<<8, 24)), TTL: 60, RLOCs: up1})
	}
	for i := range statics {
		ups = append(ups, Update{Key: IPKey(1, v4pfx(0x0b000000+i<<8, 24)), Static: true, RLOCs: up1})
	}
	if res := c.Apply(ups); res.Inserted != positives+statics {
		t.Fatalf("inserted %d, want %d (%v)", res.Inserted, positives+statics, res.Err)
	}
	batch := make([]Update, 0, 10_000)
	evicted := 0
	for i := range flood {
		// distinct /32s in 100.0.0.0/8 upward, none overlapping the mappings
		batch = append(batch, Update{Key: IPKey(1, v4pfx(0x64000000+i, 32)), TTL: 1, Action: wire.ActionSendMapRequest})
		if len(batch) == cap(batch) {
			res := c.Apply(batch)
			if res.Rejected != 0 {
				t.Fatalf("flood batch rejected %d: %v", res.Rejected, res.Err)
			}
			for _, k := range res.Evicted {
				if k.Prefix.Bits() != 32 || k.Prefix.Addr().As4()[0] < 100 {
					t.Fatalf("evicted %v, which is not a negative entry", k)
				}
			}
			evicted += len(res.Evicted)
			batch = batch[:0]
		}
	}
	st := c.Stats()
	if st.Negative != maxNeg {
		t.Errorf("negative entries = %d, want the bound %d", st.Negative, maxNeg)
	}
	if st.Entries != positives+statics+maxNeg || c.Len() != st.Entries {
		t.Errorf("entries = %d (Len %d), want %d", st.Entries, c.Len(), positives+statics+maxNeg)
	}
	if want := uint64(flood - maxNeg); st.Evicted != want || st.EvictedNegative != want || evicted != int(want) {
		t.Errorf("evicted %d (negative %d, reported %d), want %d", st.Evicted, st.EvictedNegative, evicted, want)
	}
	for i := range positives {
		if e, ok := c.Lookup(1, v4pfx(0x0a000000+i<<8, 32).Addr()); !ok || e.Negative() {
			t.Fatalf("mapping %d lost in the flood", i)
		}
	}
	for i := range statics {
		if _, ok := c.Lookup(1, v4pfx(0x0b000000+i<<8, 32).Addr()); !ok {
			t.Fatalf("static %d lost in the flood", i)
		}
	}
	// The last negative inserted is present (it was just installed).
	if e, ok := c.Lookup(1, v4pfx(0x64000000+flood-1, 32).Addr()); !ok || e.Action() != wire.ActionSendMapRequest {
		t.Fatal("newest negative entry missing")
	}
	n := 0
	c.Walk(func(*Entry) bool { n++; return true })
	if n != st.Entries {
		t.Fatalf("Walk saw %d entries, Stats says %d", n, st.Entries)
	}
}

// TestEvictIdleFirstNeverStatic fills the cache, marks half of the entries
// active in a later tick, and overflows it: idle entries go first, static
// ones never.
func TestEvictIdleFirstNeverStatic(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	c := New(Config{MaxEntries: 2_000, Now: clk.now, ActivityTick: time.Second})
	var ups []Update
	for i := range 500 {
		ups = append(ups, Update{Key: IPKey(2, v4pfx(0x0b000000+i<<8, 24)), Static: true, RLOCs: up1})
	}
	for i := range 1_500 {
		ups = append(ups, Update{Key: IPKey(2, v4pfx(0x0a000000+i<<8, 24)), TTL: 60, RLOCs: up1})
	}
	c.Apply(ups)
	clk.t = clk.t.Add(5 * time.Second)
	c.Expire(clk.t) // advances the epoch; nothing has expired yet
	active := func(i int) bool { return i%2 == 0 }
	for i := range 1_500 {
		if active(i) {
			if _, ok := c.Lookup(2, v4pfx(0x0a000000+i<<8, 32).Addr()); !ok {
				t.Fatal("entry missing before overflow")
			}
		}
	}
	ups = ups[:0]
	for i := range 600 { // needs 600 evictions; 750 entries are idle
		ups = append(ups, Update{Key: IPKey(2, v4pfx(0x0c000000+i<<8, 24)), TTL: 60, RLOCs: up1})
	}
	res := c.Apply(ups)
	if res.Inserted != 600 || len(res.Evicted) != 600 {
		t.Fatalf("inserted %d evicted %d, want 600 and 600", res.Inserted, len(res.Evicted))
	}
	for i := range 1_500 {
		_, ok := c.Lookup(2, v4pfx(0x0a000000+i<<8, 32).Addr())
		if active(i) && !ok {
			t.Fatalf("active entry %d was evicted while idle ones remained", i)
		}
	}
	for i := range 500 {
		if _, ok := c.Lookup(2, v4pfx(0x0b000000+i<<8, 32).Addr()); !ok {
			t.Fatalf("static entry %d was evicted", i)
		}
	}
	// Only static entries and fresh ones left evictable: fill with statics
	// beyond the bound, then a non-static insert must evict a non-static one,
	// and once only statics remain it is rejected.
	ups = ups[:0]
	for i := range 2_000 {
		ups = append(ups, Update{Key: IPKey(2, v4pfx(0x0d000000+i<<8, 24)), Static: true, RLOCs: up1})
	}
	res = c.Apply(ups)
	if res.Inserted != 2_000 {
		t.Fatalf("static inserts: %d of 2000 (%v)", res.Inserted, res.Err)
	}
	st := c.Stats()
	if st.Static != 2_500 || st.Entries != 2_500 {
		t.Fatalf("after static fill: %d entries, %d static; want only the 2500 statics", st.Entries, st.Static)
	}
	res = c.Apply([]Update{{Key: IPKey(2, v4pfx(0x0e000000, 24)), TTL: 5, RLOCs: up1}})
	if res.Rejected != 1 || res.Err != ErrFull {
		t.Fatalf("insert into a cache full of statics: %+v, want ErrFull", res)
	}
	if c.Stats().Evicted != 600+1_500 {
		t.Fatalf("evictions counted %d, want %d", c.Stats().Evicted, 600+1_500)
	}
}

func TestStaticNotReplacedByLearned(t *testing.T) {
	c := New(Config{})
	k := IPKey(0, netip.MustParsePrefix("10.0.0.0/8"))
	c.Apply([]Update{{Key: k, Static: true, RLOCs: up1}})
	res := c.Apply([]Update{{Key: k, TTL: 5, Action: wire.ActionDrop}})
	if res.Err != ErrStatic {
		t.Fatalf("learned update over static: err %v, want ErrStatic", res.Err)
	}
	e, _ := c.Lookup(0, netip.MustParseAddr("10.1.1.1"))
	if !e.Static() || e.Negative() {
		t.Fatal("static entry was replaced")
	}
	if got := c.Expire(time.Now().Add(1000 * time.Hour)); len(got) != 0 {
		t.Fatalf("static entry expired: %v", got)
	}
}

func TestExpiryAndRefresh(t *testing.T) {
	clk := &fakeClock{t: time.Unix(2_000_000, 0)}
	c := New(Config{Now: clk.now, MaxTTL: 60})
	k1 := IPKey(0, netip.MustParsePrefix("10.1.0.0/16"))
	k2 := IPKey(0, netip.MustParsePrefix("10.2.0.0/16"))
	k3 := IPKey(0, netip.MustParsePrefix("10.3.0.0/16"))
	kn := IPKey(0, netip.MustParsePrefix("10.4.0.0/16"))
	kf := IPKey(0, netip.MustParsePrefix("10.5.0.0/16"))
	ks := IPKey(0, netip.MustParsePrefix("10.6.0.0/16"))
	c.Apply([]Update{
		{Key: k1, TTL: 1, RLOCs: up1},
		{Key: k2, TTL: 2, RLOCs: up1},
		{Key: k3, TTL: 2, RLOCs: up1},
		{Key: kn, TTL: 1, Action: wire.ActionNativelyForward},
		{Key: kf, TTL: 0xFFFFFFFF, RLOCs: up1}, // receiver decides: MaxTTL
		{Key: ks, Static: true, RLOCs: up1},
	})
	if e, _ := c.Lookup(0, netip.MustParseAddr("10.5.0.1")); e.TTL() != 60 || !e.Expiry().Equal(clk.t.Add(time.Hour)) {
		t.Fatalf("TTL 0xFFFFFFFF gave TTL %d expiry %v, want MaxTTL", e.TTL(), e.Expiry())
	}
	if next, ok := c.NextExpiry(); !ok || !next.Equal(clk.t.Add(time.Minute)) {
		t.Fatalf("NextExpiry = %v %v", next, ok)
	}
	// 90 s later: k2 was used recently, k3 not. Refreshable within 60 s picks k2.
	clk.t = clk.t.Add(90 * time.Second)
	c.Tick(clk.t)
	c.Lookup(0, netip.MustParseAddr("10.2.3.4"))
	got := c.Expire(clk.t)
	if len(got) != 2 || !hasKey(got, k1) || !hasKey(got, kn) {
		t.Fatalf("Expire at +90s = %v, want %v and %v", got, k1, kn)
	}
	if _, ok := c.Lookup(0, netip.MustParseAddr("10.1.0.1")); ok {
		t.Fatal("expired entry still found")
	}
	ref := c.Refreshable(clk.t, 60*time.Second, 10*time.Second)
	if len(ref) != 1 || ref[0].Key() != k2 {
		keys := []Key{}
		for _, e := range ref {
			keys = append(keys, e.Key())
		}
		t.Fatalf("Refreshable = %v, want only %v", keys, k2)
	}
	// Refresh k2 (new TTL) before it expires; k3 goes at +120s.
	c.Apply([]Update{{Key: k2, TTL: 2, RLOCs: up1}})
	clk.t = clk.t.Add(40 * time.Second)
	got = c.Expire(clk.t)
	if len(got) != 1 || got[0] != k3 {
		t.Fatalf("Expire at +130s = %v, want [%v]", got, k3)
	}
	if _, ok := c.Lookup(0, netip.MustParseAddr("10.2.0.1")); !ok {
		t.Fatal("refreshed entry expired")
	}
	// TTL 0 removes now (RFC 9301 §5.4).
	res := c.Apply([]Update{{Key: k2, TTL: 0, RLOCs: up1}})
	if res.Deleted != 1 {
		t.Fatalf("TTL 0 update: %+v, want a delete", res)
	}
	if st := c.Stats(); st.Expired != 3 || st.Entries != 2 {
		t.Fatalf("stats %+v, want 3 expired and 2 entries left", st)
	}
}

func hasKey(ks []Key, k Key) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

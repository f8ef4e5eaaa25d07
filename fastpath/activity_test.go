package fastpath

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rloc-router/rloc/cache"
)

// TestWorkerMarksActivity: the entries a worker forwards through (a lookup
// that fills the memo, then memo hits) are marked active through the
// worker's own cache.Reader and seen by the cache's writer after the step;
// an entry nobody looked up keeps its install time.
func TestWorkerMarksActivity(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	var now atomic.Int64
	now.Store(start.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	r := newRig(t, func(c *Config) {
		c.Cache = cache.New(cache.Config{BuildTemplate: c.Outer.BuildTemplate, Now: clock})
	})
	used, _ := r.c.Lookup(iidSite, remote4) // 10.2.0.0/16, forwarded below
	idle, _ := r.c.Lookup(iidSite, netip.MustParseAddr("10.3.0.1"))
	if used == nil || idle == nil {
		t.Fatal("static mappings missing")
	}
	spec := innerSpec{src: hostA, dst: remote4, payload: 10}
	for round := 1; round <= 3; round++ { // round 1 fills the memo, 2 and 3 hit it
		now.Store(start.Add(time.Duration(round) * time.Minute).UnixNano())
		r.c.Expire(clock()) // the writer moves its activity tick on
		r.fromSite(siteFrame(t, spec))
		one(t, r.core)
		want := start.Add(time.Duration(round) * time.Minute)
		if got := r.c.LastUsed(used); !got.Equal(want) {
			t.Fatalf("round %d: forwarded entry last used %v, want %v", round, got, want)
		}
	}
	if hits := r.w.extraPub[ExtraMemoHit].Load(); hits < 2 {
		t.Fatalf("memo hits %d, want the later rounds answered by the memo", hits)
	}
	if got := r.c.LastUsed(idle); got.After(start) {
		t.Fatalf("idle entry last used %v, after its install at %v", got, start)
	}
}

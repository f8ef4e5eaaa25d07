package fastpath

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestUnderlayGroupRenewal: the worker tells UnderlayGroup on the first
// packet from a G-RLOC, then not again until ugRenew has passed on its
// clock, then again (so that the slow path's time-based duplicate
// suppression stays on while the traffic lasts); a refused call is
// retried on the next packet. The worker's clock is set by hand: no real
// time is involved.
func TestUnderlayGroupRenewal(t *testing.T) {
	var calls []int64
	accept := true
	r := newRig(t, func(c *Config) {
		c.UnderlayGroup = func(netip.Addr) bool { return accept }
	})
	w := r.w
	tell := w.cfg.UnderlayGroup
	w.cfg.UnderlayGroup = func(g netip.Addr) bool {
		if g != gRLOC {
			t.Errorf("told %s, want %s", g, gRLOC)
		}
		calls = append(calls, w.now)
		return tell(g)
	}
	at := func(now int64) {
		w.now = now
		w.underlayGroup(gRLOC)
	}
	const s = int64(time.Second)
	// Packets every 100 ms for 3.5 s: told at 0, 1 s, 2 s and 3 s only.
	for now := int64(0); now <= 35*s/10; now += s / 10 {
		at(now)
	}
	want := []int64{0, s, 2 * s, 3 * s}
	if !slices.Equal(calls, want) {
		t.Fatalf("told at %v, want %v", calls, want)
	}
	// A gap in the traffic: the next packet tells at once.
	calls = nil
	at(10 * s)
	at(10*s + ugRenew - 1)
	if !slices.Equal(calls, []int64{10 * s}) {
		t.Fatalf("after a gap: told at %v, want [%d]", calls, 10*s)
	}
	// Refused: every packet tells until one is accepted, then the period
	// starts from the accepted call.
	calls, accept = nil, false
	at(20 * s)
	at(20*s + 1)
	accept = true
	at(20*s + 2)
	at(20*s + 3)
	at(21*s + 1)
	at(21*s + 2)
	if want := []int64{20 * s, 20*s + 1, 20*s + 2, 21*s + 2}; !slices.Equal(calls, want) {
		t.Fatalf("with refusals: told at %v, want %v", calls, want)
	}
	// Without a callback nothing happens.
	w.cfg.UnderlayGroup = nil
	at(100 * s)
}

// TestUnderlayGroupRenewalNoAlloc: noting a G-RLOC packet, telling or not,
// does not allocate.
func TestUnderlayGroupRenewalNoAlloc(t *testing.T) {
	n := 0
	r := newRig(t, func(c *Config) {
		c.UnderlayGroup = func(netip.Addr) bool { n++; return true }
	})
	w := r.w
	allocs := testing.AllocsPerRun(1000, func() {
		w.now += ugRenew / 3
		w.underlayGroup(gRLOC)
	})
	if allocs != 0 {
		t.Errorf("underlayGroup allocates %v per packet", allocs)
	}
	if n == 0 {
		t.Error("UnderlayGroup never told")
	}
}

// TestDecapUnderlayGroupRenewal: through the receive path, LISP data to a
// G-RLOC tells UnderlayGroup again once the worker's clock passed the
// renewal period. The worker's clock origin is moved so that its clock
// reads about 10 s, then about 10.5 s, then about 12 s (margins of half a
// second against the microseconds between moving it and the step).
func TestDecapUnderlayGroupRenewal(t *testing.T) {
	var calls int
	r := newRig(t, func(c *Config) {
		c.UnderlayGroup = func(netip.Addr) bool { calls++; return true }
	})
	in := innerPacket(t, innerSpec{src: remote4, dst: hostA, ttl: 50, payload: 40})
	frame := lispFrame(t, lispSpec{src: rlocRemote4, dst: gRLOC, ttl: 60, iid: iidSite, inner: in})
	for i, tc := range []struct {
		clock time.Duration
		want  int
	}{
		{10 * time.Second, 1},
		{10*time.Second + 500*time.Millisecond, 1},
		{12 * time.Second, 2},
		{12*time.Second + 500*time.Millisecond, 2},
		{14 * time.Second, 3},
	} {
		r.w.epoch = time.Now().Add(-tc.clock)
		r.fromCore(frame)
		one(t, r.site)
		if calls != tc.want {
			t.Fatalf("packet %d at clock %v: %d calls, want %d", i, tc.clock, calls, tc.want)
		}
	}
	if c := r.counters(); c.Get(CounterDecap) != 5 {
		t.Errorf("decap %d, want 5", c.Get(CounterDecap))
	}
}

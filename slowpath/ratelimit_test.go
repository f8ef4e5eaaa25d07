package slowpath

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

var t0 = time.Unix(1000, 0)

// limiter is a rate limiter whose total budgets are out of the way unless
// set.
func limiter(req, reg, other RateBudget, maxSources int) *rateLimiter {
	return newRateLimiter(RateLimitConfig{MapRequest: req, MapRegister: reg, Other: other, MaxSources: maxSources})
}

// TestRateLimitPerAddress: every port of one address draws on one bucket,
// another address has its own, and tokens come back at the configured rate.
func TestRateLimitPerAddress(t *testing.T) {
	b := RateBudget{PerSource: 10, Burst: 5, Total: -1}
	r := limiter(b, b, b, 16)
	a := netip.MustParseAddr("192.0.2.1")
	allowed := 0
	for port := uint16(1); port <= 50; port++ {
		if r.allow(netip.AddrPortFrom(a, port), classRequest, t0) {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("50 ports of one address got %d tokens, want the burst of 5", allowed)
	}
	if !r.allow(netip.MustParseAddrPort("192.0.2.2:7"), classRequest, t0) {
		t.Fatal("another address was limited by the first one's flood")
	}
	if !r.allow(netip.AddrPortFrom(a, 9), classRequest, t0.Add(100*time.Millisecond)) {
		t.Fatal("no token after 100 ms at 10/s")
	}
	if r.allow(netip.AddrPortFrom(a, 9), classRequest, t0.Add(100*time.Millisecond)) {
		t.Fatal("a second token after 100 ms at 10/s")
	}
	if r.bySource != 46 || r.byTotal != 0 {
		t.Fatalf("counted %d by source, %d by total; want 46, 0", r.bySource, r.byTotal)
	}
}

// TestRateLimitClasses: each class has its own budget: a source that spent
// its Map-Request budget still has its Map-Register and other budgets, and
// message types map to their classes.
func TestRateLimitClasses(t *testing.T) {
	b := RateBudget{PerSource: 1, Burst: 3, Total: -1}
	r := limiter(b, b, b, 16)
	src := netip.MustParseAddrPort("192.0.2.1:4342")
	for range 10 {
		r.allow(src, classRequest, t0)
	}
	for _, k := range []rateClass{classRegister, classOther} {
		n := 0
		for range 10 {
			if r.allow(src, k, t0) {
				n++
			}
		}
		if n != 3 {
			t.Errorf("class %d after a Map-Request flood: %d allowed, want its burst of 3", k, n)
		}
	}
	for typ, want := range map[wire.MessageType]rateClass{wire.TypeMapRequest: classRequest, wire.TypeECM: classRequest,
		wire.TypeMapRegister: classRegister, wire.TypeMapReply: classOther, wire.TypeMapNotify: classOther,
		wire.TypeMapNotifyAck: classOther, wire.TypeMapReferral: classOther, wire.MessageType(15): classOther} {
		if got := classOf(typ); got != want {
			t.Errorf("class of %v = %d, want %d", typ, got, want)
		}
	}
}

// TestRateLimitTotal: many sources, each within its own budget, together
// get no more than the total budget; a trusted source is not held back by
// the spent total, until its trust expires; a configured (always trusted)
// source stays trusted.
func TestRateLimitTotal(t *testing.T) {
	b := RateBudget{PerSource: 100, Burst: 10, Total: 50}
	r := limiter(b, b, b, 4096)
	through := 0
	for i := range 1000 {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 4342)
		if r.allow(src, classRequest, t0) {
			through++
		}
	}
	if through != 50 {
		t.Fatalf("1000 sources got %d messages through, want the total burst of 50", through)
	}
	if r.byTotal != 950 || r.bySource != 0 {
		t.Fatalf("counted %d by total, %d by source", r.byTotal, r.bySource)
	}
	good := netip.MustParseAddr("192.0.2.7")
	peer := netip.MustParseAddr("192.0.2.8")
	r.trust(good, t0.Add(trustFor), t0)
	r.trust(peer, time.Time{}, t0)
	for _, a := range []netip.Addr{good, peer} {
		if !r.allow(netip.AddrPortFrom(a, 1), classRequest, t0) {
			t.Errorf("%v refused while the total budget is spent", a)
		}
	}
	if r.allow(netip.MustParseAddrPort("192.0.2.9:1"), classRequest, t0) {
		t.Fatal("an untrusted new source passed a spent total budget")
	}
	later := t0.Add(trustFor)
	for i := range 60 { // spend what the total regained meanwhile
		r.allow(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 99, byte(i)}), 1), classRequest, later)
	}
	if r.allow(netip.AddrPortFrom(good, 1), classRequest, later) {
		t.Error("trust did not expire")
	}
	if !r.allow(netip.AddrPortFrom(peer, 1), classRequest, later) {
		t.Error("a configured peer lost its trust")
	}
}

// TestRateLimitBounds: the source table stays within MaxSources (the rest
// share one set of buckets, counted); quiet sources are forgotten to make
// room; the trusted table is bounded too.
func TestRateLimitBounds(t *testing.T) {
	b := RateBudget{PerSource: 1, Burst: 1, Total: -1}
	r := limiter(b, b, b, 8)
	for i := range 100 {
		r.allow(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}), 1), classOther, t0)
		r.trust(netip.AddrFrom4([4]byte{198, 19, 0, byte(i)}), t0.Add(time.Hour), t0)
	}
	if len(r.sources) > 8 || len(r.trusted) > 8 || r.full == 0 {
		t.Fatalf("%d sources, %d trusted, %d shared; want <= 8, <= 8, > 0", len(r.sources), len(r.trusted), r.full)
	}
	// A second later every bucket has refilled: new sources get their own.
	if !r.allow(netip.MustParseAddrPort("203.0.113.1:1"), classOther, t0.Add(time.Second)) {
		t.Fatal("a new source refused after the table's sources went quiet")
	}
	if _, ok := r.sources[netip.MustParseAddr("203.0.113.1")]; !ok {
		t.Fatal("a new source did not get its own buckets after the sweep")
	}
}

// TestRateLimitOffAndUnlimited: Off lets everything through; -1 lifts one
// limit only.
func TestRateLimitOffAndUnlimited(t *testing.T) {
	off := newRateLimiter(RateLimitConfig{Off: true}.WithDefaults(true))
	src := netip.MustParseAddrPort("192.0.2.1:1")
	for i := range 10000 {
		if !off.allow(src, classRequest, t0) {
			t.Fatalf("message %d refused with rate limiting off", i)
		}
	}
	r := limiter(RateBudget{PerSource: -1, Total: -1}, RateBudget{PerSource: -1, Total: 5}, RateBudget{PerSource: 2, Total: -1}, 16)
	counts := [numClasses]int{}
	for i := range 1000 {
		s := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i % 3)}), 1)
		for k := range numClasses {
			if r.allow(s, k, t0) {
				counts[k]++
			}
		}
	}
	if counts != [numClasses]int{1000, 5, 6} {
		t.Fatalf("through per class %v, want [1000 5 6]", counts)
	}
}

// TestRateLimitDefaults: rate limiting is on by default with the
// documented budgets; a per-source rate without a burst gets one second's
// worth; bad values are refused naming the key.
func TestRateLimitDefaults(t *testing.T) {
	d := RateLimitConfig{}.WithDefaults(true)
	if d.Off || d.MapRequest != (RateBudget{100, 200, 20000}) || d.MapRegister != (RateBudget{100, 100, 10000}) ||
		d.Other != (RateBudget{2000, 2000, 50000}) || d.MaxSources != 65536 {
		t.Fatalf("defaults %+v", d)
	}
	if x := (RateLimitConfig{}).WithDefaults(false); x.MapRequest.Total != 1000 || x.MapRegister != d.MapRegister {
		t.Fatalf("xTR defaults %+v", x)
	}
	if c := (RateLimitConfig{MapRequest: RateBudget{PerSource: 40}}).WithDefaults(true); c.MapRequest.Burst != 40 {
		t.Fatalf("burst for 40/s: %d, want 40", c.MapRequest.Burst)
	}
	if got := (Config{MapResolver: &MapResolverConfig{}}).WithDefaults().RateLimit; got != d {
		t.Fatalf("Map-Resolver defaults %+v, want %+v", got, d)
	}
	if got := (Config{}).WithDefaults().RateLimit; got.MapRequest.Total != 1000 {
		t.Fatalf("xTR defaults %+v", got)
	}
	for _, c := range []struct {
		rl   RateLimitConfig
		want string
	}{
		{RateLimitConfig{MaxSources: -1}, "rl.max_sources"},
		{RateLimitConfig{MapRequest: RateBudget{PerSource: -2}}, "rl.map_request.per_source"},
		{RateLimitConfig{Other: RateBudget{Total: -0.5}}, "rl.other.total"},
		{RateLimitConfig{MapRegister: RateBudget{Burst: -1}}, "rl.map_register.burst"},
	} {
		if err := c.rl.Validate("rl"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", c.rl, err, c.want)
		}
	}
	if err := (RateLimitConfig{MapRequest: RateBudget{PerSource: -1, Total: -1}}).Validate("rl"); err != nil {
		t.Errorf("-1 refused: %v", err)
	}
}

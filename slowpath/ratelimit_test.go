package slowpath

import (
	"net/netip"
	"testing"
	"time"
)

// TestRateLimitPerAddress: every port of one address draws on one bucket,
// another address has its own, and tokens come back at the configured rate.
func TestRateLimitPerAddress(t *testing.T) {
	r := newRateLimiter(RateLimitConfig{PerSecond: 10, Burst: 5, MaxSources: 16})
	now := time.Unix(1000, 0)
	a := netip.MustParseAddr("192.0.2.1")
	allowed := 0
	for port := uint16(1); port <= 50; port++ {
		if r.allow(netip.AddrPortFrom(a, port), now) {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("50 ports of one address got %d tokens, want the burst of 5", allowed)
	}
	if !r.allow(netip.MustParseAddrPort("192.0.2.2:7"), now) {
		t.Fatal("another address was limited by the first one's flood")
	}
	if !r.allow(netip.AddrPortFrom(a, 9), now.Add(100*time.Millisecond)) {
		t.Fatal("no token after 100 ms at 10/s")
	}
	if r.allow(netip.AddrPortFrom(a, 9), now.Add(100*time.Millisecond)) {
		t.Fatal("a second token after 100 ms at 10/s")
	}
}

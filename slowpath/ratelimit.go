package slowpath

import (
	"net/netip"
	"time"
)

// rateLimiter is a token bucket per source address (whatever its port, so
// a flood cannot spread itself over many ports), in a bounded table. Only
// the engine goroutine uses it.
type rateLimiter struct {
	rate    float64 // tokens per second; 0 disables
	burst   float64
	max     int
	buckets map[netip.Addr]*bucket
	shared  bucket // used by sources beyond max
	full    uint64 // times a source fell back to the shared bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(c RateLimitConfig) *rateLimiter {
	r := &rateLimiter{rate: c.PerSecond, burst: float64(c.Burst), max: c.MaxSources}
	if r.rate > 0 {
		r.buckets = make(map[netip.Addr]*bucket)
		r.shared.tokens = r.burst
	}
	return r
}

// allow takes a token from src's bucket and reports whether there was one.
func (r *rateLimiter) allow(src netip.AddrPort, now time.Time) bool {
	if r.rate <= 0 {
		return true
	}
	key := src.Addr().Unmap()
	b := r.buckets[key]
	if b == nil {
		if len(r.buckets) >= r.max {
			r.sweep(now)
		}
		if len(r.buckets) >= r.max {
			r.full++
			b = &r.shared
		} else {
			b = &bucket{tokens: r.burst, last: now}
			r.buckets[key] = b
		}
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(r.burst, b.tokens+dt*r.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep forgets the buckets that have refilled completely: their sources
// have been quiet long enough that a fresh bucket is the same.
func (r *rateLimiter) sweep(now time.Time) {
	for k, b := range r.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*r.rate >= r.burst {
			delete(r.buckets, k)
		}
	}
}

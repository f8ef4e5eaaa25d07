package slowpath

import (
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// rateClass is the budget a message draws on (RateLimitConfig).
type rateClass uint8

const (
	classRequest  rateClass = iota // Map-Requests and ECMs
	classRegister                  // Map-Registers
	classOther                     // everything else
	numClasses
)

// classOf returns the budget of a message of type t.
func classOf(t wire.MessageType) rateClass {
	switch t {
	case wire.TypeMapRequest, wire.TypeECM:
		return classRequest
	case wire.TypeMapRegister:
		return classRegister
	}
	return classOther
}

// rateLimiter holds, per message class, a token bucket per source
// address (whatever its port, so a flood cannot spread itself over many
// ports) in a bounded table, and one bucket for all sources together that
// trusted sources (Core.Trust) do not draw on, so a flood from many
// addresses cannot starve the peers known to be good. Only the engine
// goroutine uses it.
type rateLimiter struct {
	off     bool
	cls     [numClasses]classLimit
	max     int
	sources map[netip.Addr]*source
	shared  source // used by sources beyond max
	trusted map[netip.Addr]time.Time
	full    uint64 // times a source fell back to the shared buckets
	// bySource and byTotal count the messages refused by a source's own
	// budget and by the total one.
	bySource, byTotal uint64
}

// classLimit is one class's budget: rates in tokens per second.
type classLimit struct {
	rate, burst float64 // per source; rate < 0: unlimited
	total       bucket  // all untrusted sources together
	totalRate   float64 // < 0: unlimited
	totalBurst  float64
}

type source struct{ b [numClasses]bucket }

type bucket struct {
	tokens float64
	last   time.Time
}

// trustFor is how long a source stays trusted after Trust.
const trustFor = 10 * time.Minute

func newRateLimiter(c RateLimitConfig) *rateLimiter {
	r := &rateLimiter{off: c.Off, max: c.MaxSources, sources: map[netip.Addr]*source{}, trusted: map[netip.Addr]time.Time{}}
	if r.max <= 0 {
		r.max = 65536
	}
	for i, b := range []RateBudget{c.MapRequest, c.MapRegister, c.Other} {
		l := &r.cls[i]
		l.rate, l.burst = b.PerSource, float64(b.Burst)
		if l.burst <= 0 {
			l.burst = max(1, l.rate)
		}
		l.totalRate, l.totalBurst = b.Total, max(1, b.Total)
		l.total.tokens = l.totalBurst
		r.shared.b[i].tokens = l.burst
	}
	return r
}

// allow takes a token for a message of class k from src's bucket and,
// unless src is trusted, from the class's total bucket; it reports
// whether both had one.
func (r *rateLimiter) allow(src netip.AddrPort, k rateClass, now time.Time) bool {
	if r.off {
		return true
	}
	l := &r.cls[k]
	key := src.Addr().Unmap()
	if l.rate >= 0 {
		s := r.sources[key]
		if s == nil {
			s = r.newSource(key, now)
		}
		if !take(&s.b[k], l.rate, l.burst, now) {
			r.bySource++
			return false
		}
	}
	if l.totalRate >= 0 && !r.isTrusted(key, now) && !take(&l.total, l.totalRate, l.totalBurst, now) {
		r.byTotal++
		return false
	}
	return true
}

// newSource adds src's buckets, full, or returns the shared ones when the
// table is full even after forgetting the refilled sources.
func (r *rateLimiter) newSource(src netip.Addr, now time.Time) *source {
	if len(r.sources) >= r.max {
		r.sweep(now)
	}
	if len(r.sources) >= r.max {
		r.full++
		return &r.shared
	}
	s := &source{}
	for i := range s.b {
		s.b[i] = bucket{tokens: r.cls[i].burst, last: now}
	}
	r.sources[src] = s
	return s
}

// take refills b at rate up to burst and takes a token if there is one.
func take(b *bucket, rate, burst float64, now time.Time) bool {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(burst, b.tokens+dt*rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep forgets the sources whose buckets have all refilled: they have
// been quiet long enough that fresh buckets are the same.
func (r *rateLimiter) sweep(now time.Time) {
	for k, s := range r.sources {
		refilled := true
		for i := range s.b {
			l := &r.cls[i]
			if l.rate >= 0 && s.b[i].tokens+now.Sub(s.b[i].last).Seconds()*l.rate < l.burst {
				refilled = false
				break
			}
		}
		if refilled {
			delete(r.sources, k)
		}
	}
}

// trust exempts src from the total budgets until the given time (zero:
// for good; a configured peer). The table is bounded like the sources';
// when it is full of unexpired entries, src stays untrusted.
func (r *rateLimiter) trust(src netip.Addr, until, now time.Time) {
	if r.off {
		return
	}
	src = src.Unmap()
	old, ok := r.trusted[src]
	if ok && old.IsZero() {
		return // trusted for good already
	}
	if !ok && len(r.trusted) >= r.max {
		for k, u := range r.trusted {
			if !u.IsZero() && !now.Before(u) {
				delete(r.trusted, k)
			}
		}
		if len(r.trusted) >= r.max {
			return
		}
	}
	r.trusted[src] = until
}

func (r *rateLimiter) isTrusted(src netip.Addr, now time.Time) bool {
	until, ok := r.trusted[src]
	return ok && (until.IsZero() || now.Before(until))
}

package slowpath

import (
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// TestTTLConversions: record TTLs from the wire become durations without
// overflowing (the largest TTL lives longest, it does not expire at once),
// receiver-decides becomes the default, and durations become TTLs of at
// least one minute, saturating below receiver-decides.
func TestTTLConversions(t *testing.T) {
	const def = 7 * time.Minute
	for _, c := range []struct {
		ttl  uint32
		want time.Duration
	}{
		{0, 0}, {1, time.Minute}, {1440, 24 * time.Hour},
		{0xfffffffe, time.Duration(maxTTLMinutes) * time.Minute},
		{0x7fffffff, time.Duration(maxTTLMinutes) * time.Minute},
		{wire.TTLReceiverDecides, def},
	} {
		if got := TTLDuration(c.ttl, def); got != c.want {
			t.Errorf("TTLDuration(%#x) = %v, want %v", c.ttl, got, c.want)
		}
	}
	prev := time.Duration(0)
	for ttl := uint64(1); ttl < wire.TTLReceiverDecides; ttl = ttl*3 + 1 {
		d := TTLDuration(uint32(ttl), def)
		if d < prev || d <= 0 {
			t.Fatalf("TTLDuration(%#x) = %v after %v: not monotonic or not positive", ttl, d, prev)
		}
		prev = d
	}
	for _, c := range []struct {
		d    time.Duration
		want uint32
	}{
		{0, 1}, {time.Second, 1}, {90 * time.Second, 1}, {time.Hour, 60},
		{time.Duration(1<<63 - 1), uint32(maxTTLMinutes)},
	} {
		if got := TTLMinutes(c.d); got != c.want {
			t.Errorf("TTLMinutes(%v) = %#x, want %#x", c.d, got, c.want)
		}
	}
}

package ring

import "testing"

// TestReframe: Reframe is Pull or Push followed by SetLen, and refuses
// (frame unchanged) what would leave the chunk.
func TestReframe(t *testing.T) {
	p, err := NewPool(make([]byte, 4*512), 512, Headroom)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := p.Get()
	if !ok || !f.SetLen(100) {
		t.Fatal("no frame")
	}
	copy(f.Bytes(), "abcdefgh")
	for _, c := range []struct {
		d, n   int
		ok     bool
		off, l int
	}{
		{-50, 150, true, Headroom - 50, 150},
		{-Headroom, 10, true, 0, 10},
		{-Headroom - 1, 10, false, Headroom, 100},
		{20, 80, true, Headroom + 20, 80},
		{0, 512 - Headroom, true, Headroom, 512 - Headroom},
		{0, 512 - Headroom + 1, false, Headroom, 100},
		{0, -1, false, Headroom, 100},
		{512 - Headroom + 1, 0, false, Headroom, 100}, // start past the chunk, empty
	} {
		g := f
		b := g.Reframe(c.d, c.n)
		if (b != nil) != c.ok || g.Offset() != c.off || g.Len() != c.l || (b != nil && len(b) != c.n) {
			t.Fatalf("Reframe(%d, %d): ok %v, offset %d, len %d; want %v, %d, %d", c.d, c.n, b != nil, g.Offset(), g.Len(), c.ok, c.off, c.l)
		}
		if c.ok && c.d <= 0 && c.n >= 8-c.d && string(b[-c.d:-c.d+8]) != "abcdefgh" {
			t.Fatalf("Reframe(%d, %d) moved the data: %q", c.d, c.n, b[-c.d:-c.d+8])
		}
	}
}

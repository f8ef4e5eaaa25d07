package xsk

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/rloc-router/rloc/ring"
)

// fillOcc is the number of chunks on p's fill ring.
func fillOcc(p *Port) int { return int(*p.fill.prod - atomic.LoadUint32(p.fill.cons)) }

// TestFillAdaptive: a socket that receives nothing keeps only its floor on
// the fill ring; one that receives a burst grows its target, and gives it
// back after windows of refills without traffic.
func TestFillAdaptive(t *testing.T) {
	tp := newTopo(t, 2)
	g, err := NewGroup(Options{AdaptiveFill: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	_, site := tp.steer(t, 0, ProgramConfig{Mode: ModeSite}, XDPDriver, g)
	_, core := tp.steer(t, 1, ProgramConfig{Mode: ModeCore}, XDPDriver, g)
	floor := g.opts.FillRingSize / 4
	for _, p := range []*Port{site, core} {
		if p.FillTarget() != floor || fillOcc(p) != floor {
			t.Fatalf("new socket: fill target %d, on the ring %d; want the floor %d", p.FillTarget(), fillOcc(p), floor)
		}
	}
	// A burst larger than half the floor arrives between two refills.
	const burst = 200
	sendFrom(t, tp.p, "udp4", "10.10.0.8:5000", []byte("fill-burst"), burst)
	if got := receiveMatching(t, site, []byte("fill-burst"), burst, 5*time.Second, nil); got != burst {
		t.Fatalf("received %d of %d", got, burst)
	}
	if site.FillTarget() <= floor || site.FillGrows == 0 {
		t.Fatalf("site socket after a burst of %d: fill target %d (grows %d), want above %d", burst, site.FillTarget(), site.FillGrows, floor)
	}
	if core.FillTarget() != floor || fillOcc(core) > floor {
		t.Fatalf("idle core socket: fill target %d, on the ring %d; want at most %d", core.FillTarget(), fillOcc(core), floor)
	}
	// No traffic for a few windows: the target falls back to the floor.
	for i := 0; i < 4*fillWindow; i++ {
		site.PollPrepare()
	}
	if site.FillTarget() != floor || site.FillShrinks == 0 {
		t.Fatalf("idle site socket: fill target %d (shrinks %d), want %d", site.FillTarget(), site.FillShrinks, floor)
	}
	if core.FillTarget() != floor {
		t.Fatalf("core socket target moved to %d", core.FillTarget())
	}
}

// TestFillManySocketsKeepReserve: with more sockets than a small pool has
// fill rings for, the floors shrink with the number of sockets, no socket
// holds more than half of what may be lent, and refills never take the pool
// below the reserve that Alloc draws from, even with every target at its
// ceiling. (Chunks an early socket took before the later ones were opened
// stay on its ring until the kernel uses them; only its target shrinks.)
func TestFillManySocketsKeepReserve(t *testing.T) {
	const links = 4
	tp := newTopo(t, links)
	g, err := NewGroup(Options{NumFrames: 512, AdaptiveFill: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	var ports []*Port
	reserve := groupReserve(&g.opts)
	lend := g.opts.NumFrames - reserve
	for i := 0; i < links; i++ {
		_, p := tp.steer(t, i, ProgramConfig{Mode: ModeCore}, XDPDriver, g)
		ports = append(ports, p)
		if free := g.Pool().Free(); free < reserve {
			t.Fatalf("after opening socket %d: %d free chunks, reserve %d", i, free, reserve)
		}
	}
	for i, p := range ports {
		if p.fillMin > lend/(2*links) || p.fillMax > lend/2 || p.FillTarget() != p.fillMin {
			t.Errorf("socket %d: floor %d ceiling %d target %d; want floor at most %d, ceiling at most %d, target at the floor",
				i, p.fillMin, p.fillMax, p.FillTarget(), lend/(2*links), lend/2)
		}
		if fillOcc(p) > lend/2 {
			t.Errorf("socket %d holds %d chunks, more than half of %d", i, fillOcc(p), lend)
		}
	}
	for _, p := range ports {
		p.fillTarget = p.fillMax
		p.refill()
		if free := g.Pool().Free(); free < reserve {
			t.Fatalf("pool down to %d free chunks, reserve %d", free, reserve)
		}
	}
	if n := ports[0].Alloc(make([]ring.Frame, reserve)); n != reserve {
		t.Fatalf("Alloc got %d of the %d reserved chunks", n, reserve)
	}
}

// TestFillShort: a refill that cannot reach the fill target because the
// UMEM's free chunks are down to the reserve is counted (FillShort, also
// published), and one that can is not.
func TestFillShort(t *testing.T) {
	tp := newTopo(t, 1)
	g, err := NewGroup(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	_, site := tp.steer(t, 0, ProgramConfig{Mode: ModeSite}, XDPDriver, g)
	full := g.opts.FillRingSize
	if site.FillShort != 0 || fillOcc(site) != full {
		t.Fatalf("new socket: fill short %d, on the ring %d; want 0 and %d", site.FillShort, fillOcc(site), full)
	}
	// The worker holds every free chunk (as frames waiting for their
	// transmission to complete would): the kernel's next frames cannot be
	// replaced on the fill ring.
	held := make([]ring.Frame, g.Pool().Free())
	if n := site.Alloc(held); n != len(held) {
		t.Fatalf("Alloc got %d of %d free chunks", n, len(held))
	}
	const burst = 20
	sendFrom(t, tp.p, "udp4", "10.10.0.8:5000", []byte("fill-short"), burst)
	if got := receiveMatching(t, site, []byte("fill-short"), burst, 5*time.Second, nil); got != burst {
		t.Fatalf("received %d of %d", got, burst)
	}
	short := site.FillShort
	if short == 0 || fillOcc(site) >= full {
		t.Fatalf("refills with the pool at its reserve: fill short %d, on the ring %d of %d; want counted and below", short, fillOcc(site), full)
	}
	site.Complete()
	if p := site.Published().FillShort; p != short {
		t.Fatalf("published fill short %d, want %d", p, short)
	}
	// The chunks come back: the next refill tops the ring up and is not short.
	site.Release(held)
	site.PollPrepare()
	if site.FillShort != short || fillOcc(site) != full {
		t.Fatalf("after the chunks came back: fill short %d (was %d), on the ring %d; want unchanged and %d", site.FillShort, short, fillOcc(site), full)
	}
}

package fastpath

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/ring/mem"
	"github.com/rloc-router/rloc/wire"
)

// TestParseCoreMatchesGeneral checks parseCore's shortcuts for plain
// IPv4 and IPv6 packets over IPv4 (core4) and over IPv6 (core6) against
// the general parser: a valid frame
// takes the shortcut, and for frames with one or two header bytes changed (every
// offset of the headers, random values, frames cut short), whenever the
// shortcut takes a frame, the general parser fills the packet's state the
// same way and counts the same; a frame the shortcut refuses is left to the
// general parser untouched. It fails when any check of parseCoreFast is
// left out (the general parser then drops or routes differently).
func TestParseCoreMatchesGeneral(t *testing.T) {
	pool, err := mem.NewPool(4, 2048, 256)
	if err != nil {
		t.Fatal(err)
	}
	frame := func(b []byte) ring.Frame {
		f, ok := pool.Get()
		if !ok {
			t.Fatal("pool empty")
		}
		f.SetLen(len(b))
		copy(f.Bytes(), b)
		return f
	}
	fast := newRig(t, func(c *Config) { c.RTR = true })
	slow := newRig(t, func(c *Config) { c.RTR = true })
	const coreSlot = 1
	in := innerPacket(t, innerSpec{src: remote4, dst: hostA, ttl: 50, payload: 30})
	in6 := innerPacket(t, innerSpec{src: remote6, dst: hostA6, ttl: 50, payload: 30})
	base := [][]byte{
		lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: iidSite, nonce: 7, flags: wire.FlagI | wire.FlagN | wire.FlagL, inner: in}),
		lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: 300, inner: in}), // RTR
		lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: iidSite, flags: wire.FlagI, csum: true, inner: in}),
		lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: iidSite, nonce: 9, flags: wire.FlagI | wire.FlagN, inner: in6}),
		lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: 300, inner: in6}), // RTR
		// over IPv6 (core6)
		lispFrame(t, lispSpec{src: rlocRemote6, dst: rlocLocal6, iid: iidSite, nonce: 7, flags: wire.FlagI | wire.FlagN | wire.FlagL, tos: 0x2e, ttl: 9, inner: in}),
		lispFrame(t, lispSpec{src: rlocRemote6, dst: rlocLocal6, iid: 300, inner: in}), // RTR
		lispFrame(t, lispSpec{src: rlocRemote6, dst: rlocLocal6, iid: iidSite, flags: wire.FlagI, csum: true, inner: in}),
		lispFrame(t, lispSpec{src: rlocRemote6, dst: rlocLocal6, iid: iidSite, nonce: 9, flags: wire.FlagN, inner: in6}),
		lispFrame(t, lispSpec{src: rlocRemote6, dst: rlocLocal6, iid: 300, tos: 3, inner: in6}), // RTR
	}
	try := func(b []byte) bool {
		t.Helper()
		var p1 pktInfo
		h, ok := fast.w.parseCoreFast(&p1, coreSlot, b)
		if !ok {
			if p1 != (pktInfo{}) {
				t.Fatalf("refused frame %x changed the packet state: %+v", b, p1)
			}
			return false
		}
		f1, f2 := frame(b), frame(b)
		fb := fast.counters()
		fast.w.coreInner(&p1, &f1, f1.Bytes(), h)
		sb := slow.counters()
		var p2 pktInfo
		slow.w.parseCoreAny(&p2, coreSlot, &f2, f2.Bytes())
		if p1.lazyAddrs != p1.v4 { // an IPv4 packet's are read later, an IPv6 one's now
			t.Fatalf("frame %x: inner IPv4 %v, addresses left in the frame %v", b, p1.v4, p1.lazyAddrs)
		}
		lazyAddrs(&p1, &f1) // what a later stage reads from the frame
		// The flow memo sets are each worker's own, named by index (flowRef): the same set.
		if p1 != p2 {
			t.Fatalf("frame %x:\nshortcut %+v\ngeneral  %+v", b, p1, p2)
		}
		if c1, c2 := fast.countersSince(fb), slow.countersSince(sb); c1 != c2 {
			t.Fatalf("frame %x: counters differ:\nshortcut %v\ngeneral  %v", b, c1, c2)
		}
		ring.Release([]ring.Frame{f1, f2})
		return true
	}
	for _, b := range base {
		if !try(b) {
			t.Fatalf("valid frame %x did not take the shortcut", b)
		}
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	taken, taken6 := 0, 0
	for _, b0 := range base {
		for off := 0; off < core6Min+4; off++ {
			for range 24 {
				b := append([]byte(nil), b0...)
				b[off] = uint8(rnd.Uint32())
				if rnd.IntN(4) == 0 {
					b[rnd.IntN(core6Min)] ^= 1 << rnd.IntN(8)
				}
				if rnd.IntN(2) == 0 && len(b) >= wire.EthernetLen+wire.IPv4MinLen && b0[12] == 0x08 {
					// A valid outer header checksum, so that the checks after
					// it (fragment offset, UDP, LISP, inner) are reached.
					ip := b[wire.EthernetLen : wire.EthernetLen+wire.IPv4MinLen]
					ip[10], ip[11] = 0, 0
					binary.BigEndian.PutUint16(ip[10:], ^wire.Checksum(ip, 0))
				}
				if rnd.IntN(8) == 0 {
					b = b[:rnd.IntN(len(b)+1)]
				}
				if try(b) {
					taken++
					if b0[12] == 0x86 {
						taken6++
					}
				}
			}
		}
	}
	if taken == 0 || taken6 == 0 {
		t.Fatalf("%d changed frames took the shortcut, %d of them over IPv6", taken, taken6)
	}
}

// TestDecapBatchShortcut checks the batch's delivery shortcut (deliver4)
// against what deliverAt decides: in each case the first packet of a batch
// fills the worker's instance-ID and next-hop memos, and the packets after
// it, which find them filled, must be treated as the first one was: not
// delivered to a group without local receivers (LocalGroups), each source
// gleaned on a gleaning port, another instance-ID not delivered on the
// first one's port, a destination routed out of another port not
// delivered, and a packet that asks for an echo observed, also when an RTR
// re-encapsulates it.
func TestDecapBatchShortcut(t *testing.T) {
	frame := func(iid uint32, flags uint8, src, dst netip.Addr) []byte {
		in := innerPacket(t, innerSpec{src: src, dst: dst, ttl: 50, payload: 20})
		return lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, ttl: 60, iid: iid, flags: flags, inner: in})
	}
	other := netip.MustParseAddr("10.2.0.8")
	obs := func(r *rig) (n, glean int) {
		var o Observation
		for r.w.Observations().Pop(&o) {
			if n++; o.Glean {
				glean++
			}
		}
		return n, glean
	}
	t.Run("local groups", func(t *testing.T) {
		lg := &LocalGroups{}
		r := newRig(t, func(c *Config) { c.LocalGroups = lg })
		r.nh.Store(testNextHops(nexthop.Route{Prefix: netip.MustParsePrefix("232.0.0.0/8"), IfIndex: 10}))
		g := netip.MustParseAddr("232.2.2.2")
		lg.Set([]LocalGroup{{IID: iidSite, Group: g}})
		r.fromCore(frame(iidSite, wire.FlagI, remote4, g), frame(iidSite, wire.FlagI, remote4, g))
		if out := drain(r.site); len(out) != 2 {
			t.Fatalf("%d delivered to a group with receivers, want 2", len(out))
		}
		lg.Set(nil) // the last receiver left: the memos stay filled
		r.fromCore(frame(iidSite, wire.FlagI, remote4, g), frame(iidSite, wire.FlagI, remote4, g), frame(iidSite, wire.FlagI, remote4, hostA))
		if c := r.counters(); c.Dropped(DropNoReceivers) != 2 || c.Get(CounterDecap) != 3 {
			t.Errorf("DropNoReceivers %d, decap %d: want 2 and 3 (two to the group, the unicast packet)", c.Dropped(DropNoReceivers), c.Get(CounterDecap))
		}
		one(t, r.site)
	})
	t.Run("glean", func(t *testing.T) {
		r := newRig(t, func(c *Config) { c.Ports[0].Glean = true })
		r.fromCore(frame(iidSite, wire.FlagI, remote4, hostA), frame(iidSite, wire.FlagI, other, hostA))
		if n, g := obs(r); n != 2 || g != 2 {
			t.Errorf("%d observations, %d gleaning reports: want 2 of each", n, g)
		}
		if out := drain(r.site); len(out) != 2 {
			t.Errorf("%d delivered, want 2", len(out))
		}
	})
	t.Run("another instance-ID", func(t *testing.T) {
		r := newRig(t, nil)
		r.fromCore(frame(iidSite, wire.FlagI, remote4, hostA), frame(999, wire.FlagI, remote4, hostA), frame(999, wire.FlagI, remote4, hostA),
			frame(iidSite, wire.FlagI, remote4, hostA))
		if c := r.counters(); c.Dropped(DropWrongIID) != 2 || c.Get(CounterDecap) != 2 {
			t.Errorf("DropWrongIID %d, decap %d: want 2 and 2", c.Dropped(DropWrongIID), c.Get(CounterDecap))
		}
		if out := drain(r.core); len(out) != 0 {
			t.Errorf("%d sent back to the core by a worker that is no RTR", len(out))
		}
		if out := drain(r.site); len(out) != 2 {
			t.Errorf("%d delivered, want 2", len(out))
		}
	})
	t.Run("routed out of another port", func(t *testing.T) {
		r := newRig(t, nil)
		r.nh.Store(testNextHops(nexthop.Route{Prefix: netip.MustParsePrefix("10.1.9.0/24"), Gateway: gw4, IfIndex: 20}))
		far := netip.MustParseAddr("10.1.9.1")
		r.fromCore(frame(iidSite, wire.FlagI, remote4, far), frame(iidSite, wire.FlagI, remote4, far))
		if c := r.counters(); c.Dropped(DropNoPort) != 2 || c.Get(CounterDecap) != 0 {
			t.Errorf("DropNoPort %d, decap %d: want 2 and 0", c.Dropped(DropNoPort), c.Get(CounterDecap))
		}
		if out := drain(r.site); len(out) != 0 {
			t.Errorf("%d delivered, want none", len(out))
		}
	})
	t.Run("RTR echo request", func(t *testing.T) {
		r := newRig(t, func(c *Config) { c.RTR = true })
		r.install([]StaticMapping{{IID: 300, Prefix: netip.MustParsePrefix("10.1.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocOther4, Weight: 1}}}})
		r.fromCore(frame(300, wire.FlagI, remote4, hostA), frame(300, wire.FlagI|wire.FlagE|wire.FlagN, remote4, hostA))
		if n, _ := obs(r); n != 1 {
			t.Errorf("%d observations, want 1 (the echo request)", n)
		}
		if out := drain(r.core); len(out) != 2 {
			t.Errorf("%d re-encapsulated, want 2", len(out))
		}
	})
	t.Run("echo request", func(t *testing.T) {
		r := newRig(t, nil)
		r.fromCore(frame(iidSite, wire.FlagI, remote4, hostA), frame(iidSite, wire.FlagI|wire.FlagE|wire.FlagN, remote4, hostA))
		if n, _ := obs(r); n != 1 {
			t.Errorf("%d observations, want 1 (the echo request)", n)
		}
		if out := drain(r.site); len(out) != 2 {
			t.Errorf("%d delivered, want 2", len(out))
		}
	})
}

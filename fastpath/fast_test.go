package fastpath

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/wire"
)

// TestDelSlot4: deliver's slots of an IPv4 destination's bytes are the
// ones hop (delIndex) uses for the same destination, so both find one
// entry.
func TestDelSlot4(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		k := rnd.Uint32()
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], k)
		if a0, b0 := delIndex(netip.AddrFrom4(a)); a0 != delSlot4(k) || b0 != delAlt4(k) {
			t.Fatalf("%v: delSlot4 %d and delAlt4 %d, delIndex %d and %d", netip.AddrFrom4(a), delSlot4(k), delAlt4(k), a0, b0)
		}
	}
}

// TestInPlaceOrder: frames a batch keeps in place leave after the frames
// their port already had queued. A site frame the general path encapsulates
// (IPv6 inner) is queued on the core port; the core batch's RTR frames then
// take encapFast to the same port and must follow it, as they do when each
// frame is handled alone. Also the other way round: in-place frames first,
// then one sent by the general path (TestBatchMatchesGeneral covers mixes).
func TestInPlaceOrder(t *testing.T) {
	batch, general := newTwins(t)
	rtr := func(n int) []byte {
		in := innerPacket(t, innerSpec{src: hostA, dst: netip.MustParseAddr("10.2.0.1"), sport: uint16(n), payload: 20})
		return lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: 300, nonce: uint32(n), inner: in})
	}
	v6 := siteFrame(t, innerSpec{src: hostA6, dst: remote6, payload: 20})
	v4 := siteFrame(t, innerSpec{src: hostA, dst: remote4, payload: 20})
	runTwins(t, batch, general, [][]byte{v6, rtr(1), rtr(2)}, []bool{false, true, true}, 0)
	runTwins(t, batch, general, [][]byte{v4, v6, v4, rtr(3), rtr(4)}, []bool{false, false, false, true, true}, 1)
	var c Counters
	batch.w.Counters().Snapshot(&c)
	if c.Get(CounterReencap) != 4 || c.Get(CounterEncap) != 4 {
		t.Fatalf("counters %v: want 4 re-encapsulated and 4 encapsulated", c)
	}
}

// TestObserveFields: an observation carries the header's flags, nonce and
// LSBs as wire.Header reads them (8 bits with I, 32 without), the outer
// source and the instance-ID, and a slot that last held a gleaning report
// comes back without its EID.
func TestObserveFields(t *testing.T) {
	r := newRig(t, nil)
	w := r.w
	in := innerPacket(t, innerSpec{src: remote4, dst: hostA, payload: 20})
	rnd := rand.New(rand.NewPCG(5, 6))
	for i := range 200 {
		flags := uint8(rnd.Uint32())&^(wire.FlagV) | wire.FlagN
		iid := uint32(0)
		if flags&wire.FlagI != 0 {
			iid = rnd.Uint32() & wire.MaxInstanceID
		}
		b := lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, flags: flags, iid: iid,
			nonce: rnd.Uint32() & 0xffffff, lsbs: rnd.Uint32(), inner: in})
		if flags&wire.FlagI != 0 {
			b[wire.EthernetLen+wire.IPv4MinLen+wire.UDPLen+7] = byte(rnd.Uint32()) // the LSB byte
		}
		h := wire.Header(b[wire.EthernetLen+wire.IPv4MinLen+wire.UDPLen:])
		if i%3 == 0 { // the slot about to be used held a gleaning report
			o := w.obs.next()
			o.Glean, o.EID = true, hostA
		}
		pk := pktInfo{outerOff: wire.EthernetLen, outerV4: true, iid: iid}
		w.observe(&pk, b, h)
		w.obs.publish()
		var o Observation
		if !w.obs.Pop(&o) {
			t.Fatal("no observation")
		}
		want := Observation{RLOC: rlocRemote4, IID: iid, Flags: h[0], Nonce: h.Nonce(), LSBs: h.LSBs(), Time: w.now}
		if o != want {
			t.Fatalf("header %x: observation %+v, want %+v", h[:wire.HeaderLen], o, want)
		}
	}
}

// TestDelSlotsSpread: the delivery memo gives a site's consecutive
// addresses distinct slots up to half its size, so an ETR delivering to
// 4096 hosts in a row (a /20's worth) keeps each one's next hop (a random
// hash would have about two in five of them share a slot; the RLOC memo's
// byte-reversed hash, taken to 12 bits, fails here).
func TestDelSlotsSpread(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	for i := range 64 {
		k0 := rnd.Uint32()
		if i == 0 {
			k0 = 10<<24 | 1<<16 | 16<<8 // 10.1.16.0, BenchmarkWorker's site hosts
		}
		seen := make(map[uint32]uint32, delSlots/2)
		for k := k0; k != k0+delSlots/2; k++ {
			if j, ok := seen[delSlot4(k)]; ok {
				var a, b [4]byte
				binary.BigEndian.PutUint32(a[:], j)
				binary.BigEndian.PutUint32(b[:], k)
				t.Fatalf("%v and %v take slot %d", netip.AddrFrom4(a), netip.AddrFrom4(b), delSlot4(k))
			}
			seen[delSlot4(k)] = k
		}
	}
}

package fastpath

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestHopSlot4: deliver's slot of an IPv4 destination's bytes is the one
// hop (hopIndex4) uses for the same destination, so both find one entry.
func TestHopSlot4(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		k := rnd.Uint32()
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], k)
		if got, want := hopSlot4(k), hopIndex4(netip.AddrFrom4(a)); got != want {
			t.Fatalf("%v: hopSlot4 %d, hopIndex4 %d", netip.AddrFrom4(a), got, want)
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

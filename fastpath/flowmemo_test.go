package fastpath

import (
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/cache"
)

// TestFlowMemoHopRefilled: a flow memo slot is used only while the
// next-hop memo entry it names still holds what it held when the slot was
// filled (its serial). The entry a flow was sent through is filled again
// for another RLOC, as a template landing on the same slot would: the
// flow's next packet still goes to its own RLOC (looked up again, not a
// flow hit), and the one after is a flow hit again. Without the serial
// check the packet would leave for the other RLOC.
func TestFlowMemoHopRefilled(t *testing.T) {
	r := newRig(t, nil)
	hits := func() uint64 { return r.w.Extra(ExtraFlowHit) }
	if got := outerDst(t, r, hostA, remote4); got != rlocRemote4 {
		t.Fatalf("first packet to %v", got)
	}
	h0 := hits()
	if got := outerDst(t, r, hostA, remote4); got != rlocRemote4 || hits() != h0+1 {
		t.Fatalf("second packet to %v, flow hits %d -> %d, want %v and a hit", got, h0, hits(), rlocRemote4)
	}
	var h *nextHop
	for i := range r.w.hops {
		if r.w.hops[i].dst == rlocRemote4 && r.w.hops[i].tpl != nil {
			h = &r.w.hops[i]
		}
	}
	if h == nil {
		t.Fatal("no next-hop memo entry for the RLOC")
	}
	tpl := r.w.cfg.Outer.BuildTemplate(iidSite, cache.FamilyIPv4, &cache.RLOC{Addr: rlocOther4})
	if tpl == nil {
		t.Fatal("no template for the other RLOC")
	}
	r.w.fillHop(h, rlocOther4, tpl)
	h0 = hits()
	if got := outerDst(t, r, hostA, remote4); got != rlocRemote4 || hits() != h0 {
		t.Fatalf("after the entry was filled for %v: packet to %v, flow hits %d -> %d, want %v and no hit",
			rlocOther4, got, h0, hits(), rlocRemote4)
	}
	if got := outerDst(t, r, hostA, remote4); got != rlocRemote4 || hits() != h0+1 {
		t.Fatalf("next packet to %v, flow hits %d -> %d, want %v and a hit", got, h0, hits(), rlocRemote4)
	}
}

// TestFlowMemoMovesHitToFront: the flow memo's sets keep their flows most
// recent first, as the memo4 sets do (TestMemoMovesHitToFront). In a flow
// memo of one set: after A, B, C, D, a hit on A (the last way) moves it to
// the front, and E then takes the place of B, the least recent. Slots match
// on the selection bucket as well as the destination's key.
func TestFlowMemoMovesHitToFront(t *testing.T) {
	m := newLookupMemo(cache.New(cache.Config{}), 4)
	if len(m.flows) != 1 {
		t.Fatalf("%d flow sets, want 1", len(m.flows))
	}
	s := &m.flows[0]
	key := func(i byte) uint64 { return m.key4(1, [4]byte{10, 0, 0, i}) }
	const hash = 12345
	for i := byte(1); i <= 4; i++ { // A..D, D in front
		fillFlow(s, key(i), hash, i, uint32(i))
	}
	other := hash + 1
	for cache.SelectBucket(uint32(other)) == cache.SelectBucket(hash) {
		other++
	}
	if x := flowLater(s, key(1), uint32(other)); x != nil {
		t.Fatalf("A with another selection bucket matched slot %+v", *x)
	}
	x := flowLater(s, key(1), hash)
	if x == nil || x != &s[0] || x.hop != 1 || x.ser != 1 {
		t.Fatalf("A, in the last way: %+v, want it in front", x)
	}
	fillFlow(s, key(5), hash, 5, 5) // E: evicts the least recent, B
	for i, want := range []byte{5, 1, 4, 3} {
		if s[i].key != key(want) {
			t.Fatalf("way %d holds %#x, want the flow to 10.0.0.%d (%#x)", i, s[i].key, want, key(want))
		}
	}
}

// TestFlowMemoOffWithMemo: with the lookup memo disabled (LookupMemo < 0)
// there is no flow memo either: every packet is looked up in the cache.
func TestFlowMemoOffWithMemo(t *testing.T) {
	r := newRig(t, func(c *Config) { c.LookupMemo = -1 })
	for range 3 {
		if got := outerDst(t, r, hostA, netip.MustParseAddr("10.2.0.7")); got != rlocRemote4 {
			t.Fatalf("packet to %v", got)
		}
	}
	if n := r.w.Extra(ExtraFlowHit); n != 0 {
		t.Fatalf("%d flow hits without a memo", n)
	}
}

package fastpath

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/wire"
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
	if len(m.flows) != 2 { // an IPv4 set, an IPv6 one
		t.Fatalf("%d flow sets, want 2", len(m.flows))
	}
	s := &m.flows[0]
	key := func(i byte) uint64 { return m.key4(1, [4]byte{10, 0, 0, i}) }
	const hash = 12345
	for i := byte(1); i <= 4; i++ { // A..D, D in front
		fillFlow(s, key(i), hash, uint16(i), uint32(i))
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

// TestFlowMemoRTR: packets an RTR re-encapsulates take the flow memo too:
// a flow's first packet is looked up, its next ones are flow hits, for an
// inner IPv4 header without options (coreInner's common case) and with
// them (its general case, through stageProbeCore), and for an inner IPv6
// packet (flowHash6 and stageProbe6). Every packet leaves for the
// mapping's RLOC.
func TestFlowMemoRTR(t *testing.T) {
	r := newRig(t, func(c *Config) { c.RTR = true })
	r.install([]StaticMapping{
		{IID: 300, Prefix: netip.MustParsePrefix("10.30.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocOther4}}},
		{IID: 300, Prefix: netip.MustParsePrefix("2001:db8:30::/48"), RLOCs: []StaticRLOC{{Addr: rlocOther4}}},
	})
	six := innerPacket(t, innerSpec{src: remote6, dst: netip.MustParseAddr("2001:db8:30::1"), ttl: 40, payload: 50})
	plain := innerPacket(t, innerSpec{src: remote4, dst: netip.MustParseAddr("10.30.0.1"), ttl: 40, payload: 50})
	in := innerPacket(t, innerSpec{src: remote4, dst: netip.MustParseAddr("10.30.0.2"), ttl: 40, payload: 50})
	opts := append(append(append([]byte(nil), in[:wire.IPv4MinLen]...), 1, 1, 1, 1), in[wire.IPv4MinLen:]...) // four NOPs
	opts[0] = 0x46
	binary.BigEndian.PutUint16(opts[2:], uint16(len(opts)))
	wire.IPv4(opts).UpdateChecksum()
	if !wire.IPv4(opts).ChecksumValid() {
		t.Fatal("inner header with options: bad checksum")
	}
	for _, tc := range []struct {
		name  string
		inner []byte
	}{{"no options", plain}, {"options", opts}, {"IPv6", six}} {
		for i := range 3 {
			h0 := r.w.Extra(ExtraFlowHit)
			r.fromCore(lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: 300, inner: tc.inner}))
			d := decodeLISP(t, one(t, r.core))
			if got := netip.AddrFrom4([4]byte(d.ip4.DstIP)); got != rlocOther4 || d.lisp.InstanceID() != 300 {
				t.Fatalf("%s, packet %d: re-encapsulated to %v, IID %d", tc.name, i, got, d.lisp.InstanceID())
			}
			if !bytes.Equal(d.raw[len(d.raw)-50:], tc.inner[len(tc.inner)-50:]) {
				t.Fatalf("%s, packet %d: inner payload changed", tc.name, i)
			}
			if got, want := r.w.Extra(ExtraFlowHit)-h0, uint64(min(i, 1)); got != want {
				t.Fatalf("%s, packet %d: %d flow hits, want %d", tc.name, i, got, want)
			}
		}
	}
}

// TestFlowRunTakesLaterWays: flowRun's loop (encapRun) takes a flow memo
// hit in any way of its set, not only the first, and leaves the set most
// recent first: a hit in the second way swaps the first two, one in the
// third or fourth way moves it to the front past the others (flowLater).
// Each batch, two packets of the flow around a frame that parsing drops,
// goes through the run whole (no packet is left to lookupStage), both
// packets leave on the core port, and both count as flow hits.
func TestFlowRunTakesLaterWays(t *testing.T) {
	r := newRig(t, nil)
	frame := siteFrame(t, innerSpec{src: hostA, dst: remote4, ttl: 9, payload: 20, sport: 7})
	r.fromSite(frame) // the first packet teaches the flow memo
	if n := len(drain(r.core)); n != 1 {
		t.Fatalf("first packet: %d frames out", n)
	}
	pool := r.w.ports[0].p.Pool()
	for way := 1; way < len(flowSet{}); way++ {
		// The flow's packets around one that parsing drops (a frame
		// cut short), which the run passes over.
		fs := make([]ring.Frame, 3)
		for i := range fs {
			n := len(frame)
			if i == 1 {
				n = 20
			}
			f, ok := pool.Get()
			if !ok || !f.SetLen(n) {
				t.Fatal("no frame")
			}
			copy(f.Bytes(), frame)
			fs[i] = f
		}
		pks := r.w.pkts[:len(fs)]
		for i := range pks {
			pks[i].act = actParse
		}
		r.w.snap = r.nh.Load()
		r.w.parseSiteRest(pks, fs, 0)
		if pks[0].fset == 0 || pks[1].act != actDone {
			t.Fatalf("no flow memo set for the packet, or the short frame not dropped: %+v", pks[:2])
		}
		s := r.w.memo.flowAt(pks[0].fset)
		flow := s[0]
		if flow.key != pks[0].mkey {
			t.Fatalf("the flow is not in front of its set: %+v", s)
		}
		// Other flows of the set in the other ways, in the order a, b, c
		// before the flow's way.
		var others []flowSlot
		for i := range len(s) - 1 {
			o := flow
			o.key ^= uint64(i+1) << 8 // another destination
			others = append(others, o)
		}
		copy(s[:way], others[:way])
		s[way] = flow
		copy(s[way+1:], others[way:])
		h0 := r.w.memo.flowHits // Extra(ExtraFlowHit) is published at the end of Step
		r.w.beginBatch(fs)
		k := r.w.flowRun(pks, fs, 0)
		r.w.finishBatch()
		if k != len(fs) {
			t.Fatalf("way %d: the run ended at packet %d of %d", way, k, len(fs))
		}
		want := append([]flowSlot{flow}, others...)
		if !slices.Equal(s[:], want) {
			t.Fatalf("way %d: set after the run %+v, want %+v", way, s, want)
		}
		if n := len(drain(r.core)); n != 2 {
			t.Fatalf("way %d: %d frames out, want 2", way, n)
		}
		if d := r.w.memo.flowHits - h0; d != 2 {
			t.Fatalf("way %d: %d flow hits, want 2", way, d)
		}
	}
}

// TestEncapViaGeneralPatchSendsNothing: the first packet of a flow to an
// IPv6 RLOC goes through encapVia, encapRun for the one packet, which
// returns the port and leaves sending to forwardAt: one frame out, with
// an IPv6 outer header, not counted as a flow hit; the flow's next packet
// is one. The packet takes encapLoop's block for IPv6 templates, or, with
// a UDP checksum to compute (a template neither of encapLoop's patches
// finishes), encapFastAny.
func TestEncapViaGeneralPatchSendsNothing(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"loop":         nil,
		"udp-checksum": func(c *Config) { c.Outer.UDPChecksum = true },
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, mod)
			hits := func() uint64 { return r.w.Extra(ExtraFlowHit) }
			h0 := hits()
			if got := outerDst(t, r, hostA, remote4v6); got != rlocRemote6 || hits() != h0 {
				t.Fatalf("first packet to %v, flow hits %d -> %d, want %v and no hit", got, h0, hits(), rlocRemote6)
			}
			if got := outerDst(t, r, hostA, remote4v6); got != rlocRemote6 || hits() != h0+1 {
				t.Fatalf("second packet to %v, flow hits %d -> %d, want %v and a hit", got, h0, hits(), rlocRemote6)
			}
		})
	}
}

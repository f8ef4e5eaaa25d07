package fastpath

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/rloc-router/rloc/wire"
)

// TestDecap delivers LISP packets of each family combination to the site
// with the inner destination's MAC, and checks the inner bytes.
func TestDecap(t *testing.T) {
	cases := []struct {
		name      string
		outer     netip.Addr // our RLOC of the outer family
		peer      netip.Addr
		src, dst  netip.Addr
		wantMAC   [6]byte
		udpChksum bool
	}{
		{"IPv4-in-IPv4", rlocLocal4, rlocRemote4, remote4, hostA, macHostA, false},
		{"IPv6-in-IPv4", rlocLocal4, rlocRemote4, remote6, hostA6, macHost6, false},
		{"IPv4-in-IPv6", rlocLocal6, rlocRemote6, remote4, hostA, macHostA, false},
		{"IPv6-in-IPv6", rlocLocal6, rlocRemote6, remote6, hostA6, macHost6, false},
		{"non-zero UDP checksum", rlocLocal4, rlocRemote4, remote4, hostA, macHostA, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			in := innerPacket(t, innerSpec{src: tc.src, dst: tc.dst, ttl: 50, payload: 64})
			fr := lispFrame(t, lispSpec{src: tc.peer, dst: tc.outer, ttl: 60, iid: iidSite, nonce: 0xabcdef,
				flags: wire.FlagI | wire.FlagN | wire.FlagE, csum: tc.udpChksum, inner: in})
			r.fromCore(fr)
			b := one(t, r.site)
			if !bytes.Equal(b[0:6], tc.wantMAC[:]) || !bytes.Equal(b[6:12], macSite[:]) {
				t.Errorf("Ethernet %x", b[:14])
			}
			p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
			if p.ErrorLayer() != nil || p.Layer(layers.LayerTypeUDP) == nil {
				t.Fatalf("delivered frame does not decode: %v", p)
			}
			if !bytes.Equal(b[14:], in) { // TTL 50 < outer 60: unchanged
				t.Errorf("inner packet changed:\n got %x\nwant %x", b[14:], in)
			}
			c := r.counters()
			if c.Get(CounterDecap) != 1 || c.Get(CounterTX) != 1 || c.DroppedTotal() != 0 {
				t.Errorf("decap %d tx %d dropped %d", c.Get(CounterDecap), c.Get(CounterTX), c.DroppedTotal())
			}
			var o Observation
			if !r.w.Observations().Pop(&o) {
				t.Fatal("no observation recorded")
			}
			if o.RLOC != tc.peer || o.Nonce != 0xabcdef || o.IID != iidSite || o.Flags&wire.FlagE == 0 {
				t.Errorf("observation %+v", o)
			}
		})
	}
}

// TestDecapTTLECN checks TTL = min(outer, inner) and the RFC 6040 §4.2 table.
func TestDecapTTLECN(t *testing.T) {
	cases := []struct {
		outerTTL, innerTTL uint8
		outerECN, innerECN uint8
		wantTTL, wantECN   uint8
		drop               DropReason // dropNone: delivered
		ecnDrop            bool
	}{
		{60, 50, 0, 0, 50, 0, dropNone, false},
		{7, 50, 0, 0, 7, 0, dropNone, false},
		{1, 50, 0, 0, 1, 0, dropNone, false},
		{0, 50, 0, 0, 0, 0, DropTTLExpired, false},
		{60, 50, wire.ECNNotECT, wire.ECNCE, 50, wire.ECNCE, dropNone, false}, // a Not-ECT outer header leaves the inner ECN field as it is
		{9, 50, wire.ECNNotECT, wire.ECNECT1, 9, wire.ECNECT1, dropNone, false},
		{60, 50, wire.ECNCE, wire.ECNECT0, 50, wire.ECNCE, dropNone, false},
		{60, 50, wire.ECNECT1, wire.ECNECT0, 50, wire.ECNECT1, dropNone, false},
		{60, 50, wire.ECNECT0, wire.ECNCE, 50, wire.ECNCE, dropNone, false},
		{60, 50, wire.ECNCE, wire.ECNNotECT, 0, 0, dropNone, true},
	}
	// warm: a plain packet to the same destination first, so that the
	// case's packet finds the instance-ID and the next hop remembered
	// (deliverFast) instead of filling them (deliverAt).
	for _, warm := range []bool{false, true} {
		for _, v6 := range []bool{false, true} {
			for i, tc := range cases {
				r := newRig(t, nil)
				src, dst := remote4, hostA
				if v6 {
					src, dst = remote6, hostA6
				}
				in := innerPacket(t, innerSpec{src: src, dst: dst, ttl: tc.innerTTL, tos: 0xa0 | tc.innerECN, payload: 10})
				if warm {
					r.fromCore(lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, ttl: 64, iid: iidSite,
						inner: innerPacket(t, innerSpec{src: src, dst: dst, ttl: 64, payload: 10})}))
					if out := drain(r.site); len(out) != 1 {
						t.Fatalf("v6=%v case %d: warm-up packet: %d frames", v6, i, len(out))
					}
				}
				before := r.counters()
				r.fromCore(lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, ttl: tc.outerTTL, zeroTTL: tc.outerTTL == 0,
					tos: 0x28 | tc.outerECN, iid: iidSite, inner: in}))
				out := drain(r.site)
				switch {
				case tc.ecnDrop:
					if len(out) != 0 || r.w.Extra(ExtraECNDrop) != 1 {
						t.Errorf("v6=%v case %d: want ECN drop, got %d frames, ecn-drop %d", v6, i, len(out), r.w.Extra(ExtraECNDrop))
					}
				case tc.drop != dropNone:
					if len(out) != 0 {
						t.Errorf("v6=%v case %d: delivered", v6, i)
					}
					expectDrop(t, before, r.counters(), tc.drop)
				default:
					if len(out) != 1 {
						t.Fatalf("v6=%v case %d: %d frames", v6, i, len(out))
					}
					ip := out[0][14:]
					ttl, tos, _ := wire.IPTTLAndTOS(ip)
					if ttl != tc.wantTTL || tos != 0xa0|tc.wantECN {
						t.Errorf("v6=%v case %d: TTL/TOS %d/%#x, want %d/%#x", v6, i, ttl, tos, tc.wantTTL, 0xa0|tc.wantECN)
					}
					if !v6 && !wire.IPv4(ip).ChecksumValid() {
						t.Errorf("case %d: inner IPv4 checksum not updated", i)
					}
				}
			}
		}
	}
}

// TestDecapRejects: wrong instance-ID, not our RLOC, not port 4341.
func TestDecapRejects(t *testing.T) {
	in := innerPacket(t, innerSpec{src: remote4, dst: hostA, payload: 10})
	cases := []struct {
		name string
		s    lispSpec
		want DropReason
	}{
		{"wrong IID", lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: 999, inner: in}, DropWrongIID},
		{"no IID bit (IID 0)", lispSpec{src: rlocRemote4, dst: rlocLocal4, flags: wire.FlagN, inner: in}, DropWrongIID},
		{"not our RLOC", lispSpec{src: rlocRemote4, dst: rlocOther4, iid: iidSite, inner: in}, DropNotOurRLOC},
		{"not our RLOC v6", lispSpec{src: rlocRemote6, dst: rlocRemote6, iid: iidSite, inner: in}, DropNotOurRLOC},
		{"port 4342", lispSpec{src: rlocRemote4, dst: rlocLocal4, dport: 4342, iid: iidSite, inner: in}, DropNotOurRLOC},
		{"N and V", lispSpec{src: rlocRemote4, dst: rlocLocal4, flags: wire.FlagI | wire.FlagN | wire.FlagV, iid: iidSite, inner: in}, DropBadLISP},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			before := r.counters()
			r.fromCore(lispFrame(t, tc.s))
			expectDrop(t, before, r.counters(), tc.want)
			if n := len(drain(r.site)) + len(drain(r.core)); n != 0 {
				t.Errorf("%d frames sent", n)
			}
		})
	}
}

// TestRTR re-encapsulates a packet for an instance-ID no site port serves.
func TestRTR(t *testing.T) {
	r := newRig(t, func(c *Config) { c.RTR = true })
	r.install([]StaticMapping{{IID: 300, Prefix: netip.MustParsePrefix("10.30.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocOther4}}}})
	in := innerPacket(t, innerSpec{src: remote4, dst: netip.MustParseAddr("10.30.0.1"), ttl: 40, tos: wire.ECNECT0, payload: 50})
	r.fromCore(lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, ttl: 20, tos: wire.ECNCE, iid: 300, inner: in}))
	d := decodeLISP(t, one(t, r.core))
	if netip.AddrFrom4([4]byte(d.ip4.DstIP)) != rlocOther4 || netip.AddrFrom4([4]byte(d.ip4.SrcIP)) != rlocLocal4 {
		t.Errorf("re-encap %v -> %v", d.ip4.SrcIP, d.ip4.DstIP)
	}
	if d.lisp.InstanceID() != 300 {
		t.Errorf("IID %d", d.lisp.InstanceID())
	}
	// Inner TTL: min(20, 40) - 1; ECN: outer CE over ECT(0) → CE, copied out.
	ttl, tos, _ := wire.IPTTLAndTOS(d.raw)
	if ttl != 19 || tos&3 != wire.ECNCE || d.ip4.TTL != 19 || d.ip4.TOS&3 != wire.ECNCE {
		t.Errorf("inner TTL/TOS %d/%#x outer %d/%#x", ttl, tos, d.ip4.TTL, d.ip4.TOS)
	}
	if !wire.IPv4(d.raw).ChecksumValid() {
		t.Error("inner checksum")
	}
	if !bytes.Equal(d.raw[20:], in[20:]) {
		t.Error("inner payload changed")
	}
	c := r.counters()
	if c.Get(CounterReencap) != 1 || c.Get(CounterEncap) != 0 || c.DroppedTotal() != 0 {
		t.Errorf("reencap %d encap %d dropped %d", c.Get(CounterReencap), c.Get(CounterEncap), c.DroppedTotal())
	}
	// A miss in the RTR is held and re-processed on release.
	in2 := innerPacket(t, innerSpec{src: remote4, dst: netip.MustParseAddr("10.31.0.1"), ttl: 40, payload: 5})
	r.fromCore(lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: 300, inner: in2}))
	if n := len(drain(r.core)); n != 0 {
		t.Fatalf("%d frames before the mapping", n)
	}
	p := netip.MustParsePrefix("10.31.0.0/16")
	r.install([]StaticMapping{{IID: 300, Prefix: p, RLOCs: []StaticRLOC{{Addr: rlocRemote4}}}})
	r.w.Releases().Push(Release{IID: 300, Prefix: p})
	r.w.Step()
	d = decodeLISP(t, one(t, r.core))
	if netip.AddrFrom4([4]byte(d.ip4.DstIP)) != rlocRemote4 || !bytes.Equal(d.raw[20:], in2[20:]) {
		t.Errorf("released RTR packet to %v", d.ip4.DstIP)
	}
	// TTL 1 inside cannot be re-encapsulated.
	before := r.counters()
	in3 := innerPacket(t, innerSpec{src: remote4, dst: netip.MustParseAddr("10.30.0.1"), ttl: 1, payload: 5})
	r.fromCore(lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: 300, inner: in3}))
	expectDrop(t, before, r.counters(), DropTTLExpired)
}

// TestObservationRingConcurrent: a consumer on another goroutine sees every
// published observation once, in order, while the producer keeps writing
// (and loses, counted, what does not fit).
func TestObservationRingConcurrent(t *testing.T) {
	r := newObservationRing(16)
	const n = 200000
	done := make(chan struct{})
	var got, lost uint64
	go func() {
		defer close(done)
		var o Observation
		last := int64(-1)
		for {
			if r.Pop(&o) {
				if o.Time <= last || uint32(o.Time) != o.Nonce {
					t.Errorf("observation %d after %d (nonce %d)", o.Time, last, o.Nonce)
					return
				}
				last = o.Time
				got++
				if last == n-1 {
					return
				}
			}
		}
	}()
	for i := int64(0); i < n; i++ {
		o := r.next()
		for o == nil && i == n-1 { // the last one must get through
			r.publish()
			o = r.next()
		}
		if o == nil {
			lost++
		} else {
			*o = Observation{Time: i, Nonce: uint32(i)}
			r.commit()
		}
		if i%8 == 0 || i == n-1 {
			r.publish()
		}
	}
	<-done
	if got+lost != n || got == 0 {
		t.Errorf("got %d + lost %d != %d", got, lost, n)
	}
}

// TestObserveWhenNeeded: a delivered packet is reported to the slow path
// when its LISP header has E (an echo request) or L (LSBs); one with only a
// nonce is reported only while the ring watches nonces. The same over the
// IPv6 underlay, whose packets the batch delivers in deliver4 too, and
// for packets an RTR re-encapsulates (coreInner4's and coreNot4's case).
func TestObserveWhenNeeded(t *testing.T) {
	for _, under := range [][2]netip.Addr{{rlocRemote4, rlocLocal4}, {rlocRemote6, rlocLocal6}} {
		for _, rtr := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/rtr=%v", under[0], rtr), func(t *testing.T) { observeWhenNeeded(t, under[0], under[1], rtr) })
		}
	}
}

func observeWhenNeeded(t *testing.T, from, to netip.Addr, rtr bool) {
	r := newRig(t, func(c *Config) { c.RTR = rtr })
	iid, out := uint32(iidSite), r.site
	if rtr { // an instance-ID no site port serves: re-encapsulated to rlocRemote4
		iid, out = 300, r.core
		r.install([]StaticMapping{{IID: 300, Prefix: netip.MustParsePrefix("10.1.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocRemote4, Weight: 1}}}})
	}
	obs := r.w.Observations()
	in := innerPacket(t, innerSpec{src: remote4, dst: hostA, ttl: 50, payload: 32})
	cases := []struct {
		flags uint8
		watch bool
		want  bool
	}{
		{wire.FlagI | wire.FlagN, false, false},
		{wire.FlagI, false, false},
		{wire.FlagI | wire.FlagN | wire.FlagE, false, true},
		{wire.FlagI | wire.FlagL, false, true},
		{wire.FlagI | wire.FlagN | wire.FlagL, false, true},
		{wire.FlagI | wire.FlagN, true, true},
		{wire.FlagI, true, false},
		{wire.FlagI | wire.FlagN, false, false}, // watching turned off again
	}
	for i, tc := range cases {
		obs.WatchNonces(tc.watch)
		r.fromCore(lispFrame(t, lispSpec{src: from, dst: to, ttl: 60, iid: iid,
			flags: tc.flags, nonce: 0x100 + uint32(i), lsbs: 3, inner: in}))
		if len(drain(out)) != 1 {
			t.Fatalf("case %d: packet not sent on", i)
		}
		var o Observation
		got := obs.Pop(&o)
		if got != tc.want {
			t.Fatalf("case %d (flags %#x, watching %v): reported %v, want %v", i, tc.flags, tc.watch, got, tc.want)
		}
		if got && (o.Flags != tc.flags || o.RLOC != from || o.IID != iid ||
			tc.flags&wire.FlagN != 0 && o.Nonce != 0x100+uint32(i)) {
			t.Errorf("case %d: observation %+v", i, o)
		}
		if obs.Pop(&o) {
			t.Fatalf("case %d: a second observation %+v", i, o)
		}
	}
}

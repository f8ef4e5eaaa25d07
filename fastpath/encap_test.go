package fastpath

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/wire"
)

// TestEncapFamilies sends one packet of each inner family to an RLOC of each
// outer family and checks the whole encapsulated frame.
func TestEncapFamilies(t *testing.T) {
	cases := []struct {
		name      string
		src, dst  netip.Addr
		rloc      netip.Addr
		outerIsV4 bool
	}{
		{"IPv4-in-IPv4", hostA, remote4, rlocRemote4, true},
		{"IPv6-in-IPv4", hostA6, remote6, rlocRemote4, true},
		{"IPv4-in-IPv6", hostA, remote4v6, rlocRemote6, false},
		{"IPv6-in-IPv6", hostA6, remote6v6, rlocRemote6, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			spec := innerSpec{src: tc.src, dst: tc.dst, ttl: 33, tos: 0xb9, payload: 100, sport: 4242}
			in := innerPacket(t, spec)
			wantHash := wire.FlowHash(in, 0)
			r.fromSite(siteFrame(t, spec))
			d := decodeLISP(t, one(t, r.core))
			if !bytes.Equal(d.eth.DstMAC, macUnderGW[:]) || !bytes.Equal(d.eth.SrcMAC, macCore[:]) {
				t.Errorf("Ethernet %v -> %v", d.eth.SrcMAC, d.eth.DstMAC)
			}
			var outerTTL, outerTOS uint8
			var osrc, odst netip.Addr
			if tc.outerIsV4 {
				if d.ip4 == nil {
					t.Fatal("outer is not IPv4")
				}
				osrc, odst = netip.AddrFrom4([4]byte(d.ip4.SrcIP)), netip.AddrFrom4([4]byte(d.ip4.DstIP))
				outerTTL, outerTOS = d.ip4.TTL, d.ip4.TOS
				hdr := d.ip4.Contents
				if wire.Checksum(hdr, 0) != 0xffff {
					t.Error("outer IPv4 checksum wrong")
				}
				if int(d.ip4.Length) != wire.OuterIPv4Len+len(in) {
					t.Errorf("outer total length %d, want %d", d.ip4.Length, wire.OuterIPv4Len+len(in))
				}
			} else {
				if d.ip6 == nil {
					t.Fatal("outer is not IPv6")
				}
				osrc, odst = netip.AddrFrom16([16]byte(d.ip6.SrcIP)), netip.AddrFrom16([16]byte(d.ip6.DstIP))
				outerTTL, outerTOS = d.ip6.HopLimit, d.ip6.TrafficClass
				if d.ip6.FlowLabel != wantHash&0xfffff {
					t.Errorf("flow label %#x, want %#x", d.ip6.FlowLabel, wantHash&0xfffff)
				}
			}
			wantSrc := rlocLocal4
			if !tc.outerIsV4 {
				wantSrc = rlocLocal6
			}
			if osrc != wantSrc || odst != tc.rloc {
				t.Errorf("outer %v -> %v, want %v -> %v", osrc, odst, wantSrc, tc.rloc)
			}
			// RFC 9300 §5.3: outer TTL from the inner (after this router's
			// decrement), DSCP and ECN copied (RFC 6040 normal mode).
			if outerTTL != 32 || outerTOS != 0xb9 {
				t.Errorf("outer TTL/TOS %d/%#x, want 32/0xb9", outerTTL, outerTOS)
			}
			if d.udp.SrcPort != layers.UDPPort(wire.SourcePort(wantHash)) {
				t.Errorf("UDP source port %d, want %d", d.udp.SrcPort, wire.SourcePort(wantHash))
			}
			if d.udp.Checksum != 0 {
				t.Errorf("UDP checksum %#x, want 0", d.udp.Checksum)
			}
			if int(d.udp.Length) != wire.UDPLen+wire.HeaderLen+len(in) {
				t.Errorf("UDP length %d", d.udp.Length)
			}
			if f := d.lisp.Flags(); f != wire.FlagI|wire.FlagN {
				t.Errorf("LISP flags %#x, want I|N", f)
			}
			if d.lisp.InstanceID() != iidSite {
				t.Errorf("IID %d, want %d", d.lisp.InstanceID(), iidSite)
			}
			// Inner: unchanged but for the TTL decrement (and checksum).
			want := append([]byte(nil), in...)
			if tc.src.Is4() {
				want[8]--
				wire.IPv4(want).UpdateChecksum()
			} else {
				want[7]--
			}
			if !bytes.Equal(d.raw, want) {
				t.Errorf("inner packet differs:\n got %x\nwant %x", d.raw, want)
			}
			c := r.counters()
			if c.Get(CounterEncap) != 1 || c.Get(CounterRX) != 1 || c.Get(CounterTX) != 1 || c.DroppedTotal() != 0 {
				t.Errorf("counters rx %d tx %d encap %d dropped %d", c.Get(CounterRX), c.Get(CounterTX),
					c.Get(CounterEncap), c.DroppedTotal())
			}
		})
	}
}

// TestEncapNonceLSBs checks the N and L options of the template.
func TestEncapNonceLSBs(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.Outer = OuterConfig{RLOC4: rlocLocal4, LSBs: true, LSBValue: 0x5}
	})
	spec := innerSpec{src: hostA, dst: remote4, payload: 10}
	r.fromSite(siteFrame(t, spec), siteFrame(t, spec))
	for _, b := range drain(r.core) {
		d := decodeLISP(t, b)
		if d.lisp.Flags() != wire.FlagI|wire.FlagL || d.lisp.LSBs() != 5 || d.lisp.Nonce() != 0 {
			t.Errorf("LISP header %x", []byte(d.lisp))
		}
	}
	// With nonces, consecutive packets carry different ones.
	r = newRig(t, nil)
	r.fromSite(siteFrame(t, spec), siteFrame(t, spec))
	fs := drain(r.core)
	if len(fs) != 2 {
		t.Fatalf("%d frames", len(fs))
	}
	if n0, n1 := decodeLISP(t, fs[0]).lisp.Nonce(), decodeLISP(t, fs[1]).lisp.Nonce(); n0 == n1 {
		t.Errorf("two packets with nonce %#x", n0)
	}
}

// TestInstanceIDs runs two site ports with different instance-IDs and the
// same EID prefix mapped to different RLOCs.
func TestInstanceIDs(t *testing.T) {
	r2, w2 := memPair(t)
	r := newRig(t, func(c *Config) {
		c.Ports = append(c.Ports, PortConfig{Port: w2, Index: 3, Site: true, IID: 200})
	})
	r.install([]StaticMapping{
		{IID: 200, Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocOther4}}},
	})
	spec := innerSpec{src: hostA, dst: remote4, payload: 20}
	if !r2.Inject(siteFrame(t, spec)) {
		t.Fatal("inject")
	}
	r.fromSite(siteFrame(t, spec))
	got := map[uint32]netip.Addr{}
	for _, b := range drain(r.core) {
		d := decodeLISP(t, b)
		got[d.lisp.InstanceID()] = netip.AddrFrom4([4]byte(d.ip4.DstIP))
	}
	if got[iidSite] != rlocRemote4 || got[200] != rlocOther4 || len(got) != 2 {
		t.Errorf("IID → RLOC: %v", got)
	}
}

// TestWeightedSelection sends many flows to an EID with RLOCs weighted 1:3
// and checks the split and that a flow keeps its RLOC, with the default
// memo and with one of a single set, where the flow memo holds flows of
// the destination in other selection buckets in the same set (a slot
// matched on the destination alone would move flows).
func TestWeightedSelection(t *testing.T) {
	t.Run("default-memo", func(t *testing.T) { weightedSelection(t, 0) })
	t.Run("one-set-memo", func(t *testing.T) { weightedSelection(t, 4) })
}

// weightedSelection is TestWeightedSelection with Config.LookupMemo memo.
func weightedSelection(t *testing.T, memo int) {
	r := newRig(t, func(c *Config) { c.LookupMemo = memo })
	r.install([]StaticMapping{{IID: iidSite, Prefix: netip.MustParsePrefix("10.7.0.0/16"), RLOCs: []StaticRLOC{
		{Addr: rlocRemote4, Weight: 25}, {Addr: rlocOther4, Weight: 75},
		{Addr: rlocRemote6, Priority: 2, Weight: 100}, // less preferred: never used
	}}})
	const flows = 4000
	count := map[netip.Addr]int{}
	byFlow := map[uint16]netip.Addr{}
	for round := 0; round < 2; round++ {
		for i := 0; i < flows; i += 50 {
			var fs [][]byte
			for j := i; j < i+50; j++ {
				fs = append(fs, siteFrame(t, innerSpec{src: hostA, dst: netip.MustParseAddr("10.7.1.1"), sport: uint16(10000 + j), payload: 4}))
			}
			r.fromSite(fs...)
			for _, b := range drain(r.core) {
				d := decodeLISP(t, b)
				dst := netip.AddrFrom4([4]byte(d.ip4.DstIP))
				sport := binary.BigEndian.Uint16(d.raw[20:])
				if prev, ok := byFlow[sport]; ok && prev != dst {
					t.Fatalf("flow %d moved from %v to %v", sport, prev, dst)
				}
				byFlow[sport] = dst
				if round == 0 {
					count[dst]++
				}
			}
		}
	}
	if count[rlocRemote6] != 0 || count[rlocRemote4]+count[rlocOther4] != flows {
		t.Fatalf("split %v", count)
	}
	// With the default memo the second round's flows were sent through
	// the flow memo (one slot per selection bucket): it kept every flow on
	// its RLOC too. A single set still hits now and then.
	want := uint64(flows)
	if memo == 4 {
		want = 1
	}
	if n := r.w.Extra(ExtraFlowHit); n < want {
		t.Fatalf("%d flow memo hits over two rounds of %d flows, want at least %d", n, flows, want)
	}
	// Expect 1000 : 3000; allow ±15% of 1000 (far beyond the binomial sd of 27).
	if n := count[rlocRemote4]; n < 850 || n > 1150 {
		t.Errorf("weight-25 RLOC got %d of %d flows, want about 1000", n, flows)
	}
}

// TestNegativeActions covers every negative action.
func TestNegativeActions(t *testing.T) {
	neg := func(p string, a wire.Action) StaticMapping {
		return StaticMapping{IID: iidSite, Prefix: netip.MustParsePrefix(p), Action: a}
	}
	ms := []StaticMapping{
		neg("198.51.100.0/24", wire.ActionNativelyForward),
		neg("198.51.101.0/24", wire.ActionNoAction),
		neg("198.51.102.0/24", wire.ActionDrop),
		neg("198.51.103.0/24", wire.ActionDropPolicyDenied),
		neg("198.51.104.0/24", wire.ActionDropAuthFailure),
		neg("198.51.105.0/24", wire.ActionSendMapRequest),
	}
	t.Run("native", func(t *testing.T) {
		r := newRig(t, nil)
		r.install(ms)
		for _, dst := range []string{"198.51.100.9", "198.51.101.9"} {
			spec := innerSpec{src: hostA, dst: netip.MustParseAddr(dst), ttl: 9, payload: 30}
			in := innerPacket(t, spec)
			r.fromSite(siteFrame(t, spec))
			b := one(t, r.core)
			if !bytes.Equal(b[:6], macUnderGW[:]) || !bytes.Equal(b[6:12], macCore[:]) {
				t.Errorf("%s: Ethernet %x", dst, b[:14])
			}
			want := append([]byte(nil), in...)
			want[8]--
			wire.IPv4(want).UpdateChecksum()
			if !bytes.Equal(b[14:], want) {
				t.Errorf("%s: natively forwarded packet\n got %x\nwant %x", dst, b[14:], want)
			}
		}
	})
	t.Run("petr", func(t *testing.T) {
		petr := netip.MustParseAddr("192.0.2.99")
		r := newRig(t, func(c *Config) { c.Negative = NegativePETR; c.PETR4 = petr })
		r.install(ms)
		r.nh.Store(nexthop.NewSnapshot(
			[]nexthop.Link{{Index: 10, MAC: macSite, Port: 1, Up: true}, {Index: 20, MAC: macCore, Port: 2, Up: true}},
			[]nexthop.Route{{Prefix: netip.MustParsePrefix("192.0.2.0/24"), IfIndex: 20}},
			[]nexthop.Neighbour{{Addr: petr, IfIndex: 20, MAC: macUnderGW, Valid: true}}))
		spec := innerSpec{src: hostA, dst: netip.MustParseAddr("198.51.100.9"), payload: 30}
		r.fromSite(siteFrame(t, spec))
		d := decodeLISP(t, one(t, r.core))
		if netip.AddrFrom4([4]byte(d.ip4.DstIP)) != petr || d.lisp.InstanceID() != iidSite {
			t.Errorf("PETR encap to %v iid %d", d.ip4.DstIP, d.lisp.InstanceID())
		}
	})
	t.Run("drop", func(t *testing.T) {
		r := newRig(t, nil)
		r.install(ms)
		for _, dst := range []string{"198.51.102.1", "198.51.103.1", "198.51.104.1"} {
			before := r.counters()
			r.fromSite(siteFrame(t, innerSpec{src: hostA, dst: netip.MustParseAddr(dst), payload: 1}))
			expectDrop(t, before, r.counters(), DropNegative)
		}
		if n := len(drain(r.core)); n != 0 {
			t.Errorf("%d frames sent", n)
		}
	})
	t.Run("send-map-request", func(t *testing.T) {
		r := newRig(t, nil)
		r.install(ms)
		r.fromSite(siteFrame(t, innerSpec{src: hostA, dst: netip.MustParseAddr("198.51.105.1"), payload: 1}))
		var ev MissEvent
		if !r.w.Misses().Pop(&ev) || ev.Dst != netip.MustParseAddr("198.51.105.1") || ev.IID != iidSite {
			t.Errorf("miss event %+v", ev)
		}
		if c := r.counters(); c.Get(CounterMiss) != 1 || c.Get(CounterHeld) != 1 {
			t.Errorf("miss %d held %d", c.Get(CounterMiss), c.Get(CounterHeld))
		}
	})
}

// TestMissHoldRelease: the first packets to an unknown EID are held, one
// MissEvent goes out, and after the mapping is installed and released the
// packets leave encapsulated, in order.
func TestMissHoldRelease(t *testing.T) {
	r := newRig(t, nil)
	dst := netip.MustParseAddr("10.9.0.1")
	var fs [][]byte
	for i := 0; i < 5; i++ {
		fs = append(fs, siteFrame(t, innerSpec{src: hostA, dst: dst, payload: 8, seq: byte(i * 10)}))
	}
	r.fromSite(fs[:3]...)
	r.fromSite(fs[3:]...)
	if n := len(drain(r.core)); n != 0 {
		t.Fatalf("%d frames sent before the mapping exists", n)
	}
	var ev MissEvent
	if !r.w.Misses().Pop(&ev) || ev.Dst != dst || ev.Src != hostA || ev.IID != iidSite || ev.Worker != 1 {
		t.Fatalf("miss event %+v", ev)
	}
	if r.w.Misses().Pop(&ev) {
		t.Errorf("second MissEvent within the retry interval: %+v", ev)
	}
	p := netip.MustParsePrefix("10.9.0.0/16")
	r.install([]StaticMapping{{IID: iidSite, Prefix: p, RLOCs: []StaticRLOC{{Addr: rlocOther4}}}})
	if !r.w.Releases().Push(Release{IID: iidSite, Prefix: p}) {
		t.Fatal("release queue full")
	}
	r.w.Step()
	out := drain(r.core)
	if len(out) != 5 {
		t.Fatalf("released %d packets, want 5", len(out))
	}
	for i, b := range out {
		d := decodeLISP(t, b)
		if netip.AddrFrom4([4]byte(d.ip4.DstIP)) != rlocOther4 {
			t.Errorf("packet %d to %v", i, d.ip4.DstIP)
		}
		if seq := d.raw[28]; seq != byte(i*10) {
			t.Errorf("packet %d carries seq %d: out of order", i, seq)
		}
	}
	c := r.counters()
	if c.Get(CounterMiss) != 5 || c.Get(CounterHeld) != 5 || c.Get(CounterReleased) != 5 || c.Get(CounterEncap) != 5 {
		t.Errorf("miss %d held %d released %d encap %d", c.Get(CounterMiss), c.Get(CounterHeld),
			c.Get(CounterReleased), c.Get(CounterEncap))
	}
}

// TestTTLExpiredAtITR: an inner TTL of 1 cannot be forwarded.
func TestTTLExpiredAtITR(t *testing.T) {
	r := newRig(t, nil)
	for _, s := range []innerSpec{{src: hostA, dst: remote4, ttl: 1}, {src: hostA6, dst: remote6, ttl: 1}} {
		before := r.counters()
		r.fromSite(siteFrame(t, s))
		expectDrop(t, before, r.counters(), DropTTLExpired)
	}
}

// TestNativeHopFromMemo: a natively forwarded packet's next hop comes from
// the worker's next-hop memo (outerHop), as a delivery's does: it follows a
// new snapshot's gateway MAC, and a gateway only native traffic goes
// through is noted as used for the kernel's neighbour table. Through the
// old per-worker nexthop.Cache it was never noted.
func TestNativeHopFromMemo(t *testing.T) {
	r := newRig(t, nil)
	r.install([]StaticMapping{{IID: iidSite, Prefix: netip.MustParsePrefix("198.51.100.0/24"), Action: wire.ActionNativelyForward}})
	send := func(what string, mac [6]byte) {
		t.Helper()
		for i := range 200 {
			r.fromSite(siteFrame(t, innerSpec{src: hostA, dst: netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + i)}), ttl: 9, payload: 30}))
			if b := one(t, r.core); [6]byte(b[:6]) != mac {
				t.Fatalf("%s, packet %d: to MAC %x, want %x", what, i, b[:6], mac)
			}
		}
	}
	send("first", macUnderGW)
	r.w.usedAt = 0 // a note is due
	r.w.Step()
	if got, want := r.w.UsedNextHops(nil), []nexthop.LinkDest{{IfIndex: 20, MAC: macUnderGW}}; !slices.Equal(got, want) {
		t.Fatalf("noted %v, want the gateway %v", got, want)
	}
	macNew := [6]byte{0x02, 0, 0, 0, 0, 0x79}
	r.nh.Store(nextHopsWith(func(ns []nexthop.Neighbour) []nexthop.Neighbour {
		for i := range ns {
			if ns[i].Addr == gw4 {
				ns[i].MAC = macNew
			}
		}
		return ns
	}))
	send("after the gateway's MAC changed", macNew)
}

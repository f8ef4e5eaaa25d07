package fastpath

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/ring/xsk"
	"github.com/rloc-router/rloc/wire"
)

// fakeReencap is a ring.ReencapTable in memory.
type fakeReencap struct {
	epoch, seed uint32
	puts        []ring.ReencapEntry
	entries     map[offloadKey]*fakeReencapEntry
}

type fakeReencapEntry struct {
	e    ring.ReencapEntry
	hits uint64
}

func newFakeReencap() *fakeReencap {
	return &fakeReencap{entries: map[offloadKey]*fakeReencapEntry{}}
}

// reencapKeyOf is e's flow and outer version.
func reencapKeyOf(e *ring.ReencapEntry) offloadKey {
	k := keyOf(&e.OffloadEntry)
	k.iid, k.over6 = e.IID, e.Over6
	return k
}

func (f *fakeReencap) PutReencap(e *ring.ReencapEntry) error {
	f.puts = append(f.puts, *e)
	f.entries[reencapKeyOf(e)] = &fakeReencapEntry{e: *e}
	return nil
}

func (f *fakeReencap) DeleteReencap(e *ring.ReencapEntry) error {
	delete(f.entries, reencapKeyOf(e))
	return nil
}

func (f *fakeReencap) SetReencap(epoch, seed uint32) error {
	f.epoch, f.seed = epoch, seed
	return nil
}

func (f *fakeReencap) SweepReencap(keep func(e *ring.ReencapEntry, hits uint64) bool) (int, error) {
	return sweepFake(f.entries, func(_ offloadKey, e *fakeReencapEntry) bool { return keep(&e.e, e.hits) }, nil), nil
}

func (f *fakeReencap) ListReencap(fn func(e *ring.ReencapEntry, hits uint64) bool) error {
	for _, e := range f.entries {
		if !fn(&e.e, e.hits) {
			break
		}
	}
	return nil
}

// iidRTR is the instance-ID of the flows the RTR rigs re-encapsulate: no
// site port serves it.
const iidRTR = 300

var (
	rtrDst4  = netip.MustParseAddr("10.30.0.1")      // behind rlocOther4
	rtrDst6  = netip.MustParseAddr("10.31.0.1")      // behind rlocRemote6
	rtrEID6  = netip.MustParseAddr("2001:db8:30::1") // an IPv6 EID behind rlocOther4
	rtrEID66 = netip.MustParseAddr("2001:db8:31::1") // an IPv6 EID behind rlocRemote6
)

// reencapRig is an RTR rig whose core port (interface 7) hands the flows it
// re-encapsulates to table t; instance-ID iidRTR maps 10.30.0.0/16 and
// 2001:db8:30::/48 to rlocOther4, 10.31.0.0/16 and 2001:db8:31::/48 to
// rlocRemote6. The functions more change the worker's configuration
// further, with the offload at hand.
func reencapRig(t testing.TB, table ring.ReencapTable, more ...func(*Config, *Offload)) (*rig, *Offload) {
	t.Helper()
	off := NewOffload(0)
	if err := off.AddReencap(table); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(c *Config) {
		c.RTR = true
		c.Offload = off
		c.Ports[1].Reencap = table
		c.Ports[1].Ifindex = 7
		for _, f := range more {
			f(c, off)
		}
	})
	r.install([]StaticMapping{
		{IID: iidRTR, Prefix: netip.MustParsePrefix("10.30.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocOther4}}},
		{IID: iidRTR, Prefix: netip.MustParsePrefix("10.31.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocRemote6}}},
		{IID: iidRTR, Prefix: netip.MustParsePrefix("2001:db8:30::/48"), RLOCs: []StaticRLOC{{Addr: rlocOther4}}},
		{IID: iidRTR, Prefix: netip.MustParsePrefix("2001:db8:31::/48"), RLOCs: []StaticRLOC{{Addr: rlocRemote6}}},
	})
	return r, off
}

// rtrFrame is a LISP packet from rlocRemote4 to our IPv4 RLOC in
// instance-ID iidRTR (flags: wire.FlagI|wire.FlagN when 0), carrying a UDP
// packet from remote4 to dst with TTL innerTTL, outer TTL outerTTL.
func rtrFrame(t testing.TB, dst netip.Addr, outerTTL, innerTTL, flags uint8) []byte {
	return lispFrame(t, rtrSpec(t, false, dst, outerTTL, innerTTL, flags, 40))
}

// rtrSpec is rtrFrame's packet with payload bytes of inner payload, from
// rlocRemote6 to our IPv6 RLOC with over6 (outerTTL its hop limit); an
// IPv6 packet from remote6 when dst is an IPv6 EID.
func rtrSpec(t testing.TB, over6 bool, dst netip.Addr, outerTTL, innerTTL, flags uint8, payload int) lispSpec {
	src := remote4
	if dst.Is6() {
		src = remote6
	}
	s := lispSpec{src: rlocRemote4, dst: rlocLocal4, ttl: outerTTL, zeroTTL: outerTTL == 0, flags: flags, iid: iidRTR, nonce: 0x123456,
		inner: innerPacket(t, innerSpec{src: src, dst: dst, ttl: innerTTL, payload: payload, sport: 5, dport: 6})}
	if over6 {
		s.src, s.dst = rlocRemote6, rlocLocal6
	}
	return s
}

// reencapOne sends frame in on r's core port and returns the one frame the
// worker re-encapsulates out of it.
func reencapOne(t *testing.T, r *rig, frame []byte) []byte {
	t.Helper()
	r.fromCore(frame)
	return one(t, r.core)
}

// TestReencapOffloadOffers: an RTR's flow is offered to its core interface's
// reencap table on its first flow memo hit, once per epoch, with the
// instance-ID, our RLOC, the front the worker sent and the egress
// interface; the worker still re-encapsulates what reaches it.
func TestReencapOffloadOffers(t *testing.T) {
	ft := newFakeReencap()
	r, off := reencapRig(t, ft)
	if ft.epoch != 1 {
		t.Fatalf("table epoch %d after AddReencap", ft.epoch)
	}
	frame := rtrFrame(t, rtrDst4, 60, 50, 0)
	reencapOne(t, r, frame) // fills the flow memo
	if len(ft.puts) != 0 {
		t.Fatalf("offered on the first packet: %+v", ft.puts)
	}
	got := reencapOne(t, r, frame)
	if len(ft.puts) != 1 {
		t.Fatalf("%d entries put on the first flow memo hit, want 1", len(ft.puts))
	}
	e := ft.puts[0]
	inner := frame[wire.EthernetLen+wire.OuterIPv4Len:]
	hash := wire.FlowHash(inner, 0)
	if e.IID != iidRTR || e.Dst != rtrDst4.As4() || e.RLOC != rlocLocal4.As4() || e.Bucket != cache.SelectBucket(hash) ||
		e.Epoch != 1 || e.Ifindex != 7 || e.V6 || e.InnerV6 || !e.NonceOK {
		t.Fatalf("entry %+v", e)
	}
	// The front is the header the worker sent but for what each packet
	// sets (as TestOffloadOffersSteadyFlows).
	want := append([]byte(nil), got[:ring.OffloadFront]...)
	for _, i := range []int{15, 16, 17, 18, 19, 22, 23, 24, 25, 34, 35, 38, 39, 43, 44, 45} {
		want[i] = e.Front[i]
	}
	if string(e.Front[:ring.OffloadFront]) != string(want) {
		t.Fatalf("front\n% x\nwant\n% x", e.Front[:ring.OffloadFront], want)
	}
	reencapOne(t, r, frame)
	if len(ft.puts) != 1 || r.w.Extra(ExtraOffloadPut) != 1 {
		t.Fatalf("offered again in the same epoch: %d puts", len(ft.puts))
	}
	off.Invalidate()
	reencapOne(t, r, frame)
	if ft.epoch != 2 || len(ft.puts) != 2 || ft.puts[1].Epoch != 2 {
		t.Fatalf("not offered again in the new epoch (table epoch %d): %+v", ft.epoch, ft.puts)
	}
	// Over IPv6, in the same epoch, the flow has an entry of its own, for
	// our IPv6 RLOC, offered on its first packet (offer6's memo, not the
	// flow memo's tag, which stays the one over IPv4's); then neither
	// version is offered again.
	over6 := lispFrame(t, rtrSpec(t, true, rtrDst4, 60, 50, 0, 40))
	reencapOne(t, r, over6)
	reencapOne(t, r, over6)
	reencapOne(t, r, frame)
	if len(ft.puts) != 3 || !ft.puts[2].Over6 || ft.puts[2].RLOC6 != rlocLocal6.As16() || ft.puts[2].RLOC != [4]byte{} ||
		ft.puts[2].Dst != rtrDst4.As4() || ft.puts[2].Epoch != 2 || ft.puts[2].Bucket != ft.puts[1].Bucket {
		t.Fatalf("over IPv6: %+v", ft.puts[2:])
	}
	if len(ft.entries) != 2 {
		t.Fatalf("%d entries for the flow over both versions, want 2", len(ft.entries))
	}
	off.Invalidate()
	// An IPv6 EID's flow (no flow memo: offer6) is offered on its first
	// packet, once per epoch.
	eid6 := lispFrame(t, rtrSpec(t, false, rtrEID6, 60, 50, 0, 40))
	reencapOne(t, r, eid6)
	reencapOne(t, r, eid6)
	if len(ft.puts) != 4 || !ft.puts[3].InnerV6 || ft.puts[3].Dst6 != rtrEID6.As16() || ft.puts[3].IID != iidRTR ||
		ft.puts[3].RLOC != rlocLocal4.As4() || ft.puts[3].Epoch != 3 {
		t.Fatalf("IPv6 EID: %+v", ft.puts[3:])
	}
	off.Pause(OffloadEncap) // the RTR's flows leave through core interfaces
	if ft.epoch != 0 {
		t.Fatalf("table epoch %d while encap is paused", ft.epoch)
	}
	reencapOne(t, r, frame)
	reencapOne(t, r, eid6)
	if len(ft.puts) != 4 {
		t.Fatalf("offered while paused: %+v", ft.puts[4:])
	}
}

// TestReencapOffloadLeavesOthers: what the kernel's reencap program does
// not take is not offered: flows whose outer UDP checksum the worker
// computes, and those of a worker that is not an RTR or whose core port has
// no table; IPv4 and IPv6 EIDs alike.
func TestReencapOffloadLeavesOthers(t *testing.T) {
	// Not an RTR: the packet is dropped (no site port serves the
	// instance-ID), nothing offered; an RTR whose core port has no table.
	for name, mod := range map[string]func(*Config){
		"not-rtr":      func(c *Config) { c.RTR = false },
		"no-table":     func(c *Config) { c.Ports[1].Reencap = nil },
		"udp-checksum": func(c *Config) { c.Outer.UDPChecksum = true },
	} {
		t.Run(name, func(t *testing.T) {
			ft := newFakeReencap()
			off := NewOffload(0)
			if err := off.AddReencap(ft); err != nil {
				t.Fatal(err)
			}
			r := newRig(t, func(c *Config) {
				c.RTR, c.Offload, c.Ports[1].Reencap, c.Ports[1].Ifindex = true, off, ft, 7
				mod(c)
			})
			r.install([]StaticMapping{
				{IID: iidRTR, Prefix: netip.MustParsePrefix("10.30.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocOther4}}},
				{IID: iidRTR, Prefix: netip.MustParsePrefix("2001:db8:30::/48"), RLOCs: []StaticRLOC{{Addr: rlocOther4}}},
			})
			sent := 0
			for range 3 {
				for _, dst := range []netip.Addr{rtrDst4, rtrEID6} {
					r.fromCore(lispFrame(t, rtrSpec(t, false, dst, 60, 50, 0, 40)))
					sent += len(drain(r.core))
				}
			}
			if want := map[bool]int{false: 6, true: 0}[name == "not-rtr"]; sent != want {
				t.Fatalf("%d frames re-encapsulated, want %d", sent, want)
			}
			if len(ft.puts) != 0 || r.w.offn != 0 {
				t.Fatalf("offered %+v (%d queued)", ft.puts, r.w.offn)
			}
		})
	}
}

// TestReencapOffloadKernelMatchesWorker runs the kernel's core program
// (root) over an RTR flow's packet with the entry the worker offered, and
// compares what it sends with what the worker sent for the same packet:
// the same bytes but for the outer IP ID, header checksum and nonce, which
// both draw; over an IPv4 and an IPv6 outer header, to IPv4 and IPv6 EIDs,
// through an IPv4 and an IPv6 RLOC, with the outer TTL lower and higher than
// the inner one.
func TestReencapOffloadKernelMatchesWorker(t *testing.T) {
	prog, err := xsk.LoadProgram(xsk.ProgramConfig{Mode: xsk.ModeCore})
	testkit.Require(t, "loading the XDP steering program (root, BPF)", err)
	defer prog.Close()
	addRLOCs(t, prog)
	r, off := reencapRig(t, prog)
	for _, over6 := range []bool{false, true} {
		off.Invalidate() // the flows offered anew over this outer header
		for _, c := range []struct {
			dst          netip.Addr
			outer, inner uint8
			flags        uint8
		}{
			{rtrDst4, 60, 50, 0},
			{rtrDst4, 9, 50, wire.FlagI},
			{rtrDst4, 64, 2, wire.FlagI | wire.FlagV},
			{netip.MustParseAddr("10.30.7.7"), 2, 200, wire.FlagI},
			{rtrDst6, 60, 50, 0},
			{rtrDst6, 9, 50, wire.FlagI},
			{rtrEID6, 60, 50, 0},
			{rtrEID6, 9, 50, wire.FlagI | wire.FlagV},
			{rtrEID66, 64, 2, 0},
			{rtrEID66, 3, 200, wire.FlagI},
		} {
			drawn := []int{18, 19, 24, 25, 43, 44, 45} // IP ID, checksum, nonce
			if c.dst == rtrDst6 || c.dst == rtrEID66 {
				drawn = []int{63, 64, 65}
			}
			frame := lispFrame(t, rtrSpec(t, over6, c.dst, c.outer, c.inner, c.flags, 40))
			redirectMatches(t, prog, frame, func(b []byte) []byte { return reencapOne(t, r, b) }, drawn)
		}
	}
}

// TestReencapOffloadSweep: a sweep keeps the current epoch's reencap
// entries and deletes the others, and marks the map-cache entry of a flow
// the kernel sent packets for as used in the flow's own instance-ID; the
// listing shows the flows as an RTR's.
func TestReencapOffloadSweep(t *testing.T) {
	now := time.Unix(1000, 0)
	c := cache.New(cache.Config{BuildTemplate: defaultOuter().BuildTemplate, Now: func() time.Time { return now }})
	if err := InstallStatic(c, []StaticMapping{
		{IID: iidRTR, Prefix: netip.MustParsePrefix("10.30.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocOther4}}},
	}); err != nil {
		t.Fatal(err)
	}
	ft := newFakeReencap()
	off := NewOffload(0)
	if err := off.AddReencap(ft); err != nil {
		t.Fatal(err)
	}
	front := [ring.OffloadFront6]byte{wire.EthernetLen + 16: 192, wire.EthernetLen + 17: 0, wire.EthernetLen + 18: 2, wire.EthernetLen + 19: 3}
	cur := ring.ReencapEntry{OffloadEntry: ring.OffloadEntry{Dst: rtrDst4.As4(), Bucket: 4, Epoch: 1, Ifindex: 7, Front: front},
		IID: iidRTR, RLOC: rlocLocal4.As4()}
	old := cur
	old.Dst, old.Epoch = [4]byte{10, 30, 0, 2}, 9
	for _, e := range []ring.ReencapEntry{cur, old} {
		if err := ft.PutReencap(&e); err != nil {
			t.Fatal(err)
		}
	}
	if err := off.Sweep(c); err != nil {
		t.Fatal(err)
	}
	if st := off.Stats(); len(ft.entries) != 1 || st.Swept != 1 || st.FlowsEncap != 1 {
		t.Fatalf("%d entries left, %d swept, %d flows counted", len(ft.entries), st.Swept, st.FlowsEncap)
	}
	e, ok := c.Get(cache.Key{IID: iidRTR, Prefix: netip.MustParsePrefix("10.30.0.0/16")})
	if !ok {
		t.Fatal("no map-cache entry")
	}
	start := c.LastUsed(e)
	now = now.Add(10 * time.Second)
	c.Tick(now)
	ft.entries[reencapKeyOf(&cur)].hits = 5
	if err := off.Sweep(c); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Second)
	c.Tick(now)
	if !c.LastUsed(e).After(start) {
		t.Fatalf("the flow's map-cache entry was not marked used: %v, was %v", c.LastUsed(e), start)
	}
	fl, total, err := off.Flows(10)
	want := []OffloadFlow{{Direction: OffloadEncap, Reencap: true, IID: iidRTR, EID: rtrDst4, Bucket: 4, RLOC: rlocOther4, Ifindex: 7,
		Epoch: 1, Current: true, Packets: 5}}
	if err != nil || total != 1 || !slices.Equal(fl, want) {
		t.Fatalf("flows %+v of %d (%v), want %+v", fl, total, err, want)
	}
}

// FuzzReencapOffloadMatchesWorker runs the kernel's core program (root)
// over LISP frames to an RTR, after the worker has seen each twice (so a
// flow it can offload has its entry), and the worker over the same frame
// once more: a frame the program redirects must be the one frame the
// worker re-encapsulates, byte for byte but for what both draw (outer IP
// ID and checksum, nonce); a frame it passes must be left as it was. The
// frames are built from the fuzzed fields (outer version, outer and inner
// TTL, outer TOS, LISP flags, inner length, an IPv4 or IPv6 EID behind an
// IPv4 or an IPv6 RLOC, padding), then one byte changed (with the outer checksum made good again,
// or not).
func FuzzReencapOffloadMatchesWorker(f *testing.F) {
	f.Add(byte(60), byte(50), byte(0), byte(0x88), uint16(40), uint8(0), uint16(0), byte(0), false, false, false, false)
	f.Add(byte(3), byte(64), byte(0), byte(0x08), uint16(1200), uint8(9), uint16(0), byte(0), false, false, false, false)
	f.Add(byte(60), byte(2), byte(1), byte(0x88), uint16(40), uint8(0), uint16(0), byte(0), false, true, false, false)
	f.Add(byte(60), byte(50), byte(0), byte(0x88), uint16(40), uint8(0), uint16(24), byte(0x40), true, false, false, false)
	f.Add(byte(60), byte(50), byte(0), byte(0x98), uint16(10), uint8(0), uint16(58), byte(1), false, true, false, false)
	f.Add(byte(2), byte(50), byte(0xb8), byte(0x18), uint16(1450), uint8(3), uint16(0), byte(0), false, true, false, false)
	f.Add(byte(60), byte(50), byte(0), byte(0x88), uint16(40), uint8(0), uint16(0), byte(0), false, false, true, false)
	f.Add(byte(3), byte(64), byte(0x01), byte(0x08), uint16(1200), uint8(9), uint16(60), byte(2), false, true, true, false)
	f.Add(byte(60), byte(50), byte(0), byte(0x88), uint16(40), uint8(0), uint16(0), byte(0), false, false, false, true)
	f.Add(byte(9), byte(64), byte(0xb8), byte(0x08), uint16(700), uint8(5), uint16(0), byte(0), false, true, true, true)
	prog, err := xsk.LoadProgram(xsk.ProgramConfig{Mode: xsk.ModeCore})
	testkit.Require(f, "loading the XDP steering program (root, BPF)", err)
	f.Cleanup(func() { prog.Close() })
	addRLOCs(f, prog)
	r, off := reencapRig(f, prog)
	step := func(t *testing.T, b []byte) [][]byte { return r.stepOut(t, r.core, r.core, b) }
	var redirected, passed int
	f.Cleanup(func() { f.Logf("the kernel redirected %d frames and passed %d", redirected, passed) })
	f.Fuzz(func(t *testing.T, outerTTL, innerTTL, tos, flags byte, plen uint16, pad uint8, at uint16, x byte, fix, rloc6, over6, eid6 bool) {
		dst := map[[2]bool]netip.Addr{{false, false}: rtrDst4, {true, false}: rtrDst6, {false, true}: rtrEID6, {true, true}: rtrEID66}[[2]bool{rloc6, eid6}]
		s := rtrSpec(t, over6, dst, outerTTL, innerTTL, flags|1, int(plen%1450)) // | 1: lispFrame's 0 means I|N
		s.tos = tos
		b := lispFrame(t, s)
		b = append(b, make([]byte, pad%32)...)
		flipByte(b, at, x, fix && !over6)
		off.Invalidate() // each frame's flow is offered anew (an earlier frame may have left an entry for it)
		step(t, b)
		step(t, b)
		act, kernel, err := prog.TestRun(b)
		if err != nil {
			t.Fatal(err)
		}
		if act == 4 {
			redirected++
		} else {
			passed++
		}
		drawn := []int{18, 19, 24, 25, 43, 44, 45}
		if len(kernel) > 13 && kernel[12] == 0x86 {
			drawn = []int{63, 64, 65}
		}
		compareKernel(t, act, b, kernel, step(t, b), drawn)
	})
}

// TestReencapMapChanges: on an RTR, a map-cache change deletes the reencap
// entries of the flows it covers, those over either outer version, and
// keeps the others, without an epoch (TestOffloadMapChanges for the ITR).
func TestReencapMapChanges(t *testing.T) {
	ft := newFakeReencap()
	r, _ := reencapRig(t, ft, func(c *Config, off *Offload) {
		c.Cache = cache.New(cache.Config{BuildTemplate: c.Outer.BuildTemplate, Published: off.MapChanged})
	})
	for _, f := range [][]byte{
		rtrFrame(t, rtrDst4, 60, 50, 0), rtrFrame(t, rtrDst4, 60, 50, 0), // IPv4 EID over IPv4: a flow memo hit offers it
		lispFrame(t, rtrSpec(t, true, rtrDst4, 60, 50, 0, 40)), // over IPv6: offer6
		lispFrame(t, rtrSpec(t, false, rtrEID6, 60, 50, 0, 40)),
	} {
		reencapOne(t, r, f)
	}
	if len(ft.entries) != 3 {
		t.Fatalf("%d entries, want the IPv4 EID's over both versions and the IPv6 EID's", len(ft.entries))
	}
	e0 := ft.epoch
	r.install([]StaticMapping{{IID: iidRTR, Prefix: netip.PrefixFrom(rtrDst4, 32), RLOCs: []StaticRLOC{{Addr: rlocRemote4}}}})
	if ft.epoch != e0 || len(ft.entries) != 1 {
		t.Fatalf("after a change covering the IPv4 EID: epoch %d (was %d), %d entries left, want the IPv6 EID's", ft.epoch, e0, len(ft.entries))
	}
	for _, e := range ft.entries {
		if !e.e.InnerV6 {
			t.Fatalf("left %+v, want the IPv6 EID's entry", e.e)
		}
	}
}

// TestReencapNeighbourLost: a next-hop snapshot that lost the underlay
// gateway's MAC on the core interface deletes the RTR's entries sent there,
// over both outer versions, without an epoch, and takes them out of the
// live index that map-cache changes look through; one that lost another
// MAC deletes none.
func TestReencapNeighbourLost(t *testing.T) {
	ft := newFakeReencap()
	r, off := reencapRig(t, ft, func(c *Config, off *Offload) {
		c.Cache = cache.New(cache.Config{BuildTemplate: c.Outer.BuildTemplate, Published: off.MapChanged})
	})
	r.nh.OnStore(off.NextHopsChanged)
	for _, f := range [][]byte{
		rtrFrame(t, rtrDst4, 60, 50, 0), rtrFrame(t, rtrDst4, 60, 50, 0),
		lispFrame(t, rtrSpec(t, true, rtrDst4, 60, 50, 0, 40)),
		lispFrame(t, rtrSpec(t, false, rtrEID6, 60, 50, 0, 40)),
	} {
		reencapOne(t, r, f)
	}
	if len(ft.entries) != 3 {
		t.Fatalf("%d entries, want the IPv4 EID's over both versions and the IPv6 EID's", len(ft.entries))
	}
	e0 := ft.epoch
	r.nh.Store(testNextHops().MarkLost([]nexthop.LinkDest{{IfIndex: 7, MAC: macHostA}}))
	if st := off.Stats(); len(ft.entries) != 3 || st.HopDeleted != 0 || st.HopBatches != 1 {
		t.Fatalf("a MAC no entry is sent to: %d entries left, stats %+v", len(ft.entries), st)
	}
	r.nh.Store(testNextHops().MarkLost([]nexthop.LinkDest{{IfIndex: 7, MAC: macUnderGW}}))
	off.puts.Lock()
	live := off.ts[0].live.n
	off.puts.Unlock()
	if st := off.Stats(); len(ft.entries) != 0 || ft.epoch != e0 || st.Invalidations != 0 || st.HopDeleted != 3 || live != 0 {
		t.Fatalf("the gateway's MAC lost: %d entries left, epoch %d (was %d), stats %+v, %d in the live index", len(ft.entries), ft.epoch, e0, st, live)
	}
	b0 := off.Stats().MapBatches
	r.install([]StaticMapping{{IID: iidRTR, Prefix: netip.PrefixFrom(rtrDst4, 32), RLOCs: []StaticRLOC{{Addr: rlocRemote4}}}})
	if st := off.Stats(); st.MapDeleted != 0 || st.MapBatches != b0+1 {
		t.Fatalf("a map-cache change after the entries went: stats %+v, want one batch that deleted nothing", st)
	}
}

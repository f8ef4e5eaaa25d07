package fastpath

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/ring/xsk"
	"github.com/rloc-router/rloc/wire"
)

// fakeDecap is a ring.DecapTable in memory.
type fakeDecap struct {
	epoch     uint32
	puts      []ring.DecapEntry
	entries   map[decapKey]ring.DecapEntry
	hits      map[decapKey]uint64 // what the kernel sent through an entry
	failPut   error
	failSweep error  // SweepDecap's, which then deletes nothing
	deleting  func() // between SweepDecap's walk and its deletes
	sweeps    int    // SweepDecap's calls
}

func newFakeDecap() *fakeDecap { return &fakeDecap{entries: map[decapKey]ring.DecapEntry{}} }

// decapKey is a decap entry's flow (instance-ID and inner destination) and
// outer version.
type decapKey struct {
	iid   uint32
	dst   netip.Addr
	over6 bool
}

// decapKeyOf is e's flow and outer version.
func decapKeyOf(e *ring.DecapEntry) decapKey { return decapKey{e.IID, e.InnerDst(), e.V6} }

func (f *fakeDecap) PutDecap(e *ring.DecapEntry) error {
	if f.failPut != nil {
		return f.failPut
	}
	f.puts = append(f.puts, *e)
	f.entries[decapKeyOf(e)] = *e
	return nil
}

func (f *fakeDecap) SetOffload(epoch, _ uint32) error { f.epoch = epoch; return nil }

func (f *fakeDecap) SweepDecap(keep func(e *ring.DecapEntry, hits uint64) bool) (int, error) {
	f.sweeps++
	if f.failSweep != nil {
		return 0, f.failSweep
	}
	return sweepFake(f.entries, func(k decapKey, e ring.DecapEntry) bool { return keep(&e, f.hits[k]) }, f.deleting), nil
}

func (f *fakeDecap) ListDecap(fn func(e *ring.DecapEntry, hits uint64) bool) error {
	for _, e := range f.entries {
		if !fn(&e, 0) {
			break
		}
	}
	return nil
}

// decapRig is a rig whose core port hands deliveries to table d, the site
// port being interface 5 (0: no Ifindex).
func decapRig(t testing.TB, d ring.DecapTable, siteIfindex int) (*rig, *Offload) {
	t.Helper()
	off := NewOffload(0)
	if err := off.AddDecap(d); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(c *Config) {
		c.Offload = off
		c.Ports[1].Decap = d
		c.Ports[0].Ifindex = siteIfindex
	})
	return r, off
}

// deliverOne sends frame in on r's core port and returns the one frame the
// worker delivers out of the site port.
func deliverOne(t *testing.T, r *rig, frame []byte) []byte {
	t.Helper()
	r.fromCore(frame)
	return one(t, r.site)
}

// decapFrame is a LISP packet from rlocRemote4 to our IPv4 RLOC carrying
// an IPv4 packet to hostA in the site's instance-ID, with LISP flags flags
// (I and N when 0).
func decapFrame(t testing.TB, outerTTL, innerTTL uint8, flags uint8) []byte {
	return decapFrameOver(t, false, outerTTL, innerTTL, flags)
}

// decapFrameOver is decapFrame, from rlocRemote6 to our IPv6 RLOC with v6.
func decapFrameOver(t testing.TB, v6 bool, outerTTL, innerTTL uint8, flags uint8) []byte {
	return decapFrameWith(t, v6, false, outerTTL, innerTTL, flags)
}

// decapFrameWith is decapFrameOver carrying an IPv6 packet from remote6 to
// hostA6 with in6 (innerTTL its hop limit).
func decapFrameWith(t testing.TB, v6, in6 bool, outerTTL, innerTTL uint8, flags uint8) []byte {
	s := decapSpec(t, v6, in6, innerTTL, 40)
	s.ttl, s.flags = outerTTL, flags
	return lispFrame(t, s)
}

// decapSpec is a LISP packet from rlocRemote4 to our IPv4 RLOC (with v6:
// rlocRemote6 to our IPv6 one) in the site's instance-ID, with nonce
// 0x123456, carrying a UDP packet of payload bytes from remote4 to hostA
// (with in6: remote6 to hostA6) with TTL (hop limit) innerTTL.
func decapSpec(t testing.TB, v6, in6 bool, innerTTL uint8, payload int) lispSpec {
	is := innerSpec{src: remote4, dst: hostA, ttl: innerTTL, payload: payload, sport: 5, dport: 6}
	if in6 {
		is.src, is.dst = remote6, hostA6
	}
	s := lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: iidSite, nonce: 0x123456, inner: innerPacket(t, is)}
	if v6 {
		s.src, s.dst = rlocRemote6, rlocLocal6
	}
	return s
}

// TestDecapOffloadOffers: a delivery is offered to the kernel once per
// epoch, with the Ethernet header the worker writes, the site interface,
// the instance-ID, destination and our RLOC; a slow path that starts
// watching nonces moves the epoch, and the next entry leaves N packets to
// the worker.
func TestDecapOffloadOffers(t *testing.T) {
	d := newFakeDecap()
	r, off := decapRig(t, d, 5)
	if d.epoch != 1 {
		t.Fatalf("table epoch %d after AddDecap", d.epoch)
	}
	frame := decapFrame(t, 60, 50, 0)
	var got []byte
	for range 3 {
		got = deliverOne(t, r, frame)
	}
	if len(d.puts) != 1 || r.w.Extra(ExtraOffloadPut) != 1 {
		t.Fatalf("%d entries put after three deliveries, want 1", len(d.puts))
	}
	// Offered, the flow's next packets are deliver4's again: the memo
	// entry carries the epoch's tag that the site memo compares.
	k := uint64(binary.BigEndian.Uint32(hostA.AsSlice()))
	if h := &r.w.dels[delSlot4(uint32(k))]; h.dkey != r.w.lastSite.dkey|k || h.dkey>>48 != uint64(r.w.doet) || r.w.doet == 0 {
		t.Fatalf("memo entry dkey %#x, site memo %#x, tag %d", h.dkey, r.w.lastSite.dkey, r.w.doet)
	}
	e := d.puts[0]
	if e.IID != iidSite || e.Dst != hostA.As4() || e.RLOC != rlocLocal4.As4() || e.Epoch != 1 || e.Ifindex != 5 ||
		!e.NonceOK || string(e.Eth[:]) != string(got[:wire.EthernetLen]) {
		t.Fatalf("entry %+v, delivered Ethernet % x", e, got[:wire.EthernetLen])
	}
	off.Invalidate()
	deliverOne(t, r, frame)
	if len(d.puts) != 2 || d.puts[1].Epoch != 2 || d.epoch != 2 {
		t.Fatalf("not offered again in the new epoch: %+v (table epoch %d)", d.puts, d.epoch)
	}
	r.w.Observations().WatchNonces(true)
	if d.epoch != 3 {
		t.Fatalf("table epoch %d after WatchNonces, want 3", d.epoch)
	}
	deliverOne(t, r, decapFrame(t, 60, 50, wire.FlagI)) // N packets are observed now: no N here
	if len(d.puts) != 3 || d.puts[2].NonceOK {
		t.Fatalf("entry while nonces are watched: %+v", d.puts[len(d.puts)-1])
	}
	// Over IPv6, in the same epoch, the flow has an entry of its own, for
	// our IPv6 RLOC, offered once; the one over IPv4 stays offered.
	deliverOne(t, r, decapFrameOver(t, true, 60, 50, wire.FlagI))
	deliverOne(t, r, decapFrameOver(t, true, 60, 50, wire.FlagI))
	deliverOne(t, r, decapFrame(t, 60, 50, wire.FlagI))
	if e := d.puts[len(d.puts)-1]; len(d.puts) != 4 || !e.V6 || e.RLOC6 != rlocLocal6.As16() || e.RLOC != [4]byte{} || e.Epoch != 3 {
		t.Fatalf("entry over IPv6: %+v (%d puts)", e, len(d.puts))
	}
	if len(d.entries) != 2 {
		t.Fatalf("%d entries for the flow over both versions, want 2", len(d.entries))
	}
	// An IPv6 EID: its entry, keyed by the IPv6 destination, with the
	// worker's Ethernet header (EtherType IPv6).
	off.Invalidate()
	got = deliverOne(t, r, decapFrameWith(t, false, true, 60, 50, wire.FlagI))
	deliverOne(t, r, decapFrameWith(t, false, true, 60, 50, wire.FlagI))
	if e := d.puts[len(d.puts)-1]; len(d.puts) != 5 || !e.InnerV6 || e.Dst6 != hostA6.As16() || e.Dst != [4]byte{} ||
		e.RLOC != rlocLocal4.As4() || e.Epoch != 4 || string(e.Eth[:]) != string(got[:wire.EthernetLen]) || got[12] != 0x86 {
		t.Fatalf("entry for an IPv6 EID: %+v (%d puts), delivered Ethernet % x", e, len(d.puts), got[:wire.EthernetLen])
	}
	// A sweep deletes the past epochs' entries.
	d.entries[decapKey{iid: 9, dst: netip.MustParseAddr("10.9.9.9")}] = ring.DecapEntry{IID: 9, Epoch: 1}
	if err := off.Sweep(r.c); err != nil || len(d.entries) != 1 {
		t.Fatalf("%d entries after a sweep (%v)", len(d.entries), err)
	}
	// Paused: nothing is offered, and the flow's packets are deliver4's.
	off.Pause(OffloadDecap)
	deliverOne(t, r, frame)
	if h := &r.w.dels[delSlot4(uint32(k))]; len(d.puts) != 5 || h.dkey != r.w.lastSite.dkey|k || h.dkey>>48 != 0 {
		t.Fatalf("paused: %d puts, memo entry dkey %#x, site memo %#x", len(d.puts), h.dkey, r.w.lastSite.dkey)
	}
}

// TestDecapOffloadLeavesOthers: a site port without an interface index, a
// worker without Offload, and deliveries deliver4 does not make (a gleaning
// site port) offer nothing; a refused entry is counted and the packet still
// delivered.
func TestDecapOffloadLeavesOthers(t *testing.T) {
	frame := decapFrame(t, 60, 50, 0)
	d := newFakeDecap()
	r, _ := decapRig(t, d, 0)
	d2 := newFakeDecap()
	r2 := newRig(t, func(c *Config) { c.Ports[1].Decap = d2; c.Ports[0].Ifindex = 5 }) // no Config.Offload
	for _, rr := range []*rig{r, r2} {
		for range 3 {
			deliverOne(t, rr, frame)
		}
	}
	d3 := newFakeDecap()
	off3 := NewOffload(0)
	if err := off3.AddDecap(d3); err != nil {
		t.Fatal(err)
	}
	r3 := newRig(t, func(c *Config) { c.Offload, c.Ports[1].Decap, c.Ports[0].Ifindex, c.Ports[0].Glean = off3, d3, 5, true })
	for range 3 {
		deliverOne(t, r3, frame)
	}
	if len(d.puts)+len(d2.puts)+len(d3.puts) != 0 {
		t.Fatalf("offered: without Ifindex %v, without Offload %v, gleaning %v", d.puts, d2.puts, d3.puts)
	}
	d4 := newFakeDecap()
	d4.failPut = errors.New("table full")
	r4, _ := decapRig(t, d4, 5)
	for range 3 {
		deliverOne(t, r4, frame)
	}
	if r4.w.Extra(ExtraOffloadFail) != 1 || r4.w.Extra(ExtraOffloadPut) != 0 {
		t.Fatalf("refused entry: fail %d put %d", r4.w.Extra(ExtraOffloadFail), r4.w.Extra(ExtraOffloadPut))
	}
}

// TestDecapOffloadKernelMatchesWorker runs the kernel's core program
// (root) over a LISP packet with the entry the worker offered, and
// compares what it delivers with what the worker delivered for the same
// packet: the same bytes.
func TestDecapOffloadKernelMatchesWorker(t *testing.T) {
	prog, err := xsk.LoadProgram(xsk.ProgramConfig{Mode: xsk.ModeCore})
	testkit.Require(t, "loading the XDP steering program (root, BPF)", err)
	defer prog.Close()
	addRLOCs(t, prog)
	r, off := decapRig(t, prog, 5)
	for _, v6 := range []bool{false, true} {
		for _, in6 := range []bool{false, true} {
			off.Invalidate() // the flow offered anew over this outer header
			for _, c := range []struct {
				outer, inner uint8
				flags        uint8
			}{
				{60, 50, 0},
				{9, 50, wire.FlagI},              // the outer TTL lower: the inner one lowered to it
				{60, 1, wire.FlagI | wire.FlagV}, // a map version, and TTL 1 (delivered)
			} {
				redirectMatches(t, prog, decapFrameWith(t, v6, in6, c.outer, c.inner, c.flags), func(b []byte) []byte { return deliverOne(t, r, b) }, nil)
			}
		}
	}
}

// addRLOCs gives the core program the rig's RLOCs as local addresses.
func addRLOCs(t testing.TB, prog *xsk.Program) {
	t.Helper()
	for _, a := range []netip.Addr{rlocLocal4, rlocLocal6} {
		if err := prog.AddLocal(a); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDecapOffloadWaitsForEmptyRing: a delivery offered while more of the
// core port's packets wait on its rx ring is put only once the ring is
// empty.
func TestDecapOffloadWaitsForEmptyRing(t *testing.T) {
	d := newFakeDecap()
	r, off := decapRig(t, d, 5)
	frame := decapFrame(t, 60, 50, 0)
	deliverOne(t, r, frame) // offered and put: the ring was empty
	if len(d.puts) != 1 {
		t.Fatalf("%d puts after one delivery", len(d.puts))
	}
	off.Invalidate()
	for range ring.IdealBatchSize + 5 {
		if !r.core.Inject(frame) {
			t.Fatal("inject")
		}
	}
	r.w.Step() // a batch of deliveries: offered anew, 5 packets still wait
	if len(d.puts) != 1 || r.w.offn != 1 {
		t.Fatalf("put with packets waiting on the ring: %d puts, %d queued", len(d.puts), r.w.offn)
	}
	r.w.Step()
	if len(d.puts) != 2 || r.w.offn != 0 {
		t.Fatalf("not put once the ring was empty: %d puts, %d queued", len(d.puts), r.w.offn)
	}
	if n := len(drain(r.site)); n != ring.IdealBatchSize+5 { // all delivered by the worker
		t.Fatalf("%d frames delivered", n)
	}
}

// FuzzDecapOffloadMatchesWorker runs the kernel's core program (root) over
// LISP frames, over IPv4 or IPv6 RLOCs to IPv4 or IPv6 EIDs, after the worker has seen each twice (so a delivery it can
// offload has its entry), and the worker over the same frame once more: a
// frame the program redirects must be the one frame the worker delivers,
// byte for byte; a frame it passes must be left as it was. The frames are
// built from the fuzzed fields, then one byte changed (with the outer
// checksum made good again, or not).
func FuzzDecapOffloadMatchesWorker(f *testing.F) {
	f.Add(byte(60), byte(50), byte(0), byte(0x88), uint16(40), uint8(0), uint16(0), byte(0), false, false, false)
	f.Add(byte(3), byte(64), byte(0), byte(0x08), uint16(1200), uint8(9), uint16(0), byte(0), false, false, false)
	f.Add(byte(60), byte(50), byte(1), byte(0x88), uint16(40), uint8(0), uint16(0), byte(0), false, false, false)
	f.Add(byte(60), byte(50), byte(0), byte(0x88), uint16(40), uint8(0), uint16(24), byte(0x40), true, false, false)
	f.Add(byte(60), byte(50), byte(0), byte(0x98), uint16(10), uint8(0), uint16(58), byte(1), false, false, false)
	f.Add(byte(60), byte(50), byte(0), byte(0x88), uint16(40), uint8(0), uint16(0), byte(0), false, true, false)
	f.Add(byte(3), byte(64), byte(0), byte(0x08), uint16(1200), uint8(9), uint16(0), byte(0), false, true, false)
	f.Add(byte(60), byte(50), byte(1), byte(0x88), uint16(40), uint8(0), uint16(0), byte(0), false, true, false)
	f.Add(byte(60), byte(50), byte(0), byte(0x88), uint16(40), uint8(0), uint16(0), byte(0), false, false, true)
	f.Add(byte(3), byte(64), byte(0), byte(0x08), uint16(1200), uint8(9), uint16(0), byte(0), false, false, true)
	prog, err := xsk.LoadProgram(xsk.ProgramConfig{Mode: xsk.ModeCore})
	testkit.Require(f, "loading the XDP steering program (root, BPF)", err)
	f.Cleanup(func() { prog.Close() })
	addRLOCs(f, prog)
	r, _ := decapRig(f, prog, 5)
	step := func(t *testing.T, b []byte) [][]byte { return r.stepOut(t, r.core, r.site, b) } // ICMP errors, re-encapsulations dropped
	f.Fuzz(func(t *testing.T, outerTTL, innerTTL, tos, flags byte, plen uint16, pad uint8, at uint16, x byte, fix, v6, in6 bool) {
		s := decapSpec(t, v6, in6, innerTTL, int(plen%1400))
		s.ttl, s.zeroTTL, s.tos, s.flags = outerTTL, outerTTL == 0, tos, flags|1 // | 1: lispFrame's 0 means I|N
		b := lispFrame(t, s)
		b = append(b, make([]byte, pad%32)...)
		flipByte(b, at, x, fix && !v6)
		step(t, b)
		step(t, b)
		act, kernel, err := prog.TestRun(b)
		if err != nil {
			t.Fatal(err)
		}
		compareKernel(t, act, b, kernel, step(t, b), nil)
	})
}

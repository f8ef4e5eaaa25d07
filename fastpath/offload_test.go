package fastpath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/ring/mem"
	"github.com/rloc-router/rloc/ring/xsk"
	"github.com/rloc-router/rloc/wire"
)

// fakeOffload is a ring.OffloadTable in memory.
type fakeOffload struct {
	epoch, seed uint32
	sets        int
	puts        []ring.OffloadEntry
	entries     map[offloadKey]*fakeEntry
	sweeps      int // SweepOffload's calls
	failPut     error
	failSet     error
	failDelete  error
	deletes     []offloadKey
	during      func() // at the start of each SweepOffload's walk
	deleting    func() // between its walk and its deletes
}

type fakeEntry struct {
	e    ring.OffloadEntry
	hits uint64
}

func newFakeOffload() *fakeOffload { return &fakeOffload{entries: map[offloadKey]*fakeEntry{}} }

func (f *fakeOffload) PutOffload(e *ring.OffloadEntry) error {
	if f.failPut != nil {
		return f.failPut
	}
	f.puts = append(f.puts, *e)
	f.entries[keyOf(e)] = &fakeEntry{e: *e}
	return nil
}

func (f *fakeOffload) DeleteOffload(e *ring.OffloadEntry) error {
	f.deletes = append(f.deletes, keyOf(e))
	delete(f.entries, keyOf(e))
	return f.failDelete
}

func (f *fakeOffload) SetOffload(epoch, seed uint32) error {
	if f.failSet != nil && epoch != 0 {
		return f.failSet
	}
	f.epoch, f.seed = epoch, seed
	f.sets++
	return nil
}

func (f *fakeOffload) SweepOffload(keep func(e *ring.OffloadEntry, hits uint64) bool) (int, error) {
	f.sweeps++
	if f.during != nil {
		f.during()
	}
	return sweepFake(f.entries, func(_ offloadKey, e *fakeEntry) bool { return keep(&e.e, e.hits) }, f.deleting), nil
}

func (f *fakeOffload) ListOffload(fn func(e *ring.OffloadEntry, hits uint64) bool) error {
	for _, e := range f.entries {
		if !fn(&e.e, e.hits) {
			break
		}
	}
	return nil
}

// sweepFake deletes the entries of m that keep rejects as ring/xsk does:
// it reads them all, calls deleting (when not nil), then deletes.
func sweepFake[K comparable, V any](m map[K]V, keep func(K, V) bool, deleting func()) int {
	var drop []K
	for k, v := range m {
		if !keep(k, v) {
			drop = append(drop, k)
		}
	}
	if deleting != nil {
		deleting()
	}
	for _, k := range drop {
		delete(m, k)
	}
	return len(drop)
}

// forwardOne sends frame in on r's site port and returns the one frame the
// worker sends out of the core port.
func forwardOne(t *testing.T, r *rig, frame []byte) []byte {
	t.Helper()
	r.fromSite(frame)
	return one(t, r.core)
}

// newOffloadOn returns an Offload (seed 0) with table t of the site's
// instance-ID.
func newOffloadOn(t testing.TB, table ring.OffloadTable) *Offload {
	t.Helper()
	off := NewOffload(0)
	if err := off.Add(table, iidSite); err != nil {
		t.Fatal(err)
	}
	return off
}

// offloadRig is a rig whose site port offloads to table t, the core port
// being interface 7.
func offloadRig(t testing.TB, table ring.OffloadTable) (*rig, *Offload) {
	t.Helper()
	off := newOffloadOn(t, table)
	r := newRig(t, func(c *Config) {
		c.Offload = off
		c.Ports[0].Offload = table
		c.Ports[1].Ifindex = 7
	})
	return r, off
}

// TestOffloadOffersSteadyFlows: a flow is offered to the kernel on its
// first flow memo hit, once per epoch, with the worker's own outer header,
// and the worker still sends the packets that reach it.
func TestOffloadOffersSteadyFlows(t *testing.T) {
	ft := newFakeOffload()
	r, off := offloadRig(t, ft)
	if ft.epoch != 1 || ft.seed != 0 {
		t.Fatalf("table epoch %d seed %d after Add", ft.epoch, ft.seed)
	}
	spec := innerSpec{src: hostA, dst: remote4, ttl: 9, payload: 20, sport: 7, dport: 9}
	frame := siteFrame(t, spec)
	send := func() []byte { return forwardOne(t, r, frame) }
	send() // fills the flow memo: nothing offered yet
	if len(ft.puts) != 0 {
		t.Fatalf("offered on the first packet: %+v", ft.puts)
	}
	got := send() // the first flow memo hit
	if len(ft.puts) != 1 {
		t.Fatalf("%d entries put on the first flow memo hit, want 1", len(ft.puts))
	}
	e := ft.puts[0]
	hash := wire.FlowHash(frame[wire.EthernetLen:], 0)
	if e.Dst != remote4.As4() || e.Bucket != cache.SelectBucket(hash) || e.Epoch != 1 || e.Ifindex != 7 || !e.Nonce {
		t.Fatalf("entry %+v", e)
	}
	// The front is the header the worker sent but for what each packet
	// sets (the kernel writes them as the worker does): TOS, lengths, ID,
	// TTL and protocol, checksum, source port, UDP length, nonce.
	want := append([]byte(nil), got[:ring.OffloadFront]...)
	for _, i := range []int{15, 16, 17, 18, 19, 22, 23, 24, 25, 34, 35, 38, 39, 43, 44, 45} {
		want[i] = e.Front[i]
	}
	if string(e.Front[:ring.OffloadFront]) != string(want) || e.V6 {
		t.Fatalf("front\n% x\nwant\n% x", e.Front, want)
	}
	// The template's part of the checksum, with what the packet sets,
	// gives the checksum the worker sent.
	o := got[wire.EthernetLen:]
	s := e.CsBase + uint32(binary.BigEndian.Uint16(o[0:])) + uint32(binary.BigEndian.Uint16(o[2:])) +
		uint32(binary.BigEndian.Uint16(o[4:])) + uint32(binary.BigEndian.Uint16(o[8:]))
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	if ^uint16(s) != binary.BigEndian.Uint16(o[10:]) {
		t.Fatalf("csBase %#x does not give the checksum sent", e.CsBase)
	}
	if int(e.MaxInner) != 1500-wire.OuterIPv4Len {
		t.Fatalf("max inner %d", e.MaxInner)
	}
	send()
	if len(ft.puts) != 1 || r.w.Extra(ExtraOffloadPut) != 1 {
		t.Fatalf("offered again in the same epoch: %d puts", len(ft.puts))
	}
	off.Invalidate()
	if ft.epoch != 2 {
		t.Fatalf("table epoch %d after Invalidate", ft.epoch)
	}
	send()
	if len(ft.puts) != 2 || ft.puts[1].Epoch != 2 {
		t.Fatalf("not offered again in the new epoch: %+v", ft.puts)
	}
	if st := off.Stats(); st.Epoch != 2 || st.Invalidations != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestOffloadLeavesOthers: flows the kernel cannot finish as the worker
// would (outer UDP checksums) or through a port without an interface
// index, and workers without Offload, offer nothing; a table that refuses
// an entry is counted and the packet still sent.
func TestOffloadLeavesOthers(t *testing.T) {
	ft := newFakeOffload()
	off := newOffloadOn(t, ft)
	r := newRig(t, func(c *Config) {
		c.Offload, c.Ports[0].Offload, c.Ports[1].Ifindex = off, ft, 7
		c.Outer.UDPChecksum = true
	})
	for _, dst := range []netip.Addr{remote4, remote4v6} {
		v6 := siteFrame(t, innerSpec{src: hostA, dst: dst, ttl: 9, payload: 20, sport: 7})
		for range 3 {
			forwardOne(t, r, v6)
		}
	}
	if len(ft.puts) != 0 {
		t.Fatalf("a flow with UDP checksums was offered: %+v", ft.puts)
	}

	ft2 := newFakeOffload()
	off2 := newOffloadOn(t, ft2)
	r2 := newRig(t, func(c *Config) { c.Offload = off2; c.Ports[0].Offload = ft2 }) // core port without Ifindex
	r3 := newRig(t, func(c *Config) { c.Ports[0].Offload = ft2 })                   // no Config.Offload
	ft4 := newFakeOffload()
	ft4.failPut = errors.New("table full")
	r4, _ := offloadRig(t, ft4)
	frame := siteFrame(t, innerSpec{src: hostA, dst: remote4, ttl: 9, payload: 20, sport: 7})
	for _, rr := range []*rig{r2, r3, r4} {
		for range 3 {
			forwardOne(t, rr, frame)
		}
	}
	if len(ft2.puts) != 0 {
		t.Fatalf("offered without an egress interface or without Offload: %+v", ft2.puts)
	}
	if r4.w.Extra(ExtraOffloadFail) != 1 || r4.w.Extra(ExtraOffloadPut) != 0 {
		t.Fatalf("refused entry: fail %d put %d", r4.w.Extra(ExtraOffloadFail), r4.w.Extra(ExtraOffloadPut))
	}
	if _, err := NewWorker(Config{Cache: r.c, NextHops: r.nh, Outer: r.outer, FlowSeed: 5, Offload: NewOffload(6),
		Ports: []PortConfig{{Port: r.site, Index: 1, Site: true}}}); err == nil {
		t.Fatal("a worker took an Offload of another flow hash seed")
	}
}

// TestOffloadFollowsChanges: with the map-cache's hook starting epochs
// (InvalidateEncap, MapChanged's fallback: TestOffloadMapChanges has the
// precise way), a map-cache change starts a new epoch of the encap
// direction (the decap one's entries owe nothing to the map-cache) and a
// next-hop snapshot that may change any adjacency and has no predecessor
// to compare with one of both (TestOffloadRouteChange has the precise
// way), before the writer goes on; a table that refuses the epoch is
// turned off.
func TestOffloadFollowsChanges(t *testing.T) {
	ft, fd := newFakeOffload(), newFakeDecap()
	off := newOffloadOn(t, ft)
	if err := off.AddDecap(fd); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(c *Config) {
		c.Cache = cache.New(cache.Config{BuildTemplate: c.Outer.BuildTemplate, Published: func([]cache.Key) { off.InvalidateEncap() }})
	})
	r.nh.OnStore(off.NextHopsChanged)
	e0, d0 := ft.epoch, fd.epoch
	r.install([]StaticMapping{{IID: iidSite, Prefix: netip.MustParsePrefix("10.9.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocRemote4, Weight: 1}}}})
	if ft.epoch == e0 || fd.epoch != d0 {
		t.Fatalf("epochs %d (encap) and %d (decap) after a map-cache change, from %d and %d: want encap's alone moved", ft.epoch, fd.epoch, e0, d0)
	}
	e1 := ft.epoch
	off.NextHopsChanged(testNextHops()) // never stored: no Prev
	if ft.epoch == e1 || fd.epoch == d0 || ft.epoch != fd.epoch {
		t.Fatalf("epochs %d (encap) and %d (decap) after a next-hop change, from %d and %d: want both moved", ft.epoch, fd.epoch, e1, d0)
	}
	ft.failSet = errors.New("map update failed")
	off.Invalidate()
	if ft.epoch != 0 || off.Stats().Errors != 1 {
		t.Fatalf("a table that refused the epoch is at epoch %d (errors %d)", ft.epoch, off.Stats().Errors)
	}
}

// TestOffloadSweep: a sweep marks the entries of flows the kernel sent
// packets for as used, deletes entries of past epochs, and starts a new
// epoch when the table is three quarters full.
func TestOffloadSweep(t *testing.T) {
	now := time.Unix(1000, 0)
	c := cache.New(cache.Config{BuildTemplate: defaultOuter().BuildTemplate, Now: func() time.Time { return now }})
	if err := InstallStatic(c, []StaticMapping{
		{IID: iidSite, Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocRemote4, Weight: 1}}},
		{IID: iidSite, Prefix: netip.MustParsePrefix("10.4.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocRemote4, Weight: 1}}},
	}); err != nil {
		t.Fatal(err)
	}
	ft := newFakeOffload()
	off := newOffloadOn(t, ft)
	busy, idle := [4]byte{10, 2, 0, 1}, [4]byte{10, 4, 0, 1}
	for _, d := range [][4]byte{busy, idle} {
		if err := ft.PutOffload(&ring.OffloadEntry{Dst: d, Epoch: 1, Ifindex: 7}); err != nil {
			t.Fatal(err)
		}
	}
	_ = ft.PutOffload(&ring.OffloadEntry{Dst: [4]byte{10, 2, 0, 2}, Epoch: 9, Ifindex: 7}) // a past epoch's
	lastUsed := func(d [4]byte) time.Time {
		e, ok := c.Get(cache.Key{IID: iidSite, Prefix: netip.PrefixFrom(netip.AddrFrom4(d), 16).Masked()})
		if !ok {
			t.Fatalf("no entry for %v", d)
		}
		return c.LastUsed(e)
	}
	if err := off.Sweep(c); err != nil {
		t.Fatal(err)
	}
	if st := off.Stats(); len(ft.entries) != 2 || st.Swept != 1 || st.FlowsEncap != 2 || st.FlowsDecap != 0 {
		t.Fatalf("%d entries left, %d swept, %d/%d flows counted; want the past epoch's gone, 2 flows", len(ft.entries), st.Swept,
			st.FlowsEncap, st.FlowsDecap)
	}
	start := lastUsed(busy)
	now = now.Add(10 * time.Second)
	c.Tick(now)
	ft.entries[offloadKey{dst: netip.AddrFrom4(busy)}].hits = 5
	if err := off.Sweep(c); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	c.Tick(now)
	if !lastUsed(busy).After(start) || lastUsed(idle).After(start) {
		t.Fatalf("last used: busy %v, idle %v, from %v", lastUsed(busy), lastUsed(idle), start)
	}
	// Three quarters full: a new epoch, and the next sweep empties the table.
	for i := range offloadCap * 3 / 4 {
		ft.entries[offloadKey{dst: netip.AddrFrom4([4]byte{10, 5, byte(i >> 8), byte(i)}), bkt: uint8(i >> 16)}] = &fakeEntry{e: ring.OffloadEntry{Epoch: 1}}
	}
	if err := off.Sweep(c); err != nil {
		t.Fatal(err)
	}
	if ft.epoch != 2 {
		t.Fatalf("epoch %d after a sweep of a full table", ft.epoch)
	}
	if err := off.Sweep(c); err != nil || len(ft.entries) != 0 || off.Stats().FlowsEncap != 0 {
		t.Fatalf("%d entries after the next sweep (%v), %d flows counted", len(ft.entries), err, off.Stats().FlowsEncap)
	}
}

// offeredRig is an offloadRig whose Offload has a decap table too, after
// a flow's first two packets (frame) were forwarded: its entry is put.
func offeredRig(t *testing.T) (*fakeOffload, *fakeDecap, *rig, *Offload, []byte) {
	t.Helper()
	ft, fd := newFakeOffload(), newFakeDecap()
	r, off := offloadRig(t, ft)
	if err := off.AddDecap(fd); err != nil {
		t.Fatal(err)
	}
	frame := siteFrame(t, innerSpec{src: hostA, dst: remote4, ttl: 9, payload: 20, sport: 7, dport: 9})
	forwardOne(t, r, frame)
	forwardOne(t, r, frame)
	if len(ft.puts) != 1 {
		t.Fatalf("%d puts after a flow's first two packets, want 1", len(ft.puts))
	}
	return ft, fd, r, off, frame
}

// TestOffloadPause: while paused the tables are off, the workers offer
// nothing and forward every packet themselves, an invalidation leaves the
// tables off and a sweep empties them; Resume starts a new epoch in which
// the flows are offered again.
func TestOffloadPause(t *testing.T) {
	ft, fd, r, off, frame := offeredRig(t)
	if !off.Pause(OffloadEncap) || off.Pause(OffloadEncap) {
		t.Fatal("Pause did not report the offload running once")
	}
	// The other direction goes on.
	if st := off.Stats(); ft.epoch != 0 || fd.epoch != 1 || !st.PausedEncap || st.PausedDecap ||
		st.Pauses != 1 || st.Epoch != 0 || st.EpochDecap != 1 {
		t.Fatalf("paused: table epochs %d (decap %d), stats %+v", ft.epoch, fd.epoch, st)
	}
	for range 3 {
		forwardOne(t, r, frame)
	}
	off.Invalidate()
	if len(ft.puts) != 1 || ft.epoch != 0 || fd.epoch != 2 {
		t.Fatalf("paused: %d puts, table epoch %d (decap %d)", len(ft.puts), ft.epoch, fd.epoch)
	}
	if err := off.Sweep(r.c); err != nil || len(ft.entries) != 0 {
		t.Fatalf("a sweep while paused left %d entries (%v)", len(ft.entries), err)
	}
	if off.Resume(OffloadDecap) || !off.Resume(OffloadEncap) || off.Resume(OffloadEncap) {
		t.Fatal("Resume did not report the offload paused once")
	}
	if st := off.Stats(); ft.epoch != 3 || fd.epoch != 3 || st.PausedEncap || st.PausedDecap || st.Epoch != 3 {
		t.Fatalf("resumed: table epoch %d (decap %d), stats %+v", ft.epoch, fd.epoch, st)
	}
	forwardOne(t, r, frame)
	if len(ft.puts) != 2 || ft.puts[1].Epoch != 3 {
		t.Fatalf("not offered again after Resume: %+v", ft.puts)
	}
}

// TestOffloadEpochWraps: in the epoch whose low 8 bits are 0 (what a flow
// memo slot keeps of it, offloadTag[uint8]), and in the one whose low 16
// bits are, a flow is still offered once, not on every packet.
func TestOffloadEpochWraps(t *testing.T) {
	for _, e := range []uint32{1 << 8, 1 << 16} { // a flow slot's tag is 8 bits, a delivery's 16 (offloadTag)
		ft := newFakeOffload()
		r, off := offloadRig(t, ft)
		off.gen = e - 1
		off.Invalidate()
		frame := siteFrame(t, innerSpec{src: hostA, dst: remote4, ttl: 9, payload: 20, sport: 7, dport: 9})
		for range 4 {
			forwardOne(t, r, frame)
		}
		if len(ft.puts) != 1 || ft.puts[0].Epoch != e {
			t.Fatalf("epoch %d: %d puts, want 1", off.Stats().Epoch, len(ft.puts))
		}
	}
}

// TestOffloadSweepLeavesInvalidate: a sweep walks the tables without the
// lock Invalidate takes, and judges each entry by the epoch current when
// it reaches it: an invalidation during the walk deletes the entries it
// ended and keeps those of its new epoch.
func TestOffloadSweepLeavesInvalidate(t *testing.T) {
	ft := newFakeOffload()
	off := newOffloadOn(t, ft)
	old, cur := [4]byte{10, 2, 0, 1}, [4]byte{10, 2, 0, 2}
	_ = ft.PutOffload(&ring.OffloadEntry{Dst: old, Epoch: 1})
	_ = ft.PutOffload(&ring.OffloadEntry{Dst: cur, Epoch: 2}) // put by a worker once epoch 2 started
	ft.during = func() {
		if !off.mu.TryLock() {
			t.Error("Sweep holds Offload.mu while it walks a table")
			return
		}
		off.mu.Unlock()
		off.Invalidate()
	}
	if err := off.Sweep(cache.New(cache.Config{BuildTemplate: defaultOuter().BuildTemplate})); err != nil {
		t.Fatal(err)
	}
	if _, ok := ft.entries[offloadKey{dst: netip.AddrFrom4(old)}]; ok || len(ft.entries) != 1 {
		t.Fatalf("after an invalidation during the sweep: %d entries, the old epoch's kept: %v", len(ft.entries), ok)
	}
}

// TestOffloadSweepKeepsFreshPuts: a flow offered again in a new epoch while
// a sweep walks the table is not put until the sweep has deleted its past
// epoch's entry (same key), so the sweep does not delete the new one; the
// worker keeps it queued and puts it after the sweep. In both directions.
func TestOffloadSweepKeepsFreshPuts(t *testing.T) {
	check := func(t *testing.T, r *rig, off *Offload, send func(), deleting *func(), puts func() int, entry func() (uint32, bool)) {
		t.Helper()
		send()
		send()
		if puts() != 1 {
			t.Fatalf("%d puts, want 1", puts())
		}
		off.Invalidate() // the entry is now a past epoch's: the sweep deletes its key
		*deleting = func() {
			send() // the flow's next packet: offered in epoch 2
			if puts() != 1 || r.w.offn != 1 {
				t.Errorf("during the sweep: %d puts, %d queued; want the offer queued", puts(), r.w.offn)
			}
		}
		if err := off.Sweep(r.c); err != nil {
			t.Fatal(err)
		}
		if _, ok := entry(); puts() != 1 || ok {
			t.Fatalf("after the sweep: %d puts, entry left: %v", puts(), ok)
		}
		*deleting = nil
		send() // the next step puts what waited
		if epoch, ok := entry(); !ok || epoch != 2 || puts() != 2 || r.w.offn != 0 {
			t.Fatalf("after the next packet: entry of epoch %d (%v), %d puts, %d queued", epoch, ok, puts(), r.w.offn)
		}
	}
	t.Run("encap", func(t *testing.T) {
		ft := newFakeOffload()
		r, off := offloadRig(t, ft)
		frame := siteFrame(t, innerSpec{src: hostA, dst: remote4, ttl: 9, payload: 20, sport: 7, dport: 9})
		key := offloadKey{dst: remote4, bkt: cache.SelectBucket(wire.FlowHash(frame[wire.EthernetLen:], 0))}
		check(t, r, off, func() { forwardOne(t, r, frame) }, &ft.deleting, func() int { return len(ft.puts) },
			func() (uint32, bool) {
				if e, ok := ft.entries[key]; ok {
					return e.e.Epoch, true
				}
				return 0, false
			})
	})
	t.Run("decap", func(t *testing.T) {
		fd := newFakeDecap()
		r, off := decapRig(t, fd, 5)
		frame := decapFrame(t, 60, 50, 0)
		key := decapKey{iid: iidSite, dst: hostA}
		check(t, r, off, func() { deliverOne(t, r, frame) }, &fd.deleting, func() int { return len(fd.puts) },
			func() (uint32, bool) { e, ok := fd.entries[key]; return e.Epoch, ok })
	})
}

// TestOffloadFlows: Flows lists what the tables of both directions hold,
// the busiest first, each with its instance-ID, EID, bucket, RLOC, outer
// version (decap), egress interface, packets and whether it is of the
// current epoch; a limit cuts
// the list, not the count.
func TestOffloadFlows(t *testing.T) {
	ft, fd, _, off, _ := offeredRig(t)
	busy := ft.entries[keyOf(&ft.puts[0])]
	busy.hits = 40
	_ = ft.PutOffload(&ring.OffloadEntry{Dst: [4]byte{10, 2, 0, 9}, Bucket: 3, Epoch: 9, Ifindex: 7, V6: true,
		Front: [ring.OffloadFront6]byte{wire.EthernetLen + 24: 0x20, wire.EthernetLen + 25: 0x01, wire.EthernetLen + 39: 5}})
	_ = fd.PutDecap(&ring.DecapEntry{IID: 9, Dst: [4]byte{10, 1, 0, 7}, V6: true, RLOC6: rlocLocal6.As16(), Epoch: 1, Ifindex: 5})
	fl, total, err := off.Flows(10)
	if err != nil || total != 3 || len(fl) != 3 {
		t.Fatalf("%d of %d flows (%v)", len(fl), total, err)
	}
	want := []OffloadFlow{
		{Direction: OffloadEncap, IID: iidSite, EID: remote4, Bucket: busy.e.Bucket, RLOC: rlocRemote4, Ifindex: 7, Epoch: 1, Current: true, Packets: 40},
		{Direction: OffloadEncap, IID: iidSite, EID: netip.MustParseAddr("10.2.0.9"), Bucket: 3, RLOC: netip.MustParseAddr("2001::5"), Ifindex: 7, Epoch: 9},
		{Direction: OffloadDecap, IID: 9, EID: netip.MustParseAddr("10.1.0.7"), RLOC: rlocLocal6, Ifindex: 5, Over6: true, Epoch: 1, Current: true},
	}
	if !slices.Equal(fl, want) {
		t.Fatalf("flows\n%+v\nwant\n%+v", fl, want)
	}
	if fl, total, err = off.Flows(1); err != nil || total != 3 || !slices.Equal(fl, want[:1]) {
		t.Fatalf("limit 1: %+v of %d (%v)", fl, total, err)
	}
	off.Pause(OffloadEncap) // paused: nothing is current in that direction
	if fl, _, _ = off.Flows(10); fl[0].Current || !fl[2].Current {
		t.Fatalf("paused encap: %+v", fl)
	}
}

// TestOffloadKernelMatchesWorker runs the kernel's program (root) over a
// flow's packet with the entry the worker offered, and compares what it
// sends with what the worker sent for the same packet: the same bytes but
// for the outer IP ID, header checksum and nonce, which both draw.
func TestOffloadKernelMatchesWorker(t *testing.T) {
	prog, err := xsk.LoadProgram(xsk.ProgramConfig{Mode: xsk.ModeSite})
	testkit.Require(t, "loading the XDP steering program (root, BPF)", err)
	defer prog.Close()
	r, _ := offloadRig(t, prog)
	for _, spec := range []innerSpec{
		{src: hostA, dst: remote4, ttl: 9, tos: 0xb8, payload: 18, sport: 7, dport: 9},
		{src: hostA, dst: remote4, ttl: 64, payload: 1000, sport: 1234, dport: 80, df: true},
		{src: hostA, dst: netip.MustParseAddr("10.2.77.5"), ttl: 2, payload: 0, sport: 1, dport: 2},
		{src: hostA, dst: remote4v6, ttl: 9, tos: 0xb8, payload: 18, sport: 7, dport: 9}, // an IPv6 RLOC
		{src: hostA, dst: remote4v6, ttl: 64, payload: 1000, sport: 1234, dport: 80, df: true},
		// IPv6 EIDs, through an IPv4 and an IPv6 RLOC.
		{src: hostA6, dst: remote6, ttl: 9, tos: 0xb8, payload: 18, sport: 7, dport: 9},
		{src: hostA6, dst: netip.MustParseAddr("2001:db8:2::99"), ttl: 2, payload: 1000, sport: 1234, dport: 80},
		{src: hostA6, dst: remote6v6, ttl: 64, tos: 0x2e, payload: 0, sport: 1, dport: 2},
	} {
		rloc6 := spec.dst == remote4v6 || spec.dst == remote6v6
		drawn := []int{18, 19, 24, 25, 43, 44, 45} // IP ID, checksum, nonce
		if rloc6 {
			drawn = []int{63, 64, 65} // the nonce after an outer IPv6 header
		}
		kernel := redirectMatches(t, prog, siteFrame(t, spec), func(b []byte) []byte { return forwardOne(t, r, b) }, drawn)
		if !rloc6 && !wire.IPv4(kernel[wire.EthernetLen:]).ChecksumValid() {
			t.Fatalf("%+v: kernel's outer checksum is wrong", spec)
		} else if rloc6 && (kernel[12] != 0x86 || kernel[13] != 0xdd) {
			t.Fatalf("%+v: kernel sent EtherType % x", spec, kernel[12:14])
		}
	}
}

// TestOffloadOffersIPv6EIDs: a flow to an IPv6 EID is offered on the first
// packet the worker encapsulates through a resolved next hop (the flow
// memo slot it fills holds the offer's tag), once per epoch and bucket,
// with the front the worker sent; through an IPv6 RLOC too. A flow memo
// hit of an earlier epoch is not taken, so the flow is offered again.
func TestOffloadOffersIPv6EIDs(t *testing.T) {
	ft := newFakeOffload()
	r, off := offloadRig(t, ft)
	for i, c := range []struct {
		dst  netip.Addr
		v6   bool
		flen int
	}{{remote6, false, ring.OffloadFront}, {remote6v6, true, ring.OffloadFront6}} {
		frame := siteFrame(t, innerSpec{src: hostA6, dst: c.dst, ttl: 9, tos: 0x28, payload: 20, sport: 7, dport: 9})
		got := forwardOne(t, r, frame)
		if len(ft.puts) != 2*i+1 {
			t.Fatalf("%v: %d puts after the first packet, want %d", c.dst, len(ft.puts), 2*i+1)
		}
		e := ft.puts[len(ft.puts)-1]
		hash := wire.FlowHash(frame[wire.EthernetLen:], 0)
		if !e.InnerV6 || e.Dst6 != c.dst.As16() || e.Dst != [4]byte{} || e.Bucket != cache.SelectBucket(hash) || e.V6 != c.v6 ||
			e.Epoch != off.Stats().Epoch || e.Ifindex != 7 || string(e.Front[:wire.EthernetLen]) != string(got[:wire.EthernetLen]) ||
			int(e.MaxInner) != 1500-(c.flen-wire.EthernetLen) {
			t.Fatalf("%v: entry %+v", c.dst, e)
		}
		forwardOne(t, r, frame)
		if len(ft.puts) != 2*i+1 {
			t.Fatalf("%v: offered again in the same epoch: %d puts", c.dst, len(ft.puts))
		}
		off.Invalidate()
		forwardOne(t, r, frame)
		if len(ft.puts) != 2*i+2 || ft.puts[len(ft.puts)-1].Epoch != off.Stats().Epoch {
			t.Fatalf("%v: not offered again in the new epoch: %d puts", c.dst, len(ft.puts))
		}
	}
	// Paused: nothing is offered.
	off.Pause(OffloadEncap)
	forwardOne(t, r, siteFrame(t, innerSpec{src: hostA6, dst: remote6, ttl: 9, payload: 20, sport: 8, dport: 9}))
	if len(ft.puts) != 4 {
		t.Fatalf("paused: %d puts", len(ft.puts))
	}
}

// redirectMatches has the worker send frame three times (send: learn,
// offer, then the frame compared), runs prog over it in the kernel,
// requires a redirect and compares what the kernel sent with the worker's
// last frame (compareKernel, the bytes at drawn aside); it returns the
// kernel's frame.
func redirectMatches(t *testing.T, prog *xsk.Program, frame []byte, send func([]byte) []byte, drawn []int) []byte {
	t.Helper()
	var worker []byte
	for range 3 {
		worker = send(frame)
	}
	act, kernel, err := prog.TestRun(frame)
	if err != nil {
		t.Fatal(err)
	}
	if act != 4 { // XDP_REDIRECT
		t.Fatalf("frame % x: action %d, want XDP_REDIRECT", frame, act)
	}
	compareKernel(t, act, frame, kernel, [][]byte{worker}, drawn)
	return kernel
}

// TestOffloadWaitsForEmptyRing: a flow offered while more of the port's
// packets wait on its rx ring is put only once the ring is empty, so none of
// the flow's packets still waiting there leaves after the kernel's first.
func TestOffloadWaitsForEmptyRing(t *testing.T) {
	ft := newFakeOffload()
	r, _ := offloadRig(t, ft)
	frame := siteFrame(t, innerSpec{src: hostA, dst: remote4, ttl: 9, payload: 20, sport: 7, dport: 9})
	r.fromSite(frame) // fills the flow memo
	drain(r.core)
	for range ring.IdealBatchSize + 5 {
		if !r.site.Inject(frame) {
			t.Fatal("inject")
		}
	}
	r.w.Step() // a batch of flow memo hits: the flow is offered, 5 packets still wait
	if len(ft.puts) != 0 || r.w.offn != 1 {
		t.Fatalf("put with packets waiting on the ring: %d puts, %d queued", len(ft.puts), r.w.offn)
	}
	r.w.Step() // the last 5: the ring is empty after them
	if len(ft.puts) != 1 || r.w.offn != 0 {
		t.Fatalf("not put once the ring was empty: %d puts, %d queued", len(ft.puts), r.w.offn)
	}
	if n := len(drain(r.core)); n != ring.IdealBatchSize+5 {
		t.Fatalf("%d frames out", n)
	}
	// A ring that never empties does not hold the offer back for ever.
	ft2 := newFakeOffload()
	r2, _ := offloadRig(t, ft2)
	r2.fromSite(frame)
	drain(r2.core)
	for step := 0; step <= offloadWait && len(ft2.puts) == 0; step++ {
		for range ring.IdealBatchSize + 1 {
			if !r2.site.Inject(frame) {
				t.Fatal("inject")
			}
		}
		r2.w.Step()
		drain(r2.core)
	}
	if len(ft2.puts) != 1 {
		t.Fatalf("%d puts after %d steps with a busy ring", len(ft2.puts), offloadWait+1)
	}
}

// fuzzFrame4 builds a site frame of an IPv4 packet without options from
// hostA to 10.2.dst3.dst4 (mapped to an IPv4 RLOC when dst3 < 128, else
// 10.3.x.x: an IPv6 RLOC): the header fields given, an 8-byte transport
// header holding the ports, plen payload bytes and pad bytes of Ethernet
// padding; then the byte at `at` xored with x (x 0: none), and the header
// checksum made right again when fix.
func fuzzFrame4(dst3, dst4, ttl, tos, proto byte, frag, sport, dport, plen uint16, pad uint8, at uint16, x byte, fix bool) []byte {
	n := wire.IPv4MinLen + 8 + int(plen%1600)
	b := make([]byte, wire.EthernetLen+n+int(pad%64))
	copy(b[0:12], []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2})
	b[12], b[13] = 0x08, 0x00
	ip := b[wire.EthernetLen:]
	ip[0], ip[1] = 0x45, tos
	binary.BigEndian.PutUint16(ip[2:], uint16(n))
	binary.BigEndian.PutUint16(ip[6:], frag)
	ip[8], ip[9] = ttl, proto
	a := hostA.As4()
	copy(ip[12:16], a[:])
	net2 := byte(2)
	if dst3 >= 128 {
		net2 = 3
	}
	copy(ip[16:20], []byte{10, net2, dst3, dst4})
	binary.BigEndian.PutUint16(ip[20:], sport)
	binary.BigEndian.PutUint16(ip[22:], dport)
	fixIPv4Sum(ip)
	flipByte(b, at, x, fix)
	return b
}

// flipByte changes the byte of frame b at at (modulo its length) by x
// (nothing when x is 0) and, with fix, makes the checksum of the IPv4
// header after the Ethernet header good again.
func flipByte(b []byte, at uint16, x byte, fix bool) {
	if x == 0 {
		return
	}
	b[int(at)%len(b)] ^= x
	if fix {
		fixIPv4Sum(b[wire.EthernetLen:])
	}
}

// fixIPv4Sum writes the checksum of IPv4 header ip.
func fixIPv4Sum(ip []byte) {
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^wire.Checksum(ip[:wire.IPv4MinLen], 0))
}

// stepOut injects b on in, runs one step and returns what left on out,
// after draining the other link.
func (r *rig) stepOut(t testing.TB, in, out *mem.Port, b []byte) [][]byte {
	t.Helper()
	if !in.Inject(b) {
		t.Fatal("inject failed")
	}
	r.w.Step()
	for _, p := range []*mem.Port{r.site, r.core} {
		if p != out {
			drain(p)
		}
	}
	return drain(out)
}

// fuzzFrame6 is fuzzFrame4 for an IPv6 packet from hostA6 to
// 2001:db8:2::dst3:dst4 (2001:db8:3:: from dst3 128 on: an IPv6 RLOC), with
// hop limit ttl, traffic class tos and next header proto.
func fuzzFrame6(dst3, dst4, ttl, tos, proto byte, sport, dport, plen uint16, pad uint8, at uint16, x byte) []byte {
	pl := 8 + int(plen%1600)
	b := make([]byte, wire.EthernetLen+wire.IPv6Len+pl+int(pad%64))
	copy(b[0:12], []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2})
	b[12], b[13] = 0x86, 0xdd
	ip := b[wire.EthernetLen:]
	binary.BigEndian.PutUint32(ip[0:], 6<<28|uint32(tos)<<20|0xbeef)
	binary.BigEndian.PutUint16(ip[4:], uint16(pl))
	ip[6], ip[7] = proto, ttl
	a := hostA6.As16()
	copy(ip[8:24], a[:])
	net := byte(2)
	if dst3 >= 128 {
		net = 3
	}
	copy(ip[24:40], []byte{0x20, 0x01, 0x0d, 0xb8, 0, net, 13: 0, 14: dst3, 15: dst4})
	binary.BigEndian.PutUint16(ip[40:], sport)
	binary.BigEndian.PutUint16(ip[42:], dport)
	flipByte(b, at, x, false)
	return b
}

// FuzzOffloadMatchesWorker runs the kernel's program (root) over site frames
// after the worker has seen each twice (so a flow it can offload has its
// entry), and the worker over the same frame once more: a frame the program
// redirects must be the one frame the worker sends, byte for byte but for
// the outer IP ID, checksum and nonce; a frame it passes must be left as it
// was. The frames are IPv4 packets (fuzzFrame4) or, with eid6, IPv6 ones
// (fuzzFrame6) built from the fields fuzzed, most of them ones the program
// takes, then one byte changed; half go behind an IPv6 RLOC.
func FuzzOffloadMatchesWorker(f *testing.F) {
	f.Add(byte(0), byte(9), byte(64), byte(0), byte(wire.ProtoUDP), uint16(0), uint16(7), uint16(9), uint16(20), uint8(0), uint16(0), byte(0), false, false)
	f.Add(byte(1), byte(1), byte(2), byte(0xb8), byte(wire.ProtoTCP), uint16(0x4000), uint16(1024), uint16(80), uint16(1428), uint8(0), uint16(0), byte(0), false, false)
	f.Add(byte(0), byte(3), byte(1), byte(0), byte(wire.ProtoUDP), uint16(0), uint16(1), uint16(2), uint16(10), uint8(20), uint16(0), byte(0), false, false)
	f.Add(byte(0), byte(4), byte(30), byte(3), byte(wire.ProtoUDP), uint16(0x2000), uint16(1), uint16(2), uint16(100), uint8(0), uint16(16), byte(0x40), true, false)
	f.Add(byte(200), byte(4), byte(30), byte(0), byte(1), uint16(0), uint16(1), uint16(2), uint16(30), uint8(0), uint16(0), byte(0), false, false)
	f.Add(byte(130), byte(9), byte(64), byte(0x2e), byte(wire.ProtoTCP), uint16(0x4000), uint16(443), uint16(9), uint16(1200), uint8(6), uint16(0), byte(0), false, false)
	f.Add(byte(0), byte(9), byte(64), byte(0), byte(wire.ProtoUDP), uint16(0), uint16(7), uint16(9), uint16(20), uint8(0), uint16(0), byte(0), false, true)
	f.Add(byte(1), byte(1), byte(2), byte(0xb8), byte(wire.ProtoTCP), uint16(0x4000), uint16(1024), uint16(80), uint16(1428), uint8(0), uint16(0), byte(0), false, true)
	f.Add(byte(0), byte(3), byte(1), byte(0), byte(wire.ProtoUDP), uint16(0), uint16(1), uint16(2), uint16(10), uint8(20), uint16(0), byte(0), false, true)
	f.Add(byte(200), byte(4), byte(30), byte(0), byte(1), uint16(0), uint16(1), uint16(2), uint16(30), uint8(0), uint16(0), byte(0), false, true)
	f.Add(byte(130), byte(9), byte(64), byte(0x2e), byte(wire.ProtoTCP), uint16(0x4000), uint16(443), uint16(9), uint16(1200), uint8(6), uint16(0), byte(0), false, true)
	prog, err := xsk.LoadProgram(xsk.ProgramConfig{Mode: xsk.ModeSite})
	testkit.Require(f, "loading the XDP steering program (root, BPF)", err)
	f.Cleanup(func() { prog.Close() })
	r, _ := offloadRig(f, prog)
	step := func(t *testing.T, b []byte) [][]byte { return r.stepOut(t, r.site, r.core, b) } // ICMP errors to the site dropped
	f.Fuzz(func(t *testing.T, dst3, dst4, ttl, tos, proto byte, frag, sport, dport, plen uint16, pad uint8, at uint16, x byte, fix, eid6 bool) {
		b := fuzzFrame4(dst3, dst4, ttl, tos, proto, frag, sport, dport, plen, pad, at, x, fix)
		if eid6 {
			b = fuzzFrame6(dst3, dst4, ttl, tos, proto, sport, dport, plen, pad, at, x)
		}
		step(t, b) // the flow memo learns the flow
		step(t, b) // and offers it
		act, kernel, err := prog.TestRun(b)
		if err != nil {
			t.Fatal(err)
		}
		worker := step(t, b)
		v4 := len(kernel) > wire.EthernetLen+wire.IPv4MinLen && kernel[12] == 0x08
		drawn := []int{63, 64, 65} // the nonce after an outer IPv6 header (10.3/16)
		if v4 {
			drawn = []int{18, 19, 24, 25, 43, 44, 45}
		}
		compareKernel(t, act, b, kernel, worker, drawn)
		if act == 4 && v4 && !wire.IPv4(kernel[wire.EthernetLen:]).ChecksumValid() {
			t.Fatalf("frame % x: the kernel's outer checksum is wrong", b)
		}
	})
}

// compareKernel checks what the kernel's program did with frame b (act,
// leaving kernel) against what the worker sent for it: a redirected frame
// must be the worker's one frame, byte for byte but for the bytes at drawn
// (drawn at random by both), and a passed frame must be b unchanged.
func compareKernel(t *testing.T, act uint32, b, kernel []byte, worker [][]byte, drawn []int) {
	t.Helper()
	switch act {
	case 4: // XDP_REDIRECT
		if len(worker) != 1 || len(worker[0]) != len(kernel) {
			t.Fatalf("frame % x: kernel redirected %d bytes, worker sent %d frames", b, len(kernel), len(worker))
		}
		k, w := append([]byte(nil), kernel...), append([]byte(nil), worker[0]...)
		for _, i := range drawn {
			k[i], w[i] = 0, 0
		}
		if string(k) != string(w) {
			t.Fatalf("frame % x\nkernel % x\nworker % x", b, kernel, worker[0])
		}
	case 2: // XDP_PASS: to the socket, as it came
		if string(kernel) != string(b) {
			t.Fatalf("passed frame changed:\n% x\n% x", b, kernel)
		}
	default:
		t.Fatalf("action %d for frame % x", act, b)
	}
}

// mapChangeRig is offloadRig with the map-cache wired as rlocd wires it:
// its publishes go to Offload.MapChanged.
func mapChangeRig(t *testing.T) (*fakeOffload, *rig, *Offload) {
	t.Helper()
	ft := newFakeOffload()
	off := newOffloadOn(t, ft)
	r := newRig(t, func(c *Config) {
		c.Offload = off
		c.Ports[0].Offload = ft
		c.Ports[1].Ifindex = 7
		c.Cache = cache.New(cache.Config{BuildTemplate: c.Outer.BuildTemplate, Published: off.MapChanged})
	})
	return ft, r, off
}

// TestOffloadMapChanges: a map-cache change deletes the kernel entries of
// the offloaded flows it covers (same instance-ID, destination in a
// changed prefix) and no others, without a new epoch, before the writer
// goes on; the flow's next packet goes by the new mapping and is offered
// anew. An offer a worker made from the cache before a change is dropped
// and made again. A batch too large to look through starts an epoch.
func TestOffloadMapChanges(t *testing.T) {
	ft, r, off := mapChangeRig(t)
	frame := siteFrame(t, innerSpec{src: hostA, dst: remote4, ttl: 9, payload: 20, sport: 7, dport: 9})
	forwardOne(t, r, frame)
	forwardOne(t, r, frame)
	if len(ft.puts) != 1 {
		t.Fatalf("%d puts after the flow's first two packets, want 1", len(ft.puts))
	}
	key, e0, b0 := keyOf(&ft.puts[0]), ft.epoch, off.Stats().MapBatches // the rig's own mappings were a batch
	mapping := func(iid uint32, p string, rloc netip.Addr) []StaticMapping {
		return []StaticMapping{{IID: iid, Prefix: netip.MustParsePrefix(p), RLOCs: []StaticRLOC{{Addr: rloc, Weight: 1}}}}
	}
	r.install(mapping(iidSite, "10.200.0.0/24", rlocRemote4)) // covers no offloaded flow
	r.install(mapping(iidSite+1, "10.2.0.0/24", rlocOther4))  // another instance-ID's
	if ft.epoch != e0 || len(ft.deletes) != 0 || ft.entries[key] == nil {
		t.Fatalf("after changes that cover nothing offloaded: epoch %d (was %d), deletes %v", ft.epoch, e0, ft.deletes)
	}
	r.install(mapping(iidSite, "10.2.0.0/24", rlocOther4)) // more specific than 10.2.0.0/16: the flow's
	if ft.epoch != e0 || len(ft.deletes) != 1 || ft.deletes[0] != key || ft.entries[key] != nil {
		t.Fatalf("after a change covering the flow: epoch %d (was %d), deletes %v, want %v alone", ft.epoch, e0, ft.deletes, key)
	}
	if st := off.Stats(); st.MapBatches != b0+3 || st.MapDeleted != 1 || st.Invalidations != 0 {
		t.Fatalf("stats %+v: want 3 batches handled, 1 entry deleted, no epoch", st)
	}
	out := forwardOne(t, r, frame) // the worker's, by the new mapping
	if dst := netip.AddrFrom4([4]byte(out[wire.EthernetLen+16 : wire.EthernetLen+20])); dst != rlocOther4 {
		t.Fatalf("after the change the worker sent the flow to %v, want %v", dst, rlocOther4)
	}
	forwardOne(t, r, frame)
	if e := ft.entries[key]; e == nil || e.e.OuterDst() != rlocOther4 {
		t.Fatalf("the flow was not offered again with its new RLOC: %+v", e)
	}

	// An offer queued while packets wait on the ring, then a change that
	// covers nothing: the offer was made from the cache before it, so it is
	// dropped; the flow's next packet offers it again.
	staleOffer(t, r, ft, func() { r.install(mapping(iidSite, "10.201.0.0/24", rlocRemote4)) })

	// A bulk batch of 302 keys: only the entry one covers goes, without an
	// epoch.
	otherDst := netip.MustParseAddr("10.2.9.9")
	var otherKey offloadKey
	for k := range ft.entries {
		if k.dst == otherDst {
			otherKey = k
		}
	}
	if !otherKey.dst.IsValid() {
		t.Fatalf("no entry for %v: %v", otherDst, ft.entries)
	}
	big := mapping(iidSite, netip.PrefixFrom(otherDst, 32).String(), rlocOther4)
	for i := range 300 {
		big = append(big, mapping(iidSite, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 210, byte(i >> 8), byte(i)}), 32).String(), rlocRemote4)...)
	}
	big = append(big, mapping(iidSite+1, "10.2.0.0/16", rlocOther4)...) // another instance-ID's: covers nothing here
	deleted, dels := off.Stats().MapDeleted, len(ft.deletes)
	r.install(big)
	if st := off.Stats(); ft.epoch != e0 || st.Invalidations != 0 || st.MapDeleted != deleted+1 || len(ft.deletes) != dels+1 || ft.deletes[dels] != otherKey || ft.entries[key] == nil {
		t.Fatalf("a batch of %d keys: epoch %d (was %d), stats %+v, deletes %v: want %v's alone deleted, no epoch", len(big), ft.epoch, e0, st, ft.deletes[dels:], otherKey)
	}

	// Too many keys at once: an epoch, as before.
	var huge []cache.Key
	for i := range mapChangedWork + 1 {
		huge = append(huge, cache.IPKey(iidSite, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 211, byte(i >> 8), byte(i)}), 32)))
	}
	off.MapChanged(huge)
	if ft.epoch == e0 || off.Stats().Invalidations != 1 {
		t.Fatalf("a batch of %d keys: epoch %d (was %d), %d invalidations, want a new epoch", len(huge), ft.epoch, e0, off.Stats().Invalidations)
	}
}

// TestOffloadMapChangesRandom runs a seeded random mix of flows offered to
// the kernel and map-cache changes (inserts, replacements and deletes of
// prefixes from /16 to /32, some covering the flows, some not) through the
// ITR rig, and checks after every step that each entry the kernel holds
// sends its flow to the RLOC the map-cache maps it to now: no change leaves
// an entry stale, whatever it covers.
func TestOffloadMapChangesRandom(t *testing.T) {
	ft, r, off := mapChangeRig(t)
	rng := rand.New(rand.NewPCG(39, 1))
	rlocs := []netip.Addr{rlocRemote4, rlocOther4}
	eid := func() netip.Addr { return netip.AddrFrom4([4]byte{10, 2, byte(rng.IntN(3)), byte(1 + rng.IntN(6))}) }
	prefix := func() netip.Prefix {
		a := eid()
		return netip.PrefixFrom(a, []int{16, 24, 30, 32}[rng.IntN(4)]).Masked()
	}
	frames := map[netip.Addr][]byte{}
	held := 0
	for step := range 400 {
		switch x := rng.IntN(10); {
		case x < 5: // a flow's packets: offered on its second
			dst := eid()
			f, ok := frames[dst]
			if !ok {
				f = siteFrame(t, innerSpec{src: hostA, dst: dst, ttl: 9, payload: 20, sport: 7, dport: 9})
				frames[dst] = f
			}
			for range 2 {
				r.fromSite(f)
				r.w.Step()
				drain(r.core)
			}
		case x < 7:
			r.install([]StaticMapping{{IID: iidSite, Prefix: prefix(), RLOCs: []StaticRLOC{{Addr: rlocs[rng.IntN(2)], Weight: 1}}}})
		case x < 8: // a bulk batch: a few of the flows' prefixes among many others
			var ms []StaticMapping
			for i := range 300 {
				p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 220, byte(i >> 8), byte(i)}), 32)
				if i%64 == 0 {
					p = prefix()
				}
				ms = append(ms, StaticMapping{IID: iidSite, Prefix: p, RLOCs: []StaticRLOC{{Addr: rlocs[rng.IntN(2)], Weight: 1}}})
			}
			r.install(ms)
		default:
			p := prefix()
			if p.Bits() == 16 {
				p = netip.MustParsePrefix("10.2.0.0/24") // keep the rig's /16: its flows stay mapped
			}
			r.c.Apply([]cache.Update{{Key: cache.IPKey(iidSite, p), Delete: true}})
		}
		held = max(held, len(ft.entries))
		for k, e := range ft.entries {
			got := e.e.OuterDst()
			m, ok := r.c.Lookup(iidSite, k.dst)
			if !ok || m.Negative() || len(m.RLOCs()) != 1 || m.RLOCs()[0].Addr != got {
				t.Fatalf("step %d: the kernel sends %v to %v, the map-cache says %v", step, k.dst, got, m)
			}
		}
	}
	st := off.Stats()
	t.Logf("%d puts, %d entries left; %+v", len(ft.puts), len(ft.entries), st)
	if st.MapDeleted == 0 || len(ft.puts) < 20 || held < 5 || st.Invalidations != 0 {
		t.Fatalf("the run deleted %d entries, put %d (at most %d held), started %d epochs: want deletes, puts and no epoch",
			st.MapDeleted, len(ft.puts), held, st.Invalidations)
	}
}

// TestOffloadMapChangesConcurrent is TestOffloadMapChangesRandom with the
// worker stepping in its own goroutine while the map-cache changes under
// it. As a kernel would, the table takes the packets of the flows it holds
// an entry for, so a wrong entry is never mended by the worker. Once both
// stop, every entry the kernel holds must send its flow to the RLOC the
// map-cache maps it to, whatever the order in which the worker's offers
// and the changes met.
func TestOffloadMapChangesConcurrent(t *testing.T) {
	ft, r, off := mapChangeRig(t)
	var fs [][]byte
	var dsts []netip.Addr
	for i := range 12 {
		dsts = append(dsts, netip.AddrFrom4([4]byte{10, 2, byte(i % 3), byte(1 + i)}))
		fs = append(fs, siteFrame(t, innerSpec{src: hostA, dst: dsts[i], ttl: 9, payload: 20, sport: 7, dport: 9}))
	}
	stop, after := runSteps(func(i int) {
		// The kernel takes the packets of the flows it holds an entry
		// for: the worker sees the others'.
		held := map[netip.Addr]bool{}
		off.puts.RLock()
		for k := range ft.entries {
			held[k.dst] = true
		}
		off.puts.RUnlock()
		for j := range 8 {
			if !held[dsts[(i+j)%len(fs)]] {
				r.site.Inject(fs[(i+j)%len(fs)])
			}
		}
		r.w.Step()
		drain(r.core)
	})
	// check holds puts (no worker puts meanwhile): once a change returned,
	// every entry must go where the map-cache says.
	check := func(when string) {
		off.puts.Lock()
		defer off.puts.Unlock()
		for k, e := range ft.entries {
			got := e.e.OuterDst()
			if m, ok := r.c.Lookup(iidSite, k.dst); !ok || len(m.RLOCs()) != 1 || m.RLOCs()[0].Addr != got {
				t.Fatalf("%s: the kernel sends %v to %v, the map-cache says %v", when, k.dst, got, m)
			}
		}
	}
	after(20) // every flow offered once before the changes start
	rng := rand.New(rand.NewPCG(39, 2))
	rlocs := []netip.Addr{rlocRemote4, rlocOther4}
	for i := range 1000 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 2, byte(rng.IntN(3)), byte(1 + rng.IntN(12))}), []int{24, 24, 30, 32}[rng.IntN(4)]).Masked()
		if rng.IntN(4) == 0 {
			r.c.Apply([]cache.Update{{Key: cache.IPKey(iidSite, p), Delete: true}})
		} else {
			r.install([]StaticMapping{{IID: iidSite, Prefix: p, RLOCs: []StaticRLOC{{Addr: rlocs[rng.IntN(2)], Weight: 1}}}})
		}
		after(rng.IntN(2)) // the changes meet the worker's offers at every point of its steps
		check(fmt.Sprintf("change %d", i))
	}
	stop()
	check("as the run stopped")
	st := off.Stats()
	t.Logf("%d puts, %d entries left, %d offers dropped as stale; %+v", len(ft.puts), len(ft.entries), r.w.Extra(ExtraOffloadStale), st)
	if len(ft.puts) == 0 || st.MapBatches == 0 {
		t.Fatalf("%d puts, %d batches handled: the run raced nothing", len(ft.puts), st.MapBatches)
	}
}

// TestOffloadMapChangesOverflow: a worker that put more entries than its
// record holds between two map-cache batches (livePending) leaves the
// index short, so the next batch starts an epoch; the one after is handled
// without one again.
func TestOffloadMapChangesOverflow(t *testing.T) {
	ft, r, off := mapChangeRig(t)
	p, ot := r.w.livePend, r.w.ports[0].otab
	if p == nil || ot == nil {
		t.Fatal("no record of the worker's puts")
	}
	for i := range p.keys { // as if the worker had put that many since the last batch
		p.keys[i] = pendingKey{t: ot, iid: iidSite, k: offloadKey{dst: netip.AddrFrom4([4]byte{10, 99, byte(i >> 8), byte(i)})}}
	}
	p.n = len(p.keys)
	frame := siteFrame(t, innerSpec{src: hostA, dst: remote4, ttl: 9, payload: 20, sport: 7, dport: 9})
	forwardOne(t, r, frame)
	forwardOne(t, r, frame) // put, but past the record's end
	if len(ft.puts) != 1 || !p.over {
		t.Fatalf("%d puts, record overflowed %v", len(ft.puts), p.over)
	}
	e0 := ft.epoch
	unrelated := func(p string) []StaticMapping {
		return []StaticMapping{{IID: iidSite, Prefix: netip.MustParsePrefix(p), RLOCs: []StaticRLOC{{Addr: rlocRemote4, Weight: 1}}}}
	}
	r.install(unrelated("10.200.0.0/24"))
	if ft.epoch == e0 || off.Stats().Invalidations != 1 {
		t.Fatalf("after an overflow: epoch %d (was %d), %d invalidations: want a new epoch", ft.epoch, e0, off.Stats().Invalidations)
	}
	e1 := ft.epoch
	r.install(unrelated("10.201.0.0/24"))
	if ft.epoch != e1 || off.Stats().Invalidations != 1 || p.n != 0 || p.over {
		t.Fatalf("the next batch: epoch %d (was %d), %d invalidations, record %d over %v", ft.epoch, e1, off.Stats().Invalidations, p.n, p.over)
	}
}

// hopsRig is a rig whose worker offloads both directions to fake tables
// (the site's encap, the core's decap) of an Offload that follows the
// rig's next-hop table (NextHopsChanged).
func hopsRig(t *testing.T) (*rig, *fakeOffload, *fakeDecap, *Offload) {
	t.Helper()
	ft, fd := newFakeOffload(), newFakeDecap()
	off := newOffloadOn(t, ft)
	if err := off.AddDecap(fd); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(c *Config) {
		c.Offload = off
		c.Ports[0].Offload, c.Ports[0].Ifindex = ft, 10 // as testNextHops' links
		c.Ports[1].Decap, c.Ports[1].Ifindex = fd, 20
	})
	r.nh.OnStore(off.NextHopsChanged)
	return r, ft, fd, off
}

// TestOffloadNeighbourLost: a next-hop snapshot that lost neighbours alone
// (nexthop.Snapshot.Lost) deletes the kernel entries, of both directions,
// sent to a lost MAC out of its interface and no others, without an epoch;
// the flow's next packet goes to the neighbour's new MAC and is offered
// anew with it. An offer a worker made from an older snapshot is dropped
// and made again. A walk of a table that fails starts an epoch; a snapshot
// that may change any adjacency but changed none of the entries' is walked
// and deletes nothing.
func TestOffloadNeighbourLost(t *testing.T) {
	r, ft, fd, off := hopsRig(t)
	enc := siteFrame(t, innerSpec{src: hostA, dst: remote4, ttl: 9, payload: 20, sport: 7, dport: 9})
	dec4, dec6 := decapFrameWith(t, false, false, 64, 9, 0), decapFrameWith(t, false, true, 64, 9, 0)
	for range 2 {
		forwardOne(t, r, enc)
		deliverOne(t, r, dec4)
		deliverOne(t, r, dec6)
	}
	if len(ft.entries) != 1 || len(fd.entries) != 2 {
		t.Fatalf("%d encap and %d decap entries after the flows' first packets, want 1 and 2", len(ft.entries), len(fd.entries))
	}
	k4 := decapKey{iidSite, hostA, false}
	e0, d0 := ft.epoch, fd.epoch
	check := func(what string, encap, decap int, batches, deleted uint64) {
		t.Helper()
		st := off.Stats()
		if ft.epoch != e0 || fd.epoch != d0 || st.Invalidations != 0 || len(ft.entries) != encap || len(fd.entries) != decap ||
			st.HopBatches != batches || st.HopDeleted != deleted {
			t.Fatalf("%s: epochs %d and %d (were %d and %d), %d encap and %d decap entries (want %d and %d), stats %+v (want %d batches, %d deleted)",
				what, ft.epoch, fd.epoch, e0, d0, len(ft.entries), len(fd.entries), encap, decap, st, batches, deleted)
		}
	}

	// hostA's MAC on the core interface: no entry is sent there.
	r.nh.Store(testNextHops().MarkLost([]nexthop.LinkDest{{IfIndex: 20, MAC: macHostA}}))
	check("a MAC lost on another interface", 1, 2, 1, 0)

	// hostA moves to a new MAC: its delivery's entry goes, the others stay.
	macNew := [6]byte{0x02, 0, 0, 0, 0, 0xb1}
	moved := func(ns []nexthop.Neighbour) []nexthop.Neighbour {
		for i := range ns {
			if ns[i].Addr == hostA {
				ns[i].MAC = macNew
			}
		}
		return ns
	}
	r.nh.Store(nextHopsWith(moved).MarkLost([]nexthop.LinkDest{{IfIndex: 10, MAC: macHostA}}))
	check("hostA's MAC lost", 1, 1, 2, 1)
	if _, ok := fd.entries[k4]; ok {
		t.Fatal("the delivery to hostA's old MAC is still offloaded")
	}
	if out := deliverOne(t, r, dec4); [6]byte(out[:6]) != macNew {
		t.Fatalf("the worker delivered to %x after the change, want %x", out[:6], macNew)
	}
	deliverOne(t, r, dec4)
	if e, ok := fd.entries[k4]; !ok || [6]byte(e.Eth[:6]) != macNew {
		t.Fatalf("the delivery to hostA was not offered again with its new MAC: %+v (present %v)", e, ok)
	}

	// An offer queued while packets wait on the ring, then a snapshot that
	// lost a MAC it does not go to: it was made from the older snapshot, so
	// it is dropped, and the flow's next packet offers it again.
	staleOffer(t, r, ft, func() {
		r.nh.Store(nextHopsWith(moved).MarkLost([]nexthop.LinkDest{{IfIndex: 10, MAC: macHost6}}))
		check("hostA6's MAC lost", 1, 1, 3, 2) // hostA6's delivery goes; the offer is not put yet
	})

	// A walk that fails: an epoch, as for a snapshot that may change any
	// adjacency.
	fd.failSweep = errors.New("map iteration failed")
	r.nh.Store(nextHopsWith(moved).MarkLost([]nexthop.LinkDest{{IfIndex: 20, MAC: macUnderGW}}))
	if st := off.Stats(); st.Invalidations != 1 || ft.epoch == e0 || len(ft.entries) != 0 || st.HopBatches != 3 {
		t.Fatalf("a failed walk: stats %+v, encap epoch %d (was %d), %d encap entries", st, ft.epoch, e0, len(ft.entries))
	}
	fd.failSweep = nil
	e1, d1 := ft.epoch, fd.epoch
	r.nh.Store(nextHopsWith(moved))
	if st := off.Stats(); st.Invalidations != 1 || ft.epoch != e1 || fd.epoch != d1 || st.RouteBatches != 1 || st.RouteDeleted != 0 {
		t.Fatalf("a snapshot that may change any adjacency, the same as the last: stats %+v, epochs %d and %d (were %d and %d)", st, ft.epoch, fd.epoch, e1, d1)
	}
}

// staleOffer queues the offer of a new flow in r's worker while packets of
// the flow wait on the site ring, runs change, and checks that the worker
// drops the offer at its next step (ExtraOffloadStale, the first of the
// rig) and offers the flow again on its next packet.
func staleOffer(t *testing.T, r *rig, ft *fakeOffload, change func()) {
	t.Helper()
	other := siteFrame(t, innerSpec{src: hostA, dst: netip.MustParseAddr("10.2.9.9"), ttl: 9, payload: 20, sport: 7, dport: 9})
	r.fromSite(other) // fills the flow memo
	drain(r.core)
	for range ring.IdealBatchSize + 5 {
		if !r.site.Inject(other) {
			t.Fatal("inject")
		}
	}
	puts := len(ft.puts)
	r.w.Step()
	if r.w.offn != 1 {
		t.Fatalf("%d offers queued, want 1 waiting for the ring", r.w.offn)
	}
	change()
	r.w.Step()
	drain(r.core)
	if len(ft.puts) != puts || r.w.offn != 0 || r.w.Extra(ExtraOffloadStale) != 1 {
		t.Fatalf("the offer made before the change: %d puts (was %d), %d queued, %d stale", len(ft.puts), puts, r.w.offn, r.w.Extra(ExtraOffloadStale))
	}
	forwardOne(t, r, other)
	if len(ft.puts) != puts+1 {
		t.Fatalf("the flow was not offered again after its offer was dropped: %d puts", len(ft.puts))
	}
}

// TestOffloadNeighbourLostBudget: NextHopsChanged walks the tables while its
// walks have taken less than their share of the time (a sixteenth, at most
// 50 ms at once); a snapshot that comes when they took more starts an epoch
// instead, and the walks resume once time has paid for them.
func TestOffloadNeighbourLostBudget(t *testing.T) {
	ft := newFakeOffload()
	off := newOffloadOn(t, ft)
	clk := time.Unix(1e9, 0)
	off.now = func() time.Time { return clk }
	ft.during = func() { clk = clk.Add(40 * time.Millisecond) } // each walk takes 40 ms
	var tab nexthop.Table
	tab.OnStore(off.NextHopsChanged)
	lose := func() { tab.Store(testNextHops().MarkLost([]nexthop.LinkDest{{IfIndex: 10, MAC: macHostA}})) }
	check := func(what string, batches, epochs uint64) {
		t.Helper()
		if st := off.Stats(); st.HopBatches != batches || st.Invalidations != epochs {
			t.Fatalf("%s: %d snapshots walked, %d epochs; want %d and %d", what, st.HopBatches, st.Invalidations, batches, epochs)
		}
	}
	lose()
	lose()
	check("two walks of 40 ms at once", 2, 0) // 50 ms of credit, then 12.5 (the first walk's 40 ms earned 2.5)
	lose()
	check("a third at once", 2, 1) // 27.5 ms owed less 2.5 earned: an epoch
	clk = clk.Add(walkShare * 24 * time.Millisecond)
	lose()
	check("before the walks are paid for", 2, 2)
	clk = clk.Add(walkShare * 2 * time.Millisecond)
	lose()
	check("once they are", 3, 2)
}

// TestOffloadNeighbourLostConcurrent has the worker deliver to six site
// hosts in its own goroutine, offering their deliveries to the kernel,
// while the hosts move to new MACs one after another, each move a
// snapshot that lost the old MAC. As a kernel would, the table takes the
// packets of the hosts it holds an entry for, so a wrong entry is never
// mended by the worker. Once both stop, every delivery the kernel holds
// must go to its host's current MAC, whatever the order in which the
// worker's offers and the snapshots met, and no epoch started.
func TestOffloadNeighbourLostConcurrent(t *testing.T) {
	fd := newFakeDecap()
	off := NewOffload(0)
	if err := off.AddDecap(fd); err != nil {
		t.Fatal(err)
	}
	var hosts []netip.Addr
	macs := map[netip.Addr][6]byte{}
	for i := range 6 {
		h := netip.AddrFrom4([4]byte{10, 1, 0, byte(11 + i)})
		hosts = append(hosts, h)
		macs[h] = [6]byte{0x02, 0, 0, 0x10, byte(i), 0}
	}
	snap := func() *nexthop.Snapshot {
		return nextHopsWith(func(ns []nexthop.Neighbour) []nexthop.Neighbour {
			for _, h := range hosts {
				ns = append(ns, nexthop.Neighbour{Addr: h, IfIndex: 10, MAC: macs[h], Valid: true})
			}
			return ns
		})
	}
	r := newRig(t, func(c *Config) {
		c.Offload = off
		c.Ports[0].Ifindex = 10
		c.Ports[1].Decap = fd
	})
	r.nh.Store(snap())
	r.nh.OnStore(off.NextHopsChanged)
	var fs [][]byte
	for _, h := range hosts {
		s := decapSpec(t, false, false, 9, 40)
		s.inner = innerPacket(t, innerSpec{src: remote4, dst: h, ttl: 9, payload: 40, sport: 5, dport: 6})
		fs = append(fs, lispFrame(t, s))
	}
	stop, after := runSteps(func(i int) {
		// The kernel takes the packets of the hosts it holds an entry
		// for (the entry's MAC unseen): the worker sees the others'.
		off.puts.RLock()
		for j := range 4 {
			if _, ok := fd.entries[decapKey{iidSite, hosts[(i+j)%len(hosts)], false}]; !ok {
				r.core.Inject(fs[(i+j)%len(fs)])
			}
		}
		off.puts.RUnlock()
		r.w.Step()
		drain(r.site)
	})
	// check holds puts (no worker puts meanwhile): once a snapshot's
	// Store returned, every delivery must go to its host's MAC.
	check := func(when string) {
		off.puts.Lock()
		defer off.puts.Unlock()
		for k, e := range fd.entries {
			if want, got := macs[k.dst], [6]byte(e.Eth[:6]); got != want {
				t.Fatalf("%s: the kernel delivers %v to %x, its MAC is %x", when, k.dst, got, want)
			}
		}
	}
	after(20) // every delivery offered once before the moves start
	rng := rand.New(rand.NewPCG(40, 1))
	h := hosts[0]
	for i := range 300 {
		if rng.IntN(2) == 0 { // else the same host moves again, maybe while the worker offers it
			h = hosts[rng.IntN(len(hosts))]
		}
		old := macs[h]
		macs[h] = [6]byte{0x02, 0, 0, 0x10, byte(i >> 8), byte(i)}
		r.nh.Store(snap().MarkLost([]nexthop.LinkDest{{IfIndex: 10, MAC: old}}))
		after(rng.IntN(3)) // the moves meet the worker's offers at every point of its steps
		check(fmt.Sprintf("move %d", i))
	}
	stop()
	left := len(fd.entries)
	check("as the run stopped")
	for range 2 { // each delivery's next packet, in the worker's next snapshot
		r.fromCore(fs...)
		drain(r.site)
	}
	check("after the last moves")
	st := off.Stats()
	t.Logf("%d puts, %d entries left when the run stopped, %d offers dropped as stale; %+v", len(fd.puts), left, r.w.Extra(ExtraOffloadStale), st)
	if len(fd.entries) != len(hosts) || len(fd.puts) < 100 || st.HopBatches != 300 || st.HopDeleted < 100 || st.Invalidations != 0 {
		t.Fatalf("%d entries, %d puts, stats %+v: want all %d deliveries in the kernel, offered again and again, 300 snapshots walked, no epoch",
			len(fd.entries), len(fd.puts), st, len(hosts))
	}
}

// runSteps calls step(0), step(1) ... in a goroutine (a worker's, for the
// concurrent tests) until stop is called, which waits for the goroutine to
// end. after(n) waits, at most a second, for n more calls to return.
func runSteps(step func(i int)) (stop func(), after func(n int)) {
	quit, done := make(chan struct{}), make(chan struct{})
	var steps atomic.Int64
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			default:
			}
			step(i)
			steps.Add(1)
		}
	}()
	stop = func() {
		close(quit)
		<-done
	}
	after = func(n int) {
		want, deadline := steps.Load()+int64(n), time.Now().Add(time.Second)
		for steps.Load() < want && time.Now().Before(deadline) {
			runtime.Gosched()
		}
	}
	return stop, after
}

// TestOffloadSweepMarksUsed: a sweep hands the function set by OnUsed the
// link-layer destinations (egress interface, destination MAC) of the
// entries of either direction the kernel sent packets through since the
// last sweep, each once, and none of the others; a sweep that finds no new
// packets calls nothing.
func TestOffloadSweepMarksUsed(t *testing.T) {
	c := cache.New(cache.Config{BuildTemplate: defaultOuter().BuildTemplate})
	ft, fd := newFakeOffload(), newFakeDecap()
	fd.hits = map[decapKey]uint64{}
	off := newOffloadOn(t, ft)
	if err := off.AddDecap(fd); err != nil {
		t.Fatal(err)
	}
	var got [][]nexthop.LinkDest
	off.OnUsed(func(ds []nexthop.LinkDest) {
		slices.SortFunc(ds, func(a, b nexthop.LinkDest) int { return int(a.MAC[5]) - int(b.MAC[5]) })
		got = append(got, ds)
	})
	gw, other, host, host2 := [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}, [6]byte{2, 0, 0, 0, 0, 3}, [6]byte{2, 0, 0, 0, 0, 4}
	encap := func(d byte, mac [6]byte) *ring.OffloadEntry {
		e := &ring.OffloadEntry{Dst: [4]byte{10, 2, 0, d}, Epoch: 1, Ifindex: 20}
		copy(e.Front[:], mac[:])
		return e
	}
	for _, e := range []*ring.OffloadEntry{encap(1, gw), encap(2, gw), encap(3, other)} {
		if err := ft.PutOffload(e); err != nil {
			t.Fatal(err)
		}
	}
	for i, mac := range [][6]byte{host, host2} {
		e := ring.DecapEntry{IID: iidSite, Dst: [4]byte{10, 1, 0, byte(5 + i)}, Epoch: 1, Ifindex: 10}
		copy(e.Eth[:], mac[:])
		if err := fd.PutDecap(&e); err != nil {
			t.Fatal(err)
		}
	}
	ft.entries[offloadKey{dst: netip.AddrFrom4([4]byte{10, 2, 0, 1})}].hits = 3
	ft.entries[offloadKey{dst: netip.AddrFrom4([4]byte{10, 2, 0, 2})}].hits = 9
	fd.hits[decapKey{iidSite, netip.AddrFrom4([4]byte{10, 1, 0, 5}), false}] = 4
	if err := off.Sweep(c); err != nil {
		t.Fatal(err)
	}
	want := []nexthop.LinkDest{{IfIndex: 20, MAC: gw}, {IfIndex: 10, MAC: host}}
	if len(got) != 1 || !slices.Equal(got[0], want) {
		t.Fatalf("the first sweep marked %v used, want %v once", got, want)
	}
	if err := off.Sweep(c); err != nil || len(got) != 1 {
		t.Fatalf("a sweep without new packets marked %v (%v)", got[1:], err)
	}
	fd.hits[decapKey{iidSite, netip.AddrFrom4([4]byte{10, 1, 0, 6}), false}] = 1
	if err := off.Sweep(c); err != nil || len(got) != 2 || !slices.Equal(got[1], []nexthop.LinkDest{{IfIndex: 10, MAC: host2}}) {
		t.Fatalf("after a packet to the second host: %v (%v)", got, err)
	}
}

// TestOffloadRouteChange: a next-hop snapshot that may change any
// adjacency (a route or link change) deletes the kernel entries, of both
// directions, whose next-hop destination it resolves otherwise than the
// snapshot before it, and no others, without an epoch: a route no flow
// goes by changes nothing; a host route for one RLOC through another
// gateway deletes the flow sent to that RLOC, whose next packet goes to the
// new gateway and is offered anew; one for a site host deletes its
// delivery alone.
func TestOffloadRouteChange(t *testing.T) {
	r, ft, fd, off := hopsRig(t)
	r.install([]StaticMapping{{IID: iidSite, Prefix: netip.MustParsePrefix("10.5.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocOther4, Weight: 1}}}})
	remote5 := netip.MustParseAddr("10.5.0.7") // behind rlocOther4
	enc := siteFrame(t, innerSpec{src: hostA, dst: remote4, ttl: 9, payload: 20, sport: 7, dport: 9})
	enc5 := siteFrame(t, innerSpec{src: hostA, dst: remote5, ttl: 9, payload: 20, sport: 7, dport: 9})
	dec4, dec6 := decapFrameWith(t, false, false, 64, 9, 0), decapFrameWith(t, false, true, 64, 9, 0)
	for range 2 {
		forwardOne(t, r, enc)
		forwardOne(t, r, enc5)
		deliverOne(t, r, dec4)
		deliverOne(t, r, dec6)
	}
	if len(ft.entries) != 2 || len(fd.entries) != 2 {
		t.Fatalf("%d encap and %d decap entries after the flows' first packets, want 2 and 2", len(ft.entries), len(fd.entries))
	}
	e0, d0 := ft.epoch, fd.epoch
	check := func(what string, encap, decap int, batches, deleted uint64) {
		t.Helper()
		st := off.Stats()
		if ft.epoch != e0 || fd.epoch != d0 || st.Invalidations != 0 || len(ft.entries) != encap || len(fd.entries) != decap ||
			st.RouteBatches != batches || st.RouteDeleted != deleted || st.HopBatches != 0 {
			t.Fatalf("%s: epochs %d and %d (were %d and %d), %d encap and %d decap entries (want %d and %d), stats %+v (want %d batches, %d deleted)",
				what, ft.epoch, fd.epoch, e0, d0, len(ft.entries), len(fd.entries), encap, decap, st, batches, deleted)
		}
	}
	route := func(p string, gw netip.Addr, ifindex int32) nexthop.Route {
		return nexthop.Route{Prefix: netip.MustParsePrefix(p), Gateway: gw, IfIndex: ifindex}
	}
	gw2, macGW2 := netip.MustParseAddr("192.0.2.253"), [6]byte{0x02, 0, 0, 0, 0, 0xfd}
	gwSite, macGWSite := netip.MustParseAddr("10.1.0.254"), [6]byte{0x02, 0, 0, 0, 0, 0xfc}
	withGWs := func(ns []nexthop.Neighbour) []nexthop.Neighbour {
		return append(ns, nexthop.Neighbour{Addr: gw2, IfIndex: 20, MAC: macGW2, Valid: true},
			nexthop.Neighbour{Addr: gwSite, IfIndex: 10, MAC: macGWSite, Valid: true})
	}

	// A route no flow goes by, and a new neighbour: nothing changes.
	unrelated := route("198.51.100.0/24", gw4, 20)
	r.nh.Store(nextHopsWith(withGWs, unrelated))
	check("a route no flow goes by", 2, 2, 1, 0)

	// rlocOther4 through another gateway: its flow goes, the others stay.
	other := route(rlocOther4.String()+"/32", gw2, 20)
	r.nh.Store(nextHopsWith(withGWs, unrelated, other))
	check("rlocOther4's route", 1, 2, 2, 1)
	if out := forwardOne(t, r, enc5); [6]byte(out[:6]) != macGW2 {
		t.Fatalf("the worker sent the flow to rlocOther4 to %x after the change, want %x", out[:6], macGW2)
	}
	forwardOne(t, r, enc5)
	if len(ft.entries) != 2 {
		t.Fatalf("%d encap entries after the flow to rlocOther4 went on, want it offered again", len(ft.entries))
	}
	for _, x := range ft.entries {
		if x.e.OuterDst() == rlocOther4 && [6]byte(x.e.Front[:6]) != macGW2 {
			t.Fatalf("the flow to rlocOther4 offered again with MAC %x, want %x", x.e.Front[:6], macGW2)
		}
	}

	// hostA through a gateway on the site: its delivery goes, hostA6's stays.
	r.nh.Store(nextHopsWith(withGWs, unrelated, other, route(hostA.String()+"/32", gwSite, 10)))
	check("hostA's route", 2, 1, 3, 2)
	if _, ok := fd.entries[decapKey{iidSite, hostA, false}]; ok {
		t.Fatal("the delivery to hostA is still offloaded")
	}

	// An offer queued before a route change was made from the older
	// snapshot: it is dropped, and the flow's next packet offers it again.
	staleOffer(t, r, ft, func() {
		r.nh.Store(nextHopsWith(withGWs, unrelated, other))
		check("hostA's route gone", 2, 1, 4, 2) // the queued offer is not put yet
	})
}

// TestOffloadIdleTablesNotWalked: NextHopsChanged does not walk a table
// the last Sweep left empty while no worker put an entry in it since (the
// walk of an empty kernel map still reads all its buckets); it walks one
// as soon as a worker put an entry there, and one that a Sweep left with
// entries.
func TestOffloadIdleTablesNotWalked(t *testing.T) {
	r, ft, fd, off := hopsRig(t)
	change := func(what string, encap, decap int) {
		t.Helper()
		e0, d0, st0 := ft.sweeps, fd.sweeps, off.Stats()
		r.nh.Store(nextHopsWith(nil, nexthop.Route{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Gateway: gw4, IfIndex: 20}))
		r.nh.Store(testNextHops())
		if e, d := ft.sweeps, fd.sweeps; e-e0 != encap || d-d0 != decap {
			t.Fatalf("%s: two route changes walked the encap table %d times and the decap table %d times, want %d and %d",
				what, e-e0, d-d0, encap, decap)
		}
		if st := off.Stats(); st.Invalidations != st0.Invalidations || st.RouteBatches != st0.RouteBatches+2 {
			t.Fatalf("%s: %d epochs, %d route batches", what, st.Invalidations-st0.Invalidations, st.RouteBatches-st0.RouteBatches)
		}
	}
	change("never swept", 2, 2)
	if err := off.Sweep(r.c); err != nil {
		t.Fatal(err)
	}
	change("swept empty", 0, 0)
	enc := siteFrame(t, innerSpec{src: hostA, dst: remote4, ttl: 9, payload: 20, sport: 7, dport: 9})
	forwardOne(t, r, enc)
	forwardOne(t, r, enc) // offered and put
	if len(ft.entries) != 1 {
		t.Fatalf("%d encap entries, want the flow's", len(ft.entries))
	}
	change("an encap entry put", 2, 0)
	deliverOne(t, r, decapFrame(t, 64, 9, 0))
	deliverOne(t, r, decapFrame(t, 64, 9, 0))
	change("a decap entry put", 2, 2)
	if err := off.Sweep(r.c); err != nil {
		t.Fatal(err)
	}
	change("swept with entries", 2, 2)
	off.Invalidate()
	if err := off.Sweep(r.c); err != nil { // deletes the past epoch's
		t.Fatal(err)
	}
	if len(ft.entries)+len(fd.entries) != 0 {
		t.Fatalf("%d and %d entries after an epoch and a sweep", len(ft.entries), len(fd.entries))
	}
	change("swept empty again", 0, 0)
}

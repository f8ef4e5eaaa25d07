package fastpath

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/wire"
)

// fixIPv4 recomputes the IPv4 header checksum of the header at off.
func fixIPv4(b []byte, off int) []byte {
	wire.IPv4(b[off:]).UpdateChecksum()
	return b
}

// TestMalformed feeds broken frames to both kinds of port: each is dropped
// with its own reason, nothing is sent, nothing panics.
func TestMalformed(t *testing.T) {
	site4 := func() []byte { return siteFrame(t, innerSpec{src: hostA, dst: remote4, payload: 20}) }
	site6 := func() []byte { return siteFrame(t, innerSpec{src: hostA6, dst: remote6, payload: 20}) }
	in := innerPacket(t, innerSpec{src: remote4, dst: hostA, payload: 20})
	core4 := func() []byte {
		return lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: iidSite, inner: in})
	}
	// Offsets in core4: Ethernet 0, IP 14, UDP 34, LISP 42, inner 50.
	setU16 := func(b []byte, off int, v uint16) []byte { binary.BigEndian.PutUint16(b[off:], v); return b }
	cases := []struct {
		name string
		core bool
		b    []byte
		want DropReason
	}{
		{"short Ethernet", false, site4()[:10], DropBadEthernet},
		{"ARP", false, setU16(site4(), 12, wire.EtherTypeARP), DropBadEthernet},
		{"truncated IPv4", false, site4()[:14+12], DropBadIP},
		{"IPv4 version 6", false, fixIPv4(func() []byte { b := site4(); b[14] = 0x65; return b }(), 14), DropBadIP},
		{"IHL 4", false, fixIPv4(func() []byte { b := site4(); b[14] = 0x44; return b }(), 14), DropBadIHL},
		{"IHL 15 beyond total length", false, func() []byte { b := site4(); b[14] = 0x4f; return b }(), DropBadIHL},
		{"IPv4 length beyond frame", false, fixIPv4(setU16(site4(), 16, 1000), 14), DropBadLength},
		{"IPv4 bad checksum", false, func() []byte { b := site4(); b[24] ^= 0xff; return b }(), DropBadIP},
		{"truncated IPv6", false, site6()[:14+30], DropBadIP},
		{"IPv6 length beyond frame", false, setU16(site6(), 18, 500), DropBadLength},
		{"core short Ethernet", true, core4()[:13], DropBadEthernet},
		{"core truncated IP", true, core4()[:14+19], DropBadIP},
		{"outer IHL 3", true, fixIPv4(func() []byte { b := core4(); b[14] = 0x43; return b }(), 14), DropBadIHL},
		{"outer length beyond frame", true, fixIPv4(setU16(core4(), 16, 2000), 14), DropBadLength},
		{"outer fragment not a multiple of 8", true, fixIPv4(setU16(setU16(core4(), 20, 0x2000), 16, 83), 14), DropBadLength},
		{"truncated UDP", true, fixIPv4(setU16(core4()[:14+24], 16, 24), 14), DropBadUDP},
		{"UDP length beyond IP", true, setU16(core4(), 38, 400), DropBadUDP},
		{"UDP length 4", true, setU16(core4(), 38, 4), DropBadUDP},
		{"truncated LISP", true, fixIPv4(setU16(setU16(core4()[:14+20+8+4], 16, 32), 38, 12), 14), DropBadLISP},
		{"no inner packet", true, fixIPv4(setU16(setU16(core4()[:14+20+16], 16, 36), 38, 16), 14), DropBadIP},
		{"truncated inner", true, fixIPv4(setU16(setU16(core4()[:14+20+16+10], 16, 46), 38, 26), 14), DropBadIP},
		{"inner IHL 2", true, func() []byte { b := core4(); b[50] = 0x42; return b }(), DropBadIHL},
		{"inner length beyond UDP", true, setU16(core4(), 52, 300), DropBadLength},
		{"inner version 5", true, func() []byte { b := core4(); b[50] = 0x55; return b }(), DropBadIP},
		{"not UDP", true, fixIPv4(func() []byte { b := core4(); b[23] = 6; return b }(), 14), DropNotOurRLOC},
	}
	r := newRig(t, nil)
	for _, tc := range cases {
		before := r.counters()
		if tc.core {
			r.fromCore(tc.b)
		} else {
			r.fromSite(tc.b)
		}
		after := r.counters()
		if d := after.Dropped(tc.want) - before.Dropped(tc.want); d != 1 || after.DroppedTotal()-before.DroppedTotal() != 1 {
			var got []string
			for k := DropReason(0); k < NumDropReasons; k++ {
				if after.Dropped(k) != before.Dropped(k) {
					got = append(got, k.String())
				}
			}
			t.Errorf("%s: want one %v drop, got %v", tc.name, tc.want, got)
		}
	}
	if n := len(drain(r.core)) + len(drain(r.site)); n != 0 {
		t.Errorf("%d frames sent", n)
	}
	// The valid originals go through.
	r.fromSite(site4())
	r.fromCore(core4())
	if len(drain(r.core)) != 1 || len(drain(r.site)) != 1 {
		t.Error("valid frames did not pass after the malformed ones")
	}
}

// FuzzWorkerStep feeds arbitrary frames through a worker step on a site or
// core port (and mutated LISP frames) and checks that nothing panics and
// every frame is accounted for.
func FuzzWorkerStep(f *testing.F) {
	in := innerPacket(f, innerSpec{src: remote4, dst: hostA, payload: 20})
	f.Add(siteFrame(f, innerSpec{src: hostA, dst: remote4, payload: 20}), false)
	f.Add(siteFrame(f, innerSpec{src: hostA6, dst: remote6v6, payload: 20}), false)
	f.Add(siteFrame(f, innerSpec{src: hostA, dst: remote4, payload: 1500}), false)
	f.Add(lispFrame(f, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: iidSite, inner: in}), true)
	f.Add(lispFrame(f, lispSpec{src: rlocRemote6, dst: rlocLocal6, iid: 300, inner: in}), true)
	f.Add([]byte{}, true)
	r := newRig(f, func(c *Config) { c.RTR = true; c.Ports[1].MTU = 600 })
	r.install([]StaticMapping{{IID: 300, Prefix: netip.MustParsePrefix("10.0.0.0/8"), RLOCs: []StaticRLOC{{Addr: rlocRemote4}}}})
	f.Fuzz(func(t *testing.T, b []byte, core bool) {
		if len(b) == 0 || len(b) > 1700 {
			return
		}
		port := r.site
		if core {
			port = r.core
		}
		before := r.counters()
		pieces := reasmPieces(r.w)
		if !port.Inject(b) {
			t.Fatal("inject")
		}
		r.w.Step()
		after := r.counters()
		out := len(drain(r.core)) + len(drain(r.site))
		if after.Get(CounterRX)-before.Get(CounterRX) != 1 {
			t.Fatalf("rx moved by %d", after.Get(CounterRX)-before.Get(CounterRX))
		}
		done := after.DroppedTotal() - before.DroppedTotal() + after.Get(CounterTX) - before.Get(CounterTX) +
			after.Get(CounterHeld) - before.Get(CounterHeld)
		if done == 0 && r.w.Extra(ExtraECNDrop) == 0 && reasmPieces(r.w) <= pieces {
			t.Fatalf("frame neither sent, held nor counted as dropped (out %d)", out)
		}
	})
}

// TestStepNoAllocs: steady-state encap, decap (with gleaning) and RTR steps
// allocate nothing.
func TestStepNoAllocs(t *testing.T) {
	r := newRig(t, func(c *Config) { c.RTR = true; c.Ports[0].Glean = true })
	r.install([]StaticMapping{{IID: 300, Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocRemote4}}}})
	enc := siteFrame(t, innerSpec{src: hostA, dst: remote4, payload: 18})
	in := innerPacket(t, innerSpec{src: remote4, dst: hostA, payload: 18})
	dec := lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: iidSite, inner: in, nonce: 5})
	rtr := lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: 300,
		inner: innerPacket(t, innerSpec{src: hostA, dst: remote4, payload: 18})})
	miss := siteFrame(t, innerSpec{src: hostA, dst: netip.MustParseAddr("10.99.0.1"), payload: 18})
	var o Observation
	run := func() {
		for i := 0; i < 20; i++ {
			r.site.Inject(enc)
			r.core.Inject(dec)
			r.core.Inject(rtr)
		}
		r.site.Inject(miss)
		r.w.Step()
		r.core.Drain(nil)
		r.site.Drain(nil)
		for r.w.Observations().Pop(&o) {
		}
		for r.w.Misses().Pop(new(MissEvent)) {
		}
	}
	run()
	if a := testing.AllocsPerRun(200, run); a != 0 {
		t.Errorf("%v allocations per step", a)
	}
	c := r.counters()
	if c.Get(CounterEncap) == 0 || c.Get(CounterDecap) == 0 || c.Get(CounterReencap) == 0 || c.Get(CounterMiss) == 0 {
		t.Errorf("not every path ran: encap %d decap %d reencap %d miss %d", c.Get(CounterEncap),
			c.Get(CounterDecap), c.Get(CounterReencap), c.Get(CounterMiss))
	}
}

// TestRun runs the worker's own loop pinned to CPU 0 and stops it.
func TestRun(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Pin, c.CPU = true, 0; c.IdleWait = 200 * time.Microsecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	defer cancel()
	frame := siteFrame(t, innerSpec{src: hostA, dst: remote4, payload: 10})
	got := 0
	deadline := time.Now().Add(5 * time.Second)
	for sent := 0; got < 100 && time.Now().Before(deadline); {
		if sent < 100 && r.site.Inject(frame) {
			sent++
		}
		got += r.core.Drain(nil)
	}
	if got != 100 {
		t.Errorf("received %d of 100 frames", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	var c Counters
	r.w.Counters().Snapshot(&c)
	if c.Get(CounterEncap) != 100 {
		t.Errorf("encap %d", c.Get(CounterEncap))
	}
}

// TestRunClosedPort: Run returns the ring error when a port closes.
func TestRunClosedPort(t *testing.T) {
	siteT, siteW := memPair(t)
	_ = siteT
	nh := new(nexthop.Table)
	w, err := NewWorker(Config{Ports: []PortConfig{{Port: siteW, Site: true}},
		Cache: cache.New(cache.Config{}), NextHops: nh, Outer: defaultOuter()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	time.Sleep(10 * time.Millisecond)
	siteW.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Run returned nil after its port closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestNewWorkerErrors(t *testing.T) {
	_, p := memPair(t)
	_, p2 := memPair(t)
	c := cache.New(cache.Config{})
	nh := new(nexthop.Table)
	bad := []Config{
		{Ports: []PortConfig{{Port: p}}, NextHops: nh, Outer: defaultOuter()},
		{Cache: c, NextHops: nh, Outer: defaultOuter()},
		{Cache: c, NextHops: nh, Ports: []PortConfig{{Port: p}}},
		{Cache: c, NextHops: nh, Outer: defaultOuter(), Ports: []PortConfig{{Port: p, Index: 1}, {Port: p2, Index: 1}}},
		{Cache: c, NextHops: nh, Outer: defaultOuter(), Ports: []PortConfig{{Port: p, Site: true, IID: 1 << 24}}},
		{Cache: c, NextHops: nh, Outer: defaultOuter(), Ports: []PortConfig{{Port: p, Site: true, IID: 5}, {Port: p2, Index: 1, Site: true, IID: 5}}},
		{Cache: c, NextHops: nh, Outer: defaultOuter(), Ports: []PortConfig{{}}},
		{Cache: c, NextHops: nh, Outer: defaultOuter(), Ports: []PortConfig{{Port: p}}, Pin: true, CPU: -1},
	}
	for i, cfg := range bad {
		if _, err := NewWorker(cfg); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
}

func TestStaticUpdates(t *testing.T) {
	ups, err := StaticUpdates([]StaticMapping{
		{IID: 1, Prefix: netip.MustParsePrefix("10.0.0.0/8"), RLOCs: []StaticRLOC{{Addr: netip.MustParseAddr("::ffff:192.0.2.1"), Priority: 1, Weight: 50}}},
		{IID: 2, Prefix: netip.MustParsePrefix("2001:db8::/32"), Action: wire.ActionDrop},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 2 || !ups[0].Static || !ups[1].Static || ups[0].RLOCs[0].Addr != netip.MustParseAddr("192.0.2.1") ||
		!ups[0].RLOCs[0].Reachable || ups[0].RLOCs[0].Weight != 50 || ups[1].Action != wire.ActionDrop || len(ups[1].RLOCs) != 0 {
		t.Errorf("updates %+v", ups)
	}
	for i, m := range []StaticMapping{
		{Prefix: netip.Prefix{}},
		{IID: 1 << 24, Prefix: netip.MustParsePrefix("10.0.0.0/8")},
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), RLOCs: []StaticRLOC{{}}},
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), RLOCs: []StaticRLOC{{Addr: netip.MustParseAddr("224.0.0.1")}}},
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), RLOCs: []StaticRLOC{{Addr: rlocRemote4}}, Action: wire.ActionDrop},
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Action: 7},
	} {
		if _, err := StaticUpdates([]StaticMapping{m}); err == nil {
			t.Errorf("mapping %d accepted", i)
		}
	}
	c := cache.New(cache.Config{BuildTemplate: defaultOuter().BuildTemplate})
	if err := InstallStatic(c, []StaticMapping{{IID: 1, Prefix: netip.MustParsePrefix("10.0.0.0/8"), RLOCs: []StaticRLOC{{Addr: rlocRemote4}}}}); err != nil {
		t.Fatal(err)
	}
	e, ok := c.Lookup(1, netip.MustParseAddr("10.1.2.3"))
	if !ok || !e.Static() || len(e.RLOCs()) != 1 || len(e.RLOCs()[0].Template) != wire.OuterIPv4Len {
		t.Fatalf("lookup after InstallStatic: %v %v", e, ok)
	}
}

// TestToKernel: an unresolved next hop hands the encapsulated IP packet to
// the kernel hook, or drops it as no-neighbour without one.
func TestToKernel(t *testing.T) {
	var got [][]byte
	for _, hook := range []bool{false, true} {
		r := newRig(t, func(c *Config) {
			if hook {
				c.ToKernel = func(p []byte) bool { got = append(got, append([]byte(nil), p...)); return true }
			}
		})
		r.nh.Store(nexthop.NewSnapshot(
			[]nexthop.Link{{Index: 10, MAC: macSite, Port: 1, Up: true}, {Index: 20, MAC: macCore, Port: 2, Up: true}},
			[]nexthop.Route{{Prefix: netip.MustParsePrefix("192.0.2.0/24"), IfIndex: 20}}, nil))
		before := r.counters()
		r.fromSite(siteFrame(t, innerSpec{src: hostA, dst: remote4, payload: 10}))
		after := r.counters()
		if hook {
			if after.Get(CounterToKernel) != 1 || len(got) != 1 || got[0][0] != 0x45 ||
				netip.AddrFrom4([4]byte(got[0][16:20])) != rlocRemote4 {
				t.Errorf("to-kernel %d, packets %d", after.Get(CounterToKernel), len(got))
			}
		} else {
			expectDrop(t, before, after, DropNoNeighbour)
		}
	}
}

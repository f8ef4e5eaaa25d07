package fastpath

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/ring/mem"
)

// benchPrefixes is the number of map-cache prefixes per instance-ID.
const benchPrefixes = 100_000

// benchPrefix returns the i-th benchmark EID prefix: /24s from 11.0.0.0 up.
func benchPrefix(i int) netip.Prefix {
	v := uint32(11<<24) + uint32(i)<<8
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), 0}), 24)
}

// benchRig is a worker whose map-cache holds benchPrefixes IPv4 prefixes in
// the site instance-ID and in RTR instance-ID 300, spread over four RLOCs.
func benchRig(b *testing.B) *rig { return benchRigOver(b, benchRLOCs()) }

// benchRigOver is benchRig with its mappings to rlocs (four) instead.
func benchRigOver(b *testing.B, rlocs []netip.Addr) *rig {
	b.Helper()
	r := newRig(b, func(c *Config) { c.RTR = true })
	r.nh.Store(benchSnap())
	ms := make([]StaticMapping, 0, 2*benchPrefixes)
	for _, iid := range []uint32{iidSite, 300} {
		for i := 0; i < benchPrefixes; i++ {
			ms = append(ms, StaticMapping{IID: iid, Prefix: benchPrefix(i), RLOCs: []StaticRLOC{
				{Addr: rlocs[i%4], Weight: 50}, {Addr: rlocs[(i+1)%4], Weight: 50}}})
		}
	}
	r.install(ms)
	return r
}

// benchRLOCs are the RLOCs of benchRig's mappings.
func benchRLOCs() []netip.Addr {
	return []netip.Addr{rlocRemote4, rlocOther4, netip.MustParseAddr("192.0.2.4"), netip.MustParseAddr("192.0.2.5")}
}

// benchRLOCs6 are four IPv6 RLOCs on the core link (benchSetup.rloc6).
func benchRLOCs6() []netip.Addr {
	return []netip.Addr{rlocRemote6, netip.MustParseAddr("2001:db8:ff::3"), netip.MustParseAddr("2001:db8:ff::4"), netip.MustParseAddr("2001:db8:ff::5")}
}

// benchSnap is benchRig's next-hop snapshot: the RLOCs and hostA
// resolved, with routes extra besides the two it needs.
func benchSnap(extra ...nexthop.Route) *nexthop.Snapshot {
	return benchSnapHosts(nil, extra...)
}

// benchHosts returns n site hosts of 10.1.0.0/16 (the site's connected
// route in benchSnap) other than hostA: n in a row from 10.1.16.0, or with
// spread, n/16 in a row in each of the sixteen /20s, from its second /24
// (hosts at the same offsets 4096 addresses apart, whose first delivery
// slots mostly coincide: TestDeliveryHostsShareSlots).
func benchHosts(n int, spread bool) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		if spread {
			j := i / 16
			out[i] = netip.AddrFrom4([4]byte{10, 1, byte(i%16<<4 + 1 + j>>8), byte(j)})
			continue
		}
		out[i] = netip.AddrFrom4([4]byte{10, 1, byte(16 + i>>8), byte(i)})
	}
	return out
}

// benchSnapHosts is benchSnap with hosts resolved on the site link too,
// each at a MAC of its own.
func benchSnapHosts(hosts []netip.Addr, extra ...nexthop.Route) *nexthop.Snapshot {
	var neighs []nexthop.Neighbour
	for _, a := range append(benchRLOCs(), benchRLOCs6()...) {
		neighs = append(neighs, nexthop.Neighbour{Addr: a, IfIndex: 20, MAC: macUnderGW, Valid: true})
	}
	neighs = append(neighs, nexthop.Neighbour{Addr: hostA, IfIndex: 10, MAC: macHostA, Valid: true},
		nexthop.Neighbour{Addr: hostA6, IfIndex: 10, MAC: macHost6, Valid: true})
	for i, a := range hosts {
		neighs = append(neighs, nexthop.Neighbour{Addr: a, IfIndex: 10, MAC: [6]byte{0x02, 0x01, 0, 0, byte(i >> 8), byte(i)}, Valid: true})
	}
	return nexthop.NewSnapshot(
		[]nexthop.Link{{Index: 10, MAC: macSite, MTU: 1500, Port: 1, Up: true}, {Index: 20, MAC: macCore, MTU: 1500, Port: 2, Up: true}},
		append([]nexthop.Route{{Prefix: netip.MustParsePrefix("10.1.0.0/16"), IfIndex: 10}, {Prefix: netip.MustParsePrefix("192.0.2.0/24"), IfIndex: 20},
			{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), IfIndex: 10}, {Prefix: netip.MustParsePrefix("2001:db8:ff::/48"), IfIndex: 20}}, extra...),
		neighs)
}

// benchDsts returns n destinations spread over the benchmark prefixes.
func benchDsts(n int) []netip.Addr {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]netip.Addr, n)
	for i := range out {
		p := benchPrefix(rng.IntN(benchPrefixes)).Addr().As4()
		p[3] = byte(1 + rng.IntN(254))
		out[i] = netip.AddrFrom4(p)
	}
	return out
}

// benchPrefix6 returns the i-th IPv6 benchmark EID prefix (benchSetup.v6):
// /48s from 2001:db8:1000:: up.
func benchPrefix6(i int) netip.Prefix {
	a := netip.MustParseAddr("2001:db8::").As16()
	a[4], a[5] = byte(0x10+i>>8), byte(i)
	return netip.PrefixFrom(netip.AddrFrom16(a), 48)
}

// benchDsts6 returns a destination in each of the first n benchPrefix6s.
func benchDsts6(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		a := benchPrefix6(i).Addr().As16()
		a[15] = byte(1 + i%254)
		out[i] = netip.AddrFrom16(a)
	}
	return out
}

// injector transmits prebuilt frames into a link 64 at a time.
type injector struct {
	p      *mem.Port
	frames [][]byte
	next   int
	batch  [ring.IdealBatchSize]ring.Frame
}

func (in *injector) send(b *testing.B) {
	n := in.p.Alloc(in.batch[:])
	for i := 0; i < n; i++ {
		pkt := in.frames[in.next]
		in.next = (in.next + 1) % len(in.frames)
		in.batch[i].SetLen(len(pkt))
		copy(in.batch[i].Bytes(), pkt)
	}
	m, _ := in.p.Transmit(in.batch[:n])
	if m != n {
		in.p.Release(in.batch[m:n])
		b.Fatalf("injected %d of %d", m, n)
	}
}

// runPipeline measures step (one batch through the worker or the baseline
// forwarder) with in feeding and out draining, and reports per-packet
// figures.
func runPipeline(b *testing.B, in *injector, out *mem.Port, step func() int, check func() uint64) {
	b.Helper()
	for i := 0; i < 64; i++ { // warm up the memos and the rings
		in.send(b)
		step()
		out.Drain(nil)
	}
	before := check()
	runtime.GC() // the setup's garbage is not the worker's
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	got := 0
	for i := 0; i < b.N; i++ {
		in.send(b)
		step()
		got += out.Drain(nil)
	}
	el := time.Since(start)
	b.StopTimer()
	pkts := float64(b.N) * ring.IdealBatchSize
	if got != b.N*ring.IdealBatchSize {
		b.Fatalf("forwarded %d of %.0f packets", got, pkts)
	}
	if n := check() - before; n != uint64(got) {
		b.Fatalf("worker counted %d of %d packets", n, got)
	}
	b.ReportMetric(float64(el.Nanoseconds())/pkts, "ns/pkt")
	b.ReportMetric(pkts/el.Seconds()/1e6, "Mpps")
}

// BenchmarkPipeline runs batches of 64 packets through a worker on ring/mem
// with a 100k-prefix map-cache (per instance-ID). The ring-baseline cases
// move the same frames through the same links with a forwarder that only
// receives and transmits: the difference is the worker's own cost.
func BenchmarkPipeline(b *testing.B) {
	dsts := benchDsts(4096)
	siteFrames := func(b *testing.B, payload int) [][]byte {
		var fs [][]byte
		for i, d := range dsts {
			fs = append(fs, siteFrame(b, innerSpec{src: hostA, dst: d, sport: uint16(1024 + i), payload: payload}))
		}
		return fs
	}
	// 64-byte Ethernet frames: 14 + 20 + 8 + 18 (+ 4 FCS on the wire).
	const small = 18
	const large = 1400 - 28
	baseline := func(b *testing.B, frames [][]byte, core bool) {
		r := benchRig(b)
		from, to := r.site, r.core
		if core {
			from, to = r.core, r.site
		}
		// Forward between the worker's ends of the links without processing.
		wIn, wOut := r.w.ports[0].p, r.w.ports[1].p
		if core {
			wIn, wOut = wOut, wIn
		}
		var batch [ring.IdealBatchSize]ring.Frame
		var total uint64
		step := func() int {
			n, _ := wIn.Receive(batch[:])
			m, _ := wOut.Transmit(batch[:n])
			wIn.Release(batch[m:n])
			total += uint64(m)
			return n
		}
		runPipeline(b, &injector{p: from, frames: frames}, to, step, func() uint64 { return total })
	}
	worker := func(b *testing.B, frames [][]byte, core bool, ctr Counter) {
		r := benchRig(b)
		from, to := r.site, r.core
		if core {
			from, to = r.core, r.site
		}
		if ctr == CounterReencap {
			to = r.core
		}
		runPipeline(b, &injector{p: from, frames: frames}, to, r.w.Step, func() uint64 {
			var c Counters
			r.w.Counters().Snapshot(&c)
			return c.Get(ctr)
		})
	}
	lispFrames := func(b *testing.B, iid uint32) [][]byte {
		var fs [][]byte
		for i, d := range dsts {
			src, dst := d, hostA
			if iid != iidSite {
				src, dst = hostA, d
			}
			in := innerPacket(b, innerSpec{src: src, dst: dst, sport: uint16(1024 + i), payload: small})
			fs = append(fs, lispFrame(b, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: iid, nonce: uint32(i), inner: in}))
		}
		return fs
	}
	b.Run("ring-baseline-64B", func(b *testing.B) { baseline(b, siteFrames(b, small), false) })
	b.Run("encap-64B", func(b *testing.B) { worker(b, siteFrames(b, small), false, CounterEncap) })
	b.Run("ring-baseline-1400B", func(b *testing.B) { baseline(b, siteFrames(b, large), false) })
	b.Run("encap-1400B", func(b *testing.B) { worker(b, siteFrames(b, large), false, CounterEncap) })
	b.Run("ring-baseline-decap-100B", func(b *testing.B) { baseline(b, lispFrames(b, iidSite), true) })
	b.Run("decap-100B", func(b *testing.B) {
		r := benchRig(b)
		// Keep the observation ring drained as the slow path would.
		var o Observation
		obs := r.w.Observations()
		in := &injector{p: r.core, frames: lispFrames(b, iidSite)}
		runPipeline(b, in, r.site, func() int {
			n := r.w.Step()
			for obs.Pop(&o) {
			}
			return n
		}, func() uint64 {
			var c Counters
			r.w.Counters().Snapshot(&c)
			return c.Get(CounterDecap)
		})
	})
	b.Run("rtr-reencap-100B", func(b *testing.B) { worker(b, lispFrames(b, 300), true, CounterReencap) })
}

// BenchmarkLookup isolates the map-cache lookup of the benchmark cache.
func BenchmarkLookup(b *testing.B) {
	c := cache.New(cache.Config{BuildTemplate: defaultOuter().BuildTemplate})
	ms := make([]StaticMapping, benchPrefixes)
	for i := range ms {
		ms[i] = StaticMapping{IID: iidSite, Prefix: benchPrefix(i), RLOCs: []StaticRLOC{{Addr: rlocRemote4}}}
	}
	if err := InstallStatic(c, ms); err != nil {
		b.Fatal(err)
	}
	dsts := benchDsts(4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok := c.Lookup(iidSite, dsts[i&4095]); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkMemoLookup is BenchmarkLookup through a worker's lookup memo
// (default size): after the first round every destination is a memo hit.
// cache-direct is the same loop on cache.Lookup, side by side.
func BenchmarkMemoLookup(b *testing.B) {
	c := cache.New(cache.Config{BuildTemplate: defaultOuter().BuildTemplate})
	ms := make([]StaticMapping, benchPrefixes)
	for i := range ms {
		ms[i] = StaticMapping{IID: iidSite, Prefix: benchPrefix(i), RLOCs: []StaticRLOC{{Addr: rlocRemote4}}}
	}
	if err := InstallStatic(c, ms); err != nil {
		b.Fatal(err)
	}
	dsts := benchDsts(4096)
	for _, memo := range []bool{false, true} {
		name := "cache-direct"
		if memo {
			name = "memo"
		}
		b.Run(name, func(b *testing.B) {
			m := newLookupMemo(c, 0)
			look := c.Lookup
			if memo {
				look = m.probe
			}
			for _, d := range dsts {
				look(iidSite, d)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, ok := look(iidSite, dsts[i&4095]); !ok {
					b.Fatal("miss")
				}
			}
		})
	}
}

// nullPort is a ring.Port for measuring the worker alone: Receive copies the
// next prebuilt frames into chunks of its Pool (as a NIC would DMA them) and
// Transmit releases what it is given (as a completed transmission would).
type nullPort struct {
	_      [cacheLine]byte // next and tx change per packet: no line shared with another worker's port
	pool   *ring.Pool
	frames [][]byte
	next   int
	tx     uint64
	_      [cacheLine]byte
}

func newNullPort(b *testing.B, frames [][]byte) *nullPort {
	pool, err := mem.NewPool(1024, 2048, 256)
	if err != nil {
		b.Fatal(err)
	}
	return &nullPort{pool: pool, frames: frames}
}

func (p *nullPort) Receive(fs []ring.Frame) (int, error) {
	if len(p.frames) == 0 {
		return 0, nil
	}
	for i := range fs {
		f, ok := p.pool.Get()
		if !ok {
			return i, nil
		}
		pkt := p.frames[p.next]
		p.next++
		if p.next == len(p.frames) {
			p.next = 0
		}
		f.SetLen(len(pkt))
		copy(f.Bytes(), pkt)
		fs[i] = f
	}
	return len(fs), nil
}

func (p *nullPort) Wait(time.Duration) (bool, error) { return len(p.frames) > 0, nil }
func (p *nullPort) Transmit(fs []ring.Frame) (int, error) {
	p.tx += uint64(len(fs))
	ring.Release(fs)
	return len(fs), nil
}
func (p *nullPort) Release(fs []ring.Frame) { ring.Release(fs) }
func (p *nullPort) Alloc(fs []ring.Frame) int {
	for i := range fs {
		f, ok := p.pool.Get()
		if !ok {
			return i
		}
		fs[i] = f
	}
	return len(fs)
}
func (p *nullPort) Complete() int    { return 0 }
func (p *nullPort) Pool() *ring.Pool { return p.pool }
func (p *nullPort) Close() error     { return nil }

// benchSetup is what a BenchmarkWorker case sets up besides its frames:
// with churn set, a new next-hop snapshot (one more route, which no packet
// goes by: a routing daemon's churn) is stored every churn steps; with
// hosts set, the snapshots resolve that many site hosts (benchHosts)
// besides hostA; with rlocs set, the first rlocs of the destinations map
// each to an RLOC of its own (a /32 mapping to 100.64.0.0/10), reached
// through a gateway.
type benchSetup struct {
	churn, hosts, rlocs int
	spread              bool // the hosts spread over sixteen /20s (benchHosts)
	v6                  bool // the map-cache holds 4096 IPv6 EID prefixes too (benchPrefix6)
	rloc6               bool // the mappings' RLOCs are IPv6 ones (benchRLOCs6), an IPv6 underlay
}

// BenchmarkWorker measures the worker alone: the ports are nullPorts, whose
// only per-packet work is copying the prebuilt frame into a chunk (Receive)
// and freeing the chunk (Transmit). null-forward is that I/O with no
// processing; the other cases are a Step over a 100k-prefix map-cache.
func BenchmarkWorker(b *testing.B) {
	dsts := benchDsts(16384)
	const small, large = 18, 1400 - 28
	site := func(payload, flows int) [][]byte {
		var fs [][]byte
		for i, d := range dsts[:flows] {
			fs = append(fs, siteFrame(b, innerSpec{src: hostA, dst: d, sport: uint16(1024 + i), payload: payload}))
		}
		return fs
	}
	// lisp: 4096 flows from the remote site to hostA (iidSite) or to
	// the remote site (an RTR's IID 300); lispHosts: 4096 flows from the
	// remote site, to n site hosts in turn (benchHosts).
	lispOver := func(iid uint32, n int, spread bool, from, to netip.Addr) [][]byte {
		var fs [][]byte
		hosts := benchHosts(n, spread)
		for i, d := range dsts[:4096] {
			src, dst := d, hostA
			if iid != iidSite {
				src, dst = hostA, d
			} else if n > 0 {
				dst = hosts[i%n]
			}
			in := innerPacket(b, innerSpec{src: src, dst: dst, sport: uint16(1024 + i), payload: small})
			fs = append(fs, lispFrame(b, lispSpec{src: from, dst: to, iid: iid, nonce: uint32(i), inner: in}))
		}
		return fs
	}
	lispHosts := func(iid uint32, n int, spread bool) [][]byte {
		return lispOver(iid, n, spread, rlocRemote4, rlocLocal4)
	}
	lisp := func(iid uint32) [][]byte { return lispHosts(iid, 0, false) }
	measure := func(b *testing.B, step func() int, sent func() uint64) {
		for i := 0; i < 64; i++ {
			step()
		}
		before := sent()
		runtime.GC()
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			step()
		}
		el := time.Since(start)
		b.StopTimer()
		pkts := float64(b.N) * ring.IdealBatchSize
		if got := sent() - before; float64(got) != pkts {
			b.Fatalf("sent %d of %.0f", got, pkts)
		}
		b.ReportMetric(float64(el.Nanoseconds())/pkts, "ns/pkt")
		b.ReportMetric(pkts/el.Seconds()/1e6, "Mpps")
	}
	// memo is Config.LookupMemo: 0 the default memo, -1 none. The rest
	// of the set-up is cur's (runWith sets it for one case).
	var cur benchSetup
	run := func(b *testing.B, frames [][]byte, core bool, memo int) {
		churn, hosts, rlocs := cur.churn, cur.hosts, cur.rlocs
		r := benchRig(b)
		if cur.rloc6 {
			r = benchRigOver(b, benchRLOCs6())
		}
		hs := benchHosts(hosts, cur.spread)
		var routes []nexthop.Route
		if rlocs > 0 {
			routes = append(routes, nexthop.Route{Prefix: netip.MustParsePrefix("100.64.0.0/10"), Gateway: rlocRemote4, IfIndex: 20})
			ms := make([]StaticMapping, rlocs)
			for i := range ms {
				ms[i] = StaticMapping{IID: iidSite, Prefix: netip.PrefixFrom(dsts[i], 32), RLOCs: []StaticRLOC{
					{Addr: netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}), Weight: 1}}}
			}
			r.install(ms)
		}
		if cur.v6 {
			rs := benchRLOCs()
			if cur.rloc6 {
				rs = benchRLOCs6()
			}
			ms := make([]StaticMapping, 0, 2*4096)
			for _, iid := range []uint32{iidSite, 300} { // 300: the RTR's
				for i := range 4096 {
					ms = append(ms, StaticMapping{IID: iid, Prefix: benchPrefix6(i), RLOCs: []StaticRLOC{
						{Addr: rs[i%4], Weight: 50}, {Addr: rs[(i+1)%4], Weight: 50}}})
				}
			}
			r.install(ms)
		}
		r.nh.Store(benchSnapHosts(hs, routes...))
		in, out := newNullPort(b, frames), newNullPort(b, nil)
		sitePort, corePort := ring.Port(in), ring.Port(out)
		if core {
			sitePort, corePort = out, in
		}
		// Same worker configuration as benchRig, on null ports.
		w, err := NewWorker(Config{ID: 1, Cache: r.c, NextHops: r.nh, Outer: r.outer, RTR: true, LookupMemo: memo,
			Ports: []PortConfig{{Port: sitePort, Index: 1, Site: true, IID: iidSite}, {Port: corePort, Index: 2}}})
		if err != nil {
			b.Fatal(err)
		}
		var o Observation
		sent := func() uint64 { return out.tx }
		iidAt := 14 + 20 + 8 + 4 + 2 // the low byte of the instance-ID
		if frames[0][12] == 0x86 {   // an IPv6 outer header
			iidAt += 20
		}
		if core && frames[0][iidAt] == 44 { // RTR frames (IID 300) go back out of the core port
			sent = func() uint64 { return in.tx }
		}
		// Built before the timing: what the workers pay, not the watcher.
		// Each says which routes moved since the one before (its route and
		// the one before's), as the watcher's snapshots for a few routes do.
		var snaps []*nexthop.Snapshot
		churnRoute := func(i int) nexthop.Route {
			return nexthop.Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i), 0}), 24), IfIndex: 20}
		}
		for i := 0; churn > 0 && i <= (b.N+64)/churn; i++ {
			moved := []netip.Prefix{churnRoute(i).Prefix}
			if i > 0 {
				moved = append(moved, churnRoute(i-1).Prefix)
			}
			snaps = append(snaps, benchSnapHosts(hs, append(routes, churnRoute(i))...).MarkMoved(moved, nil))
		}
		steps := 0
		measure(b, func() int {
			if steps++; churn > 0 && steps%churn == 0 { // a route no packet goes by
				r.nh.Store(snaps[steps/churn-1])
			}
			n := w.Step()
			for w.Observations().Pop(&o) {
			}
			return n
		}, sent)
		// What share of the packets the flow memo sent, and of the
		// lookups the memo answered (warm-up included).
		flow, hit, miss := float64(w.Extra(ExtraFlowHit)), float64(w.Extra(ExtraMemoHit)), float64(w.Extra(ExtraMemoMiss))
		b.ReportMetric(100*flow/float64(int(b.N+64)*ring.IdealBatchSize), "flow-hit%")
		if hit+miss > 0 {
			b.ReportMetric(100*hit/(hit+miss), "memo-hit%")
		}
	}
	b.Run("null-forward-64B", func(b *testing.B) {
		in, out := newNullPort(b, site(small, 4096)), newNullPort(b, nil)
		var batch [ring.IdealBatchSize]ring.Frame
		measure(b, func() int {
			n, _ := in.Receive(batch[:])
			out.Transmit(batch[:n])
			return n
		}, func() uint64 { return out.tx })
	})
	b.Run("encap-64B", func(b *testing.B) { run(b, site(small, 4096), false, 0) })
	b.Run("encap-64B-nomemo", func(b *testing.B) { run(b, site(small, 4096), false, -1) })
	b.Run("null-forward-1400B", func(b *testing.B) {
		in, out := newNullPort(b, site(large, 4096)), newNullPort(b, nil)
		var batch [ring.IdealBatchSize]ring.Frame
		measure(b, func() int {
			n, _ := in.Receive(batch[:])
			out.Transmit(batch[:n])
			return n
		}, func() uint64 { return out.tx })
	})
	b.Run("encap-1400B", func(b *testing.B) { run(b, site(large, 4096), false, 0) })
	b.Run("encap-1400B-nomemo", func(b *testing.B) { run(b, site(large, 4096), false, -1) })
	b.Run("encap-64B-64flows", func(b *testing.B) { run(b, site(small, 64), false, 0) })
	b.Run("encap-64B-64flows-nomemo", func(b *testing.B) { run(b, site(small, 64), false, -1) })
	// Four times the destinations of encap-64B: the map-cache entries no
	// longer fit the core's caches, the memo's default sets still hold them.
	b.Run("encap-64B-16kflows", func(b *testing.B) { run(b, site(small, 16384), false, 0) })
	b.Run("encap-64B-16kflows-nomemo", func(b *testing.B) { run(b, site(small, 16384), false, -1) })
	// A next-hop snapshot every 156 steps, about 10,000 packets: a kernel
	// whose routing daemon changes a route every 10 ms (the watcher's
	// publish gap) while the worker forwards 1 Mpps. Each snapshot says
	// which route moved (nexthop.Snapshot.Moved).
	runWith := func(b *testing.B, s benchSetup, frames [][]byte, core bool) {
		cur = s
		defer func() { cur = benchSetup{} }()
		run(b, frames, core, 0)
	}
	const churn = 156
	churned := func(b *testing.B, frames [][]byte, core bool) { runWith(b, benchSetup{churn: churn}, frames, core) }
	b.Run("encap-64B-churn", func(b *testing.B) { churned(b, site(small, 4096), false) })
	// An ITR sending to many remote sites, each behind an RLOC of its
	// own: each RLOC is an entry of the workers' next-hop memos.
	for _, n := range []int{256, 4096} {
		b.Run(fmt.Sprintf("encap-64B-%drlocs", n), func(b *testing.B) { runWith(b, benchSetup{rlocs: n}, site(small, 4096), false) })
		b.Run(fmt.Sprintf("encap-64B-%drlocs-churn", n), func(b *testing.B) {
			runWith(b, benchSetup{rlocs: n, churn: churn}, site(small, 4096), false)
		})
	}
	// A PITR's share of a large deployment: 16384 flows, each to a remote
	// site behind an RLOC of its own.
	b.Run("encap-64B-16krlocs", func(b *testing.B) { runWith(b, benchSetup{rlocs: 16384}, site(small, 16384), false) })
	b.Run("decap-100B", func(b *testing.B) { run(b, lisp(iidSite), true, 0) })
	b.Run("decap-100B-churn", func(b *testing.B) { churned(b, lisp(iidSite), true) })
	// An ETR in front of a site with many active hosts: each has its own
	// neighbour entry, so its own next hop in the workers' memos.
	for _, n := range []int{256, 4096} {
		b.Run(fmt.Sprintf("decap-100B-%dhosts", n), func(b *testing.B) {
			runWith(b, benchSetup{hosts: n}, lispHosts(iidSite, n, false), true)
		})
		b.Run(fmt.Sprintf("decap-100B-%dhosts-churn", n), func(b *testing.B) {
			runWith(b, benchSetup{hosts: n, churn: churn}, lispHosts(iidSite, n, false), true)
		})
	}
	// The same number of hosts, spread over the site's /20s.
	b.Run("decap-100B-4096hosts-spread", func(b *testing.B) {
		runWith(b, benchSetup{hosts: 4096, spread: true}, lispHosts(iidSite, 4096, true), true)
	})
	// IPv6 EIDs over IPv4 RLOCs: 4096 flows from hostA6 to 4096 remote
	// /48s, and from them to hostA6, the smallest frames of the same
	// payload (18 bytes, 20 more than IPv4's).
	site6, lisp6Over := func() (fs [][]byte) {
		for i, d := range benchDsts6(4096) {
			fs = append(fs, siteFrame(b, innerSpec{src: hostA6, dst: d, sport: uint16(1024 + i), payload: small}))
		}
		return fs
	}, func(from, to netip.Addr, iid uint32) (fs [][]byte) {
		for i, d := range benchDsts6(4096) {
			src, dst := d, hostA6
			if iid != iidSite { // an RTR's: to the remote EIDs
				src, dst = hostA6, d
			}
			in := innerPacket(b, innerSpec{src: src, dst: dst, sport: uint16(1024 + i), payload: small})
			fs = append(fs, lispFrame(b, lispSpec{src: from, dst: to, iid: iid, nonce: uint32(i), inner: in}))
		}
		return fs
	}
	lisp6 := func() [][]byte { return lisp6Over(rlocRemote4, rlocLocal4, iidSite) }
	b.Run("encap-84B-v6", func(b *testing.B) { runWith(b, benchSetup{v6: true}, site6(), false) })
	b.Run("decap-120B-v6", func(b *testing.B) { runWith(b, benchSetup{v6: true}, lisp6(), true) })
	b.Run("rtr-reencap-120B-v6", func(b *testing.B) {
		runWith(b, benchSetup{v6: true}, lisp6Over(rlocRemote4, rlocLocal4, 300), true)
	})
	// The same over an IPv6 underlay.
	b.Run("encap-84B-v6-v6rloc", func(b *testing.B) { runWith(b, benchSetup{v6: true, rloc6: true}, site6(), false) })
	b.Run("decap-140B-v6-v6rloc", func(b *testing.B) {
		runWith(b, benchSetup{v6: true, rloc6: true}, lisp6Over(rlocRemote6, rlocLocal6, iidSite), true)
	})
	// IPv4 EIDs over an IPv6 underlay: the smallest frames of encap-64B
	// and decap-100B's payload, 20 bytes longer outside (IPv6 outer
	// headers); the RTR's re-encapsulates IPv6 to IPv6.
	over6 := benchSetup{rloc6: true}
	lisp6rloc := func(iid uint32) [][]byte { return lispOver(iid, 0, false, rlocRemote6, rlocLocal6) }
	b.Run("encap-64B-v6rloc", func(b *testing.B) { runWith(b, over6, site(small, 4096), false) })
	b.Run("decap-120B-v6rloc", func(b *testing.B) { runWith(b, over6, lisp6rloc(iidSite), true) })
	b.Run("rtr-reencap-120B-v6rloc", func(b *testing.B) { runWith(b, over6, lisp6rloc(300), true) })
	b.Run("rtr-reencap-100B", func(b *testing.B) { run(b, lisp(300), true, 0) })
	b.Run("rtr-reencap-100B-churn", func(b *testing.B) { churned(b, lisp(300), true) })
	b.Run("rtr-reencap-100B-nomemo", func(b *testing.B) { run(b, lisp(300), true, -1) })
}

package fastpath

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/ring"
)

// BenchmarkWorkerReplicate measures head-end replication on null ports
// (see BenchmarkWorker): 64-byte multicast frames from 64 sources of the
// site, each (S,G) with an RLE of four ETRs, so every packet leaves as four
// LISP copies. ns/pkt is per packet received, ns/copy per copy sent.
func BenchmarkWorkerReplicate(b *testing.B) {
	r := benchRig(b)
	group := netip.MustParseAddr("232.1.1.1")
	var ups []cache.Update
	var frames [][]byte
	for s := range 64 {
		src := netip.AddrFrom4([4]byte{10, 1, 1, byte(1 + s)})
		var hops []cache.RLEHop
		for i := range 4 {
			hops = append(hops, cache.RLEHop{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(2 + i)}), Level: 128})
		}
		ups = append(ups, cache.Update{Key: cache.MulticastKey(iidSite, netip.PrefixFrom(src, 32), netip.PrefixFrom(group, 32)),
			RLE: hops, TTL: 60})
		frames = append(frames, siteFrame(b, innerSpec{src: src, dst: group, sport: uint16(1024 + s), payload: 18}))
	}
	if res := r.c.Apply(ups); res.Err != nil || res.Inserted != len(ups) {
		b.Fatalf("install: %+v", res)
	}
	in, out := newNullPort(b, frames), newNullPort(b, nil)
	w, err := NewWorker(Config{ID: 1, Cache: r.c, NextHops: r.nh, Outer: r.outer,
		Ports: []PortConfig{{Port: in, Index: 1, Site: true, IID: iidSite}, {Port: out, Index: 2}}})
	if err != nil {
		b.Fatal(err)
	}
	for range 64 {
		w.Step()
	}
	before := out.tx
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		w.Step()
	}
	el := time.Since(start)
	b.StopTimer()
	pkts := float64(b.N) * ring.IdealBatchSize
	if got := float64(out.tx - before); got != 4*pkts {
		b.Fatalf("sent %.0f copies of %.0f packets, want 4 each", got, pkts)
	}
	b.ReportMetric(float64(el.Nanoseconds())/pkts, "ns/pkt")
	b.ReportMetric(float64(el.Nanoseconds())/pkts/4, "ns/copy")
}

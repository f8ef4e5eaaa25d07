package nexthop

import (
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// BenchmarkWatcherKernel: the watcher on a namespace whose main table
// holds NHROUTES /24 routes (default 100000; 1000000 for an Internet
// table) through one gateway, as a routing daemon installs them. It
// reports the time from Run to the first snapshot (the dump and its
// build), the heap then in use, and, per op, the time from one route
// replaced in the kernel (moved to the other gateway) after a quiet spell
// to the Table storing a snapshot that resolves it so; then, for a burst of 2000 such
// moves made back to back (a BGP peer's update), the time until the
// snapshot has the last and the process's CPU time meanwhile; and the
// whole table withdrawn route by route: the time the deletions took, the
// time from the last to the snapshot without the routes (a poll every
// millisecond), and the snapshots and resyncs meanwhile. NHRCVBUF sets the receive buffers in MiB (default 4). Root only; the routes cover
// 20.0.0.0 up and lead nowhere: no packet is sent.
func BenchmarkWatcherKernel(b *testing.B) {
	n := 100_000
	if v := os.Getenv("NHROUTES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 1<<22 {
			b.Fatalf("NHROUTES=%q: want 1..%d", v, 1<<22)
		}
	}
	ns, h, l := vethNS(b, "nk", "10.82.0.1/24")
	idx := l.Attrs().Index
	gws := []net.IP{net.ParseIP("10.82.0.2"), net.ParseIP("10.82.0.3")}
	macs := [][6]byte{{2, 0, 0x82, 0, 0, 2}, {2, 0, 0x82, 0, 0, 3}}
	for i, gw := range gws {
		if err := h.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: netlink.FAMILY_V4, IP: gw,
			HardwareAddr: macs[i][:], State: netlink.NUD_PERMANENT}); err != nil {
			b.Fatal(err)
		}
	}
	dst := func(i int) net.IP { return net.IPv4(byte(20+i>>16), byte(i>>8), byte(i), 0) }
	route := func(i, g int) *netlink.Route {
		return &netlink.Route{LinkIndex: idx, Gw: gws[g], Dst: &net.IPNet{IP: dst(i), Mask: net.CIDRMask(24, 32)}}
	}
	for i := range n {
		if err := h.RouteAdd(route(i, 0)); err != nil {
			b.Fatalf("route %d: %v", i, err)
		}
	}
	var tab Table
	var want atomic.Pointer[netip.Addr] // the address the op waits for, resolved through gateway 1
	seen := make(chan struct{}, 1)
	tab.OnStore(func(s *Snapshot) {
		if a := want.Load(); a != nil {
			if adj, st := s.Resolve(*a); st == AdjResolved && adj.DstMAC == macs[1] {
				want.Store(nil)
				seen <- struct{}{}
			}
		}
	})
	rcvbuf := 0 // the default
	if v := os.Getenv("NHRCVBUF"); v != "" {
		mib, err := strconv.Atoi(v)
		if err != nil || mib < 1 || mib > 1024 {
			b.Fatalf("NHRCVBUF=%q: want 1..1024 (MiB)", v)
		}
		rcvbuf = mib << 20
	}
	w, err := NewWatcher(WatcherConfig{Links: []string{l.Attrs().Name}, Namespace: &ns, Table: &tab, ReceiveBuffer: rcvbuf})
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	start := time.Now()
	runWatcherWithin(b, w, 2*time.Minute)
	ready := time.Since(start)
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	if got := tab.Load().Routes(); got < n {
		b.Fatalf("%d routes in the first snapshot, want at least %d", got, n)
	}
	next := 0
	var total time.Duration
	for b.Loop() {
		i := next % n
		next++
		a, _ := netip.AddrFromSlice(dst(i).To4())
		a = a.Next()
		want.Store(&a)
		t0 := time.Now()
		if err := h.RouteReplace(route(i, 1)); err != nil {
			b.Fatal(err)
		}
		select {
		case <-seen:
		case <-time.After(time.Minute):
			b.Fatalf("route %d: no snapshot resolved it through the new gateway", i)
		}
		total += time.Since(t0)
		if err := h.RouteReplace(route(i, 0)); err != nil { // back, outside the timing
			b.Fatal(err)
		}
		// A quiet spell longer than PublishGap, so the next change is
		// published at once, as one after a quiet spell is.
		time.Sleep(3 * defaultPublishGap)
	}
	// A BGP update burst: stormN routes moved one after the other, as
	// fast as netlink takes them; the time until the snapshot resolves the
	// last of them so, and the process's CPU time meanwhile (the
	// watcher's, mostly).
	b.StopTimer()
	const stormN = 2000
	var ru0, ru1 unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	t0 := time.Now()
	for k := range stormN {
		i := (next + k) % n
		if k == stormN-1 {
			a, _ := netip.AddrFromSlice(dst(i).To4())
			a = a.Next()
			want.Store(&a)
		}
		if err := h.RouteReplace(route(i, 1)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-seen:
	case <-time.After(2 * time.Minute):
		b.Fatal("the burst's last route: no snapshot resolved it through the new gateway")
	}
	storm := time.Since(t0)
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano() + ru1.Stime.Nano() - ru0.Stime.Nano())
	// A peer withdrawing its whole table: every route deleted, as fast
	// as netlink takes it; the time until the snapshot holds none of
	// them, and the snapshots published and resyncs meanwhile.
	st0, others := w.Stats(), tab.Load().Routes()-n // the connected routes
	t0 = time.Now()
	for i := range n {
		r := route(i, 0)
		r.Gw = nil // whichever gateway it has now
		if err := h.RouteDel(r); err != nil {
			b.Fatalf("delete route %d: %v", i, err)
		}
	}
	deleted := time.Now()
	for tab.Load().Routes() > others {
		if time.Since(t0) > 10*time.Minute {
			b.Fatalf("%d routes left in the snapshot", tab.Load().Routes())
		}
		time.Sleep(time.Millisecond)
	}
	tail := time.Since(deleted)
	st1 := w.Stats()
	b.ReportMetric(float64(deleted.Sub(t0).Milliseconds()), "ms-withdraw-all")
	b.ReportMetric(float64(tail.Milliseconds()), "ms-withdraw-tail")
	b.ReportMetric(float64(st1.Snapshots-st0.Snapshots), "snapshots-withdraw")
	b.ReportMetric(float64(st1.Resyncs-st0.Resyncs), "resyncs-withdraw")
	b.ReportMetric(float64(storm.Milliseconds()), "ms-burst2000")
	b.ReportMetric(float64(cpu.Milliseconds()), "cpu-ms-burst2000")
	b.ReportMetric(float64(ready.Milliseconds()), "ms-ready")
	b.ReportMetric(float64(m.HeapAlloc)/(1<<20), "MiB-heap")
	b.ReportMetric(float64(total.Microseconds())/1e3/float64(b.N), "ms/change")
}

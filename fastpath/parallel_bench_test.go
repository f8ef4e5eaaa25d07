package fastpath

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rloc-router/rloc/ring"
)

// threadCPU returns the calling thread's CPU time.
func threadCPU() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

// BenchmarkWorkers runs 1 or 2 workers at once, each on its own thread
// pinned to its own CPU, over one shared map-cache (benchRig's 100k
// prefixes) and next-hop table, as rlocd runs one worker per queue. Each
// worker encapsulates 64-byte packets of its own 4096 flows, or 64 (as
// receive-side scaling would give it) from a nullPort (ring/mem pool) to a nullPort.
// Mpps is the packets of all workers over the wall time; cpu-ns/pkt is the
// workers' thread CPU time per packet, which other tenants of the machine
// do not inflate. "private-cache" gives each worker a map-cache of its own
// (same content), to tell sharing effects from the rest.
//
// Compare 2-workers with 1-workers: the wall-clock speedup is
// Mpps(2)/Mpps(1), linear 2.0 on an idle 2-CPU machine.
func BenchmarkWorkers(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs 2 CPUs")
	}
	shared := benchRig(b)
	dsts := benchDsts(2 * 4096)
	flows := func(i, n int) [][]byte {
		var fs [][]byte
		for j, d := range dsts[i*4096 : i*4096+n] {
			fs = append(fs, siteFrame(b, innerSpec{src: hostA, dst: d, sport: uint16(1024 + j), payload: 18}))
		}
		return fs
	}
	type variant struct {
		name    string
		n       int
		private bool
		spin    bool // a register-only busy loop on CPU 1 beside one worker
		flows   int  // per worker
	}
	var cases []variant
	for _, flows := range []int{4096, 64} {
		cases = append(cases, variant{"1-workers", 1, false, false, flows}, variant{"2-workers", 2, false, false, flows})
		if flows == 4096 {
			cases = append(cases, variant{"2-workers-private-cache", 2, true, false, flows},
				variant{"1-workers-cpu1-spinning", 1, false, true, flows})
		}
	}
	for _, tc := range cases {
		name := tc.name + "/encap-64B"
		if tc.flows != 4096 {
			name += fmt.Sprintf("-%dflows", tc.flows)
		}
		b.Run(name, func(b *testing.B) {
			ws := make([]*Worker, tc.n)
			outs := make([]*nullPort, tc.n)
			for i := range ws {
				r := shared
				if tc.private {
					r = benchRig(b)
				}
				in, out := newNullPort(b, flows(i, tc.flows)), newNullPort(b, nil)
				w, err := NewWorker(Config{ID: i, Cache: r.c, NextHops: r.nh, Outer: r.outer,
					Ports: []PortConfig{{Port: in, Index: 1, Site: true, IID: iidSite}, {Port: out, Index: 2}}})
				if err != nil {
					b.Fatal(err)
				}
				for range 128 { // warm the memo and the caches
					w.Step()
				}
				ws[i], outs[i] = w, out
			}
			runtime.GC()
			b.ReportAllocs()
			var (
				ready, start sync.WaitGroup
				done         sync.WaitGroup
				cpu          = make([]time.Duration, tc.n)
				errs         = make([]error, tc.n)
			)
			ready.Add(tc.n)
			start.Add(1)
			done.Add(tc.n)
			for i, w := range ws {
				go func() {
					defer done.Done()
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					var set unix.CPUSet
					set.Set(i)
					errs[i] = unix.SchedSetaffinity(0, &set)
					ready.Done()
					start.Wait()
					c0 := threadCPU()
					for range b.N {
						w.Step()
					}
					cpu[i] = threadCPU() - c0
				}()
			}
			stopSpin := make(chan struct{})
			if tc.spin {
				ready.Add(1)
				go spinOn(1, &ready, stopSpin)
			}
			defer close(stopSpin)
			ready.Wait()
			b.ResetTimer()
			t0 := time.Now()
			start.Done()
			done.Wait()
			wall := time.Since(t0)
			b.StopTimer()
			var sum time.Duration
			for i := range ws {
				if errs[i] != nil {
					b.Fatalf("pin worker %d: %v", i, errs[i])
				}
				if got := outs[i].tx; got < uint64(b.N)*ring.IdealBatchSize {
					b.Fatalf("worker %d sent %d of %d", i, got, b.N*ring.IdealBatchSize)
				}
				sum += cpu[i]
			}
			pkts := float64(tc.n * b.N * ring.IdealBatchSize)
			b.ReportMetric(pkts/wall.Seconds()/1e6, "Mpps")
			b.ReportMetric(float64(sum.Nanoseconds())/pkts, "cpu-ns/pkt")
			b.ReportMetric(float64(wall.Nanoseconds())*float64(tc.n)/pkts, "ns/pkt")
		})
	}
}

// spinOn runs a loop that touches no memory on CPU cpu until stop closes:
// what it costs a worker on another CPU comes from sharing the core
// (hypervisor SMT siblings) or its clock, not from caches.
func spinOn(cpu int, ready *sync.WaitGroup, stop <-chan struct{}) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	_ = unix.SchedSetaffinity(0, &set)
	ready.Done()
	x := uint64(1)
	for {
		for range 1 << 16 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		select {
		case <-stop:
			spinSink.Store(x)
			return
		default:
		}
	}
}

// spinSink keeps spinOn's result alive.
var spinSink atomic.Uint64

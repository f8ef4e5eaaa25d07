package fastpath

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestDropReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for r := DropReason(0); r < NumDropReasons; r++ {
		n := r.String()
		if n == "" || seen[n] {
			t.Fatalf("reason %d has empty or duplicate name %q", r, n)
		}
		seen[n] = true
	}
	for _, want := range []string{"no-route", "negative-drop", "bad-ethernet", "bad-ip", "bad-ihl", "bad-length",
		"bad-udp", "bad-lisp", "wrong-iid", "not-our-rloc", "ttl-expired", "mtu-exceeded", "hold-full-eid",
		"hold-full-global", "miss-queue-full", "hold-timeout", "no-neighbour", "tx-full"} {
		if !seen[want] {
			t.Errorf("missing drop reason %q", want)
		}
	}
	if NumDropReasons.String() != "drop-?" || numEventCounters.String() != "counter-?" {
		t.Error("out-of-range names")
	}
	if !DropBadIHL.BadPacket() || DropNoRoute.BadPacket() {
		t.Error("BadPacket classification")
	}
}

func TestCountersEach(t *testing.T) {
	var c Counters
	c.Inc(CounterRX)
	c.Add(CounterTX, 5)
	c.Drop(DropBadUDP)
	c.DropN(DropHoldTimeout, 3)
	got := map[string]uint64{}
	n := 0
	c.Each(func(name, reason string, v uint64) {
		n++
		got[name+"/"+reason] = v
	})
	if n != numCounters {
		t.Fatalf("Each visited %d counters, want %d", n, numCounters)
	}
	if got["rx/"] != 1 || got["tx/"] != 5 || got["bad-packet/bad-udp"] != 1 || got["dropped/hold-timeout"] != 3 {
		t.Fatalf("Each values wrong: %v", got)
	}
	if c.DroppedTotal() != 4 {
		t.Fatalf("DroppedTotal %d, want 4", c.DroppedTotal())
	}
}

func TestPublishSum(t *testing.T) {
	w1, w2 := new(WorkerCounters), new(WorkerCounters)
	w1.Local.Add(CounterRX, 10)
	w1.Local.Drop(DropNoRoute)
	w2.Local.Add(CounterRX, 7)
	if s := Sum([]*WorkerCounters{w1, w2}); s.Get(CounterRX) != 0 {
		t.Fatalf("unpublished counts visible: %d", s.Get(CounterRX))
	}
	w1.Publish()
	w2.Publish()
	s := Sum([]*WorkerCounters{w1, nil, w2})
	if s.Get(CounterRX) != 17 || s.Dropped(DropNoRoute) != 1 {
		t.Fatalf("sum rx %d no-route %d; want 17, 1", s.Get(CounterRX), s.Dropped(DropNoRoute))
	}
}

// TestCountersConcurrent publishes from a worker goroutine while readers
// sum; under -race it checks the read side, and the sums must never go
// backwards.
func TestCountersConcurrent(t *testing.T) {
	ws := []*WorkerCounters{new(WorkerCounters), new(WorkerCounters)}
	var stop atomic.Bool
	var wg sync.WaitGroup
	const batches = 20000
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range batches {
				for range 64 {
					w.Local.Inc(CounterRX)
					w.Local.Inc(CounterEncap)
				}
				w.Local.Drop(DropTXFull)
				w.Publish()
			}
		}()
	}
	var rwg sync.WaitGroup
	rwg.Add(1)
	var fail string
	go func() {
		defer rwg.Done()
		var last uint64
		for !stop.Load() {
			s := Sum(ws)
			if s.Get(CounterRX) < last {
				fail = "sum went backwards"
				return
			}
			last = s.Get(CounterRX)
		}
	}()
	wg.Wait()
	stop.Store(true)
	rwg.Wait()
	if fail != "" {
		t.Fatal(fail)
	}
	s := Sum(ws)
	if s.Get(CounterRX) != 2*batches*64 || s.Dropped(DropTXFull) != 2*batches {
		t.Fatalf("final rx %d tx-full %d", s.Get(CounterRX), s.Dropped(DropTXFull))
	}
}

// The counter benchmarks model a worker's per-packet accounting: three
// counter increments per packet (rx, encap, tx), batches of 64.

// BenchmarkCounterPlainPublish: plain increments, Publish at batch end
// (the chosen design).
func BenchmarkCounterPlainPublish(b *testing.B) {
	w := new(WorkerCounters)
	for i := 0; i < b.N; i++ {
		w.Local.Inc(CounterRX)
		w.Local.Inc(CounterEncap)
		w.Local.Inc(CounterTX)
		if i&63 == 63 {
			w.Publish()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/pkt")
}

// BenchmarkCounterPlainOnly: plain increments, never published (the floor).
func BenchmarkCounterPlainOnly(b *testing.B) {
	w := new(WorkerCounters)
	for i := 0; i < b.N; i++ {
		w.Local.Inc(CounterRX)
		w.Local.Inc(CounterEncap)
		w.Local.Inc(CounterTX)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/pkt")
}

// BenchmarkCounterAtomicAdd: one uncontended atomic add per increment on a
// worker-private padded block.
func BenchmarkCounterAtomicAdd(b *testing.B) {
	w := new(WorkerCounters)
	for i := 0; i < b.N; i++ {
		w.pub[CounterRX].Add(1)
		w.pub[CounterEncap].Add(1)
		w.pub[CounterTX].Add(1)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/pkt")
}

// BenchmarkCounterAtomicAddShared: two workers doing atomic adds on
// counters in one shared (unpadded) cache line: what padding avoids.
func BenchmarkCounterAtomicAddShared(b *testing.B) {
	var shared [2]atomic.Uint64
	var next atomic.Int32
	b.RunParallel(func(pb *testing.PB) {
		c := &shared[next.Add(1)&1]
		for pb.Next() {
			c.Add(1)
			c.Add(1)
			c.Add(1)
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/pkt")
}

// BenchmarkCounterPlainPublishParallel: two workers, each with its own padded
// WorkerCounters, plain increments plus Publish per 64.
func BenchmarkCounterPlainPublishParallel(b *testing.B) {
	ws := [2]*WorkerCounters{new(WorkerCounters), new(WorkerCounters)}
	var next atomic.Int32
	b.RunParallel(func(pb *testing.PB) {
		w := ws[next.Add(1)&1]
		i := 0
		for pb.Next() {
			w.Local.Inc(CounterRX)
			w.Local.Inc(CounterEncap)
			w.Local.Inc(CounterTX)
			i++
			if i&63 == 0 {
				w.Publish()
			}
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/pkt")
}

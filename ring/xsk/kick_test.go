package xsk

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rloc-router/rloc/ring"
)

// TestDeferredKicks: after DeferKicks, Transmit leaves a batch on the tx ring
// without a sendto (the kernel, in copy mode, has consumed nothing) and Flush
// sends all of it, in one sendto where the kernel takes XDP_MAX_TX_SKB_BUDGET.
// The published counters follow.
func TestDeferredKicks(t *testing.T) {
	tp := newTopo(t, 1)
	_, port := tp.steer(t, 0, ProgramConfig{Mode: ModeSite}, XDPDriver, nil)
	sink := udpIn(t, tp.p, "udp4", v4(0, 2)+":4341")
	src, dst := netip.MustParseAddr(v4(0, 1)), netip.MustParseAddr(v4(0, 2))
	port.DeferKicks()

	const n = 64
	var fs [n]ring.Frame
	if got := port.Alloc(fs[:]); got != n {
		t.Fatalf("Alloc = %d", got)
	}
	for i := range fs {
		f := &fs[i]
		f.SetLen(42 + 8)
		b := f.Bytes()
		buildUDP4(b, tp.pmac[0], tp.rmac[0], src, dst, 40000, 4341, 8)
		copy(b[42:], "deferred")
	}
	if got, err := port.Transmit(fs[:]); got != n || err != nil {
		t.Fatalf("Transmit = %d, %v", got, err)
	}
	if port.InFlight() != n {
		t.Fatalf("InFlight = %d after transmitting %d", port.InFlight(), n)
	}
	if port.TxKicks != 0 || port.Unkicked() != n {
		t.Fatalf("after a deferred Transmit: %d sendto calls, %d unkicked; want 0, %d", port.TxKicks, port.Unkicked(), n)
	}
	if c := atomic.LoadUint32(port.tx.cons); c != 0 {
		t.Fatalf("the kernel consumed %d descriptors without a kick", c)
	}
	if err := port.Flush(); err != nil {
		t.Fatal(err)
	}
	// 64 frames fit one sendto with the tx budget (Linux 6.17+); older
	// kernels send 32 per call.
	if port.TxWakeups != 1 || port.TxKicks == 0 || port.TxKicks > n/txBatch || port.Unkicked() != 0 {
		t.Fatalf("after Flush: %d wake-ups, %d sendto calls, %d unkicked", port.TxWakeups, port.TxKicks, port.Unkicked())
	}
	t.Logf("%d frames in %d sendto calls", n, port.TxKicks)
	for i := 0; i < n; i++ {
		if b, err := readUDP(sink, 5*time.Second); err != nil || string(b) != "deferred" {
			t.Fatalf("datagram %d: %q, %v", i, b, err)
		}
	}
	if err := port.Flush(); err != nil || port.TxWakeups != 1 {
		t.Fatalf("Flush with nothing queued kicked (%d wake-ups, %v)", port.TxWakeups, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for done := 0; done < n && time.Now().Before(deadline); {
		done += port.Complete()
	}
	if port.InFlight() != 0 {
		t.Fatalf("InFlight = %d after every completion", port.InFlight())
	}
	c := port.Published()
	if c.TxPackets != n || c.TxKicks != port.TxKicks || c.TxWakeups != 1 {
		t.Fatalf("published %+v; port tx %d kicks %d", c, port.TxPackets, port.TxKicks)
	}
}

// TestTxBudgetRejected: a transmit budget above the tx ring is refused.
func TestTxBudgetRejected(t *testing.T) {
	if _, err := NewGroup(Options{TxRingSize: 64, TxBudget: 128}); err == nil {
		t.Fatal("NewGroup accepted a tx budget above the tx ring size")
	}
}

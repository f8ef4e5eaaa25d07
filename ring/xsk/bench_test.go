package xsk

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asavie/xdp"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/rloc-router/rloc/lab/netns"
	"github.com/rloc-router/rloc/ring"
)

// benchEnv makes a router and a peer namespace joined by one veth pair and
// returns the interface names and MAC addresses.
func benchEnv(b *testing.B) (*netns.NS, *netns.NS, string, string, net.HardwareAddr, net.HardwareAddr) {
	b.Helper()
	s := netns.Suffix()
	r, p := netnstest.New(b, "br"), netnstest.New(b, "bp")
	ri, pi := "br"+s, "bp"+s
	if err := netns.Veth(r, ri, p, pi); err != nil {
		b.Fatal(err)
	}
	rl, _ := r.Link(ri)
	pl, _ := p.Link(pi)
	return r, p, ri, pi, rl.Attrs().HardwareAddr, pl.Attrs().HardwareAddr
}

func openIn(b *testing.B, ns *netns.NS, ifname string, o Options) *Port {
	b.Helper()
	g, err := NewGroup(o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	var port *Port
	if err := ns.Do(func() (err error) { port, err = g.Open(ifname, 0); return err }); err != nil {
		testkit.Unavailable(b, "AF_XDP socket: %v", err)
	}
	return port
}

// fillBatch allocates up to len(fs) frames holding a 64-byte UDP/IPv4 frame.
func fillBatch(port *Port, fs []ring.Frame, dmac, smac net.HardwareAddr) int {
	k := port.Alloc(fs)
	src, dst := netip.MustParseAddr("10.80.0.1"), netip.MustParseAddr("10.90.0.1")
	for i := 0; i < k; i++ {
		fs[i].SetLen(64)
		buildUDP4(fs[i].Bytes(), dmac, smac, src, dst, 1000, 2000, 64-42)
	}
	return k
}

func peerRxPackets(b *testing.B, ns *netns.NS, ifname string) uint64 {
	l, err := ns.Link(ifname)
	if err != nil {
		b.Fatal(err)
	}
	return l.Attrs().Statistics.RxPackets
}

// BenchmarkVethTX transmits 64-byte frames from an XSK (copy mode) on one
// veth end; the peer end counts them (and drops them: wrong MAC). Each op is
// one batch of 64.
func BenchmarkVethTX(b *testing.B) {
	for _, c := range []struct {
		name string
		o    Options
	}{
		{"default", Options{}},
		{"small", Options{NumFrames: 128, FillRingSize: 64, CompletionRingSize: 64, RxRingSize: 64, TxRingSize: 64}},
		{"nowakeup", Options{NoNeedWakeup: true}},
	} {
		b.Run(c.name, func(b *testing.B) { benchVethTX(b, c.o) })
	}
}

func benchVethTX(b *testing.B, o Options) {
	r, p, ri, pi, _, _ := benchEnv(b)
	port := openIn(b, r, ri, o)
	other := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	var fs [ring.IdealBatchSize]ring.Frame
	before := peerRxPackets(b, p, pi)
	b.ResetTimer()
	sent := 0
	for i := 0; i < b.N; i++ {
		k := fillBatch(port, fs[:], other, other)
		n, err := port.Transmit(fs[:k])
		if err != nil {
			b.Fatal(err)
		}
		port.Release(fs[n:k])
		sent += n
		port.Complete()
	}
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		port.Flush()
		port.Complete()
		if peerRxPackets(b, p, pi)-before >= uint64(sent) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	got := peerRxPackets(b, p, pi) - before
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(got)/secs/1e6, "rx-Mpps")
	b.ReportMetric(float64(sent)/secs/1e6, "tx-Mpps")
	if got > 0 {
		b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(got), "ns/pkt")
	}
	b.ReportMetric(float64(port.TxKicks)/float64(b.N), "kicks/op")
}

// BenchmarkVethRX sends 64-byte frames from an XSK generator in the peer
// namespace to a veth with the steering program (site mode, native XDP) and
// receives them on the router's XSK. It reports what the receiver got.
func BenchmarkVethRX(b *testing.B) {
	for _, xm := range []struct {
		name string
		m    XDPMode
	}{{"driver", XDPDriver}, {"generic", XDPGeneric}} {
		b.Run(xm.name, func(b *testing.B) {
			r, p, ri, pi, rmac, pmac := benchEnv(b)
			prog, err := LoadProgram(ProgramConfig{Mode: ModeSite})
			if err != nil {
				testkit.Unavailable(b, "load: %v", err)
			}
			if err := r.Do(func() error { return prog.Attach(ri, xm.m) }); err != nil {
				testkit.Unavailable(b, "attach: %v", err)
			}
			b.Cleanup(func() { r.Do(prog.Close) })
			rx := openIn(b, r, ri, Options{})
			if err := prog.Register(0, rx.FD()); err != nil {
				b.Fatal(err)
			}
			gen := openIn(b, p, pi, Options{})
			total := b.N * ring.IdealBatchSize
			done := make(chan int, 1)
			var genDone atomic.Bool
			go func() {
				var fs [ring.IdealBatchSize]ring.Frame
				got := 0
				deadline := time.Now().Add(30 * time.Second)
				for got < total && time.Now().Before(deadline) {
					n, _ := rx.Receive(fs[:])
					if n == 0 {
						if _, err := rx.Wait(20 * time.Millisecond); err != nil {
							break
						}
						if n, _ = rx.Receive(fs[:]); n == 0 {
							// The generator is done and nothing more
							// arrives: stop early.
							if genDone.Load() {
								break
							}
							continue
						}
					}
					got += n
					rx.Release(fs[:n])
				}
				done <- got
			}()
			var fs [ring.IdealBatchSize]ring.Frame
			b.ResetTimer()
			sent := 0
			deadline := time.Now().Add(30 * time.Second)
			for sent < total && time.Now().Before(deadline) {
				k := fillBatch(gen, fs[:], rmac, pmac)
				if k > total-sent {
					gen.Release(fs[total-sent : k])
					k = total - sent
				}
				n, err := gen.Transmit(fs[:k])
				if err != nil {
					b.Fatal(err)
				}
				gen.Release(fs[n:k])
				sent += n
				gen.Complete()
			}
			gen.Flush()
			genDone.Store(true)
			got := <-done
			b.StopTimer()
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(got)/secs/1e6, "rx-Mpps")
			b.ReportMetric(float64(sent)/secs/1e6, "tx-Mpps")
			b.ReportMetric(float64(got)/float64(total)*100, "%received")
			st, _ := rx.Stats()
			b.Logf("N=%d sent %d received %d; socket stats %+v", b.N, sent, got, st)
		})
	}
}

// BenchmarkVethTXAsavie is BenchmarkVethTX with github.com/asavie/xdp's
// socket (its defaults: 128 frames, rings of 64, one sendto per Transmit),
// for comparison on the same topology.
func BenchmarkVethTXAsavie(b *testing.B) {
	r, p, ri, pi, _, _ := benchEnv(b)
	var xs *xdp.Socket
	if err := r.Do(func() error {
		ifi, err := net.InterfaceByName(ri)
		if err != nil {
			return err
		}
		xs, err = xdp.NewSocket(ifi.Index, 0, nil)
		return err
	}); err != nil {
		testkit.Unavailable(b, "asavie socket: %v", err)
	}
	defer xs.Close()
	other := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	src, dst := netip.MustParseAddr("10.80.0.1"), netip.MustParseAddr("10.90.0.1")
	before := peerRxPackets(b, p, pi)
	b.ResetTimer()
	sent := 0
	for i := 0; i < b.N; i++ {
		descs := xs.GetDescs(ring.IdealBatchSize)
		for j := range descs {
			descs[j].Len = 64
			buildUDP4(xs.GetFrame(descs[j]), other, other, src, dst, 1000, 2000, 64-42)
		}
		sent += xs.Transmit(descs)
		xs.Complete(xs.NumCompleted())
	}
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		if peerRxPackets(b, p, pi)-before >= uint64(sent) {
			break
		}
		xs.Transmit(nil)
		xs.Complete(xs.NumCompleted())
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	got := peerRxPackets(b, p, pi) - before
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(got)/secs/1e6, "rx-Mpps")
	b.ReportMetric(float64(sent)/secs/1e6, "tx-Mpps")
}

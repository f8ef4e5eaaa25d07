package veth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rloc-router/rloc/internal/testkit/xdptest"
	"github.com/rloc-router/rloc/lab/netns"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/ring/xsk"
)

// ioOnly is the ceiling of rloc's AF_XDP path on this topology: the same
// steering program, UMEM and sockets as the ITR (site mode on in0, one
// Group for in0 and out0), and a loop on the DUT's CPU that transmits every
// frame it receives on in0 unchanged on out0, kicking once per batch and
// sleeping in poll(2) when idle, as the worker does. It does no LISP work.
type ioOnly struct {
	group      *xsk.Group
	site, core *xsk.Port
	prog       *xsk.Program
	tid        atomic.Int32
	stop       context.CancelFunc
	done       chan error
	kickDelay  time.Duration // as fastpath.Config.KickDelay
}

// startIOOnly opens the sockets in ns and starts the forwarding loop pinned
// to cpu.
func startIOOnly(ns *netns.NS, site, core string, siteAddr netip.Addr, opts xsk.Options, cpu int,
	kickDelay time.Duration) (f *ioOnly, err error) {
	f = &ioOnly{kickDelay: kickDelay}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if f.group, err = xsk.NewGroup(opts); err != nil {
		return f, err
	}
	if f.prog, err = xsk.LoadProgram(xsk.ProgramConfig{Mode: xsk.ModeSite}); err != nil {
		return f, err
	}
	if err = f.prog.AddLocal(siteAddr); err != nil {
		return f, err
	}
	err = ns.Do(func() error {
		var err error
		if f.site, err = f.group.Open(site, 0); err != nil {
			return err
		}
		if f.core, err = f.group.Open(core, 0); err != nil {
			return err
		}
		return f.prog.Attach(site, xsk.XDPDriver)
	})
	if err != nil {
		return f, err
	}
	if err = f.prog.Register(0, f.site.FD()); err != nil {
		return f, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.stop, f.done = cancel, make(chan error, 1)
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			started <- fmt.Errorf("pin to CPU %d: %w", cpu, err)
			return
		}
		f.tid.Store(int32(unix.Gettid()))
		started <- nil
		f.done <- f.loop(ctx)
	}()
	if err = <-started; err != nil {
		f.done = nil
	}
	return f, err
}

// loop forwards until ctx is done: receive a batch, transmit it, kick with
// the worker's policy (32 frames queued or the oldest waited kickDelay),
// reap completions; after 64 empty rounds kick and sleep in poll(2) (1 ms at
// most, so ctx is noticed).
func (f *ioOnly) loop(ctx context.Context) error {
	f.core.DeferKicks()
	waiter := ring.NewWaiter([]ring.Port{f.site, f.core})
	var batch [ring.IdealBatchSize]ring.Frame
	idle := 0
	var first time.Time // when frames started waiting for a kick
	for ctx.Err() == nil {
		n, err := f.site.Receive(batch[:])
		if err != nil {
			return err
		}
		if n > 0 {
			idle = 0
			sent, err := f.core.Transmit(batch[:n])
			if err != nil {
				return err
			}
			ring.Release(batch[sent:n])
		}
		if u := f.core.Unkicked(); u > 0 {
			if first.IsZero() {
				first = time.Now()
			}
			if u >= 32 || time.Since(first) >= f.kickDelay {
				if err := f.core.Flush(); err != nil {
					return err
				}
				first = time.Time{}
			}
		}
		f.core.Complete()
		f.site.Complete()
		if n == 0 {
			if idle++; idle < 64 {
				continue
			}
			first = time.Time{}
			if err := f.core.Flush(); err != nil {
				return err
			}
			if err := waiter.Wait(time.Millisecond, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// CPUTime returns the loop thread's CPU time.
func (f *ioOnly) CPUTime() (time.Duration, error) { return xdptest.ThreadCPUTime(int(f.tid.Load())) }

// Close stops the loop, detaches the program and closes the sockets.
func (f *ioOnly) Close() error {
	var errs []error
	if f.stop != nil {
		f.stop()
		if f.done != nil {
			errs = append(errs, <-f.done)
		}
	}
	if f.prog != nil {
		errs = append(errs, f.prog.Close())
	}
	if f.group != nil {
		errs = append(errs, f.group.Close())
	}
	return errors.Join(errs...)
}

// ioOnlyVariant runs the I/O-only forwarder under the current load.
func (v *bench) ioOnlyVariant(b *testing.B, load string) {
	b.Run(load+"/io-only", func(b *testing.B) {
		v.run(b, "dut", "sh", "-c", "ip route del 10.2.0.0/24 2>/dev/null; true")
		f, err := startIOOnly(v.l.Node("dut"), "in0", "out0", netip.MustParseAddr("10.1.0.1"), v.xsk, dutCPU, v.kick)
		need(b, err == nil, "AF_XDP I/O-only forwarder: %v", err)
		defer func() {
			if err := f.Close(); err != nil {
				b.Errorf("close: %v", err)
			}
			logKicks(b, f.core)
		}()
		for i := 0; i < b.N; i++ {
			r := v.generate(b, f)
			r.dutCPU = r.worker + r.soft0 // as for rloc-itr
			report(b, load+"/io-only", r)
		}
	})
}

// logKicks logs and reports the transmit socket's frames per sendto.
func logKicks(b *testing.B, p *xsk.Port) {
	c := p.Published()
	b.Logf("core socket: tx %d frames, %d kicks (wake-ups), %d sendto calls (%d busy): %.1f frames per sendto",
		c.TxPackets, c.TxWakeups, c.TxKicks, c.TxKickBusy, float64(c.TxPackets)/float64(max(c.TxKicks, 1)))
	b.ReportMetric(float64(c.TxPackets)/float64(max(c.TxKicks, 1)), "frames/sendto")
}

// Package xdptest runs rloc's fast path on real AF_XDP sockets inside network
// namespaces, without the daemon: an XTR is one fastpath.Worker whose site
// and core ports are xsk sockets sharing one UMEM (an xsk.Group), with the
// steering program attached in site mode to the site interface and in core
// mode to the core interface, static mappings in its map-cache and its next
// hops kept by a fastpath/nexthop watcher. The end-to-end test of this package
// and the veth benchmark (bench/veth) build on it.
package xdptest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/lab/netns"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/ring/xsk"
)

// XTRConfig describes one xTR.
type XTRConfig struct {
	// NS is the router's namespace; Site and Core name its interfaces there.
	NS         *netns.NS
	Site, Core string
	// IID is the instance-ID of the site interface (RFC 9300 §5.3).
	IID uint32
	// SiteAddrs are the router's own addresses on the site interface: the
	// site-mode program passes traffic to them to the kernel.
	SiteAddrs []netip.Addr
	// RLOC4 and RLOC6 are the router's RLOCs on the core interface (the
	// core-mode program redirects LISP data to them).
	RLOC4, RLOC6 netip.Addr
	// Mappings are installed as static map-cache entries.
	Mappings []fastpath.StaticMapping
	// XDPMode is how the programs attach (default xsk.XDPDriver).
	XDPMode xsk.XDPMode
	// Options size the UMEM and rings.
	Options xsk.Options
	// Pin and CPU pin the worker thread (fastpath.Config).
	Pin bool
	CPU int
	// IdleSpins and IdleWait are the worker's idle policy
	// (fastpath.Config; zero takes its defaults). A negative IdleSpins makes
	// the worker poll without ever sleeping.
	IdleSpins int
	IdleWait  time.Duration
	// KickDelay is the worker's transmit kick coalescing (fastpath.Config).
	KickDelay time.Duration
	// Offload hands steady flows to the site program
	// (fastpath.Offload): their packets are encapsulated by XDP and
	// redirected to the core interface without reaching the worker. The core
	// interface's peer must take XDP redirects (veth: an XDP program or
	// NAPI on the peer).
	Offload bool
	// Decap, with Offload, also hands the deliveries of steady flows
	// to the core program (Offload.AddDecap): their packets are
	// decapsulated by XDP and redirected to the site interface, whose peer
	// must then take XDP redirects.
	Decap bool
	// RTR makes the worker an RTR (fastpath.Config.RTR): Site is then a
	// second core interface (its program in core mode, its port not a
	// site port), where the re-encapsulated packets may leave. With
	// Offload, the Core interface's program re-encapsulates steady flows
	// (Offload.AddReencap) instead of the Site one's encapsulating them.
	RTR bool
	// Logger receives the watcher's warnings (nil: discard).
	Logger *slog.Logger
}

// Port indices of an XTR's interfaces in its nexthop.Table (nexthop.WatcherConfig.Links
// order).
const (
	sitePortIndex = 0
	corePortIndex = 1
)

// XTR is a running worker with its sockets, programs and next-hop watcher.
type XTR struct {
	cfg      XTRConfig
	group    *xsk.Group
	site     *xsk.Port
	core     *xsk.Port
	siteProg *xsk.Program
	coreProg *xsk.Program
	cache    *cache.Cache
	table    *nexthop.Table
	watcher  *nexthop.Watcher // the next-hop table's
	worker   *fastpath.Worker
	offload  *fastpath.Offload

	raw4, raw6 int
	sa4        unix.RawSockaddrInet4
	sa6        unix.RawSockaddrInet6
	kernelErrs atomic.Uint64

	tid       atomic.Int32
	stopWork  context.CancelFunc
	workDone  chan error
	stopWatch context.CancelFunc
	watchDone chan error
	closed    bool
}

// StartXTR builds and starts an xTR. On error everything already built is
// torn down again. Close stops it.
func StartXTR(cfg XTRConfig) (x *XTR, err error) {
	if cfg.NS == nil || cfg.Site == "" || cfg.Core == "" {
		return nil, errors.New("xdptest: XTRConfig needs NS, Site and Core")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	x = &XTR{cfg: cfg, raw4: -1, raw6: -1, table: new(nexthop.Table)}
	defer func() {
		if err != nil {
			x.Close()
			x = nil
		}
	}()
	if err = x.startWatcher(); err != nil {
		return x, err
	}
	if x.group, err = xsk.NewGroup(cfg.Options); err != nil {
		return x, err
	}
	siteMode := xsk.ModeSite
	if cfg.RTR {
		siteMode = xsk.ModeCore
	}
	if x.siteProg, err = xsk.LoadProgram(xsk.ProgramConfig{Mode: siteMode}); err != nil {
		return x, err
	}
	for _, a := range cfg.SiteAddrs {
		if err = x.siteProg.AddLocal(a); err != nil {
			return x, err
		}
	}
	if x.coreProg, err = xsk.LoadProgram(xsk.ProgramConfig{Mode: xsk.ModeCore}); err != nil {
		return x, err
	}
	for _, a := range []netip.Addr{cfg.RLOC4, cfg.RLOC6} {
		if a.IsValid() {
			if err = x.coreProg.AddLocal(a); err != nil {
				return x, err
			}
		}
	}
	// Sockets, attachments and the kernel-path sockets are made inside the
	// namespace; they stay there whichever thread uses them later.
	err = cfg.NS.Do(func() error {
		var err error
		if x.site, err = x.group.Open(cfg.Site, 0); err != nil {
			return err
		}
		if x.core, err = x.group.Open(cfg.Core, 0); err != nil {
			return err
		}
		if err = x.siteProg.Attach(cfg.Site, cfg.XDPMode); err != nil {
			return err
		}
		if err = x.coreProg.Attach(cfg.Core, cfg.XDPMode); err != nil {
			return err
		}
		if x.raw4, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
			return fmt.Errorf("xdptest: raw IPv4 socket: %w", err)
		}
		if x.raw6, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
			return fmt.Errorf("xdptest: raw IPv6 socket: %w", err)
		}
		return nil
	})
	if err != nil {
		return x, err
	}
	if err = x.siteProg.Register(0, x.site.FD()); err != nil {
		return x, err
	}
	if err = x.coreProg.Register(0, x.core.FD()); err != nil {
		return x, err
	}
	outer := fastpath.OuterConfig{RLOC4: cfg.RLOC4, RLOC6: cfg.RLOC6, Nonce: true}
	ccfg := cache.Config{BuildTemplate: outer.BuildTemplate}
	siteOff, coreIfindex := ring.OffloadTable(nil), 0
	coreDecap, siteIfindex := ring.DecapTable(nil), 0
	coreReencap := ring.ReencapTable(nil)
	ifindex := func(name string) (int, error) {
		l, err := cfg.NS.Link(name)
		if err != nil {
			return 0, err
		}
		return l.Attrs().Index, nil
	}
	if cfg.Offload {
		x.offload = fastpath.NewOffload(0)
		ccfg.Published = x.offload.MapChanged
		x.table.OnStore(x.offload.NextHopsChanged)
		x.offload.OnUsed(x.watcher.MarkUsed) // what its Sweep (the test's) finds used
		if coreIfindex, err = ifindex(cfg.Core); err != nil {
			return x, err
		}
		if cfg.RTR || cfg.Decap {
			// An RTR's flows may leave through either interface.
			if siteIfindex, err = ifindex(cfg.Site); err != nil {
				return x, err
			}
		}
		switch {
		case cfg.RTR:
			err = x.offload.AddReencap(x.coreProg)
			coreReencap = x.coreProg
		case cfg.Decap:
			if err = x.offload.Add(x.siteProg, cfg.IID); err == nil {
				err = x.offload.AddDecap(x.coreProg)
			}
			siteOff, coreDecap = x.siteProg, x.coreProg
		default:
			err = x.offload.Add(x.siteProg, cfg.IID)
			siteOff = x.siteProg
		}
		if err != nil {
			return x, err
		}
	}
	x.cache = cache.New(ccfg)
	if err = fastpath.InstallStatic(x.cache, cfg.Mappings); err != nil {
		return x, err
	}
	var addr4, addr6 netip.Addr
	for _, a := range cfg.SiteAddrs {
		if a.Is4() && !addr4.IsValid() {
			addr4 = a
		}
		if a.Is6() && !addr6.IsValid() {
			addr6 = a
		}
	}
	spins := cfg.IdleSpins
	if spins < 0 {
		spins = 1<<31 - 1
	}
	x.worker, err = fastpath.NewWorker(fastpath.Config{
		Pin: cfg.Pin,
		CPU: cfg.CPU,
		Ports: []fastpath.PortConfig{
			{Port: x.site, Index: sitePortIndex, Site: !cfg.RTR, IID: cfg.IID, Addr4: addr4, Addr6: addr6, Offload: siteOff,
				Ifindex: siteIfindex},
			{Port: x.core, Index: corePortIndex, Ifindex: coreIfindex, Decap: coreDecap, Reencap: coreReencap},
		},
		RTR:       cfg.RTR,
		Cache:     x.cache,
		NextHops:  x.table,
		Offload:   x.offload,
		Outer:     outer,
		ToKernel:  x.toKernel,
		IdleSpins: spins,
		IdleWait:  cfg.IdleWait,
		KickDelay: cfg.KickDelay,
	})
	if err != nil {
		return x, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	x.stopWork = cancel
	x.workDone = make(chan error, 1)
	started := make(chan struct{})
	go func() {
		// Locked here as well as in Run, so the thread id stays the
		// worker's for CPUTime.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		x.tid.Store(int32(unix.Gettid()))
		close(started)
		x.workDone <- x.worker.Run(ctx)
	}()
	<-started
	return x, nil
}

// startWatcher runs a nexthop.Watcher on the router's namespace and waits for
// its first snapshot.
func (x *XTR) startWatcher() error {
	h, err := vnetns.GetFromName(x.cfg.NS.Name)
	if err != nil {
		return fmt.Errorf("xdptest: namespace handle: %w", err)
	}
	w, err := nexthop.NewWatcher(nexthop.WatcherConfig{
		Links:     []string{x.cfg.Site, x.cfg.Core},
		Namespace: &h,
		Table:     x.table,
		Logger:    x.cfg.Logger,
	})
	if err != nil {
		h.Close()
		return err
	}
	x.watcher = w
	ctx, cancel := context.WithCancel(context.Background())
	x.stopWatch = cancel
	x.watchDone = make(chan error, 1)
	go func() {
		err := w.Run(ctx)
		h.Close()
		x.watchDone <- err
	}()
	select {
	case <-w.Ready():
		return nil
	case err := <-x.watchDone:
		x.watchDone <- err
		return fmt.Errorf("xdptest: next-hop watcher: %w", err)
	case <-time.After(10 * time.Second):
		return errors.New("xdptest: next-hop watcher not ready after 10 s")
	}
}

// toKernel is the worker's kernel path (fastpath.Config.ToKernel): it hands
// an IP packet whose next hop is unresolved to the router's kernel through a
// raw socket (IP_HDRINCL), which resolves the neighbour and sends it. It
// runs on the worker's thread, does not block and does not allocate.
func (x *XTR) toKernel(pkt []byte) bool {
	if len(pkt) < 20 {
		return false
	}
	var fd int
	var sa unsafe.Pointer
	var salen uintptr
	switch pkt[0] >> 4 {
	case 4:
		x.sa4.Family = unix.AF_INET
		copy(x.sa4.Addr[:], pkt[16:20])
		fd, sa, salen = x.raw4, unsafe.Pointer(&x.sa4), unsafe.Sizeof(x.sa4)
	case 6:
		if len(pkt) < 40 {
			return false
		}
		x.sa6.Family = unix.AF_INET6
		copy(x.sa6.Addr[:], pkt[24:40])
		fd, sa, salen = x.raw6, unsafe.Pointer(&x.sa6), unsafe.Sizeof(x.sa6)
	default:
		return false
	}
	if fd < 0 {
		return false
	}
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&pkt[0])), uintptr(len(pkt)),
		unix.MSG_DONTWAIT, uintptr(sa), salen)
	if e != 0 {
		x.kernelErrs.Add(1)
		return false
	}
	return true
}

// Worker returns the xTR's worker (for its counters).
func (x *XTR) Worker() *fastpath.Worker { return x.worker }

// Counters returns a snapshot of the worker's counters.
func (x *XTR) Counters() fastpath.Counters {
	var c fastpath.Counters
	x.worker.Counters().Snapshot(&c)
	return c
}

// Offload returns the xTR's offload (nil without XTRConfig.Offload).
func (x *XTR) Offload() *fastpath.Offload { return x.offload }

// Cache returns the map-cache the worker reads.
func (x *XTR) Cache() *cache.Cache { return x.cache }

// KernelErrors counts packets the kernel path refused.
func (x *XTR) KernelErrors() uint64 { return x.kernelErrs.Load() }

// ProgramStats returns the steering programs' counters (site, core).
func (x *XTR) ProgramStats() (site, core xsk.Stats, err error) {
	if site, err = x.siteProg.Stats(); err != nil {
		return
	}
	core, err = x.coreProg.Stats()
	return
}

// Ports returns the site and core sockets. Their counters belong to the
// worker's goroutine: read them after Close.
func (x *XTR) Ports() (site, core *xsk.Port) { return x.site, x.core }

// SocketStats returns the kernel's counters of the site and core sockets
// (XDP_STATISTICS: drops, full rings, empty fill rings).
func (x *XTR) SocketStats() (site, core unix.XDPStatistics, err error) {
	if site, err = x.site.Stats(); err != nil {
		return
	}
	core, err = x.core.Stats()
	return
}

// SetNice sets the nice value of the worker's thread (setpriority on its
// thread id), e.g. -20 so that on a shared machine the polling worker is not
// starved by other processes while the kernel paths it is compared with run
// in softirq, ahead of every process.
func (x *XTR) SetNice(nice int) error {
	if err := unix.Setpriority(unix.PRIO_PROCESS, int(x.tid.Load()), nice); err != nil {
		return fmt.Errorf("xdptest: nice %d for the worker thread: %w", nice, err)
	}
	return nil
}

// CPUTime returns the CPU time the worker's thread has used so far
// (CLOCK_THREAD_CPUTIME_ID of that thread: user and system time, the
// sendto/recvfrom kicks included).
func (x *XTR) CPUTime() (time.Duration, error) {
	return ThreadCPUTime(int(x.tid.Load()))
}

// ThreadCPUTime returns the CPU time used by thread tid of this process.
func ThreadCPUTime(tid int) (time.Duration, error) {
	// The clock id of a thread's CPU clock (pthread_getcpuclockid):
	// MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED) in linux/posix-timers.h.
	clk := int32(^uint32(tid)<<3 | 4 | 2)
	var ts unix.Timespec
	if err := unix.ClockGettime(clk, &ts); err != nil {
		return 0, fmt.Errorf("xdptest: thread %d CPU clock: %w", tid, err)
	}
	return time.Duration(ts.Nano()), nil
}

// Close stops the worker and the watcher, detaches the programs and closes
// the sockets. It is safe to call more than once.
func (x *XTR) Close() error {
	if x.closed {
		return nil
	}
	x.closed = true
	x.table.OnStore(nil)
	var errs []error
	if x.stopWork != nil {
		x.stopWork()
		select {
		case err := <-x.workDone:
			if err != nil {
				errs = append(errs, fmt.Errorf("xdptest: worker: %w", err))
			}
		case <-time.After(5 * time.Second):
			errs = append(errs, errors.New("xdptest: worker did not stop in 5 s"))
		}
	}
	// The watcher stops before the programs close: its snapshots move the
	// offload's epoch (nexthop.Table.OnStore), in the site program's map.
	if x.stopWatch != nil {
		x.stopWatch()
		select {
		case err := <-x.watchDone:
			errs = append(errs, err)
		case <-time.After(5 * time.Second):
			errs = append(errs, errors.New("xdptest: next-hop watcher did not stop in 5 s"))
		}
	}
	detach := func() error {
		var errs []error
		for _, p := range []*xsk.Program{x.siteProg, x.coreProg} {
			if p != nil {
				errs = append(errs, p.Close())
			}
		}
		return errors.Join(errs...)
	}
	if err := x.cfg.NS.Do(detach); err != nil {
		errs = append(errs, err)
	}
	if x.group != nil {
		errs = append(errs, x.group.Close())
	}
	for _, fd := range []int{x.raw4, x.raw6} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	return errors.Join(errs...)
}

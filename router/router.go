// Package router assembles a whole rloc LISP router from plain Go
// configuration structs: the map-cache, the neighbour watcher, the XDP
// steering programs and AF_XDP sockets, the pinned fast-path workers, the
// control-plane engine and the glue between them (installing what the ITR
// learns, releasing held packets, feeding misses to the engine), plus the
// management API and /metrics. cmd/rlocd is a thin front end over it;
// appliances can embed rloc by building a Config and calling Start.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rloc-router/rloc/slowpath/control"

	"github.com/vishvananda/netlink"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/ring/xsk"
)

// missPoll is the shortest interval between two drains of the workers'
// miss and observation queues while they keep filling; missFallback the
// longest, should a notification be missed. An idle router does not poll.
const (
	missPoll     = time.Millisecond
	missFallback = 100 * time.Millisecond
)

// Router is a running rloc router.
type Router struct {
	cfgMu sync.Mutex
	cfg   Config
	log   *slog.Logger

	cache   *cache.Cache
	nh      *nexthop.Table
	watcher *nexthop.Watcher   // keeps nh; marks the neighbours the fast path used (markUsed)
	offUsed []nexthop.LinkDest // the offload's sweep's OnUsed, for markUsed (housekeeping's)
	outer   fastpath.OuterConfig
	progs   []*xsk.Program
	offload *fastpath.Offload // xdp.offload, nil when off
	// egressNames names the interfaces the offload's programs redirect to,
	// by index (offloadEgress; read-only after the start).
	egressNames map[int]string
	groups      []*xsk.Group
	xsks        []xskSocket // every AF_XDP socket, for its own and the kernel's counters
	workers     []*fastpath.Worker
	engine      *control.Engine
	events      *hub
	tk          *toKernel
	glean       gleaner
	adv         advertiser

	// The core interfaces the native site programs redirect offloaded
	// packets to, and the watch of their xdp-features (offloadPeers).
	redirectIfs []redirectIf
	fwatch      *xsk.FeatureWatch

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // workers
	bg     sync.WaitGroup // neigh, miss drain, housekeeping

	mgmtLn   net.Listener
	mgmtSrv  *http.Server
	metrics  *http.Server
	metricLn net.Listener

	started        time.Time
	releaseDropped atomic.Uint64
	missesSeen     atomic.Uint64
	ugEngine       atomic.Pointer[control.Engine] // told of traffic on underlay groups (set once the engine runs)
	localGroups    *fastpath.LocalGroups          // groups with site receivers, for the workers (nil: deliver all)
	closers        []func() error                 // closed on Stop after the engine
	statusAddr     string                         // the status page's listener, "" when off
	stopOnce       sync.Once
	up             bool // Start succeeded
	workerErr      chan error
	missNotify     chan struct{} // workers' SlowPathNotify: misses or observations queued
}

// Start validates cfg and starts every part of the router. On error
// everything already started is stopped again.
func Start(cfg Config) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Router{cfg: cfg, log: cfg.Logger, events: newHub(), started: time.Now(), workerErr: make(chan error, 64),
		missNotify: make(chan struct{}, 1)}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	for _, a := range cfg.RLOCs {
		if a.Unmap().Is4() {
			r.outer.RLOC4 = a.Unmap()
		} else {
			r.outer.RLOC6 = a
		}
	}
	r.outer.Nonce = cfg.Nonce
	ccfg := cache.Config{MaxEntries: cfg.Cache.MaxEntries, MaxNegative: cfg.Cache.MaxNegative,
		BuildTemplate: r.outer.BuildTemplate}
	if (cfg.XDP.Offload || cfg.XDP.OffloadDecap) && len(cfg.Interfaces) > 0 {
		// The workers' flow hash seed is 0 (fastpath.Config.FlowSeed).
		r.offload = fastpath.NewOffload(0)
		ccfg.Published = r.offload.MapChanged // the encap direction's entries a change covers
	}
	r.cache = cache.New(ccfg)
	if err := fastpath.InstallStatic(r.cache, cfg.Static); err != nil {
		return nil, fmt.Errorf("map_cache: %w", err)
	}
	if err := r.start(); err != nil {
		r.Stop()
		return nil, err
	}
	r.up = true
	r.log.Info("router started", r.startLine()...)
	return r, nil
}

// startLine is the start-up log line's attributes: what runs and where it
// can be reached.
func (r *Router) startLine() []any {
	cfg := &r.cfg
	ifs := make([]string, len(cfg.Interfaces))
	for i, ifc := range cfg.Interfaces {
		ifs[i] = ifc.Name + "(" + string(ifc.Side) + ")"
	}
	a := []any{"name", cfg.Name, "roles", cfg.Roles.String(), "workers", len(r.workers),
		"interfaces", strings.Join(ifs, " ")}
	if r.engine != nil {
		a = append(a, "control", fmt.Sprint(r.engine.Addrs()))
	}
	if r.mgmtLn != nil {
		a = append(a, "mgmt", cfg.Mgmt.Socket)
	}
	if r.metricLn != nil {
		a = append(a, "metrics", r.metricLn.Addr().String())
	}
	return a
}

func (r *Router) start() error {
	cfg := &r.cfg
	if len(cfg.Interfaces) > 0 {
		if err := r.startDataPlane(); err != nil {
			return err
		}
	}
	if err := r.adv.advertise(cfg.Advertise); err != nil {
		return err
	}
	ec, err := cfg.engineConfig()
	if err != nil {
		return err
	}
	if ec.MapServer != nil || ec.MapResolver != nil || ec.ETR != nil || ec.ITR != nil || ec.DDT != nil || ec.ALT != nil {
		ec.Logger = r.log.With("component", "slowpath")
		ec.Events = r.onEngineEvent
		if err := r.mcastOpen(&ec); err != nil {
			return err
		}
		if r.engine, err = control.New(ec, installer{r}); err != nil {
			return err
		}
		r.ugEngine.Store(r.engine)
	}
	r.watchRedirects()
	r.bg.Add(1)
	go r.housekeeping(newMSWatch(r))
	if len(r.workers) > 0 && r.engine != nil && cfg.Roles.resolves() {
		r.bg.Add(1)
		go r.drainMisses()
	}
	if cfg.Mgmt.Socket != "" {
		if err := r.startMgmt(); err != nil {
			return err
		}
	}
	if cfg.Metrics.Listen != "" {
		if err := r.startMetrics(); err != nil {
			return err
		}
	}
	if cfg.Status.Listen != "" {
		if err := r.startStatus(); err != nil {
			return err
		}
	}
	return nil
}

// startDataPlane starts the neighbour watcher, the XDP programs, the
// sockets and the workers: one worker per receive queue, with the sockets
// of that queue on every interface.
func (r *Router) startDataPlane() error {
	for i, ifc := range r.cfg.Interfaces {
		if _, err := net.InterfaceByName(ifc.Name); err != nil {
			return fmt.Errorf("interfaces[%d].name: no interface %q in this network namespace: %w", i, ifc.Name, err)
		}
	}
	if err := r.startNeighbours(); err != nil {
		return err
	}
	local, err := localAddrs()
	if err != nil {
		return err
	}
	if r.tk, err = newToKernel(); err != nil {
		r.log.Warn("no raw sockets: packets to unresolved neighbours are dropped", "err", err)
	}
	queues := max(r.cfg.Interfaces[0].Queues, 1)
	if err := r.openGroups(queues); err != nil {
		return err
	}
	ports := make([][]fastpath.PortConfig, queues)
	for i := range r.cfg.Interfaces {
		if err := r.attachInterface(i, local, ports); err != nil {
			return err
		}
	}
	if err := r.newWorkers(ports); err != nil {
		return err
	}
	r.runWorkers()
	return nil
}

// startNeighbours starts the watcher that keeps the next-hop table (routes,
// neighbours, links) of the router's interfaces and waits for its first
// full read.
func (r *Router) startNeighbours() error {
	cfg := &r.cfg
	r.nh = new(nexthop.Table)
	if r.offload != nil {
		r.nh.OnStore(r.offload.NextHopsChanged)
	}
	links := make([]string, len(cfg.Interfaces))
	for i, ifc := range cfg.Interfaces {
		links[i] = ifc.Name
	}
	nc := cfg.NextHops.watcherConfig()
	nc.Links, nc.Table, nc.Logger = links, r.nh, r.log
	if cfg.Multicast.Enabled {
		nc.MulticastLink = cfg.underlayIface() // where copies to G-RLOCs leave
	}
	w, err := nexthop.NewWatcher(nc)
	if err != nil {
		return err
	}
	r.watcher = w
	if r.offload != nil {
		r.offload.OnUsed(func(ds []nexthop.LinkDest) { r.offUsed = append(r.offUsed[:0], ds...) })
	}
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		if err := w.Run(r.ctx); err != nil {
			r.log.Error("neighbour watcher stopped", "err", err)
		}
	}()
	select {
	case <-w.Ready():
		return nil
	case <-time.After(5 * time.Second):
		return errors.New("interfaces: the kernel's routing and neighbour tables could not be read within 5 s")
	}
}

// openGroups maps one UMEM (xsk Group) per queue, shared by that queue's
// sockets on every interface (XDP_SHARED_UMEM works across netdevs): the
// queue's worker then forwards a frame from one interface to another
// without copying it (ring/xsk TestSharedUMEMForward).
func (r *Router) openGroups(queues int) error {
	opts := r.cfg.XDP.XSK(len(r.cfg.Interfaces))
	for q := range queues {
		g, err := xsk.NewGroup(opts)
		if err != nil {
			return fmt.Errorf("interfaces: queue %d: %w", q, err)
		}
		r.groups = append(r.groups, g)
	}
	return nil
}

// attachInterface loads and attaches interface i's steering program (the
// router's own addresses local go to the kernel) and opens a socket on each
// of its queues in that queue's Group, adding it to ports[queue].
func (r *Router) attachInterface(i int, local []netip.Addr, ports [][]fastpath.PortConfig) error {
	ifc := &r.cfg.Interfaces[i]
	f := fmt.Sprintf("interfaces[%d]", i)
	if err := r.checkQueues(f, ifc.Name, len(ports), ifc.PartialQueues); err != nil {
		return err
	}
	mode := xsk.ModeCore
	if ifc.Side == SideSite {
		mode = xsk.ModeSite
	}
	prog, err := xsk.LoadProgram(xsk.ProgramConfig{Mode: mode})
	if err != nil {
		return fmt.Errorf("%s: %w", f, err)
	}
	r.progs = append(r.progs, prog)
	for _, a := range slices.Concat(local, r.cfg.RLOCs) {
		if err := prog.AddLocal(a); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	xm := xsk.XDPDriver
	if ifc.XDPMode == XDPGeneric {
		xm = xsk.XDPGeneric
	}
	if err := prog.Attach(ifc.Name, xm); err != nil {
		return fmt.Errorf("%s.name: %w", f, err)
	}
	addr4, addr6 := ifaceAddrs(ifc.Name)
	var (
		offload ring.OffloadTable
		decap   ring.DecapTable
		reencap ring.ReencapTable
	)
	if ifc.Side == SideSite && r.offload != nil && r.cfg.XDP.Offload {
		if err := r.offload.Add(prog, ifc.IID); err != nil {
			return fmt.Errorf("%s: xdp.offload: %w", f, err)
		}
		offload = prog
	}
	if ifc.Side == SideCore && r.offload != nil && r.cfg.XDP.OffloadDecap {
		if err := r.offload.AddDecap(prog); err != nil {
			return fmt.Errorf("%s: xdp.offload_decap: %w", f, err)
		}
		decap = prog
	}
	if ifc.Side == SideCore && r.offload != nil && r.cfg.XDP.Offload && r.cfg.Roles.RTR {
		// An RTR's flows come in and leave on core interfaces: their
		// programs re-encapsulate them.
		if err := r.offload.AddReencap(prog); err != nil {
			return fmt.Errorf("%s: xdp.offload: %w", f, err)
		}
		reencap = prog
	}
	ifindex, err := r.offloadEgress(f, ifc)
	if err != nil {
		return err
	}
	for q := range ports {
		p, err := r.groups[q].Open(ifc.Name, q)
		if err != nil {
			return fmt.Errorf("%s.queues: queue %d: %w", f, q, err)
		}
		if err := prog.Register(q, p.FD()); err != nil {
			return fmt.Errorf("%s.queues: %w", f, err)
		}
		r.xsks = append(r.xsks, xskSocket{Port: p, iface: ifc.Name})
		ports[q] = append(ports[q], fastpath.PortConfig{Port: p, Index: uint16(i),
			Site: ifc.Side == SideSite, IID: ifc.IID, MTU: ifc.MTU, Addr4: addr4, Addr6: addr6, Glean: ifc.Glean,
			Offload: offload, Decap: decap, Reencap: reencap, Ifindex: ifindex})
	}
	return nil
}

// checkQueues refuses an interface whose NIC spreads received traffic over
// another number of queues than the configuration opens sockets on: the
// steering program redirects only queues with a socket, so what arrives on
// the others would reach the kernel past the fast path (unencapsulated, or
// dropped), unless partial says the NIC keeps that traffic off them; a
// socket on a queue that does not exist cannot be bound. A device without
// channels (a bridge, bond or VLAN) only has an upper bound of its queues:
// more than queues there is logged, not refused.
func (r *Router) checkQueues(f, ifname string, queues int, partial bool) error {
	n, channels, err := xsk.RxQueues(ifname)
	if err != nil {
		return fmt.Errorf("%s.name: %w", f, err)
	}
	switch {
	case n > queues && !partial && !channels:
		r.log.Warn("the device may receive on queues without a socket; what arrives there passes the fast path by (xdp_pass_no_xsk in the stats)",
			"interface", ifname, "queues", queues, "device_queues", n)
	case n > queues && !partial:
		return fmt.Errorf("%s.queues: %d, but %s spreads what it receives over %d queues: "+
			"what arrives on %s would pass the fast path by; set queues: %d on every interface, "+
			"or give %s %d queue(s) (ethtool -L %s combined %d), or set partial_queues: true "+
			"if its RSS or flow rules keep the traffic to forward on %s",
			f, queues, ifname, n, queueRange(queues, n-1), n, ifname, queues, ifname, queues, queueRange(0, queues-1))
	case n < queues:
		return fmt.Errorf("%s.queues: %d, but %s has %d receive queue(s)", f, queues, ifname, n)
	}
	return nil
}

// queueRange names queues a to b: "queue 3" or "queues 1-3".
func queueRange(a, b int) string {
	if a == b {
		return fmt.Sprintf("queue %d", a)
	}
	return fmt.Sprintf("queues %d-%d", a, b)
}

// newWorkers builds worker q over ports[q] (workerConfigs).
func (r *Router) newWorkers(ports [][]fastpath.PortConfig) error {
	if cfg := &r.cfg; cfg.Multicast.Enabled && cfg.Multicast.Receivers {
		// Decapsulated multicast goes to the site only for groups with
		// receivers there (none yet).
		r.localGroups = new(fastpath.LocalGroups)
		r.localGroups.Set(nil)
	}
	for _, wc := range r.workerConfigs(ports) {
		wk, err := fastpath.NewWorker(wc)
		if err != nil {
			return err
		}
		r.workers = append(r.workers, wk)
	}
	return nil
}

// workerConfigs is the configuration of worker q over ports[q], pinned to
// CPUs[q % len(CPUs)] when CPUs are given, with the xdp section's polling
// and kick settings and the roles' forwarding choices.
func (r *Router) workerConfigs(ports [][]fastpath.PortConfig) []fastpath.Config {
	cfg := &r.cfg
	neg := fastpath.NegativeNative
	var petr4, petr6 netip.Addr
	for _, a := range cfg.PETRs {
		neg = fastpath.NegativePETR
		if a.Unmap().Is4() {
			petr4 = a.Unmap()
		} else {
			petr6 = a
		}
	}
	wcs := make([]fastpath.Config, 0, len(ports))
	for q := range ports {
		cpu := -1
		if len(cfg.CPUs) > 0 {
			cpu = cfg.CPUs[q%len(cfg.CPUs)]
		}
		wc := fastpath.Config{ID: q, CPU: cpu, Pin: cpu >= 0, Ports: ports[q], Cache: r.cache, NextHops: r.nh,
			Outer: r.outer, Hold: cfg.Hold, Negative: neg, PETR4: petr4, PETR6: petr6, RTR: cfg.Roles.RTR,
			BusyPoll: cfg.XDP.BusyPoll, KickDelay: cfg.XDP.KickDelay, LocalGroups: r.localGroups, SlowPathNotify: r.missNotify,
			Offload: r.offload}
		if r.tk != nil {
			wc.ToKernel = r.tk.send
		}
		if cfg.Multicast.Underlay != nil {
			wc.UnderlayGroup = r.receivedOnUnderlayGroup
		}
		wcs = append(wcs, wc)
	}
	return wcs
}

// runWorkers starts every worker's loop; a worker that stops on its own
// reports its error on WorkerErr.
func (r *Router) runWorkers() {
	for _, wk := range r.workers {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := wk.Run(r.ctx); err != nil {
				r.log.Error("worker stopped", "worker", wk.ID(), "err", err)
				select {
				case r.workerErr <- err:
				default:
				}
			}
		}()
	}
}

// localAddrs lists the addresses of every interface in the namespace.
func localAddrs() ([]netip.Addr, error) {
	list, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("interfaces: list local addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

// ifaceAddrs returns the first global IPv4 and IPv6 address of ifname (the
// source of ICMP errors sent out of a site port).
func ifaceAddrs(ifname string) (a4, a6 netip.Addr) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return
	}
	list, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return
	}
	for _, a := range list {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.IsLinkLocalUnicast() {
			continue
		}
		ip = ip.Unmap()
		if ip.Is4() && !a4.IsValid() {
			a4 = ip
		} else if ip.Is6() && !a6.IsValid() {
			a6 = ip
		}
	}
	return
}

// drainMisses moves the workers' MissEvents and Observations to the engine
// when a worker signals some (at most once per missPoll, and every
// missFallback regardless).
func (r *Router) drainMisses() {
	defer r.bg.Done()
	fallback := time.NewTicker(missFallback)
	defer fallback.Stop()
	pace := time.NewTimer(0)
	defer pace.Stop()
	var ev fastpath.MissEvent
	var obs fastpath.Observation
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-pace.C:
		}
		select {
		case <-r.ctx.Done():
			return
		case <-r.missNotify:
		case <-fallback.C:
		}
		pace.Reset(missPoll)
		for _, w := range r.workers {
			for w.Observations().Pop(&obs) {
				if obs.Glean && r.glean.observe(r.cache, &obs, time.Now(), r.engine.Miss) {
					r.log.Debug("gleaned a mapping", "iid", obs.IID, "eid", obs.EID, "rloc", obs.RLOC)
					r.events.publish(Event{Kind: EventMappingInstalled, IID: obs.IID, EID: obs.EID.String(),
						RLOCs: []string{obs.RLOC.String()}, Detail: "gleaned"})
				}
			}
			for w.Misses().Pop(&ev) {
				r.missesSeen.Add(1)
				r.engine.Miss(ev)
				if r.events.active() {
					r.events.publish(Event{Kind: EventMiss, IID: ev.IID, EID: ev.Dst.String(),
						Detail: "src " + ev.Src.String()})
				}
			}
		}
	}
}

// housekeeping expires map-cache entries, keeps the activity clock
// moving, and publishes the mapping-system pictures' changes (msWatch).
func (r *Router) housekeeping(ms *msWatch) {
	defer r.bg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var features <-chan struct{}
	if r.fwatch != nil {
		features = r.fwatch.C()
	}
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-features:
			r.offloadPeers()
		case now := <-t.C:
			r.cache.Expire(now)
			r.offloadPeers() // also without a watch, or one that stopped
			if r.offload != nil {
				// The kernel's offloaded packets mark their entries used.
				if err := r.offload.Sweep(r.cache); err != nil {
					r.log.Warn("xdp.offload: sweep", "err", err)
				}
			}
			r.markUsed()
			ms.poll(r)
		}
	}
}

// markUsed hands the watcher the link-layer destinations the workers
// (Worker.UsedNextHops) and the kernel offload (the sweep's, OnUsed) sent
// packets to, so that the kernel marks those neighbour entries used as its
// own forwarding would: it keeps them and probes a STALE one again. The
// fast path's packets pass none of them.
func (r *Router) markUsed() {
	ds := r.offUsed
	r.offUsed = r.offUsed[:0]
	for _, w := range r.workers {
		ds = w.UsedNextHops(ds)
	}
	if len(ds) > 0 && r.watcher != nil {
		r.watcher.MarkUsed(ds) // copies ds
	}
}

// WorkerErr delivers the error of a worker that stopped on its own (a ring
// failed); the daemon treats it as fatal.
func (r *Router) WorkerErr() <-chan error { return r.workerErr }

// Stop shuts the router down gracefully: the engine deregisters (when
// configured) and closes its sockets, the workers stop, the XDP programs are
// detached and the sockets closed. It is safe to call more than once.
func (r *Router) Stop() {
	r.stopOnce.Do(func() {
		if r.mgmtSrv != nil {
			_ = r.mgmtSrv.Close()
			_ = os.Remove(r.cfg.Mgmt.Socket)
		} else if r.mgmtLn != nil {
			r.mgmtLn.Close()
		}
		if r.metrics != nil {
			_ = r.metrics.Close()
		} else if r.metricLn != nil {
			r.metricLn.Close()
		}
		if r.engine != nil {
			_ = r.engine.Close()
		}
		for _, c := range r.closers {
			_ = c()
		}
		r.cancel()
		for _, w := range r.workers {
			w.Stop()
		}
		r.wg.Wait()
		if r.offload != nil {
			r.offload.Close() // nothing moves the programs' epoch once they close
		}
		for _, p := range r.progs {
			if err := p.Close(); err != nil {
				r.log.Warn("detach XDP program", "err", err)
			}
		}
		if err := r.adv.withdraw(); err != nil {
			r.log.Warn("withdraw EID aggregates", "err", err)
		}
		for _, g := range r.groups {
			_ = g.Close()
		}
		r.bg.Wait()
		if r.fwatch != nil {
			_ = r.fwatch.Close()
		}
		if r.tk != nil {
			r.tk.close()
		}
		if r.up { // a failed start is reported by its caller, once
			r.log.Info("router stopped", "name", r.cfg.Name)
		}
	})
}

// Reload applies a new configuration without stopping the workers: the
// ETR's database mappings, the Map-Server's sites and the static map-cache
// entries are swapped. Changes to anything else (interfaces, roles, RLOCs,
// peers) need a restart and are reported as an error, with nothing changed.
func (r *Router) Reload(nc Config) error {
	r.cfgMu.Lock()
	defer r.cfgMu.Unlock()
	old := r.cfg
	if err := CheckReload(&old, &nc); err != nil {
		return err
	}
	if r.engine != nil && nc.Roles.ETR {
		if err := r.engine.SetMappings(nc.Database); err != nil {
			return fmt.Errorf("database: %w", err)
		}
	}
	if r.engine != nil && nc.Roles.MapServer {
		if err := r.engine.SetSites(nc.Sites); err != nil {
			return fmt.Errorf("sites: %w", err)
		}
	}
	newUps, err := fastpath.StaticUpdates(nc.Static)
	if err != nil {
		return fmt.Errorf("map_cache: %w", err)
	}
	keep := map[cache.Key]bool{}
	for _, u := range newUps {
		keep[u.Key] = true
	}
	oldUps, _ := fastpath.StaticUpdates(old.Static)
	for _, u := range oldUps {
		if !keep[u.Key] {
			newUps = append(newUps, cache.Update{Key: u.Key, Delete: true})
		}
	}
	if res := r.cache.Apply(newUps); res.Rejected > 0 {
		return fmt.Errorf("map_cache: %d entries rejected: %w", res.Rejected, res.Err)
	}
	for _, u := range newUps {
		if !u.Delete {
			r.release(fastpath.Release{IID: u.Key.IID, Prefix: u.Key.Prefix, Negative: len(u.RLOCs) == 0, Action: u.Action})
		}
	}
	old.Database, old.Sites, old.Static = nc.Database, nc.Sites, nc.Static
	r.cfg = old
	r.events.publish(Event{Kind: EventReload, Detail: fmt.Sprintf("%d mappings, %d sites, %d static entries",
		len(nc.Database), len(nc.Sites), len(nc.Static))})
	r.log.Info("configuration reloaded", "mappings", len(nc.Database), "sites", len(nc.Sites), "static", len(nc.Static))
	return nil
}

// CheckReload reports whether a router running old would accept nc in
// Reload: nc is valid and differs from old only in the Reloadable keys.
// The error names every other key that changed.
func CheckReload(old, nc *Config) error {
	if err := nc.Validate(); err != nil {
		return err
	}
	return restartNeeded(old, nc)
}

// Reloadable are the top-level keys Reload applies; a change of any
// other key is refused, naming it, and the old configuration stays.
var Reloadable = []string{"database", "sites", "map_cache"}

// restartNeeded names every key whose change Reload cannot apply: all but
// Reloadable. A silently ignored change would leave an operator believing
// the new value is in force.
func restartNeeded(a, b *Config) error {
	var keys []string
	diffKeys(reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem(), "", &keys)
	if len(keys) == 0 {
		return nil
	}
	return fmt.Errorf("%s: changing this needs a restart (a reload applies %s only)",
		strings.Join(keys, ", "), strings.Join(Reloadable, ", "))
}

// diffKeys appends to keys the configuration keys (mapstructure tags,
// joined with dots under prefix) whose values differ between a and b,
// descending into sections; the top-level Reloadable keys are skipped.
func diffKeys(a, b reflect.Value, prefix string, keys *[]string) {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if !f.IsExported() || tag == "-" || (prefix == "" && slices.Contains(Reloadable, tag)) {
			continue
		}
		key := tag
		switch {
		case strings.Contains(opts, "squash"):
			key = prefix
		case prefix != "":
			key = prefix + "." + tag
		}
		av, bv := a.Field(i), b.Field(i)
		if f.Type.Kind() == reflect.Struct && hasKeys(f.Type) {
			diffKeys(av, bv, key, keys)
			continue
		}
		if !reflect.DeepEqual(av.Interface(), bv.Interface()) {
			*keys = append(*keys, key)
		}
	}
}

// hasKeys reports whether t is a section: a struct with keyed fields.
func hasKeys(t reflect.Type) bool {
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("mapstructure") != "" {
			return true
		}
	}
	return false
}

// Config returns the configuration in force.
func (r *Router) Config() Config {
	r.cfgMu.Lock()
	defer r.cfgMu.Unlock()
	return r.cfg
}

// Cache returns the router's map-cache.
func (r *Router) Cache() *cache.Cache { return r.cache }

// Engine returns the control-plane engine (nil for a router without
// control roles).
func (r *Router) Engine() *control.Engine { return r.engine }

// Workers returns the fast-path workers.
func (r *Router) Workers() []*fastpath.Worker { return r.workers }

package fastpath

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/wire"
)

// PortConfig describes one of a worker's ports.
type PortConfig struct {
	// Port is the ring the worker polls and transmits on: one NIC queue
	// (ring/xsk) or one end of an in-memory link (ring/mem).
	Port ring.Port
	// Index is the port's index in the nexthop.Table (nexthop.Adjacency.Port): next
	// hops that leave through this index are sent on Port.
	Index uint16
	// Site marks a site-facing port: what it receives is inner (EID)
	// traffic to encapsulate in instance-ID IID, and what the ETR
	// decapsulates for IID is delivered on it. Other ports face the core
	// (underlay) and receive LISP data packets.
	Site bool
	// IID is the instance-ID of a site port (RFC 9300 §8; 24 bits).
	IID uint32
	// MTU is the path MTU towards the core through this port, the largest
	// outer IP packet it may send (RFC 9300 §7, "L"). Zero takes the
	// next hop's interface MTU, and 1500 when that is unknown.
	MTU int
	// Glean enables gleaning on a site port (RFC 9300 §9): for packets the
	// ETR delivers in this port's instance-ID, the inner source EID and the
	// outer source RLOC are reported to the slow path (an Observation with
	// Glean set, once per EID per GleanInterval) so it can install a
	// short-lived mapping and verify it with a Map-Request. Off by default:
	// gleaning trusts the data packet and has no policy control.
	Glean bool
	// Offload is the offload table of a site port's interface (ring/xsk's
	// Program): with Config.Offload set, the worker hands it the port's
	// steady flows (see Offload). Nil: the port's flows stay here.
	Offload ring.OffloadTable
	// Decap is the decap table of a core port's interface (ring/xsk's
	// Program in core mode): with Config.Offload set, the worker hands it
	// the flows it delivers to site ports with an Ifindex (see
	// Offload). Nil: the port's flows stay here.
	Decap ring.DecapTable
	// Reencap is the reencap table of a core port's interface (ring/xsk's
	// Program in core mode), for an RTR (Config.RTR): with Config.Offload
	// set, the worker hands it the flows it re-encapsulates from the flow
	// memo (IPv4 EIDs) or encap (IPv6 EIDs: offer6), over IPv4 or IPv6
	// (see Offload). Nil: they stay here.
	Reencap ring.ReencapTable
	// Ifindex is the port's interface index: the kernel's offload redirects
	// to it. Zero: no flow is offloaded through this port.
	Ifindex int
	// Addr4 and Addr6 are the router's addresses on a site port, used as
	// the source of ICMP errors sent out of it (RFC 1812 §4.3.2.4). Zero
	// values fall back to the local RLOC of the family.
	Addr4, Addr6 netip.Addr
}

// NegativeMode says what a worker does with packets whose mapping is
// negative with action no-action or natively-forward (RFC 9301 §5.4).
type NegativeMode uint8

// Negative forwarding modes.
const (
	// NegativeNative forwards the packet unencapsulated, out of the port the
	// next-hop table gives for its destination (RFC 6832 §3: the destination
	// is not a LISP site).
	NegativeNative NegativeMode = iota
	// NegativePETR encapsulates the packet to the configured Proxy-ETR
	// (RFC 6832 §4); without a PETR of the packet's outer family the packet
	// is forwarded natively.
	NegativePETR
)

// Config configures a Worker. Zero fields take the documented defaults.
type Config struct {
	// ID identifies the worker in MissEvents and logs.
	ID int
	// Pin makes Run pin the worker's thread to core CPU (sched_setaffinity);
	// without it the thread is only locked to the goroutine.
	Pin bool
	// CPU is the core to pin to when Pin is set.
	CPU int
	// Ports are the rings the worker owns, site and core.
	Ports []PortConfig
	// Cache is the map-cache (required). Its Config.BuildTemplate must be
	// Outer.BuildTemplate (or build the same templates) so that entries
	// carry the outer headers the worker copies.
	Cache *cache.Cache
	// NextHops is the adjacency table the slow path maintains (required).
	NextHops *nexthop.Table
	// Outer holds the local RLOCs and the shape of the LISP header.
	Outer OuterConfig
	// Hold sizes the hold-on-miss storage.
	Hold HoldConfig
	// Negative is what to do with no-action / natively-forward negatives.
	Negative NegativeMode
	// PETR4 and PETR6 are the Proxy-ETR RLOCs for NegativePETR, one per
	// outer family (RFC 6832 §4); PETR4 is preferred when both are set.
	PETR4, PETR6 netip.Addr
	// RTR makes the worker re-encapsulate LISP packets whose instance-ID no
	// site port serves: decapsulate, look the inner destination up in that
	// instance-ID and encapsulate to the RLOC found (RFC 9300 §6 / §3 "RTR").
	// Without RTR such packets are dropped as DropWrongIID.
	RTR bool
	// LocalGroups, when set, limits the delivery of decapsulated multicast
	// to the site to the groups that have receivers there (see
	// LocalGroups); nil delivers every group the site routes.
	LocalGroups *LocalGroups
	// FlowSeed perturbs the flow hash (wire.FlowHash), so that an RTR can
	// split flows independently of the ITR before it.
	FlowSeed uint32
	// Offload, if set, hands steady flows of site ports that have an
	// offload table (PortConfig.Offload) to the kernel. Its seed must be
	// FlowSeed.
	Offload *Offload
	// ICMPRate bounds the ICMP errors the worker generates per second
	// (default 100); ICMPBurst is the bucket depth (default 10). A negative
	// ICMPRate disables ICMP generation.
	ICMPRate  int
	ICMPBurst int
	// Batch is the number of frames received per port per step (default
	// and maximum ring.IdealBatchSize).
	Batch int
	// GleanInterval is how often one EID is reported for gleaning at most
	// (default 1 s).
	GleanInterval time.Duration
	// IdleSpins is the number of empty steps before Run sleeps in poll(2)
	// (default 64). The sleep has no time limit while the worker holds no
	// packet and no partial reassembly (new frames, a Release pushed by
	// the slow path and Stop wake it); otherwise IdleWait bounds it
	// (default 1 ms) so their timeouts run. Ports that poll(2) cannot
	// watch (ring/mem) always sleep at most IdleWait.
	IdleSpins int
	IdleWait  time.Duration
	// BusyPoll makes Run poll its ports without ever sleeping (a core
	// dedicated to the worker, lowest latency, 100 % of that core); after
	// IdleSpins empty steps it calls sched_yield(2) on each empty step, so
	// a thread sharing its CPU runs at once instead of after its slice.
	BusyPoll bool
	// KickBatch and KickDelay coalesce the transmit wake-ups of ports that
	// let the caller wake the kernel (ring.Flusher: an AF_XDP socket pays
	// a sendto per wake-up in copy mode). At the end of a step a port's
	// queued frames are kicked once KickBatch of them wait (default 32),
	// once the oldest waited KickDelay, and always before Run sleeps.
	// KickDelay 0 (the default) kicks at the end of every step.
	KickBatch int
	KickDelay time.Duration
	// LookupMemo is the number of slots of the worker's memo of map-cache
	// lookups by exact destination (rounded up to a power of two; default
	// 65536 IPv4 and 32768 IPv6 slots, 2 MiB); negative disables the memo.
	// See lookupMemo.
	LookupMemo int
	// ObservationRing is the capacity of the echo-nonce / LSB observation
	// ring read by the slow path, rounded up to a power of two (default
	// 1024).
	ObservationRing int
	// ToKernel, when set, hands an IP packet (no Ethernet header) to the
	// kernel, e.g. through a TAP device or raw socket; the worker calls it
	// for packets whose next hop has no link-layer address yet (so the
	// kernel resolves it by ARP/ND) and counts CounterToKernel. ring.Port
	// has no path to the kernel of its own: when ToKernel is nil such
	// packets are dropped as DropNoNeighbour. It runs on the worker's
	// goroutine and must not block.
	ToKernel func(pkt []byte) bool
	// SlowPathNotify, when set, receives a token (without blocking: a
	// buffer of one is enough) at the end of a step that queued MissEvents
	// or Observations, so the slow path can sleep until there is something
	// to drain instead of polling.
	SlowPathNotify chan<- struct{}
	// UnderlayGroup, when set, is told the underlay multicast group
	// (G-RLOC) the worker decapsulates LISP data from (e.g.
	// slowpath.Engine.ReceivedOnUnderlayGroup, which suppresses
	// duplicates while the news keeps coming): on the first such packet,
	// then at most once a second while they keep arriving; it returns
	// false when it could not take the news yet (the worker then tells it
	// again on the next such packet). It runs on the worker's goroutine
	// and must not block.
	UnderlayGroup func(g netip.Addr) bool
}

// Extra counts the events of a worker that WorkerCounters has no slot for.
type Extra uint8

// Extra counters.
const (
	ExtraECNDrop         Extra = iota // outer CE over a Not-ECT inner packet, dropped (RFC 6040 §4.2)
	ExtraECNAlarm                     // ECN combination RFC 6040 §4.2 marks "(!!!)", forwarded
	ExtraFragmented                   // IPv4 packets sent as two fragments for the path MTU (outer fragments, inner behind an IPv6 outer header; RFC 9300 §7.1)
	ExtraICMPSent                     // ICMP/ICMPv6 too-big messages sent
	ExtraICMPSuppressed               // too-big messages not sent (rate limit, no frame, no address)
	ExtraNotLISP                      // core-port packets that are not UDP to port 4341 (subset of DropNotOurRLOC)
	ExtraObservationLost              // echo/LSB observations lost because the ring was full
	ExtraPoolEmpty                    // no frame for a fragment, ICMP or released packet
	ExtraMemoHit                      // map-cache lookups answered by the worker's memo
	ExtraMemoMiss                     // map-cache lookups the memo passed on to the cache
	ExtraFlowHit                      // packets encapsulated through the flow memo, without a map-cache lookup
	ExtraReasmDone                    // outer IPv4 packets reassembled from fragments by the ETR
	ExtraReasmTimeout                 // partial reassemblies dropped after the reassembly timeout
	ExtraReasmDuplicate               // outer fragments dropped as exact duplicates
	ExtraReasmOverlap                 // outer fragments dropped for overlapping others or a misplaced end
	ExtraReasmOversize                // outer fragments or reassemblies beyond the reassembly buffer or frame
	ExtraReasmFull                    // outer fragments dropped because every reassembly slot was busy
	ExtraOffloadPut                   // flows handed to the kernel (Offload)
	ExtraOffloadFail                  // flows the kernel's offload table refused
	ExtraOffloadStale                 // offers dropped: made from the map-cache before a change (Offload.MapChanged), or from the next-hop table before it lost a neighbour (Offload.NextHopsChanged)
	ExtraHopCarried                   // next-hop memo entries a new next-hop snapshot left as they were (carry), with the flows through them
	NumExtra
)

var extraNames = [NumExtra]string{
	ExtraECNDrop:         "ecn-drop",
	ExtraECNAlarm:        "ecn-alarm",
	ExtraFragmented:      "fragmented",
	ExtraICMPSent:        "icmp-sent",
	ExtraICMPSuppressed:  "icmp-suppressed",
	ExtraNotLISP:         "not-lisp",
	ExtraObservationLost: "observation-lost",
	ExtraPoolEmpty:       "pool-empty",
	ExtraMemoHit:         "memo-hit",
	ExtraMemoMiss:        "memo-miss",
	ExtraFlowHit:         "flow-hit",
	ExtraReasmDone:       "reasm-done",
	ExtraReasmTimeout:    "reasm-timeout",
	ExtraReasmDuplicate:  "reasm-duplicate",
	ExtraReasmOverlap:    "reasm-overlap",
	ExtraReasmOversize:   "reasm-oversize",
	ExtraReasmFull:       "reasm-full",
	ExtraOffloadPut:      "offload-put",
	ExtraOffloadFail:     "offload-fail",
	ExtraOffloadStale:    "offload-stale",
	ExtraHopCarried:      "hop-carried",
}

// String names the counter.
func (e Extra) String() string {
	if e < NumExtra {
		return extraNames[e]
	}
	return "extra-?"
}

// wport is one of the worker's ports with its transmit batch.
type wport struct {
	p       ring.Port
	site    bool
	iid     uint32
	index   uint16
	mtu     int
	addr4   netip.Addr
	addr6   netip.Addr
	petr    *cache.RLOC       // PETR with this port's instance-ID in its template
	glean   bool              // report source EIDs of delivered packets (PortConfig.Glean)
	offload ring.OffloadTable // PortConfig.Offload, nil without Config.Offload
	decap   ring.DecapTable   // PortConfig.Decap, nil without Config.Offload
	reencap ring.ReencapTable // PortConfig.Reencap, nil without Config.Offload and Config.RTR
	otab    *offloadTable     // the Offload's record of offload or reencap (its live index), nil for neither
	dtab    *offloadTable     // the Offload's record of decap, nil without
	pender  ring.RxPender     // the port, when it is one
	ifindex int
	ntx     int
	tx      [ring.IdealBatchSize]ring.Frame
	closed  bool
	fl      ring.Flusher // the port's deferred transmit wake-up, nil if none
	flAt    int64        // w.now when the port's oldest unkicked frame was seen
}

// Worker is one fast-path worker: it owns its ports, counters, hold queue
// and observation ring, and runs Step in a loop (Run). Every method except
// the accessors documented as safe belongs to the worker's goroutine.
type Worker struct {
	cfg      Config
	ports    []wport
	waiter   *ring.Waiter // sleeps on all ports at once when idle
	busyFn   func() bool  // w.pendingWork, made once for waiter.Wait
	yield    func()       // a busy-polling worker's idle step: sched_yield(2)
	byIndex  []int16      // nexthop.Adjacency.Port → index in ports, -1 when not ours
	bySite   []siteIID
	lastSite siteMemo // siteSlot of the last core packet's instance-ID
	cache    *cache.Cache
	memo     *lookupMemo
	hops     *hopMemo          // next hops of RLOCs with their Ethernet + outer headers
	dels     *delMemo          // next hops of deliveries with their Ethernet headers
	snap     *nexthop.Snapshot // the next-hop snapshot of the batch in hand
	ctr      *WorkerCounters
	c        *Counters
	hold     *HoldQueue
	obs      *ObservationRing
	gleaned  gleanMemo // EIDs recently reported for gleaning
	release  ReleaseFunc

	rloc4, rloc6 netip.Addr
	rloc4k       uint64     // 1<<32 | rloc4's bytes (big-endian) when it is an IPv4 unicast address, else 0 (core4: a multicast destination is an underlay group)
	rloc6k       *[2]uint64 // rloc6's two halves (little-endian, as core6 reads them) when it is an IPv6 unicast address, else nil
	ugNext       int64      // w.now from which UnderlayGroup is told again
	lsbs         uint32
	rnd          uint32 // nonce generator state (xorshift32)
	ipid         uint16
	hopSer       uint32 // the serial of the last next-hop memo entry filled (nextHop.ser)
	carried      uint64 // next-hop memo entries carried over to a new snapshot (carry): ExtraHopCarried
	now          int64
	epoch        time.Time
	flow0        uint64 // wire.FlowStart(Config.FlowSeed)

	icmpTokens int64 // in 1/1e9 tokens
	icmpLast   int64
	icmpRate   int64
	icmpBurst  int64

	rx    [ring.IdealBatchSize]ring.Frame
	pkts  [ring.IdealBatchSize]pktInfo // per-batch state of the frames in rx
	ip    inPlace                      // the batch's frames sent where they were received
	one   [1]ring.Frame
	ep    wire.EncapParams
	mc    mcastState
	reasm *reasmTable
	batch int

	off      *Offload                 // Config.Offload
	oe       uint32                   // the offload epoch of this step
	oet      uint8                    // offloadTag(oe); 0 without Offload
	ocg      uint64                   // Offload.cgen at this step's start: what its encap offers were made under
	livePend *livePending             // the encap entries this worker put, for MapChanged's index; nil without an encap table
	offers6  *[offer6Slots]offer6Slot // the IPv6 EIDs' flows offered (offer6); nil without an offload or reencap table
	offq     [offloadMax]offloadPut
	offn     int
	decOn    bool   // a core port has a decap table
	doe      uint32 // the decap offload epoch of this step (0 without decOn)
	doet     uint16 // offloadTag(doe): the tag in nextHop.dkey and siteMemo.dkey
	extra    [NumExtra]uint64
	extraPub [NumExtra]atomic.Uint64
	used     *usedHops // what UsedNextHops reports; noted at usedAt (w.now)
	usedAt   int64

	stop atomic.Bool
	err  error

	notifiedObs, notifiedMiss uint64 // what SlowPathNotify last announced
}

// siteMemo is a worker's memo of one siteSlot answer, with the site
// port's Glean.
type siteMemo struct {
	key   uint64 // 1<<32 | the instance-ID; 0: empty
	glean bool
	slot  int
	dkey  uint64 // 1<<32 | slot<<33 | Worker.doet<<48 when slot >= 0: nextHop.dkey, less the destination
	fast  uint64 // key when served by a site port without gleaning and no LocalGroups (deliver4's case), else 0
	rtr   uint64 // key when no site port serves it and the worker is an RTR (coreInner4's case), else 0
}

// siteIID maps an instance-ID to the site port that serves it.
type siteIID struct {
	iid  uint32
	slot int
}

// NewWorker checks cfg and allocates everything the worker's loop uses.
func NewWorker(cfg Config) (*Worker, error) {
	if cfg.Cache == nil || cfg.NextHops == nil {
		return nil, errors.New("fastpath: worker needs a Cache and a nexthop.Table")
	}
	if len(cfg.Ports) == 0 {
		return nil, errors.New("fastpath: worker has no ports")
	}
	if !cfg.Outer.RLOC4.IsValid() && !cfg.Outer.RLOC6.IsValid() {
		return nil, errors.New("fastpath: worker has no local RLOC")
	}
	if cfg.Pin && (cfg.CPU < 0 || cfg.CPU >= 1024) {
		return nil, fmt.Errorf("fastpath: CPU %d out of range", cfg.CPU)
	}
	if cfg.Batch <= 0 || cfg.Batch > ring.IdealBatchSize {
		cfg.Batch = ring.IdealBatchSize
	}
	if cfg.IdleSpins <= 0 {
		cfg.IdleSpins = 64
	}
	if cfg.IdleWait <= 0 {
		cfg.IdleWait = time.Millisecond
	}
	if cfg.KickBatch <= 0 {
		cfg.KickBatch = 32
	}
	if cfg.GleanInterval <= 0 {
		cfg.GleanInterval = time.Second
	}
	if cfg.ICMPRate == 0 {
		cfg.ICMPRate = 100
	}
	if cfg.Offload != nil && cfg.Offload.seed != cfg.FlowSeed {
		return nil, fmt.Errorf("fastpath: offload flow hash seed %#x is not the worker's %#x", cfg.Offload.seed, cfg.FlowSeed)
	}
	if cfg.ICMPBurst <= 0 {
		cfg.ICMPBurst = 10
	}
	w := &Worker{
		cfg:   cfg,
		cache: cfg.Cache,
		hops:  new(hopMemo),
		dels:  new(delMemo),
		used:  new(usedHops),
		ctr:   new(WorkerCounters),
		rloc4: cfg.Outer.RLOC4.Unmap(),
		rloc6: cfg.Outer.RLOC6,
		lsbs:  cfg.Outer.LSBValue,
		rnd:   uint32(cfg.ID)*0x9e3779b9 | 1,
		ipid:  uint16(cfg.ID) << 12,
		epoch: time.Now(),
		batch: cfg.Batch,
		obs:   newObservationRing(cfg.ObservationRing),
		memo:  newLookupMemo(cfg.Cache, cfg.LookupMemo),
		flow0: wire.FlowStart(cfg.FlowSeed),
		off:   cfg.Offload,
		ip:    inPlace{port: -2},
	}
	w.c = &w.ctr.Local
	if cfg.Offload != nil {
		w.obs.onWatch = cfg.Offload.Invalidate
	}
	if w.rloc4.Is4() && !w.rloc4.IsMulticast() {
		a := w.rloc4.As4()
		w.rloc4k = 1<<32 | uint64(binary.BigEndian.Uint32(a[:]))
	}
	if w.rloc6.Is6() && !w.rloc6.IsMulticast() {
		a := w.rloc6.As16()
		w.rloc6k = &[2]uint64{binary.LittleEndian.Uint64(a[:8]), binary.LittleEndian.Uint64(a[8:])}
	}
	if cfg.ICMPRate > 0 {
		w.icmpRate = int64(cfg.ICMPRate)
		w.icmpBurst = int64(cfg.ICMPBurst) * 1e9
		w.icmpTokens = w.icmpBurst
	}
	var err error
	if w.hold, err = NewHoldQueue(cfg.Hold, cfg.ID, w.c); err != nil {
		return nil, err
	}
	w.release = w.onRelease
	maxIdx := 0
	for _, pc := range cfg.Ports {
		if pc.Port == nil {
			return nil, errors.New("fastpath: port config without a Port")
		}
		maxIdx = max(maxIdx, int(pc.Index))
	}
	w.byIndex = make([]int16, maxIdx+1)
	for i := range w.byIndex {
		w.byIndex[i] = -1
	}
	w.ports = make([]wport, len(cfg.Ports))
	rports := make([]ring.Port, len(cfg.Ports))
	for i, pc := range cfg.Ports {
		rports[i] = pc.Port
		if w.byIndex[pc.Index] >= 0 {
			return nil, fmt.Errorf("fastpath: port index %d used twice", pc.Index)
		}
		if pc.IID > cacheMaxIID {
			return nil, fmt.Errorf("fastpath: instance-ID %d does not fit in 24 bits", pc.IID)
		}
		w.byIndex[pc.Index] = int16(i)
		p := &w.ports[i]
		*p = wport{p: pc.Port, site: pc.Site, iid: pc.IID, index: pc.Index, mtu: pc.MTU,
			addr4: pc.Addr4.Unmap(), addr6: pc.Addr6, glean: pc.Glean && pc.Site, flAt: -1, ifindex: pc.Ifindex}
		if pc.Site && cfg.Offload != nil {
			p.offload = pc.Offload
			p.pender, _ = pc.Port.(ring.RxPender)
			if pc.Offload != nil && w.offers6 == nil {
				w.offers6 = new([offer6Slots]offer6Slot) // offer6's memo, not allocated per packet
			}
			if pc.Offload != nil {
				p.otab = cfg.Offload.tableOf(pc.Offload, nil, nil)
			}
		}
		if !pc.Site && cfg.Offload != nil && pc.Decap != nil {
			p.decap = pc.Decap
			p.dtab = cfg.Offload.tableOf(nil, nil, pc.Decap)
			p.pender, _ = pc.Port.(ring.RxPender)
			w.decOn = true
		}
		if !pc.Site && cfg.Offload != nil && cfg.RTR && pc.Reencap != nil {
			p.reencap = pc.Reencap
			p.otab = cfg.Offload.tableOf(nil, pc.Reencap, nil)
			p.pender, _ = pc.Port.(ring.RxPender)
			if w.offers6 == nil {
				w.offers6 = new([offer6Slots]offer6Slot)
			}
		}
		if (p.offload != nil || p.reencap != nil) && p.otab == nil {
			cfg.Offload.unindexed.Store(true) // not registered: MapChanged cannot tell what it holds
		}
		if p.otab != nil && w.livePend == nil {
			w.livePend = cfg.Offload.newPending()
		}
		if !p.addr4.IsValid() {
			p.addr4 = w.rloc4
		}
		if !p.addr6.IsValid() {
			p.addr6 = w.rloc6
		}
		if fl, ok := pc.Port.(ring.Flusher); ok {
			fl.DeferKicks()
			p.fl = fl
		}
		if pc.Site {
			for _, s := range w.bySite {
				if s.iid == pc.IID {
					return nil, fmt.Errorf("fastpath: instance-ID %d served by two site ports", pc.IID)
				}
			}
			w.bySite = append(w.bySite, siteIID{iid: pc.IID, slot: i})
			if cfg.Negative == NegativePETR {
				p.petr = w.petrFor(pc.IID)
			}
		}
	}
	w.waiter = ring.NewWaiter(rports)
	w.busyFn = w.pendingWork
	w.yield = schedYield
	w.hold.Releases().wake = w.waiter.Wake
	w.reasm = newReasmTable(rports)
	return w, nil
}

// cacheMaxIID is the largest instance-ID the data header carries.
const cacheMaxIID = 1<<24 - 1

// petrFor builds the PETR locator (with its template) for instance-ID iid,
// or nil when no PETR of a family we have an RLOC for is configured.
func (w *Worker) petrFor(iid uint32) *cache.RLOC {
	for _, a := range []netip.Addr{w.cfg.PETR4.Unmap(), w.cfg.PETR6} {
		if !a.IsValid() {
			continue
		}
		r := &cache.RLOC{Addr: a, Reachable: true}
		if r.Template = w.cfg.Outer.BuildTemplate(iid, cache.FamilyIPv4, r); r.Template != nil {
			return r
		}
	}
	return nil
}

// Counters returns the worker's counters; Snapshot and Sum are safe from any
// goroutine.
func (w *Worker) Counters() *WorkerCounters { return w.ctr }

// Extra returns the published value of an extra counter. Safe from any
// goroutine.
func (w *Worker) Extra(e Extra) uint64 {
	if e >= NumExtra {
		return 0
	}
	return w.extraPub[e].Load()
}

// Misses returns the queue the slow path drains MissEvents from.
func (w *Worker) Misses() *MissQueue { return w.hold.Misses() }

// Releases returns the queue the slow path pushes Releases into after it
// installed a mapping for held packets.
func (w *Worker) Releases() *ReleaseQueue { return w.hold.Releases() }

// Observations returns the ring of echoed nonces and LSBs the ETR saw.
func (w *Worker) Observations() *ObservationRing { return w.obs }

// ID returns the worker's id.
func (w *Worker) ID() int { return w.cfg.ID }

// Run polls the worker's ports until ctx is done, Stop is called or a port
// is closed: it locks the goroutine to its OS thread, pins the thread to
// Config.CPU when Config.Pin is set, and then runs Step in a loop,
// sleeping in the ports' Wait when idle. It returns nil on ctx/Stop, the
// ring error otherwise; either way it closes the worker's map-cache Reader
// (folding its activity marks into the cache).
func (w *Worker) Run(ctx context.Context) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if w.cfg.Pin {
		var set unix.CPUSet
		set.Set(w.cfg.CPU)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("fastpath: worker %d: pin to CPU %d: %w", w.cfg.ID, w.cfg.CPU, err)
		}
	}
	if err := w.waiter.OpenWake(); err != nil {
		return fmt.Errorf("fastpath: worker %d: %w", w.cfg.ID, err)
	}
	defer w.waiter.Close()
	defer w.memo.rd.Close()
	stopWatch := context.AfterFunc(ctx, w.Stop)
	defer stopWatch()
	if ctx.Err() != nil {
		return nil
	}
	idle := 0
	for !w.stop.Load() {
		if w.Step() > 0 {
			idle = 0
		} else if idle++; idle >= w.cfg.IdleSpins {
			if w.cfg.BusyPoll {
				w.yield()
			} else {
				w.sleep()
			}
		}
		if w.err != nil {
			if errors.Is(w.err, ring.ErrClosed) && w.stop.Load() {
				return nil
			}
			return w.err
		}
	}
	return nil
}

// Stop asks Run to return after its current step, waking it if it sleeps.
// Safe from any goroutine.
func (w *Worker) Stop() {
	w.stop.Store(true)
	w.waiter.Wake()
}

// sleep kicks whatever transmissions wait and blocks in one poll(2) over all
// the worker's sockets until frames arrive or Wake is called: without a
// time limit when nothing of the worker's has a timeout running, else for
// at most IdleWait.
func (w *Worker) sleep() {
	w.kick(true)
	if err := w.waiter.Wait(w.sleepLimit(), w.busyFn); err != nil && !errors.Is(err, ring.ErrClosed) && w.err == nil {
		w.err = err
	}
}

// schedYield gives the CPU to any other thread waiting for it, and returns
// at once when none is. A busy-polling worker calls it after IdleSpins empty
// steps, and after every empty step from then on: under load it never
// does, and when idle on a CPU it shares (with another worker, another
// router or the traffic's own endpoints) a packet for that other thread is
// no longer held up for the rest of the worker's time slice (milliseconds).
func schedYield() { unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }

// sleepLimit is how long an idle worker may sleep: without limit (-1) when
// it can be woken and no held packet, tracked miss or partial reassembly
// has a timeout running, IdleWait otherwise.
func (w *Worker) sleepLimit() time.Duration {
	if w.waiter.CanSleep() && w.hold.HeldPackets() == 0 && w.hold.TrackedEIDs() == 0 && w.reasm.live == 0 {
		return -1
	}
	return w.cfg.IdleWait
}

// pendingWork reports work another goroutine handed the worker while it
// was going to sleep.
func (w *Worker) pendingWork() bool {
	return w.stop.Load() || w.hold.Releases().Len() > 0
}

// kick wakes the kernel for the frames the worker's deferring ports queued
// (ring.Flusher), when all is set or a port's KickBatch or KickDelay is
// reached.
func (w *Worker) kick(all bool) {
	for i := range w.ports {
		p := &w.ports[i]
		if p.fl == nil || p.closed {
			continue
		}
		n := p.fl.Unkicked()
		if n == 0 {
			continue
		}
		if p.flAt < 0 {
			p.flAt = w.now
		}
		if !all && n < w.cfg.KickBatch && w.now-p.flAt < int64(w.cfg.KickDelay) {
			continue
		}
		p.flAt = -1
		if err := p.fl.Flush(); err != nil {
			p.closed = true
			if w.err == nil {
				w.err = err
			}
		}
	}
}

// Step runs one iteration of the worker's loop: it hands back held packets
// whose mappings arrived, receives up to one batch from every port,
// processes every frame, transmits, reaps completions and publishes the
// counters. It returns the number of frames received. It never blocks,
// locks or allocates. A ring error (a closed port) is kept for Run (Err).
func (w *Worker) Step() int {
	w.now = int64(time.Since(w.epoch))
	if w.off != nil {
		// Before this step reads the cache and the next-hop table (see
		// Offload).
		w.oe = w.off.epoch.Load()
		w.oet = offloadTag[uint8](w.oe)
		w.ocg = w.off.cgen.Load()
		if w.decOn {
			w.doe = w.off.depoch.Load()
		}
		if t := offloadTag[uint16](w.doe); w.decOn && w.doet != t {
			w.doet = t
			if w.lastSite.dkey != 0 {
				w.lastSite.dkey = w.lastSite.dkey&(1<<48-1) | uint64(w.doet)<<48
			}
		}
	}
	w.memo.sync() // before any lookup of this step (held packets included)
	if w.reasm.live > 0 {
		w.reasmExpire()
	}
	w.hold.Service(w.now, w.release)
	total := 0
	for i := range w.ports {
		p := &w.ports[i]
		if p.closed {
			continue
		}
		n, err := p.p.Receive(w.rx[:w.batch])
		if err != nil {
			p.closed = true
			if w.err == nil {
				w.err = err
			}
			continue
		}
		total += n
		w.c.Add(CounterRX, uint64(n))
		if p.site {
			w.fromSiteBatch(i, w.rx[:n])
		} else {
			w.fromCoreBatch(i, w.rx[:n])
		}
	}
	for i := range w.ports {
		w.flush(i)
	}
	w.kick(false)
	for i := range w.ports {
		if !w.ports[i].closed {
			w.ports[i].p.Complete()
		}
	}
	if w.offn > 0 {
		w.offloadFlush() // after the step's packets left
	}
	w.memo.rd.Flush() // this step's activity marks, for the cache's writer
	if w.now >= w.usedAt {
		w.noteUsed()
	}
	w.obs.publish()
	w.notifySlowPath()
	w.ctr.Publish()
	w.extra[ExtraMemoHit], w.extra[ExtraMemoMiss], w.extra[ExtraFlowHit] = w.memo.hits, w.memo.miss, w.memo.flowHits
	w.extra[ExtraHopCarried] = w.carried
	for i := range w.extra {
		if v := w.extra[i]; v != w.extraPub[i].Load() {
			w.extraPub[i].Store(v)
		}
	}
	return total
}

// notifySlowPath tells Config.SlowPathNotify when this step queued
// MissEvents or Observations (once per step, never blocking).
func (w *Worker) notifySlowPath() {
	if w.cfg.SlowPathNotify == nil {
		return
	}
	obs, miss := w.obs.local, w.c.Get(CounterMissEvent)
	if obs == w.notifiedObs && miss == w.notifiedMiss {
		return
	}
	w.notifiedObs, w.notifiedMiss = obs, miss
	select {
	case w.cfg.SlowPathNotify <- struct{}{}:
	default:
	}
}

// Err returns the first ring error a Step ran into (nil if none).
func (w *Worker) Err() error { return w.err }

// send queues f for transmission on port slot (flushing a full batch).
// The frame now belongs to the port.
func (w *Worker) send(slot int, f *ring.Frame) {
	p := &w.ports[slot]
	if p.ntx == len(p.tx) {
		w.flush(slot)
	}
	p.tx[p.ntx] = *f
	p.ntx++
	*f = ring.Frame{}
}

// flush transmits port slot's batch; frames the ring does not take are
// dropped (DropTXFull) rather than retried, so the worker never stalls.
func (w *Worker) flush(slot int) {
	p := &w.ports[slot]
	if p.ntx == 0 {
		return
	}
	w.transmit(slot, p.tx[:p.ntx])
	// The transmitted frames are not cleared: they belong to the port now,
	// only p.tx[:p.ntx] is ever read, and the next frames overwrite them.
	p.ntx = 0
}

// transmit hands fs to port slot; what the ring does not take is dropped
// (DropTXFull) and released.
func (w *Worker) transmit(slot int, fs []ring.Frame) {
	p := &w.ports[slot]
	n := 0
	if !p.closed {
		var err error
		n, err = p.p.Transmit(fs)
		if err != nil {
			n = 0
			p.closed = true
			if w.err == nil {
				w.err = err
			}
		}
	}
	w.c.Add(CounterTX, uint64(n))
	if n < len(fs) {
		w.c.DropN(DropTXFull, uint64(len(fs)-n))
		ring.Release(fs[n:]) // clears them
	}
}

// inPlace lets the fast paths of a batch send a frame without moving it
// into a port's transmit batch: while every frame sent so far in the batch
// went to one port whose transmit batch was empty when the first of them
// was sent, they stay in the receive array, moved down over the slots of
// frames consumed before them (fs[:n]), and the batch ends by handing
// fs[:n] to the port (finishBatch). A send to that port by any other path
// first ends the mode (endInPlace: the frames move to the port's transmit
// batch, in order), so every port still sends its frames in the order the
// worker sent them.
type inPlace struct {
	fs   []ring.Frame // the batch's receive array (nil outside a batch)
	port int          // the port of fs[:n]; -1: none yet; -2: mode ended
	n    int
}

// beginBatch starts the in-place mode for the batch fs.
func (w *Worker) beginBatch(fs []ring.Frame) {
	w.ip = inPlace{fs: fs, port: -1}
}

// sendAt sends f, frame j of the batch (j < 0: not one), on port out: in
// place when the mode allows, else by send.
func (w *Worker) sendAt(j, out int, f *ring.Frame) {
	ip := &w.ip
	if j >= 0 && (ip.port == out || ip.port == -1 && w.ports[out].ntx == 0) {
		ip.port = out
		if k := ip.n; k != j {
			ip.fs[k] = *f
		}
		ip.n++
		return
	}
	// Another port (or the mode ended): its transmit batch, where its
	// frames of this batch are, keeps its order; the frames kept in place
	// are all for ip.port.
	w.send(out, f)
}

// take is sendAt's common case, inlined at the batch loops (callers call
// sendAt when it reports false): frame j joins the frames kept in place for
// port out without moving.
func (ip *inPlace) take(j, out int) bool {
	if ip.n == j && ip.port == out {
		ip.n++
		return true
	}
	return false
}

// endInPlace ends the in-place mode of the batch: the frames kept in place
// move to their port's transmit batch. Call it before anything that sends
// in a batch other than sendAt.
func (w *Worker) endInPlace() {
	ip := &w.ip
	if ip.port >= 0 {
		for i := range ip.n {
			w.send(ip.port, &ip.fs[i])
		}
	}
	ip.port, ip.n = -2, 0
}

// finishBatch transmits the frames of the batch kept in place and ends the
// mode.
func (w *Worker) finishBatch() {
	if ip := &w.ip; ip.port >= 0 && ip.n > 0 {
		w.transmit(ip.port, ip.fs[:ip.n])
	}
	w.ip = inPlace{port: -2}
}

// drop releases f to its pool and counts reason r.
func (w *Worker) drop(f *ring.Frame, r DropReason) {
	w.c.Drop(r)
	w.one[0] = *f
	ring.Release(w.one[:])
	*f = ring.Frame{}
}

// free releases f without counting (it was consumed, e.g. copied).
func (w *Worker) free(f *ring.Frame) {
	w.one[0] = *f
	ring.Release(w.one[:])
	*f = ring.Frame{}
}

// alloc takes a fresh frame from port slot's pool into f.
func (w *Worker) alloc(slot int, f *ring.Frame) bool {
	if w.ports[slot].p.Alloc(w.one[:]) == 0 {
		w.extra[ExtraPoolEmpty]++
		return false
	}
	*f = w.one[0]
	w.one[0] = ring.Frame{}
	return true
}

// siteSlot returns the site port serving iid, or -1.
func (w *Worker) siteSlot(iid uint32) int {
	for _, s := range w.bySite {
		if s.iid == iid {
			return s.slot
		}
	}
	return -1
}

// portSlot returns the worker's port for a next-hop port index, or -1.
func (w *Worker) portSlot(index uint16) int {
	if int(index) >= len(w.byIndex) {
		return -1
	}
	return int(w.byIndex[index])
}

// onRelease takes back a held packet: it copies it into a fresh frame of
// the port it came in on and processes it like a newly received one.
func (w *Worker) onRelease(_ *Release, h *Held) {
	slot := int(h.Meta)
	if slot >= len(w.ports) {
		return
	}
	var f ring.Frame
	if !w.alloc(slot, &f) {
		w.c.Drop(DropTXFull)
		return
	}
	if !f.SetLen(len(h.Data)) {
		w.drop(&f, DropHoldOversize)
		return
	}
	copy(f.Bytes(), h.Data)
	if w.ports[slot].site {
		w.fromSite(slot, &f)
	} else {
		w.fromCore(slot, &f)
	}
}

// nonce returns the next 24-bit nonce (RFC 9300 §5.3: a random number per
// packet is not required; a per-worker xorshift sequence never repeats
// within 2^32-1 packets).
func (w *Worker) nonce() uint32 {
	x := w.rnd
	x ^= x << 13
	x ^= x >> 17
	x ^= x << 5
	w.rnd = x
	return x & 0xffffff
}

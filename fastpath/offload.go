package fastpath

import (
	"cmp"
	"encoding/binary"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/wire"
)

// Offload hands steady flows to the kernel: the XDP program of a site
// interface (ring.OffloadTable, ring/xsk's Program) encapsulates their
// packets itself and redirects them to the egress interface, so they never
// reach a worker. A worker offers a flow once its flow memo (an IPv4 EID's)
// or encap (an IPv6 EID's: offer6) sends it through
// an outer IPv4 header that encapLoop finishes alone (fast4), or an outer
// IPv6 header without a UDP checksum to compute (offloadable6: fast6, which
// encapLoop finishes alone too): the kernel
// entry is a copy of that next-hop memo entry, keyed by the flow's
// destination and RLOC selection bucket, and the program computes the same
// flow hash (wire.FlowHash with the worker's seed), so each packet leaves as
// the worker would have sent it, IP ID and nonce aside (both drawn at
// random). What the worker does for anything else (misses, TTL expiry,
// packets too big for the path, IPv4 options, multicast) is unchanged: the
// program leaves those packets to the worker's socket.
//
// Every entry carries the epoch it was made in and the program uses only
// those of the current epoch. Invalidate moves the epoch: it must run after
// every change of what an entry copies that the next-hop table makes, and
// NextHopsChanged (give it to nexthop.Table.OnStore) runs it for those that
// may change any adjacency (a route, a link). A worker reads the epoch
// before it reads the cache and the table for a step, so an entry it makes
// from what it read before a change carries an epoch that change ended.
// The next packet of such a flow reaches the worker again, which offers the
// flow anew. A snapshot that only lost neighbours (nexthop.Snapshot.Lost: a
// host that went, a MAC that changed) is narrower: NextHopsChanged deletes
// the entries, of both directions, sent to a lost MAC on its interface,
// and the workers drop the offers they made from an older snapshot. So are
// the map-cache's changes: MapChanged (give it to cache.Config.Published)
// deletes the entries a batch covers and drops the offers made before it,
// and starts an epoch only when that would take too long.
//
// The kernel's packets do not pass the worker's map-cache lookups, so Sweep,
// run once per activity tick by the slow path, marks the entries of flows
// the kernel sent packets for as used (Cache.MarkActive through a lookup),
// and deletes the entries of past epochs. A table holds a bounded number of
// flows (65536 for ring/xsk); when it is three quarters full Sweep starts a
// new epoch, so the flows still sending are offered again and the rest go.
//
// A worker puts an entry once its port's rx ring is empty (offloadFlush), so
// that no packet of the flow still waits there when the kernel starts to send
// the next ones. The kernel's packets are counted by the program (ring/xsk
// StatOffload), not by the worker's counters.
//
// With a core interface's table (AddDecap) the same goes for deliveries: a
// worker offers a delivery that deliverAt would make alone (decapOffer),
// keyed by instance-ID and inner destination, with the Ethernet header it
// writes, and the core program decapsulates the flow's next packets itself
// and redirects them to the site interface. Each direction has its epoch
// and can be paused alone (Pause) while an interface its programs redirect
// to does not take redirects.
type Offload struct {
	// The epoch the workers and tables of each direction use (gen, or 0
	// while that direction is paused): epoch for the site tables
	// (encapsulation), depoch for the core ones (decapsulation).
	epoch, depoch atomic.Uint32
	seed          uint32

	mu     sync.Mutex // the fields below, and every SetOffload
	ts     []*offloadTable
	gen    uint32 // the last epoch started
	paused [2]bool

	sweeping sync.Mutex // one Sweep at a time; Close waits for it

	// puts keeps the workers' puts out of a sweep's walk of a table and
	// its deletes: a sweep reads an entry of a past epoch, then deletes
	// its key, and a put between the two (the flow offered in the
	// current epoch) would be deleted with it, leaving the flow to the
	// worker for the rest of the epoch. A worker puts under a read lock
	// it only tries (offloadFlush): while a sweep holds it, the worker
	// keeps its entries queued for a later step.
	puts sync.RWMutex

	// cgen counts the map-cache batches MapChanged handled without an
	// epoch. A worker reads it with the epoch (Worker.ocg), and drops at
	// offloadFlush an offer of the encap direction made before it moved:
	// MapChanged deleted, under puts, the entries its batch covered, and
	// such an offer could be one of them.
	cgen atomic.Uint64
	// hopSeq is the nexthop.Snapshot.Seq of the last snapshot whose lost
	// destinations NextHopsChanged deleted the entries of: a worker drops
	// at offloadFlush an offer (of either direction) it made from an
	// older snapshot, which could be sent to one of them.
	hopSeq atomic.Uint64
	// walkCredit is the time NextHopsChanged may spend walking tables
	// now, as of walkAt (under puts): it grows at 1/walkShare of the time
	// that passes, up to walkBurst, and each walk spends what it took.
	// Without credit a snapshot starts an epoch instead. now is the
	// clock (time.Now; tests set their own).
	walkCredit time.Duration
	walkAt     time.Time
	now        func() time.Time
	// pending are the workers' records of their puts (livePending,
	// under mu); what they hold joins the tables' live indexes
	// (drainLive) under puts, which also guards the indexes.
	pending []*livePending
	// indexLost says that a record overflowed since the last epoch: an
	// index misses entries, so MapChanged starts an epoch (under puts).
	indexLost bool
	// unindexed says that a worker has an encap port whose table was not
	// registered (Add, AddReencap) when it was made: its entries are in
	// no live index, so MapChanged starts an epoch for every batch.
	unindexed atomic.Bool

	// used gets the link-layer destinations of the entries the kernel
	// sent packets through since the last sweep (OnUsed).
	used atomic.Pointer[func([]nexthop.LinkDest)]

	invalidations, swept, errs, pauses atomic.Uint64
	mapBatches, mapDeleted             atomic.Uint64   // MapChanged's batches handled without an epoch, the entries they deleted
	hopBatches, hopDeleted             atomic.Uint64   // NextHopsChanged's snapshots that lost neighbours, handled without an epoch; the entries they deleted
	routeBatches, routeDeleted         atomic.Uint64   // NextHopsChanged's snapshots that may change any adjacency, handled without an epoch; the entries they deleted
	flows                              [2]atomic.Int64 // per direction: the entries of the current epoch at the last sweep
}

type offloadTable struct {
	t    ring.OffloadTable // a site interface's; nil for a core interface's
	d    ring.DecapTable   // a core interface's
	r    ring.ReencapTable // a core interface's, an RTR's
	iid  uint32
	hits map[offloadKey]uint64 // an entry's hits at the last sweep (Sweep's)
	// live indexes the entries the workers put in an encap table (t, r),
	// less those swept or deleted since: what MapChanged looks through
	// (under Offload.puts).
	live liveIndex
	// puts counts the entries the workers put (under Offload.puts' read
	// lock). empty says that the last Sweep left the table without an
	// entry, when puts stood at emptyAt (both under Offload.puts): while
	// puts still does, NextHopsChanged has nothing to walk there (a walk
	// of an empty map still reads all its buckets, 0.15-0.25 ms).
	puts    atomic.Uint64
	empty   bool
	emptyAt uint64
}

// idle reports whether t holds no entry: the last Sweep left it empty and
// no worker put one since. The caller holds Offload.puts.
func (t *offloadTable) idle() bool { return t.empty && t.puts.Load() == t.emptyAt }

// OffloadDirection is one direction of the offload: the site tables'
// (OffloadEncap) or the core tables' (OffloadDecap).
type OffloadDirection uint8

// Offload directions.
const (
	OffloadEncap OffloadDirection = iota // site interfaces' programs encapsulate (Offload.Add)
	OffloadDecap                         // core interfaces' programs deliver (Offload.AddDecap)
)

func (d OffloadDirection) String() string {
	if d == OffloadDecap {
		return "decap"
	}
	return "encap"
}

// dir is t's direction.
func (t *offloadTable) dir() OffloadDirection {
	if t.d != nil {
		return OffloadDecap
	}
	return OffloadEncap
}

// set gives the table epoch e (0: off).
func (t *offloadTable) set(e, seed uint32) error {
	switch {
	case t.d != nil:
		return t.d.SetOffload(e, seed)
	case t.r != nil:
		return t.r.SetReencap(e, seed)
	}
	return t.t.SetOffload(e, seed)
}

// offloadKey is a flow of a table's: the instance-ID (an RTR's; a site
// table's is its interface's, left 0), destination and bucket, and for an
// RTR's, the outer version its entry is for.
type offloadKey struct {
	iid   uint32
	dst   netip.Addr
	bkt   uint8
	over6 bool // an RTR's flow over IPv6 (ring.ReencapEntry.Over6)
}

// keyOf is e's flow.
func keyOf(e *ring.OffloadEntry) offloadKey {
	if e.InnerV6 {
		return offloadKey{dst: netip.AddrFrom16(e.Dst6), bkt: e.Bucket}
	}
	return offloadKey{dst: netip.AddrFrom4(e.Dst), bkt: e.Bucket}
}

// key is the live index's instance-ID and key of entry e of t, an encap
// table: for an RTR's (t.r), the entry's instance-ID iid and outer version
// over6 are part of the key; a site table's entries are of its interface's
// instance-ID.
func (t *offloadTable) key(iid uint32, over6 bool, e *ring.OffloadEntry) (uint32, offloadKey) {
	k := keyOf(e)
	if t.r == nil {
		return t.iid, k
	}
	k.iid, k.over6 = iid, over6
	return iid, k
}

// sweepEncap walks t, an encap table, deleting the entries keep rejects
// (SweepOffload, SweepReencap): keep gets an entry's instance-ID and outer
// version (an RTR's; a site table's instance-ID and false otherwise).
func (t *offloadTable) sweepEncap(keep func(iid uint32, over6 bool, e *ring.OffloadEntry, hits uint64) bool) (int, error) {
	if t.r != nil {
		return t.r.SweepReencap(func(e *ring.ReencapEntry, hits uint64) bool { return keep(e.IID, e.Over6, &e.OffloadEntry, hits) })
	}
	return t.t.SweepOffload(func(e *ring.OffloadEntry, hits uint64) bool { return keep(t.iid, false, e, hits) })
}

// offloadCap is the flows a table holds (ring/xsk: bpf/steer.c, offload);
// Sweep starts a new epoch at three quarters of it.
const offloadCap = 65536

// NewOffload returns an Offload for workers with flow hash seed seed
// (Config.FlowSeed).
func NewOffload(seed uint32) *Offload {
	o := &Offload{seed: seed, gen: 1, now: time.Now}
	o.epoch.Store(1)
	o.depoch.Store(1)
	return o
}

// Add registers the offload table of a site interface of instance-ID iid
// and turns it on. Give the same table to the site ports of that interface
// (PortConfig.Offload).
func (o *Offload) Add(t ring.OffloadTable, iid uint32) error {
	return o.register(&offloadTable{t: t, iid: iid})
}

// AddReencap registers the reencap table of an RTR's core interface and
// turns it on. Its entries leave through core interfaces and follow the
// map-cache, as the site tables' do: it is of direction OffloadEncap. Give
// the same table to the core ports of that interface (PortConfig.Reencap).
func (o *Offload) AddReencap(t ring.ReencapTable) error {
	return o.register(&offloadTable{r: t})
}

// AddDecap registers the decap table of a core interface and turns it on.
// Give the same table to the core ports of that interface
// (PortConfig.Decap).
func (o *Offload) AddDecap(t ring.DecapTable) error {
	return o.register(&offloadTable{d: t})
}

// register gives table t its direction's epoch and adds it.
func (o *Offload) register(t *offloadTable) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := t.set(o.epochOf(t.dir()).Load(), o.seed); err != nil {
		return err
	}
	t.hits = make(map[offloadKey]uint64)
	o.ts = append(o.ts, t)
	return nil
}

// tableOf is the registered table of a site port's offload table, or a
// core port's reencap or decap table, or nil.
func (o *Offload) tableOf(t ring.OffloadTable, r ring.ReencapTable, d ring.DecapTable) *offloadTable {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, x := range o.ts {
		if t != nil && x.t == t || r != nil && x.r == r || d != nil && x.d == d {
			return x
		}
	}
	return nil
}

// del deletes the entry of k from t, an encap table.
func (t *offloadTable) del(k offloadKey) error {
	e := ring.OffloadEntry{Bucket: k.bkt}
	if k.dst.Is4() {
		e.Dst = k.dst.As4()
	} else {
		e.InnerV6, e.Dst6 = true, k.dst.As16()
	}
	if t.r != nil {
		return t.r.DeleteReencap(&ring.ReencapEntry{OffloadEntry: e, IID: k.iid, Over6: k.over6})
	}
	return t.t.DeleteOffload(&e)
}

// Invalidate starts a new epoch: no entry made before it is used again.
// It returns once every table has the new epoch (at once while paused). A
// table that refused the epoch is counted (OffloadStats.Errors) and turned
// off, so that it sends nothing it may no longer send. It never waits for
// a Sweep.
func (o *Offload) Invalidate() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.invalidate()
}

func (o *Offload) invalidate() { o.invalidateOnly(OffloadEncap, OffloadDecap) }

// InvalidateEncap is Invalidate for the encap direction alone (an ITR's
// and an RTR's entries): what MapChanged falls back to.
func (o *Offload) InvalidateEncap() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.invalidateOnly(OffloadEncap)
}

// NextHopsChanged is the next-hop table's nexthop.Table.OnStore. It
// deletes the entries of both directions whose next hop the snapshot s may
// have changed, and no others, so that the kernel keeps sending the flows
// to the hosts and gateways whose adjacency stayed:
//   - for a snapshot that lost neighbours alone (nexthop.Snapshot.Lost),
//     the entries sent out of a lost destination's interface to its MAC,
//     however often the kernel's neighbour table drops a host it sees no
//     traffic for (the kernel's traffic passes no neighbour entry);
//   - for one that may change any adjacency (a route or link change), the
//     entries whose next-hop destination (an encap entry's RLOC, a decap
//     entry's inner destination) s resolves otherwise than the snapshot
//     before it (Snapshot.Prev, SameAdjacency): a routing daemon's churn
//     of routes no flow goes by leaves the kernel's flows alone. An entry
//     in a table was made from a snapshot that resolved its destination as
//     the one before s does, since every earlier change walked the tables
//     so.
//
// It walks the tables under puts after moving hopSeq, so that no worker
// puts an entry made from an older snapshot once it returns (offloadFlush
// drops those). A walk or a delete that fails starts an epoch instead
// (Invalidate), and so does a snapshot without a predecessor, and one that
// comes while the walks have taken their share of the time (walkShare,
// walkBurst): a walk of a full table takes about 15 ms, and a site whose
// hosts come and go many times a second would otherwise keep the slow path
// walking.
func (o *Offload) NextHopsChanged(s *nexthop.Snapshot) {
	lost, ok := s.Lost()
	var encapGone func(*ring.OffloadEntry) bool
	var decapGone func(*ring.DecapEntry) bool
	ctr, del := &o.hopBatches, &o.hopDeleted
	switch {
	case ok && len(lost) == 0:
		return // Table.Store does not call for it: nothing resolved changed
	case ok:
		gone := make(map[nexthop.LinkDest]struct{}, len(lost))
		for _, l := range lost {
			gone[l] = struct{}{}
		}
		sentTo := func(ifindex int, mac []byte) bool {
			_, ok := gone[nexthop.LinkDest{IfIndex: int32(ifindex), MAC: [6]byte(mac)}]
			return ok
		}
		encapGone = func(e *ring.OffloadEntry) bool { return sentTo(e.Ifindex, e.Front[:6]) }
		decapGone = func(e *ring.DecapEntry) bool { return sentTo(e.Ifindex, e.Eth[:6]) }
	default:
		prev := s.Prev()
		if prev == nil {
			o.Invalidate()
			return
		}
		moved := map[netip.Addr]bool{} // a walk meets few RLOCs and hosts, many times each
		changed := func(dst netip.Addr) bool {
			m, ok := moved[dst]
			if !ok {
				m = !s.SameAdjacency(prev, dst)
				moved[dst] = m
			}
			return m
		}
		encapGone = func(e *ring.OffloadEntry) bool { return changed(e.OuterDst()) }
		decapGone = func(e *ring.DecapEntry) bool { return changed(e.InnerDst()) }
		ctr, del = &o.routeBatches, &o.routeDeleted
	}
	o.mu.Lock()
	ts, paused := slices.Clone(o.ts), o.paused
	o.mu.Unlock()
	o.puts.Lock()
	defer o.puts.Unlock()
	start := o.now()
	o.walkCredit = min(o.walkCredit+start.Sub(o.walkAt)/walkShare, walkBurst)
	o.walkAt = start
	if o.walkCredit <= 0 {
		o.Invalidate()
		return
	}
	defer func() { o.walkCredit -= o.now().Sub(start) }()
	if seq := s.Seq(); seq > o.hopSeq.Load() {
		o.hopSeq.Store(seq)
	}
	o.drainLive() // the indexes hold every entry the walks may delete
	var errs []error
	deleted := 0
	for _, t := range ts {
		if paused[t.dir()] || t.idle() {
			continue // Resume starts an epoch: no entry of now is used again; an idle table holds none
		}
		var n int
		var err error
		if t.d != nil {
			n, err = t.d.SweepDecap(func(e *ring.DecapEntry, _ uint64) bool { return !decapGone(e) })
		} else {
			n, err = t.sweepEncap(func(iid uint32, over6 bool, e *ring.OffloadEntry, _ uint64) bool {
				if !encapGone(e) {
					return true
				}
				t.live.remove(t.key(iid, over6, e))
				return false
			})
		}
		deleted += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	del.Add(uint64(deleted))
	if errs != nil {
		o.Invalidate() // an entry whose next hop went or moved may be left
		return
	}
	ctr.Add(1)
}

// NextHopsChanged's budget for its walks: a sixteenth of the time, and at
// most 50 ms at once.
const (
	walkShare = 16
	walkBurst = 50 * time.Millisecond
)

// MapChanged is the map-cache's cache.Config.Published. It deletes the
// encap direction's entries (an ITR's, an RTR's) whose destination a
// changed key covers (its instance-ID, its prefix) and no others, so the
// kernel keeps sending the flows that a Map-Reply for another EID does not
// concern. A decap entry copies nothing from the map-cache. It moves cgen
// and deletes under puts, so that no worker puts an entry made from the
// cache before the change once it returns (offloadFlush drops those). It
// finds them in each table's live index, whose buckets make a Map-Reply's
// prefix (a /24 or longer) a look at one bucket. A batch that would make
// more than mapChangedWork looks (a key, a bucket or an entry each) in the
// indexes, a failed delete, or a worker whose table is in no index starts
// a new epoch of the encap direction instead (InvalidateEncap): a bulk
// load of a few thousand mappings is looked through, one of a hundred
// thousand is not.
func (o *Offload) MapChanged(changed []cache.Key) {
	n := 0
	for _, k := range changed {
		if k.Kind == cache.KindIP {
			n++
		}
	}
	if n == 0 {
		return // a MAC or multicast entry: the kernel holds none
	}
	o.mu.Lock()
	ts, paused := slices.Clone(o.ts), o.paused[OffloadEncap]
	o.mu.Unlock()
	if paused {
		return // nothing is used or offered; Resume starts an epoch
	}
	if n > mapChangedWork || o.unindexed.Load() || !o.deleteCovered(ts, changed) {
		o.invalidateIndexed()
	}
}

// invalidateIndexed is InvalidateEncap for MapChanged: under puts, so
// that the epoch moves before the indexes count as whole again (an entry
// missing from them is of a past epoch, unusable).
func (o *Offload) invalidateIndexed() {
	o.puts.Lock()
	defer o.puts.Unlock()
	o.InvalidateEncap()
	o.drainLive()
	o.indexLost = false
}

// newPending registers and returns a worker's record of its puts.
func (o *Offload) newPending() *livePending {
	p := new(livePending)
	o.mu.Lock()
	o.pending = append(o.pending, p)
	o.mu.Unlock()
	return p
}

// drainLive moves the workers' records of their puts into the tables'
// live indexes and notes a record that overflowed (indexLost). The caller
// holds puts: no worker puts meanwhile.
func (o *Offload) drainLive() {
	o.mu.Lock()
	ps := o.pending
	o.mu.Unlock()
	for _, p := range ps {
		for _, k := range p.keys[:p.n] {
			k.t.live.add(k.iid, k.k)
		}
		o.indexLost = o.indexLost || p.over
		p.n, p.over = 0, false
	}
}

// mapChangedWork bounds the looks MapChanged makes in the live indexes for
// a batch, each key, bucket and entry one (about 4 ms).
const mapChangedWork = 1 << 16

// deleteCovered deletes the entries of the encap tables of ts whose
// destination an IP key of changed covers, under puts, after moving cgen.
// It reports false, having deleted none, when that would make more than
// mapChangedWork looks, and false, having deleted some, when a delete
// failed.
func (o *Offload) deleteCovered(ts []*offloadTable, changed []cache.Key) bool {
	o.puts.Lock()
	defer o.puts.Unlock()
	o.cgen.Add(1)
	o.drainLive()
	if o.indexLost {
		return false // InvalidateEncap makes every entry before it unusable
	}
	type del struct {
		t   *offloadTable
		iid uint32
		k   offloadKey
	}
	dels := map[del]struct{}{}
	work := 0
	for _, t := range ts {
		if t.dir() != OffloadEncap {
			continue
		}
		for _, p := range changed {
			if p.Kind != cache.KindIP {
				continue
			}
			if !t.live.covered(p, &work, mapChangedWork, func(k offloadKey) { dels[del{t, p.IID, k}] = struct{}{} }) {
				return false
			}
		}
	}
	for d := range dels {
		if err := d.t.del(d.k); err != nil {
			return false
		}
		d.t.live.remove(d.iid, d.k)
		o.mapDeleted.Add(1)
	}
	o.mapBatches.Add(1)
	return true
}

// invalidateOnly starts a new epoch in the directions ds.
func (o *Offload) invalidateOnly(ds ...OffloadDirection) {
	o.gen++
	if o.gen == 0 {
		o.gen = 1
	}
	o.invalidations.Add(1)
	for _, d := range ds {
		if !o.paused[d] {
			o.setEpoch(d, o.gen)
		}
	}
}

// epochOf is the epoch word of direction d.
func (o *Offload) epochOf(d OffloadDirection) *atomic.Uint32 {
	if d == OffloadDecap {
		return &o.depoch
	}
	return &o.epoch
}

// setEpoch gives the workers and the tables of direction d epoch e (0:
// off).
func (o *Offload) setEpoch(d OffloadDirection, e uint32) {
	o.epochOf(d).Store(e)
	for _, t := range o.ts {
		if t.dir() != d {
			continue
		}
		if t.set(e, o.seed) != nil {
			o.errs.Add(1)
			if e != 0 {
				_ = t.set(0, o.seed)
			}
		}
	}
}

// Pause turns the tables of direction d off until Resume: the workers
// offer nothing more in that direction and the kernel leaves its packets
// to them again. Call it when an interface the direction's programs
// redirect to stops taking redirects (the kernel would drop what they send
// there): a core interface for OffloadEncap, a site interface for
// OffloadDecap. It reports whether the direction was running.
func (o *Offload) Pause(d OffloadDirection) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.paused[d] {
		return false
	}
	o.paused[d] = true
	o.pauses.Add(1)
	o.setEpoch(d, 0)
	return true
}

// Resume ends a Pause of direction d with a new epoch, so that no entry
// made before the pause is used. It reports whether the direction was
// paused.
func (o *Offload) Resume(d OffloadDirection) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.paused[d] {
		return false
	}
	o.paused[d] = false
	o.invalidate()
	return true
}

// OnUsed sets a function that each Sweep calls with the link-layer
// destinations (egress interface, destination MAC) of the entries, of
// either direction, that the kernel sent packets through since the last
// sweep (nil: none): give it nexthop.Watcher.MarkUsed, so that the
// kernel's neighbour table sees the use its own forwarding would have
// made of those neighbours (the offloaded packets pass none of it), keeps
// their entries and probes them again when STALE.
func (o *Offload) OnUsed(fn func([]nexthop.LinkDest)) {
	if fn == nil {
		o.used.Store(nil)
		return
	}
	o.used.Store(&fn)
}

// Sweep marks the map-cache entries of flows the kernel sent packets for
// since the last sweep as used, and their link-layer destinations (OnUsed),
// deletes the entries of past epochs (all of them while paused), and
// starts a new epoch when a table is three quarters full. Call it from the slow path once per activity tick
// (cache.Config.ActivityTick), with the workers' map-cache. It holds no
// lock that Invalidate takes while it walks the tables (a walk of a full
// table takes milliseconds): an entry of an epoch started meanwhile is kept.
// The workers put no entry while it walks a table and deletes what it
// rejected: an entry put meanwhile could have a key it deletes.
func (o *Offload) Sweep(c *cache.Cache) error {
	o.sweeping.Lock()
	defer o.sweeping.Unlock()
	o.mu.Lock()
	ts := slices.Clone(o.ts)
	o.mu.Unlock()
	full := false
	var errs []error
	var flows [2]int64
	used := map[nexthop.LinkDest]struct{}{}
	use := func(ifindex int, mac []byte) {
		used[nexthop.LinkDest{IfIndex: int32(ifindex), MAC: [6]byte(mac)}] = struct{}{}
	}
	for _, t := range ts {
		o.puts.Lock()
		o.drainLive() // the index holds every entry the walk may delete
		if t.d != nil {
			live := 0
			seen := make(map[offloadKey]uint64, len(t.hits))
			n, err := t.d.SweepDecap(func(e *ring.DecapEntry, hits uint64) bool {
				if e.Epoch != o.depoch.Load() {
					return false
				}
				live++
				k := offloadKey{iid: e.IID, dst: e.InnerDst(), over6: e.V6}
				if hits != t.hits[k] {
					use(e.Ifindex, e.Eth[:6])
				}
				seen[k] = hits
				return true
			})
			t.empty, t.emptyAt = live == 0 && err == nil, t.puts.Load()
			o.puts.Unlock()
			t.hits = seen
			o.swept.Add(uint64(n))
			if err != nil {
				errs = append(errs, err)
			}
			full = full || live >= offloadCap*3/4
			flows[OffloadDecap] += int64(live)
			continue
		}
		live := 0
		seen := make(map[offloadKey]uint64, len(t.hits))
		n, err := t.sweepEncap(func(iid uint32, over6 bool, e *ring.OffloadEntry, hits uint64) bool {
			iid, k := t.key(iid, over6, e)
			if e.Epoch != o.epoch.Load() {
				t.live.remove(iid, k)
				return false
			}
			live++
			if hits != t.hits[k] {
				c.Lookup(iid, k.dst) // marks the entry used
				use(e.Ifindex, e.Front[:6])
			}
			seen[k] = hits
			return true
		})
		t.empty, t.emptyAt = live == 0 && err == nil, t.puts.Load()
		o.puts.Unlock()
		t.hits = seen
		o.swept.Add(uint64(n))
		if err != nil {
			errs = append(errs, err)
		}
		if live >= offloadCap*3/4 {
			full = true
		}
		flows[OffloadEncap] += int64(live)
	}
	for d := range flows {
		o.flows[d].Store(flows[d])
	}
	if fn := o.used.Load(); fn != nil && len(used) > 0 {
		(*fn)(slices.Collect(maps.Keys(used)))
	}
	if full {
		o.Invalidate()
	}
	return errors.Join(errs...)
}

// Close turns every table off and forgets them: later calls touch no
// table. Call it before the tables (the XDP programs) close.
func (o *Offload) Close() {
	o.sweeping.Lock()
	defer o.sweeping.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, t := range o.ts {
		_ = t.set(0, o.seed)
	}
	o.ts = nil
}

// OffloadFlow is one flow a kernel table holds (Offload.Flows).
type OffloadFlow struct {
	Direction OffloadDirection
	// Reencap marks an RTR's flow (OffloadEncap): a core interface's
	// program re-encapsulates it.
	Reencap bool
	IID     uint32
	EID     netip.Addr // the inner destination
	Bucket  uint8      // OffloadEncap: the flow's RLOC selection bucket
	// RLOC is the outer destination: the remote RLOC the kernel
	// encapsulates to (OffloadEncap), or ours, that the packets it
	// decapsulates are sent to (OffloadDecap).
	RLOC    netip.Addr
	Ifindex int // the interface the kernel sends the flow's packets out of
	// Over6 says that the entry takes the packets that come over IPv6
	// (OffloadDecap and Reencap: a flow has an entry per outer version).
	Over6   bool
	Epoch   uint32
	Current bool   // of its direction's current epoch: the kernel uses it
	Packets uint64 // the kernel sent through the entry since it was put
}

// Flows returns at most limit of the flows the kernel tables hold, those
// that sent the most packets first, and how many the tables hold in all.
// It reads the tables (a few system calls per thousand entries) under
// the lock Sweep holds, so it waits for a sweep and a sweep for it.
func (o *Offload) Flows(limit int) ([]OffloadFlow, int, error) {
	o.sweeping.Lock()
	defer o.sweeping.Unlock()
	o.mu.Lock()
	ts := slices.Clone(o.ts)
	o.mu.Unlock()
	var fl []OffloadFlow
	var errs []error
	for _, t := range ts {
		var err error
		if t.d != nil {
			cur := o.depoch.Load()
			err = t.d.ListDecap(func(e *ring.DecapEntry, hits uint64) bool {
				r := netip.AddrFrom4(e.RLOC)
				if e.V6 {
					r = netip.AddrFrom16(e.RLOC6)
				}
				fl = append(fl, OffloadFlow{Direction: OffloadDecap, IID: e.IID, EID: e.InnerDst(), RLOC: r,
					Ifindex: e.Ifindex, Over6: e.V6, Epoch: e.Epoch, Current: e.Epoch == cur && cur != 0, Packets: hits})
				return true
			})
		} else {
			cur := o.epoch.Load()
			add := func(iid uint32, e *ring.OffloadEntry, hits uint64, reencap, over6 bool) bool {
				fl = append(fl, OffloadFlow{Direction: OffloadEncap, Reencap: reencap, IID: iid, EID: keyOf(e).dst, Bucket: e.Bucket,
					RLOC: e.OuterDst(), Ifindex: e.Ifindex, Over6: over6, Epoch: e.Epoch, Current: e.Epoch == cur && cur != 0, Packets: hits})
				return true
			}
			if t.r != nil {
				err = t.r.ListReencap(func(e *ring.ReencapEntry, hits uint64) bool { return add(e.IID, &e.OffloadEntry, hits, true, e.Over6) })
			} else {
				err = t.t.ListOffload(func(e *ring.OffloadEntry, hits uint64) bool { return add(t.iid, e, hits, false, false) })
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	slices.SortStableFunc(fl, func(a, b OffloadFlow) int {
		if a.Packets != b.Packets {
			return cmp.Compare(b.Packets, a.Packets)
		}
		return cmp.Or(cmp.Compare(a.Direction, b.Direction), cmp.Compare(a.IID, b.IID), a.EID.Compare(b.EID),
			cmp.Compare(a.Bucket, b.Bucket), compareBool(a.Over6, b.Over6))
	})
	total := len(fl)
	if limit = max(limit, 0); len(fl) > limit {
		fl = slices.Clip(fl[:limit])
	}
	return fl, total, errors.Join(errs...)
}

// compareBool orders false before true.
func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// OffloadStats are an Offload's counters.
type OffloadStats struct {
	Epoch         uint32 // OffloadEncap's (0 while paused)
	EpochDecap    uint32 // OffloadDecap's
	Invalidations uint64 // epochs started
	Swept         uint64 // entries deleted by sweeps
	Errors        uint64 // epochs a table refused (the table was turned off)
	PausedEncap   bool   // OffloadEncap is between Pause and Resume
	PausedDecap   bool   // OffloadDecap is
	Pauses        uint64 // Pauses that turned a direction off
	FlowsEncap    int64  // OffloadEncap's entries of the current epoch at the last Sweep
	FlowsDecap    int64  // OffloadDecap's
	MapBatches    uint64 // map-cache batches MapChanged handled without an epoch
	MapDeleted    uint64 // entries those batches covered, deleted
	HopBatches    uint64 // next-hop snapshots that lost neighbours alone, NextHopsChanged handled without an epoch
	HopDeleted    uint64 // entries sent to those neighbours, deleted
	RouteBatches  uint64 // next-hop snapshots of a route or link change, NextHopsChanged handled without an epoch
	RouteDeleted  uint64 // entries whose next hop those changed, deleted
}

// Stats returns the Offload's counters.
func (o *Offload) Stats() OffloadStats {
	o.mu.Lock()
	paused := o.paused
	o.mu.Unlock()
	return OffloadStats{Epoch: o.epoch.Load(), EpochDecap: o.depoch.Load(), Invalidations: o.invalidations.Load(), Swept: o.swept.Load(),
		Errors: o.errs.Load(), PausedEncap: paused[OffloadEncap],
		PausedDecap: paused[OffloadDecap], Pauses: o.pauses.Load(),
		FlowsEncap: o.flows[OffloadEncap].Load(), FlowsDecap: o.flows[OffloadDecap].Load(),
		MapBatches: o.mapBatches.Load(), MapDeleted: o.mapDeleted.Load(),
		HopBatches: o.hopBatches.Load(), HopDeleted: o.hopDeleted.Load(), RouteBatches: o.routeBatches.Load(), RouteDeleted: o.routeDeleted.Load()}
}

// offloadMax is the flows a worker offers per step: each is a system call.
const offloadMax = 16

// offloadOffer is encapRun's step for a flow memo hit x that the kernel
// does not hold in the worker's epoch (offloadOfferAt with x's bucket and
// tag).
func (w *Worker) offloadOffer(pk *pktInfo, x *flowSlot, h *nextHop) {
	w.offloadOfferAt(pk, x.bkt, &x.off, h)
}

// offloadOfferAt offers the flow of site packet pk (its destination, pk.mkey
// for IPv4 or pk.dst for IPv6, and RLOC selection bucket bkt), whose offer
// tag is *off: for a port with an offload table, sent through h (fast4 or
// fast6) to a port with an interface index, it queues the entry for
// the end of the step (offloadFlush) and sets *off to the worker's tag.
// An RTR's flow (pk.rtr: LISP to our IPv4 or IPv6 RLOC, from a core port
// with a reencap table) is offered the same way, with the instance-ID and
// our RLOC its packets come to. Whatever it does not queue
// (the step's queue full, no table) it leaves for the next packet, or marks
// offered when it never can be.
func (w *Worker) offloadOfferAt(pk *pktInfo, bkt uint8, off *uint8, h *nextHop) {
	p := &w.ports[pk.slot]
	t, r := p.offload, ring.ReencapTable(nil)
	if pk.rtr {
		t = nil
		if pk.outerV4 && w.rloc4k != 0 || !pk.outerV4 && w.rloc6.Is6() {
			r = p.reencap
		}
	}
	v6 := h.fast6
	if t == nil && r == nil || w.oe == 0 || !(h.fast4 || v6) || h.out < 0 || w.ports[h.out].ifindex <= 0 || h.maxInner > 1<<16-1 {
		*off = w.oet
		return
	}
	if w.offn == len(w.offq) {
		return
	}
	q := &w.offq[w.offn]
	w.offn++
	q.t, q.d, q.r, q.slot, q.waited = t, nil, r, pk.slot, 0
	q.cgen, q.tag, q.hseq = w.ocg, off, h.snap.Seq()
	if r != nil {
		q.re.IID, q.re.NonceOK, q.re.Over6, q.re.RLOC, q.re.RLOC6 = pk.iid, !w.obs.nonces.Load(), !pk.outerV4, [4]byte{}, [16]byte{}
		if pk.outerV4 {
			binary.BigEndian.PutUint32(q.re.RLOC[:], uint32(w.rloc4k))
		} else {
			q.re.RLOC6 = w.rloc6.As16()
		}
	}
	e := &q.re.OffloadEntry
	if pk.v4 {
		e.Dst, e.InnerV6, e.Dst6 = [4]byte{byte(pk.mkey >> 24), byte(pk.mkey >> 16), byte(pk.mkey >> 8), byte(pk.mkey)}, false, [16]byte{}
	} else {
		e.Dst, e.InnerV6, e.Dst6 = [4]byte{}, true, pk.dst.As16()
	}
	e.Bucket, e.Epoch, e.Ifindex = bkt, w.oe, w.ports[h.out].ifindex
	e.MaxInner, e.V6 = uint16(h.maxInner), v6
	if v6 {
		// What wire.PatchOuterIPv6 writes into every packet that the
		// template does not hold yet: the worker's LSBs.
		copy(e.Front[:], h.hdr[:ring.OffloadFront6])
		lh := wire.Header(e.Front[wire.EthernetLen+wire.IPv6Len+wire.UDPLen:])
		if lh.Flags()&wire.FlagL != 0 {
			lh.SetLSBs(w.lsbs)
		}
		e.CsBase, e.Nonce = 0, lh.Flags()&wire.FlagN != 0
	} else {
		copy(e.Front[:], h.hdr[:ring.OffloadFront])
		e.CsBase, e.Nonce = h.csBase, h.nonce
	}
	*off = w.oet
}

// offer6Slot is what a worker remembers of an IPv6 EID's flow it offered
// (offer6): the port it came in on (a site port, or an RTR's core port),
// the instance-ID, destination and bucket, whether it came over an IPv6
// RLOC (an RTR's: its kernel entry is for one outer version), and the tag
// it was offered in.
type offer6Slot struct {
	dst   [16]byte
	iid   uint32
	port  uint16
	bkt   uint8
	over6 bool
	off   uint8
}

// offer6Slots is the size of a worker's offer6 memo.
const (
	offer6Bits  = 10
	offer6Slots = 1 << offer6Bits
)

// offer6 is encap's step for a packet pk to an IPv6 EID sent through h,
// from a site port or, re-encapsulated by an RTR, from a core port, and for
// an RTR's packet to an IPv4 EID that came over IPv6 (coreInner leaves the
// flow memo to those over IPv4): a direct-mapped memo of offers
// (offer6Slot, allocated with the worker) says whether the kernel holds its
// flow (port, instance-ID, destination, bucket, outer version) in the
// worker's epoch; a flow not offered is (offloadOfferAt). A flow that loses
// its slot to another is offered again on its next packet: a put of the
// same entry. The kernel holds an RTR's flow once per outer version, and
// the versions have slots of their own here.
func (w *Worker) offer6(pk *pktInfo, h *nextHop) {
	p := &w.ports[pk.slot]
	if w.oe == 0 || pk.rtr && p.reencap == nil || !pk.rtr && p.offload == nil { // offers6 is not nil with a table
		return
	}
	d := pk.dst.As16()
	bkt := cache.SelectBucket(pk.hash)
	over6 := pk.rtr && !pk.outerV4
	x := binary.LittleEndian.Uint64(d[:8]) ^ binary.LittleEndian.Uint64(d[8:]) ^ uint64(pk.iid)<<32 ^ uint64(pk.slot)<<8 ^ uint64(bkt)
	if over6 {
		x = ^x // a slot of its own: the versions do not take turns in one
	}
	s := &w.offers6[(x*0x9e3779b97f4a7c15)>>(64-offer6Bits)]
	same := s.dst == d && s.iid == pk.iid && s.port == uint16(pk.slot) && s.bkt == bkt && s.over6 == over6
	if same && s.off == w.oet {
		return
	}
	if !same {
		*s = offer6Slot{dst: d, iid: pk.iid, port: uint16(pk.slot), bkt: bkt, over6: over6}
	}
	if pk.v4 {
		// offloadOfferAt takes an IPv4 destination from the memo key,
		// which coreInner may have left unset.
		a := pk.dst.As4()
		pk.mkey = pk.mkey&^(1<<32-1) | uint64(binary.BigEndian.Uint32(a[:]))
	}
	w.offloadOfferAt(pk, bkt, &s.off, h)
}

// offloadable6 reports whether the kernel can finish h's packets as
// wire.PatchOuterIPv6 does (the IPv6 branch of bpf/steer.c's offload): a
// resolved entry whose front is an Ethernet header and an IPv6 template
// without extension headers, carrying UDP without a checksum to compute.
func offloadable6(h *nextHop) bool {
	const udp = wire.EthernetLen + wire.IPv6Len
	return h.hlen == ring.OffloadFront6 && h.hdr[wire.EthernetLen]>>4 == 6 && h.hdr[wire.EthernetLen+6] == wire.ProtoUDP &&
		h.hdr[udp+6] == 0 && h.hdr[udp+7] == 0
}

// offloadWait is how many steps an offered flow waits for its port's rx
// ring to be empty (offloadFlush).
const offloadWait = 64

// offloadFlush puts the entries offloadOffer and decapOffer queued, each
// once the rx ring of the port its flow came in on is empty
// (ring.RxPender), or after offloadWait steps: a packet of the flow still
// waiting there would leave after the first ones the kernel sends. The ones
// still waiting stay queued, in order, and so do all of them while a Sweep
// walks a table (Offload.puts).
func (w *Worker) offloadFlush() {
	k, locked := 0, false
	for i := range w.offn {
		q := &w.offq[i]
		wait := false
		if pd := w.ports[q.slot].pender; pd != nil && q.waited < offloadWait && pd.RxPending() {
			q.waited++
			wait = true
		} else if !locked {
			if locked = w.off.puts.TryRLock(); !locked {
				wait = true // a sweep: the next step tries again
			}
		}
		if wait {
			if k != i {
				w.offq[k], w.offq[i] = w.offq[i], w.offq[k]
			}
			k++
			continue
		}
		if q.d == nil && q.cgen != w.off.cgen.Load() || q.hseq < w.off.hopSeq.Load() {
			// Made from the map-cache before a change that MapChanged
			// handled without an epoch, or from a next-hop snapshot
			// older than one NextHopsChanged handled so (lost
			// neighbours, a route or link change): the entry might be
			// one they deleted. The flow's next packet offers it again:
			// the tag that says it was offered is cleared here (a flow
			// memo or offer6 slot's, a delivery's next hop's), since
			// the slot or the next hop may live on (the worker carries
			// a next hop over to a snapshot that resolves it alike). A
			// slot or next hop taken by another flow since loses a tag
			// it may not need to: one offer more.
			if q.tag != nil && *q.tag == w.oet {
				*q.tag = 0
			}
			if h := q.dhop; h != nil {
				if !q.de.V6 && h.dkey>>48 == uint64(w.doet) {
					h.dkey &= 1<<48 - 1
				} else if q.de.V6 && h.doff6 == w.doet {
					h.doff6 = 0
				}
			}
			w.extra[ExtraOffloadStale]++
			continue
		}
		var err error
		switch {
		case q.d != nil:
			err = q.d.PutDecap(&q.de)
		case q.r != nil:
			err = q.r.PutReencap(&q.re)
		default:
			err = q.t.PutOffload(&q.re.OffloadEntry)
		}
		if err != nil {
			w.extra[ExtraOffloadFail]++ // a full table: Sweep starts a new epoch
			continue
		}
		w.extra[ExtraOffloadPut]++
		t := w.ports[q.slot].dtab
		if q.d == nil {
			t = w.ports[q.slot].otab
			w.noteLive(q)
		}
		if t != nil { // nil: a table not registered, which no walk reads
			t.puts.Add(1)
		}
	}
	if locked {
		w.off.puts.RUnlock()
	}
	w.offn = k
}

// noteLive records the entry q put in the worker's livePending, for its
// table's live index (MapChanged's), under puts' read lock, which the
// caller holds: no lock, no allocation.
func (w *Worker) noteLive(q *offloadPut) {
	ot, p := w.ports[q.slot].otab, w.livePend
	if ot == nil || p == nil {
		return // Offload.unindexed is set
	}
	if p.n == len(p.keys) {
		p.over = true
		return
	}
	iid, k := ot.key(q.re.IID, q.re.Over6, &q.re.OffloadEntry)
	p.keys[p.n] = pendingKey{t: ot, iid: iid, k: k}
	p.n++
}

// decapOffer is deliverAt's step for the delivery of pk (instance-ID
// pk.iid, inner IPv4 destination k or IPv6 destination pk.dst, outer IPv4
// or IPv6 to our RLOC of that version, from core port pk.slot) to site port
// site through h, resolved there with an Ethernet header, that is not
// offered over its outer version in the worker's decap epoch (the tag in
// h.dkey over IPv4, h.doff6 over IPv6). A delivery
// deliver4 makes (a site port with an interface index, without gleaning,
// no local groups) is queued for the end of the step (offloadFlush) as a
// copy of h, and h marked offered, so that deliver4 takes the flow's next
// packets; with the step's queue full h is left for the next packet. Any
// other is marked offered at once: nothing to offer in the epoch.
func (w *Worker) decapOffer(pk *pktInfo, h *nextHop, site int, k uint32) {
	t := w.ports[pk.slot].decap
	if t != nil && w.doe != 0 && (pk.v4 || pk.dst.Is6()) && !w.ports[site].glean && w.cfg.LocalGroups == nil &&
		w.ports[site].ifindex > 0 && (pk.outerV4 && w.rloc4k != 0 || !pk.outerV4 && w.rloc6.Is6()) {
		if w.offn == len(w.offq) {
			return
		}
		q := &w.offq[w.offn]
		w.offn++
		*q = offloadPut{d: t, slot: pk.slot, hseq: h.snap.Seq(), dhop: h}
		e := &q.de
		e.IID, e.Epoch, e.Ifindex, e.NonceOK = pk.iid, w.doe, w.ports[site].ifindex, !w.obs.nonces.Load()
		if pk.v4 {
			binary.BigEndian.PutUint32(e.Dst[:], k)
		} else {
			e.InnerV6, e.Dst6 = true, pk.dst.As16()
		}
		if pk.outerV4 {
			binary.BigEndian.PutUint32(e.RLOC[:], uint32(w.rloc4k))
		} else {
			e.V6, e.RLOC6 = true, w.rloc6.As16()
		}
		copy(e.Eth[:], h.hdr[:wire.EthernetLen])
	}
	if pk.outerV4 {
		h.dkey = h.dkey&(1<<48-1) | uint64(w.doet)<<48
	} else {
		h.doff6 = w.doet
	}
}

// offloadPut is an entry offloadOffer (t, re's OffloadEntry; an RTR's: r,
// re) or decapOffer (d, de) queued, with its table.
type offloadPut struct {
	t      ring.OffloadTable
	d      ring.DecapTable
	r      ring.ReencapTable
	slot   int   // the port the flow came in on
	waited uint8 // steps it waited for that port's rx ring to be empty
	// t's and r's: Offload.cgen when the worker read the map-cache for
	// the offer (Worker.ocg), and the tag that says the flow was offered
	// (a flow memo or offer6 slot's off), which a dropped offer clears.
	cgen uint64
	tag  *uint8
	// d's: the delivery's next-hop memo entry, whose tag (dkey's over an
	// IPv4 RLOC, doff6 over IPv6: de.V6) says the delivery was offered,
	// which a dropped offer clears.
	dhop *nextHop
	// the nexthop.Snapshot.Seq of the snapshot the worker resolved the
	// entry's next hop in (Offload.hopSeq)
	hseq uint64
	re   ring.ReencapEntry
	de   ring.DecapEntry
}

// offloadTag is what a slot that says its flow was offered keeps of
// epoch e: never 0, which new slots hold, but for epoch 0 (paused: nothing
// is offered). A delivery's next hop (nextHop.dkey, doff6) keeps 16 bits;
// a flow memo or offer6 slot (flowSlot.off) 8, so that a flow slot holds a
// 16-bit next-hop index in 16 bytes. A slot whose tag comes round again
// (within one memo generation, which any map-cache change or activity fold
// ends, for a flow slot) takes its flow for offered when the kernel may
// lack it: the flow stays with the worker until its slot is filled again.
// That costs speed, never a wrong packet.
func offloadTag[T uint8 | uint16](e uint32) T {
	if t := T(e); t != 0 || e == 0 {
		return t
	}
	return 1
}

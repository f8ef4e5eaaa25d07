package nexthop

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// WatcherConfig configures a Watcher.
type WatcherConfig struct {
	// Links names the interfaces the fast path owns; the fast path's port
	// index of Links[i] is i. Routes through other interfaces resolve as
	// AdjKernel.
	Links []string
	// Namespace is the network namespace to watch; nil means the caller's.
	Namespace *netns.NsHandle
	// Table receives the snapshots.
	Table *Table
	// Logger receives warnings (nil: slog.Default()).
	Logger *slog.Logger
	// NoManaged disables installing managed neighbours for gateways.
	NoManaged bool
	// MulticastLink names the link (one of Links) copies to underlay
	// multicast groups leave by when no specific route covers the group
	// (Link.Multicast); "" for none.
	MulticastLink string
	// RetryInterval is the least time between two resolution requests for
	// one gateway (default 1 s).
	RetryInterval time.Duration
	// ReceiveBuffer is the receive buffer of each netlink subscription
	// socket, in bytes (default 4 MiB): events the kernel queues while the
	// Watcher is busy (publishing a snapshot, say). An event storm that
	// overflows it makes the Watcher start over from a dump (Resyncs). It
	// is set with SO_RCVBUFFORCE, past net.core.rmem_max (212992 bytes on
	// a stock Debian), when the process holds CAP_NET_ADMIN; without, the
	// kernel caps it at rmem_max.
	ReceiveBuffer int
	// PublishGap is the least time between two snapshots (default 10 ms),
	// or the time the last one took to make when that is longer: a burst
	// of events after a quiet spell is published at once, but while
	// events keep coming (a routing daemon installing or withdrawing a
	// peer's routes) the Watcher publishes at most once per gap, so that
	// the workers and the kernel offload see tens of snapshots a second,
	// not thousands, and the Watcher spends at most about half its time
	// making them (the rest reading events: a storm of them makes larger
	// batches, cheaper by the route). Negative: none (every burst is
	// published).
	PublishGap time.Duration
}

// defaultPublishGap is WatcherConfig.PublishGap's default.
const defaultPublishGap = 10 * time.Millisecond

// defaultReceiveBuffer is WatcherConfig.ReceiveBuffer's default.
const defaultReceiveBuffer = 4 << 20

type neighID struct {
	addr    netip.Addr
	ifindex int32
}

// Watcher mirrors the kernel's tables into a Table: it dumps links, routes
// (main table) and neighbours over rtnetlink, subscribes to their changes and
// publishes a new immutable Snapshot after each burst of events that changed
// what a Snapshot holds (the routes' trie by persistent updates of the
// prefixes that changed: flushRoutes): a neighbour going from REACHABLE to STALE with the
// same MAC, or a link event that leaves its MAC, MTU and state alone,
// publishes nothing (every Snapshot makes the workers refill their next-hop
// memos). A Snapshot published for neighbour entries alone that were absent
// or unusable (a new host's ARP or ND entry) KeepsResolved, so that the
// kernel offload keeps its flows, and one published for neighbour entries
// alone that were usable names the destinations it lost (Snapshot.Lost),
// so that the offload drops only the flows sent to them. It also makes the
// kernel resolve the gateways of routes through the fast path's
// interfaces, by installing them as "managed" neighbours (NTF_EXT_MANAGED,
// Linux 5.16+), which the kernel then keeps resolved on its own, and marks
// the neighbours the fast path used (MarkUsed).
type Watcher struct {
	cfg   WatcherConfig
	log   *slog.Logger
	ready chan struct{}
	used  chan []LinkDest // MarkUsed's, for Run's goroutine

	// State below is owned by the Run goroutine.
	h         *netlink.Handle
	mark      *nl.SocketHandle // markUsed's requests (the library's Handle has no update without create)
	force     bool             // the subscriptions' ReceiveBuffer is set past rmem_max (canForce)
	links     map[int32]Link
	routes    routeTable             // the main table's routes (routes.go)
	hops      hopTable               // their next hops
	gateways  map[neighID]int        // the routes through each gateway (manage's)
	noEgress  int                    // the unicast routes that name no interface nor object (countHop)
	objects   map[uint32]nhObject    // the kernel's nexthop objects, by id
	nhRefs    map[uint32]int         // the routes through each object
	paths     map[uint32][]member    // the sets of paths of multipath routes, by id (internPaths)
	pathIDs   map[string]uint32      // the id of each set in paths, by its pathsKey
	pathRefs  map[uint32]int         // the routes through each set (a set goes with its last route)
	lastPaths uint32                 // the id the last new set took
	warned    bool                   // the warning about them is logged (until there are none)
	trie      *routeTrie             // the routes of the last snapshot published (nil: none yet)
	dirty     map[prefixKey]struct{} // the prefixes whose routes changed since
	neighs    map[neighID]Neighbour
	dynamic   map[neighID]bool      // the neighbours in a state the kernel's use moves (usedNUD): those markUsed marks
	requested map[neighID]time.Time // last resolution request per gateway
	created   map[neighID]bool      // managed neighbours this Watcher installed
	changed   bool                  // an event changed the state since the last publish
	moved     bool                  // one of them may change any resolved adjacency (not Snapshot.Moved)
	moves     []netip.Prefix        // the prefixes of the routes changed, when at most MovedMax (flushRoutes)
	lost      map[LinkDest]struct{} // the destinations of usable neighbour entries that went or changed since
	now       func() time.Time      // the clock (tests set their own)
	published time.Time             // when the last snapshot was
	cost      time.Duration         // how long making it took

	// Counters, read while Run goes on (Stats).
	events    atomic.Uint64 // events applied
	publishes atomic.Uint64 // snapshots published
	resyncs   atomic.Uint64 // sessions started over
	marked    atomic.Uint64 // neighbour entries MarkUsed marked used
	markGone  atomic.Uint64 // marks that found the entry gone (ENOENT)
	noEgressN atomic.Uint64 // noEgress as of the last snapshot
}

// WatcherStats is what a Watcher did since it was made.
type WatcherStats struct {
	// Events is the netlink events (links, routes, neighbours) applied.
	Events uint64
	// Snapshots is the snapshots published to the Table.
	Snapshots uint64
	// Resyncs is the times a subscription failed (the socket overflowed,
	// say) and the Watcher started over with a fresh dump.
	Resyncs uint64
	// Marked is the kernel's neighbour entries marked used (MarkUsed).
	Marked uint64
	// MarkGone is the marks that found the kernel's entry deleted before
	// the Watcher applied the event: nothing is marked, nor created.
	MarkGone uint64
	// RoutesWithoutEgress is not a count of events but the number of
	// unicast routes in the last snapshot that name neither an interface
	// nor a nexthop object, which the kernel does not make: a sign of a
	// route message the Watcher does not read right. They resolve as
	// AdjKernel: the kernel sends what goes by them.
	RoutesWithoutEgress uint64
}

// Stats returns the Watcher's counters. Safe for concurrent use.
func (w *Watcher) Stats() WatcherStats {
	return WatcherStats{Events: w.events.Load(), Snapshots: w.publishes.Load(), Resyncs: w.resyncs.Load(),
		Marked: w.marked.Load(), MarkGone: w.markGone.Load(), RoutesWithoutEgress: w.noEgressN.Load()}
}

// NewWatcher checks cfg and returns a Watcher; Run starts it.
func NewWatcher(cfg WatcherConfig) (*Watcher, error) {
	if cfg.Table == nil {
		return nil, errors.New("nexthop: WatcherConfig.Table is nil")
	}
	for _, name := range cfg.Links {
		if name == "" || len(name) > unix.IFNAMSIZ-1 {
			return nil, fmt.Errorf("nexthop: bad interface name %q", name)
		}
	}
	if len(cfg.Links) > 0xffff {
		return nil, errors.New("nexthop: too many links")
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Second
	}
	if cfg.ReceiveBuffer < 0 {
		return nil, fmt.Errorf("nexthop: negative receive buffer %d", cfg.ReceiveBuffer)
	}
	if cfg.ReceiveBuffer == 0 {
		cfg.ReceiveBuffer = defaultReceiveBuffer
	}
	if cfg.PublishGap == 0 {
		cfg.PublishGap = defaultPublishGap
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Watcher{cfg: cfg, log: log.With("component", "neigh"), ready: make(chan struct{}), used: make(chan []LinkDest, 1),
		now: time.Now}, nil
}

// usedMax bounds the neighbour entries one MarkUsed marks.
const usedMax = 4096

// MarkUsed tells the kernel that the fast path sent packets to the
// link-layer destinations ds, as the kernel's own forwarding tells its
// neighbour table: each usable neighbour entry with that interface and MAC
// is marked used (RTM_NEWNEIGH with NTF_USE). The kernel then keeps a
// host's entry from its garbage collection, which removes the entries it
// saw no use of, and probes a STALE one again (DELAY, PROBE): a host that
// left goes FAILED, its MAC is lost (Snapshot.Lost), and the fast path
// stops sending to it, where it would otherwise send to the dead MAC for
// as long as the STALE entry lasts. Give it the destinations the fast path
// used since the last call (the kernel offload's sweep,
// fastpath.Offload.OnUsed, and the workers', fastpath.Worker.UsedNextHops). It does not block: Run's goroutine marks them,
// at most usedMax a call, and a call that comes while the previous one
// waits replaces it (both name what is still used).
func (w *Watcher) MarkUsed(ds []LinkDest) {
	ds = slices.Clone(ds)
	for {
		select {
		case w.used <- ds:
			return
		default:
		}
		select {
		case <-w.used: // the older call's: still used ones are in ds
		default:
		}
	}
}

// markUsed marks the usable neighbour entries with a destination of ds
// used (MarkUsed), but for static ones (PERMANENT, NOARP) and those the
// kernel keeps resolved itself (managed): the kernel leaves those alone.
func (w *Watcher) markUsed(ds []LinkDest) {
	want := make(map[LinkDest]bool, len(ds))
	for _, d := range ds {
		want[d] = true
	}
	n := 0
	for k, nb := range w.neighs {
		if !nb.Valid || !w.dynamic[k] || !want[LinkDest{IfIndex: nb.IfIndex, MAC: nb.MAC}] {
			continue
		}
		if n++; n > usedMax {
			return
		}
		if err := w.markNeigh(k); errors.Is(err, unix.ENOENT) {
			w.markGone.Add(1) // its deletion's event is on its way
			continue
		} else if err != nil {
			w.log.Debug("mark a neighbour used", "addr", k.addr, "ifindex", k.ifindex, "err", err)
			continue
		}
		w.marked.Add(1)
	}
}

// markNeigh marks the kernel's neighbour entry k used: RTM_NEWNEIGH with
// NTF_USE and neither a state nor an address, so the kernel keeps the
// entry's (less PERMANENT, which none marked here has) and sends an event
// through it. The request replaces but does not create (no NLM_F_CREATE):
// an entry the kernel deleted since the last event Run applied gets
// ENOENT, where a create would put an INCOMPLETE entry in its place and
// make the kernel resolve an address nothing sends to any more.
func (w *Watcher) markNeigh(k neighID) error {
	fam := unix.AF_INET6
	if k.addr.Is4() {
		fam = unix.AF_INET
	}
	req := nl.NewNetlinkRequest(unix.RTM_NEWNEIGH, unix.NLM_F_REPLACE|unix.NLM_F_ACK)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: w.mark}
	req.AddData(&netlink.Ndmsg{Family: uint8(fam), Index: uint32(k.ifindex), Flags: netlink.NTF_USE})
	req.AddData(nl.NewRtAttr(unix.NDA_DST, k.addr.AsSlice()))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// canForce reports whether the process may set a socket's receive buffer
// past net.core.rmem_max (SO_RCVBUFFORCE, CAP_NET_ADMIN), trying it on a
// socket of its own: the library's subscriptions, asked to force it, fail
// without closing their socket.
func canForce(size int) bool {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) == nil
}

// nsOf is the handle the library's ...At functions take for namespace ns
// (nil: this one).
func nsOf(ns *netns.NsHandle) netns.NsHandle {
	if ns == nil {
		return netns.None()
	}
	return *ns
}

// openRoute opens a NETLINK_ROUTE socket for requests (markNeigh's, the
// dumps') in namespace ns (nil: this one), with 5 s timeouts.
func openRoute(ns *netns.NsHandle) (*nl.SocketHandle, error) {
	s, err := nl.GetNetlinkSocketAt(nsOf(ns), netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("nexthop: netlink socket: %w", err)
	}
	tv := unix.Timeval{Sec: 5}
	if err := errors.Join(s.SetSendTimeout(&tv), s.SetReceiveTimeout(&tv)); err != nil {
		s.Close()
		return nil, fmt.Errorf("nexthop: netlink socket: %w", err)
	}
	return &nl.SocketHandle{Socket: s}, nil
}

// Ready is closed once the first snapshot (from the initial dump) is
// published.
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// Run mirrors the kernel's tables until ctx is done. When a subscription
// fails (e.g. the socket overflowed and events were lost) it starts over
// with a fresh dump. On return it removes the managed neighbours it
// installed.
func (w *Watcher) Run(ctx context.Context) error {
	var err error
	if w.cfg.Namespace != nil {
		w.h, err = netlink.NewHandleAt(*w.cfg.Namespace)
	} else {
		w.h, err = netlink.NewHandle()
	}
	if err != nil {
		return fmt.Errorf("nexthop: netlink handle: %w", err)
	}
	defer w.h.Close()
	if w.mark, err = openRoute(w.cfg.Namespace); err != nil {
		return err
	}
	defer w.mark.Close()
	if w.force = canForce(w.cfg.ReceiveBuffer); !w.force {
		w.log.Warn("netlink receive buffers capped at net.core.rmem_max (no CAP_NET_ADMIN): an event storm may make the watcher start over more often",
			"want", w.cfg.ReceiveBuffer)
	}
	defer w.removeManaged()
	w.requested = map[neighID]time.Time{}
	w.created = map[neighID]bool{}
	for {
		err := w.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		w.log.Warn("netlink session ended, resynchronising", "err", err)
		w.resyncs.Add(1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// session subscribes, dumps, and applies events until a subscription ends.
func (w *Watcher) session(ctx context.Context) error {
	done := make(chan struct{})
	rch := make(chan rtEvent, 1024)
	nch := make(chan netlink.NeighUpdate, 1024)
	lch := make(chan netlink.LinkUpdate, 256)
	defer func() {
		close(done)
		// The library's readers exit once their sockets close; drain so
		// none stays blocked on a send.
		go func() {
			for range rch {
			}
		}()
		go func() {
			for range nch {
			}
		}()
		go func() {
			for range lch {
			}
		}()
	}()
	cb := func(err error) {
		select {
		case <-done: // sockets closing on purpose
		default:
			w.log.Warn("netlink subscription", "err", err)
		}
	}
	if err := netlink.LinkSubscribeWithOptions(lch, done, netlink.LinkSubscribeOptions{
		Namespace: w.cfg.Namespace, ErrorCallback: cb, ReceiveBufferSize: w.cfg.ReceiveBuffer, ReceiveBufferForceSize: w.force}); err != nil {
		return fmt.Errorf("link subscribe: %w", err)
	}
	if err := subscribeRoutes(w.cfg.Namespace, rch, done, cb, w.cfg.ReceiveBuffer, w.force); err != nil {
		return fmt.Errorf("route subscribe: %w", err)
	}
	if err := netlink.NeighSubscribeWithOptions(nch, done, netlink.NeighSubscribeOptions{
		Namespace: w.cfg.Namespace, ErrorCallback: cb, ReceiveBufferSize: w.cfg.ReceiveBuffer, ReceiveBufferForceSize: w.force}); err != nil {
		return fmt.Errorf("nexthop: subscribe: %w", err)
	}
	// Dump after subscribing: events queued meanwhile are replayed in order
	// on top of the dump, which converges to the kernel's state.
	if err := w.dump(); err != nil {
		return err
	}
	w.publish()
	select {
	case <-w.ready:
	default:
		close(w.ready)
	}
	w.manage()
	tick := time.NewTicker(w.cfg.RetryInterval)
	defer tick.Stop()
	hold := time.NewTimer(time.Hour) // armed while a publish waits for the gap
	hold.Stop()
	defer hold.Stop()
	held := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			w.manage()
			continue
		case <-hold.C:
			held = false
		case ds := <-w.used:
			w.markUsed(ds)
			continue
		case u, ok := <-lch:
			if !ok {
				return errors.New("link subscription closed")
			}
			w.applyLink(u)
		case u, ok := <-rch:
			if !ok {
				return errors.New("route subscription closed")
			}
			w.applyRtEvent(u)
		case u, ok := <-nch:
			if !ok {
				return errors.New("neighbour subscription closed")
			}
			w.applyNeigh(u.Type, &u.Neigh)
		}
		// Apply whatever else is already queued, then publish once.
	burst:
		for range 4096 {
			select {
			case u, ok := <-lch:
				if !ok {
					return errors.New("link subscription closed")
				}
				w.applyLink(u)
			case u, ok := <-rch:
				if !ok {
					return errors.New("route subscription closed")
				}
				w.applyRtEvent(u)
			case u, ok := <-nch:
				if !ok {
					return errors.New("neighbour subscription closed")
				}
				w.applyNeigh(u.Type, &u.Neigh)
			default:
				break burst
			}
		}
		if wait := w.publishDue(); wait == 0 {
			w.publish()
		} else if wait > 0 && !held {
			hold.Reset(wait)
			held = true
		}
		w.manage()
	}
}

// publishDue says when to publish the changes applied since the last
// snapshot: 0 now, a positive wait when the last one is more recent than
// PublishGap or than the time it took to make, -1 never (nothing
// changed).
func (w *Watcher) publishDue() time.Duration {
	if !w.changed {
		return -1
	}
	if w.cfg.PublishGap < 0 {
		return 0
	}
	if wait := max(w.cfg.PublishGap, w.cost) - w.now().Sub(w.published); wait > 0 {
		return wait
	}
	return 0
}

// dump replaces the state with the kernel's current tables. Routes are
// applied as the kernel's dump is read, not gathered first: a table of a
// million routes reads about four times faster so (and a dump that
// overflows the subscriptions' buffers meanwhile is one started over).
// A dump the kernel interrupts (its tables changed meanwhile) is made
// again, up to five times; after a failed one the state is partial, and
// Run starts over.
func (w *Watcher) dump() error {
	var err error
	for try := 0; try < 5; try++ {
		w.reset()
		w.change(true) // a first snapshot, or one after a failed run: all may differ
		var links []netlink.Link
		if links, err = w.h.LinkList(); err == nil {
			for _, l := range links {
				w.setLink(l)
			}
			// Objects first: the routes name them.
			bad := func(err error) { w.log.Warn("netlink dump: a message skipped", "err", err) }
			if err = dumpKind(w.cfg.Namespace, unix.RTM_GETNEXTHOP, w.applyNexthop, bad); err == nil {
				err = dumpKind(w.cfg.Namespace, unix.RTM_GETROUTE, func(e rtEvent) { w.applyRt(e.typ, e.route) }, bad)
			}
		}
		if err == nil {
			var neighs []netlink.Neigh
			if neighs, err = w.h.NeighList(0, netlink.FAMILY_ALL); err == nil {
				for i := range neighs {
					w.applyNeigh(unix.RTM_NEWNEIGH, &neighs[i])
				}
			}
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("nexthop: dump: %w", err)
	}
	return nil
}

// reset forgets the kernel's state, the last published routes' too: the
// next publish builds its trie anew.
func (w *Watcher) reset() {
	w.links = map[int32]Link{}
	w.routes, w.hops = newRouteTable(), newHopTable()
	w.gateways, w.noEgress = map[neighID]int{}, 0
	w.objects, w.nhRefs = map[uint32]nhObject{}, map[uint32]int{}
	w.paths, w.pathIDs, w.pathRefs = map[uint32][]member{}, map[string]uint32{}, map[uint32]int{}
	w.trie, w.dirty = nil, map[prefixKey]struct{}{}
	w.neighs = map[neighID]Neighbour{}
	w.dynamic = map[neighID]bool{}
}

func (w *Watcher) setLink(l netlink.Link) {
	a := l.Attrs()
	nl := Link{Index: int32(a.Index), MTU: uint32(a.MTU), Port: -1,
		Up: a.Flags&net.FlagUp != 0 && (a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown)}
	copy(nl.MAC[:], a.HardwareAddr)
	if i := slices.Index(w.cfg.Links, a.Name); i >= 0 {
		nl.Port = i
		nl.Multicast = w.cfg.MulticastLink != "" && a.Name == w.cfg.MulticastLink
	}
	if setIfChanged(w.links, nl.Index, nl) {
		w.change(true)
	}
}

// change notes a change of the state to publish; resolved: it may change
// any adjacency that resolved.
func (w *Watcher) change(resolved bool) {
	w.changed = true
	w.moved = w.moved || resolved
}

// lostMax is the most Lost destinations a snapshot names; a burst that
// loses more publishes one that may change any adjacency.
const lostMax = 256

// lose notes a change of neighbour entry n, which was usable: the
// adjacencies resolved to its MAC on its interface may change.
func (w *Watcher) lose(n Neighbour) {
	w.changed = true
	if w.lost == nil {
		w.lost = map[LinkDest]struct{}{}
	}
	if len(w.lost) < lostMax {
		w.lost[LinkDest{IfIndex: n.IfIndex, MAC: n.MAC}] = struct{}{}
		return
	}
	w.moved = true
}

// setIfChanged stores v at k in m and reports whether that changed m.
func setIfChanged[K, V comparable](m map[K]V, k K, v V) bool {
	if old, ok := m[k]; ok && old == v {
		return false
	}
	m[k] = v
	return true
}

// deleteIfPresent deletes k from m and reports whether m held it.
func deleteIfPresent[K comparable, V any](m map[K]V, k K) bool {
	if _, ok := m[k]; !ok {
		return false
	}
	delete(m, k)
	return true
}

func (w *Watcher) applyLink(u netlink.LinkUpdate) {
	w.events.Add(1)
	if u.Link == nil {
		return
	}
	if u.Header.Type == unix.RTM_DELLINK {
		idx := int32(u.Link.Attrs().Index)
		if deleteIfPresent(w.links, idx) {
			w.change(true)
		}
		// The kernel deletes the routes through the link silently, and an
		// IPv4 multipath route with a path through it whole; it deletes an
		// IPv6 route's path alone, and says so (dropPath).
		through := func(k prefixKey, h nextHop) bool {
			if id, ok := h.pathSet(); ok {
				return k.is4() && slices.ContainsFunc(w.paths[id], func(m member) bool { return m.hop.ifindex == idx })
			}
			return h.set == 0 && h.ifindex == idx
		}
		w.dropRoutes(through)
		for id, o := range w.objects {
			if o.group == nil && o.hop.ifindex == idx {
				w.dropObject(id)
			}
		}
		for k, n := range w.neighs {
			if k.ifindex == idx {
				delete(w.neighs, k)
				delete(w.dynamic, k)
				w.changeNeigh(n, true)
			}
		}
		return
	}
	w.setLink(u.Link)
}

// toAddr converts a netlink IP; IPv4 in 16-byte form becomes a 4-byte Addr.
func toAddr(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

// applyRt applies a route event of the main table: unicast routes and
// those that reject (blackhole, unreachable, prohibit); a route through a
// nexthop object keeps the object's id alone, so that a change of the
// object changes no route.
func (w *Watcher) applyRt(typ uint16, r rtRoute) {
	w.events.Add(1)
	if r.table != unix.RT_TABLE_MAIN && r.table != 0 || r.cloned || !r.prefix.IsValid() {
		return
	}
	k, rec := keyOf(r.prefix), routeRec{priority: uint32(r.priority), tos: uint8(r.tos)}
	if typ == unix.RTM_DELROUTE {
		if r.paths != nil || !w.dropPath(k, rec, r) {
			w.dropRoute(k, rec)
		}
		return
	}
	var h nextHop
	switch r.typ {
	case unix.RTN_UNICAST:
		switch {
		case r.nhid != 0:
			h = viaObj(r.nhid)
		case r.paths != nil:
			h = w.internPaths(r.paths)
		default:
			h = nextHop{gw: r.gw, ifindex: r.ifindex}
		}
	case unix.RTN_BLACKHOLE, unix.RTN_UNREACHABLE, unix.RTN_PROHIBIT:
		h = nextHop{reject: true}
	default:
		return
	}
	w.putRoute(k, rec, h) // at once: a new set goes with its last route (countHop)
}

// internPaths is the next hop of a multipath route through paths ps: the
// id of the set that holds them, made when there is none (one set for
// every route with the same paths, as many routes share them: a default
// route and the routes an IGP or BGP learnt over the same links).
func (w *Watcher) internPaths(ps []member) nextHop {
	if len(ps) == 1 {
		return ps[0].hop
	}
	k := pathsKey(ps)
	if id, ok := w.pathIDs[k]; ok {
		return viaPaths(id)
	}
	for {
		w.lastPaths++
		if _, used := w.paths[w.lastPaths]; !used && w.lastPaths != 0 {
			break
		}
	}
	w.paths[w.lastPaths], w.pathIDs[k] = ps, w.lastPaths
	return viaPaths(w.lastPaths)
}

// pathsKey is a set of paths as a map key.
func pathsKey(ps []member) string {
	b := make([]byte, 0, len(ps)*25)
	for _, m := range ps {
		b = m.hop.gw.AppendTo(append(b, byte(m.hop.gw.BitLen())))
		b = binary.NativeEndian.AppendUint32(binary.NativeEndian.AppendUint32(b, uint32(m.hop.ifindex)), m.weight)
	}
	return string(b)
}

// dropPath deletes the path r names (its gateway on its interface) from
// prefix k's multipath route of rec's priority and TOS, as the kernel says
// when one path of an IPv6 route is deleted (ip -6 route del … via …, or
// its link is); false when that route is no multipath route with such a
// path (then the route goes whole).
func (w *Watcher) dropPath(k prefixKey, rec routeRec, r rtRoute) bool {
	a, ok := w.routes.get(k, rec)
	if !ok {
		return false
	}
	id, ok := w.hops.hop(a.hop).pathSet()
	if !ok {
		return false
	}
	ps := w.paths[id]
	j := slices.IndexFunc(ps, func(m member) bool { return m.hop.gw == r.gw && m.hop.ifindex == r.ifindex })
	if j < 0 {
		return false
	}
	w.putRoute(k, rec, w.internPaths(slices.Delete(slices.Clone(ps), j, j+1)))
	return true
}

// applyRtEvent applies an event of the route subscription.
func (w *Watcher) applyRtEvent(e rtEvent) {
	if e.typ == unix.RTM_NEWNEXTHOP || e.typ == unix.RTM_DELNEXTHOP {
		w.applyNexthop(e)
	} else {
		w.applyRt(e.typ, e.route)
	}
}

// applyNexthop applies a nexthop object's event. The kernel deletes the
// routes through an object with it, without an event of their own.
func (w *Watcher) applyNexthop(e rtEvent) {
	w.events.Add(1)
	if e.fdb {
		return
	}
	if e.typ == unix.RTM_DELNEXTHOP {
		w.dropObject(e.id)
		return
	}
	if o, ok := w.objects[e.id]; ok && o.hop == e.obj.hop && slices.Equal(o.group, e.obj.group) {
		return
	}
	w.objects[e.id] = e.obj
	w.change(true)
}

// dropObject forgets object id and the routes through it.
func (w *Watcher) dropObject(id uint32) {
	if _, ok := w.objects[id]; !ok {
		return
	}
	delete(w.objects, id)
	w.change(true)
	if w.nhRefs[id] == 0 {
		return
	}
	w.dropRoutes(func(_ prefixKey, h nextHop) bool {
		o, ok := h.object()
		return ok && o == id
	})
}

// dropRoutes deletes every route whose next hop h on prefix k through
// reports.
func (w *Watcher) dropRoutes(through func(k prefixKey, h nextHop) bool) {
	type route struct {
		k   prefixKey
		rec routeRec
	}
	var gone []route
	for k, r := range w.routes.all() {
		if through(k, w.hops.hop(r.hop)) {
			gone = append(gone, route{k, r})
		}
	}
	for _, g := range gone {
		w.dropRoute(g.k, g.rec)
	}
}

// putRoute adds or replaces prefix k's route of rec's priority and TOS,
// through h.
func (w *Watcher) putRoute(k prefixKey, rec routeRec, h nextHop) {
	rec.hop = w.hops.hold(h)
	old, had := w.routes.put(k, rec)
	if had && old == rec {
		w.hops.release(rec.hop) // held twice
		return
	}
	if had {
		w.countHop(w.hops.hop(old.hop), -1)
		w.hops.release(old.hop)
	}
	w.countHop(h, 1)
	w.dirty[k] = struct{}{}
	w.changed = true // moved: k in w.dirty (publish)
}

// dropRoute deletes prefix k's route of rec's priority and TOS, if any.
func (w *Watcher) dropRoute(k prefixKey, rec routeRec) {
	old, had := w.routes.drop(k, rec)
	if !had {
		return
	}
	w.countHop(w.hops.hop(old.hop), -1)
	w.hops.release(old.hop)
	w.dirty[k] = struct{}{}
	w.changed = true // moved: k in w.dirty (publish)
}

// countHop counts (by +1 or -1) a route through h: in the routes through
// its gateway, if it has one, in nhRefs if it goes through a nexthop
// object, and in noEgress if it is a unicast route that names neither an
// interface nor an object.
func (w *Watcher) countHop(h nextHop, by int) {
	if id, ok := h.pathSet(); ok {
		ps := w.paths[id]
		for _, m := range ps {
			w.countHop(m.hop, by)
		}
		if addCount(w.pathRefs, id, by) == 0 {
			delete(w.pathIDs, pathsKey(ps))
			delete(w.paths, id)
		}
		return
	}
	if id, ok := h.object(); ok {
		addCount(w.nhRefs, id, by)
		return
	}
	if !h.reject && h.ifindex == 0 {
		w.noEgress += by
	}
	if h.reject || !h.gw.IsValid() {
		return
	}
	addCount(w.gateways, neighID{addr: h.gw, ifindex: h.ifindex}, by)
}

// addCount adds by to m[k], deleting k when the count reaches 0, and
// returns the new count.
func addCount[K comparable](m map[K]int, k K, by int) int {
	n := m[k] + by
	if n > 0 {
		m[k] = n
	} else {
		delete(m, k)
	}
	return n
}

// usable NUD states: the link-layer address may be used.
const usableNUD = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE |
	netlink.NUD_PERMANENT | netlink.NUD_NOARP

// usedNUD are the usable states that the kernel's use of an entry moves
// (a STALE one is probed again): not PERMANENT or NOARP, which the kernel
// never probes, and which a mark of use (NTF_USE) would strip of
// PERMANENT on Linux 5.16 and later.
const usedNUD = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE

func (w *Watcher) applyNeigh(typ uint16, n *netlink.Neigh) {
	w.events.Add(1)
	if n.Family != unix.AF_INET && n.Family != unix.AF_INET6 {
		return
	}
	a := toAddr(n.IP)
	if !a.IsValid() {
		return
	}
	key := neighID{addr: a, ifindex: int32(n.LinkIndex)}
	// Only an entry that was usable can have resolved an address: a
	// change of any other leaves every resolved adjacency as it was.
	old, had := w.neighs[key]
	if typ == unix.RTM_DELNEIGH {
		delete(w.dynamic, key)
		if had {
			delete(w.neighs, key)
			w.changeNeigh(old, true)
		}
		return
	}
	if n.State&usedNUD != 0 && n.FlagsExt&netlink.NTF_EXT_MANAGED == 0 {
		if w.dynamic == nil {
			w.dynamic = map[neighID]bool{}
		}
		w.dynamic[key] = true
	} else {
		delete(w.dynamic, key)
	}
	nn := Neighbour{Addr: a, IfIndex: int32(n.LinkIndex),
		Valid: n.State&usableNUD != 0 && len(n.HardwareAddr) == 6 && !allZero(n.HardwareAddr)}
	copy(nn.MAC[:], n.HardwareAddr)
	if setIfChanged(w.neighs, key, nn) {
		w.changeNeigh(old, had)
	}
}

// changeNeigh notes a change or the deletion of a neighbour entry, which
// was old before it if had: only an entry that was usable can have
// resolved an address, and only to its MAC.
func (w *Watcher) changeNeigh(old Neighbour, had bool) {
	if had && old.Valid {
		w.lose(old)
		return
	}
	w.change(false)
}

func allZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}

// publish builds and stores a snapshot. For each prefix the route with the
// lowest metric wins.
func (w *Watcher) publish() {
	start, first := w.now(), w.trie == nil
	w.flushRoutes()
	links := make([]Link, 0, len(w.links))
	for _, l := range w.links {
		links = append(links, l)
	}
	neighs := make([]Neighbour, 0, len(w.neighs))
	for _, n := range w.neighs {
		neighs = append(neighs, n)
	}
	s := newSnapshot(links, w.trie, w.hops.view(), neighs, w.objects, w.paths)
	if !w.moved {
		// The routes changed are those of w.moves (flushRoutes took them
		// from w.dirty): a snapshot for a few says which.
		s.MarkMoved(w.moves, slices.Collect(maps.Keys(w.lost)))
	}
	w.cfg.Table.Store(s)
	w.publishes.Add(1)
	w.noteNoEgress()
	w.published = w.now()
	w.cost = w.published.Sub(start) // OnStore's functions (the offload's) included
	if first {
		w.cost = 0 // a trie built anew (a start, a resync) says nothing of the next one's cost
	}
	w.changed, w.moved = false, false
	w.moves = w.moves[:0]
	clear(w.lost)
}

// noteNoEgress publishes noEgress (Stats) and warns, once until there are
// none again, of routes the fast path cannot follow.
func (w *Watcher) noteNoEgress() {
	w.noEgressN.Store(uint64(w.noEgress))
	switch {
	case w.noEgress == 0:
		w.warned = false
	case !w.warned:
		w.warned = true
		w.log.Warn("kernel routes name neither an interface nor a nexthop object: the fast path hands what goes by them to the kernel "+
			"(rloc_fastpath_packets_total{event=\"to_kernel\"}); please report the routes (ip -d route)",
			"routes", w.noEgress)
	}
}

// flushRoutes brings w.trie up to w.routes. The trie the last snapshot
// holds is shared with the workers, so it is never changed: the prefixes
// that changed since are put in a new one with persistent updates, which
// copy the paths they change and share the rest (a burst's insertions in
// one union, so that a path they share is copied once; each deletion
// copies its own). When the changes are many for the trie's size, it is
// cheaper to copy the whole trie and change the copy in place (see
// cloneWeight); a first trie (after a dump) is built in place.
func (w *Watcher) flushRoutes() {
	t, owned := w.trie, false
	if t == nil {
		t, owned = new(routeTrie), true
		for k, r := range w.routes.bests() {
			t.Insert(k.prefix(), r.hop)
		}
		w.dirty = map[prefixKey]struct{}{} // not clear: a map's walk reads all it ever held
	} else if len(w.dirty) > rebuildMin {
		weight := 0
		for k := range w.dirty {
			weight++
			if _, ok := w.routes.best(k); !ok {
				weight += deleteWeight - 1
			}
		}
		if weight > rebuildMin+t.Size()/rebuildFactor {
			t, owned = t.Clone(), true
		}
	}
	if len(w.dirty) <= MovedMax {
		for k := range w.dirty {
			w.moves = append(w.moves, k.prefix())
		}
	} else {
		w.moved = true // too many for Snapshot.Moved
	}
	var ins *routeTrie
	for k := range w.dirty {
		r, ok := w.routes.best(k)
		p := k.prefix()
		switch {
		case owned && ok:
			t.Insert(p, r.hop)
		case owned:
			t.Delete(p)
		case ok:
			if !same(w.trie, p, r.hop) {
				if ins == nil {
					ins = new(routeTrie)
				}
				ins.Insert(p, r.hop)
			}
		default:
			if _, had := t.Get(p); had {
				t = t.DeletePersist(p)
			}
		}
	}
	if ins != nil {
		t = t.UnionPersist(ins)
	}
	if len(w.dirty) > rebuildMin {
		w.dirty = map[prefixKey]struct{}{}
	} else {
		clear(w.dirty)
	}
	w.trie = t
}

// rebuildMin, rebuildFactor and deleteWeight set when flushRoutes copies
// the trie: when the changed prefixes, a deleted one counting
// deleteWeight, are more than rebuildMin + size/rebuildFactor. Measured
// on a table of a million IPv4 routes (bart.Fast): a copy costs about
// 0.29 µs a prefix, a prefix put in by the union 5 µs, a persistent
// deletion 25 µs (it copies the leaves of the nodes on its path).
const (
	rebuildMin    = 256
	rebuildFactor = 16
	deleteWeight  = 5
)

// same reports whether t maps p to next hop index id.
func same(t *routeTrie, p netip.Prefix, id uint32) bool {
	v, ok := t.Get(p)
	return ok && v == id
}

// manage asks the kernel to resolve, and keep resolved, every gateway of a
// route through one of the fast path's links whose neighbour entry is
// missing or unusable, and withdraws the managed entries no route needs.
func (w *Watcher) manage() {
	if w.cfg.NoManaged {
		return
	}
	now := time.Now()
	needed := map[neighID]bool{}
	gws := maps.Clone(w.gateways)
	var ms []member
	for id := range w.nhRefs { // the gateways of the objects that routes go through
		ms = w.objects[id].members(w.objects, ms[:0])
		for _, m := range ms {
			if h := m.hop; !h.reject && h.gw.IsValid() {
				gws[neighID{addr: h.gw, ifindex: h.ifindex}]++
			}
		}
	}
	for k := range gws {
		l, ok := w.links[k.ifindex]
		if !ok || l.Port < 0 || !l.Up {
			continue
		}
		needed[k] = true
		if n, ok := w.neighs[k]; ok && n.Valid {
			continue
		}
		if t, ok := w.requested[k]; ok && now.Sub(t) < w.cfg.RetryInterval {
			continue
		}
		w.requested[k] = now
		if err := w.requestResolution(k); err != nil && !errors.Is(err, unix.ENETDOWN) {
			w.log.Warn("managed neighbour", "addr", k.addr, "ifindex", k.ifindex, "err", err)
		}
	}
	for k := range w.requested {
		if !needed[k] {
			delete(w.requested, k)
		}
	}
	for k := range w.created {
		if !needed[k] {
			delete(w.created, k)
			if err := w.h.NeighDel(managedNeigh(k)); err != nil && !errors.Is(err, unix.ENOENT) {
				w.log.Debug("remove managed neighbour", "addr", k.addr, "err", err)
			}
		}
	}
}

// requestResolution installs k as a managed neighbour. It never replaces a
// usable entry (our view of the table may lag, e.g. a permanent entry the
// administrator just added); an unusable one (failed, none) is replaced.
func (w *Watcher) requestResolution(k neighID) error {
	err := w.h.NeighAdd(managedNeigh(k))
	if err == nil {
		w.created[k] = true
	}
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	fam := netlink.FAMILY_V6
	if k.addr.Is4() {
		fam = netlink.FAMILY_V4
	}
	list, lerr := w.h.NeighList(int(k.ifindex), fam)
	if lerr != nil {
		return lerr
	}
	for _, n := range list {
		if toAddr(n.IP) != k.addr {
			continue
		}
		if n.State&(usableNUD|netlink.NUD_INCOMPLETE) != 0 || n.FlagsExt&netlink.NTF_EXT_MANAGED != 0 {
			return nil // usable, being resolved, or already managed
		}
		if err := w.h.NeighSet(managedNeigh(k)); err != nil {
			return err
		}
		w.created[k] = true
		return nil
	}
	return nil
}

// removeManaged withdraws every managed neighbour this Watcher installed.
func (w *Watcher) removeManaged() {
	for k := range w.created {
		_ = w.h.NeighDel(managedNeigh(k))
	}
	w.created = nil
}

func managedNeigh(k neighID) *netlink.Neigh {
	fam := netlink.FAMILY_V6
	if k.addr.Is4() {
		fam = netlink.FAMILY_V4
	}
	return &netlink.Neigh{LinkIndex: int(k.ifindex), Family: fam, IP: net.IP(k.addr.AsSlice()),
		State: netlink.NUD_NONE, FlagsExt: netlink.NTF_EXT_MANAGED}
}

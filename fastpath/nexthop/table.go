package nexthop

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/gaissmai/bart"
)

// AdjStatus is the outcome of a next-hop resolution.
type AdjStatus uint8

// Resolution outcomes.
const (
	// AdjNoRoute: no route covers the destination, the route rejects it
	// (blackhole, unreachable, prohibit) or its link is down. Drop and
	// count DropNoRoute.
	AdjNoRoute AdjStatus = iota
	// AdjResolved: the Adjacency is complete; write its Ethernet header and
	// send on its Port.
	AdjResolved
	// AdjIncomplete: the route is known but the next hop's link-layer address
	// is not (yet): pass the packet to the kernel so ARP/ND run. Adjacency
	// has everything except DstMAC.
	AdjIncomplete
	// AdjKernel: the route leaves through an interface the fast path does
	// not own; only the kernel can send it.
	AdjKernel
)

// String names the status.
func (s AdjStatus) String() string {
	switch s {
	case AdjNoRoute:
		return "no-route"
	case AdjResolved:
		return "resolved"
	case AdjIncomplete:
		return "incomplete"
	case AdjKernel:
		return "kernel"
	}
	return "status-?"
}

// Adjacency is how to reach a destination over Ethernet.
type Adjacency struct {
	// DstMAC is the next hop's link-layer address (valid when AdjResolved).
	DstMAC [6]byte
	// SrcMAC is the egress interface's address.
	SrcMAC [6]byte
	// IfIndex is the kernel's index of the egress interface.
	IfIndex int32
	// Port is the fast path's index of the egress interface.
	Port uint16
	// MTU is the egress interface's MTU.
	MTU uint32
	// NextHop is the gateway, or the destination itself on a connected route.
	NextHop netip.Addr
}

// Link describes an interface for NewSnapshot.
type Link struct {
	// Index is the kernel interface index.
	Index int32
	// MAC is the interface's Ethernet address.
	MAC [6]byte
	// MTU is the interface's MTU.
	MTU uint32
	// Port is the fast path's port index for the interface, or -1 when the
	// fast path does not own it.
	Port int
	// Up says whether the interface is operationally up.
	Up bool
	// Multicast marks the link copies to an underlay multicast group
	// (a G-RLOC) leave by when no more specific route than the default
	// covers the group. At most one link should carry it; the first wins.
	Multicast bool
}

// Route describes a route for NewSnapshot.
type Route struct {
	// Prefix is the destination prefix.
	Prefix netip.Prefix
	// Gateway is the next hop; the zero Addr means directly connected.
	Gateway netip.Addr
	// IfIndex is the egress interface.
	IfIndex int32
	// Reject marks blackhole, unreachable and prohibit routes.
	Reject bool
	// Paths are a multipath route's paths, when it has more than one
	// (Gateway and IfIndex are then not read): its destinations spread
	// over them by weight, each to one path (by a hash of the address),
	// among the paths whose links are up.
	Paths []Path
}

// Path is one path of a multipath Route.
type Path struct {
	// Gateway is the next hop; the zero Addr means directly connected.
	Gateway netip.Addr
	// IfIndex is the egress interface.
	IfIndex int32
	// Weight is its share of the destinations against the others' (0
	// counts as 1).
	Weight uint32
}

// Neighbour describes a neighbour-table entry for NewSnapshot.
type Neighbour struct {
	// Addr is the neighbour's IP address.
	Addr netip.Addr
	// IfIndex is the interface it was learned on.
	IfIndex int32
	// MAC is its link-layer address.
	MAC [6]byte
	// Valid says whether MAC may be used (reachable, stale, delay, probe,
	// permanent); false for incomplete and failed entries.
	Valid bool
}

// nextHop is what a route holds in a Snapshot's trie: where it leaves and
// through which gateway. The adjacency is put together when an address is
// resolved, from the link and the neighbour entry of the snapshot, so a
// neighbour or link change leaves the trie (shared by the snapshots the
// Watcher publishes) as it is.
type nextHop struct {
	gw      netip.Addr // the zero Addr: directly connected
	ifindex int32      // the interface; on a route through a set of next hops (set), the set's id
	reject  bool
	set     uint8 // a route through a set of next hops (setObject, setPaths): its id is in ifindex, the rest is unset
}

// The kinds of sets of next hops a route may go through (nextHop.set).
const (
	setObject = 1 // a kernel nexthop object
	setPaths  = 2 // a multipath route's paths (the Watcher's id)
)

// The set's id shares ifindex, which such a route has no use for, so
// that a nextHop stays 32 bytes: a separate field made the heap of a
// watcher holding 1M routes 31 MiB bigger (254.7 against 224 MiB). Its
// kind is one byte, not two flags: a fourth one-byte field made the
// copies of a nextHop out of the trie (bart's Lookup) and into Resolve
// twice as slow (BenchmarkNextHopResolve small/gateway-v4, 50–55 → 104 ns).

// viaObj is the next hop of a route through nexthop object id.
func viaObj(id uint32) nextHop { return nextHop{ifindex: int32(id), set: setObject} }

// viaPaths is the next hop of a multipath route whose paths are the
// Watcher's set id.
func viaPaths(id uint32) nextHop { return nextHop{ifindex: int32(id), set: setPaths} }

// object is the id of the nexthop object h goes through (ok: it does).
func (h nextHop) object() (id uint32, ok bool) { return uint32(h.ifindex), h.set == setObject }

// pathSet is the id of the set of paths of a multipath route h is (ok: it
// is one).
func (h nextHop) pathSet() (id uint32, ok bool) { return uint32(h.ifindex), h.set == setPaths }

// setKey is the exactTable key of the set of next hops h goes through.
func (h nextHop) setKey() lpmKey {
	k := lpmKey{lo: uint64(uint32(h.ifindex))}
	if h.set == setPaths {
		k.lo |= 1 << 32
	}
	return k
}

// member is one next hop of a set (a multipath route's paths, a nexthop
// group's members) and its weight (0 counts as 1): its share of the
// destinations is its weight over the set's.
type member struct {
	hop    nextHop
	weight uint32
}

// span is where a set's members are in a Snapshot's members and bounds.
type span struct{ off, n int32 }

// routeTrie holds the routes of a Snapshot, both families, each prefix's
// next hop as its index in the Snapshot's hopView: an immutable value once
// published (the Watcher derives the next one with persistent updates,
// which copy the paths they change and share the rest). An index, not the
// next hop, so that a million routes through a few next hops hold 4 bytes
// each, not 32 and a pointer, and the GC has less to walk.
type routeTrie = bart.Fast[uint32]

// hopChunk is how many next hops a chunk of a hopView holds.
const hopChunk = 256

// hopView is a Snapshot's next hops, by the index its trie maps a prefix
// to, in chunks that snapshots share while none of their next hops
// changes (hopTable.view).
type hopView []*[hopChunk]nextHop

// hop is index id's next hop.
func (v hopView) hop(id uint32) nextHop { return v[id/hopChunk][id%hopChunk] }

// lpmKey is an address in two words plus its length in bits (and, for
// neighbour keys, the interface index: see neighKey); IPv4 uses lo only.
type lpmKey struct {
	hi, lo uint64
	bits   uint32
}

func (k lpmKey) hash() uint32 {
	h := (k.hi ^ uint64(k.bits)<<56) * 0x9e3779b97f4a7c15
	h ^= k.lo
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
	return uint32(h)
}

// exactTable is an open-addressing (linear probing) map from lpmKey to an
// int32 value, built once and read-only afterwards.
type exactTable struct {
	keys []lpmKey
	vals []int32 // -1: empty
	mask uint32
}

func newExactTable(n int) exactTable {
	size := 4
	for size < 2*n {
		size <<= 1
	}
	t := exactTable{keys: make([]lpmKey, size), vals: make([]int32, size), mask: uint32(size - 1)}
	for i := range t.vals {
		t.vals[i] = -1
	}
	return t
}

// put inserts or replaces k.
func (t *exactTable) put(k lpmKey, v int32) {
	i := k.hash() & t.mask
	for t.vals[i] >= 0 && t.keys[i] != k {
		i = (i + 1) & t.mask
	}
	t.keys[i], t.vals[i] = k, v
}

func (t *exactTable) get(k lpmKey) int32 {
	for i := k.hash() & t.mask; ; i = (i + 1) & t.mask {
		v := t.vals[i]
		if v < 0 || t.keys[i] == k {
			return v
		}
	}
}

// Snapshot is an immutable snapshot of the adjacency table: the routes in
// a trie, the links and the neighbour table, from which Resolve puts
// together an address's adjacency. Build it with NewSnapshot and publish
// it with Table.Store.
type Snapshot struct {
	routes *routeTrie
	hops   hopView // the next hops of routes, by index
	// out is each link's adjacency but for the next hop (status
	// AdjIncomplete when the fast path owns the link and it is up, else
	// final); link finds it by interface index.
	out    []egress
	link   exactTable // ifindex → index into out
	neigh  exactTable // (addr, ifindex) → index into neighs
	neighs []Neighbour
	// sets finds each set of next hops a route may go through (a kernel
	// nexthop object, single or group, or a multipath route's paths) by
	// its setKey, as an index into spans: its members that can carry
	// traffic (their links up) are members[off:off+n], a destination
	// going through the first whose bound (in bounds) is at least the
	// destination's hash (spreadHash): hash-threshold (RFC 2992) over
	// the members' weights, as the kernel spreads a multipath route.
	sets    exactTable
	spans   []span
	members []nextHop
	bounds  []uint32
	// mcast is the adjacency of the Multicast link (mcastOK: there is one,
	// owned by the fast path and up).
	mcast   Adjacency
	mcastOK bool
	// precise says that lost holds every link-layer destination the
	// snapshot stored before this one resolved addresses to and this one
	// may not (see Lost); seq is the order Table.Store published it in.
	precise bool
	lost    []LinkDest
	// movedOK says that the snapshot before this one resolved every
	// address outside the prefixes moved as this one does, but those to a
	// destination lost (see Moved).
	movedOK bool
	moved   []netip.Prefix
	moved4  []prefix4 // the IPv4 ones of moved, for MayMove
	seq     uint64
	// prev is the snapshot Table.Store published before this one, while
	// this one is the latest (the next Store clears it): what OnStore's
	// function compares against (Prev).
	prev *Snapshot
}

// LinkDest is a link-layer destination: an interface and a MAC. A
// Snapshot names those it may no longer resolve
// addresses to: the MAC of a neighbour entry, on its interface, that was
// usable and was deleted, became unusable or changed its MAC.
type LinkDest struct {
	IfIndex int32
	MAC     [6]byte
}

// addrKey splits a into words; bits is 32 or 128 plus, for neighbour keys,
// the interface index (see neighKey).
func addrKey(a netip.Addr) lpmKey {
	if a.Is4() {
		b := a.As4()
		return lpmKey{lo: uint64(binary.BigEndian.Uint32(b[:])), bits: 32}
	}
	b := a.As16()
	return lpmKey{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:]), bits: 128}
}

func neighKey(a netip.Addr, ifindex int32) lpmKey {
	k := addrKey(a)
	k.bits |= uint32(ifindex) << 8
	return k
}

// NewSnapshot builds a snapshot from the kernel's links, routes and
// neighbours. Routes with an invalid prefix are ignored; for duplicate
// prefixes the last one wins. Routes whose interface is not in links resolve
// as AdjKernel.
func NewSnapshot(links []Link, routes []Route, neighs []Neighbour) *Snapshot {
	t, ht := new(routeTrie), newHopTable()
	paths := map[uint32][]member{}
	for _, r := range routes {
		if !r.Prefix.IsValid() {
			continue
		}
		h := r.hop()
		if len(r.Paths) > 1 && !r.Reject {
			id := uint32(len(paths) + 1)
			for _, p := range r.Paths {
				paths[id] = append(paths[id], member{hop: nextHop{gw: p.Gateway.Unmap(), ifindex: p.IfIndex}, weight: p.Weight})
			}
			h = viaPaths(id)
		}
		t.Insert(r.Prefix.Masked(), ht.hold(h))
	}
	return newSnapshot(links, t, ht.view(), neighs, nil, paths)
}

// hop is what r's prefix maps to in a trie.
func (r Route) hop() nextHop {
	if r.Reject {
		return nextHop{reject: true}
	}
	return nextHop{gw: r.Gateway.Unmap(), ifindex: r.IfIndex}
}

// newSnapshot makes a snapshot of routes and their next hops (which it
// shares, and nobody may change any more), links and neighs (which it copies), the kernel's
// nexthop objects objs and the multipath routes' sets of paths (by the
// Watcher's id). Of two links with one index, the first counts.
func newSnapshot(links []Link, routes *routeTrie, hops hopView, neighs []Neighbour, objs map[uint32]nhObject, paths map[uint32][]member) *Snapshot {
	s := &Snapshot{routes: routes, hops: hops, out: make([]egress, len(links)), link: newExactTable(len(links)),
		neighs: slices.Clone(neighs), neigh: newExactTable(len(neighs)), sets: newExactTable(len(objs) + len(paths))}
	for i := len(links) - 1; i >= 0; i-- {
		s.out[i] = egressOf(links[i])
		s.link.put(linkKey(links[i].Index), int32(i))
	}
	var ms []member
	for id, o := range objs {
		ms = o.members(objs, ms[:0])
		s.addSet(viaObj(id).setKey(), ms)
	}
	for id, ps := range paths {
		s.addSet(viaPaths(id).setKey(), ps)
	}
	for i, n := range s.neighs {
		if n.Addr.IsValid() {
			s.neigh.put(neighKey(n.Addr.Unmap(), n.IfIndex), int32(i))
		}
	}
	for _, l := range links {
		if l.Multicast && l.Up && l.Port >= 0 && l.Port <= 0xffff {
			s.mcast = Adjacency{SrcMAC: l.MAC, IfIndex: l.Index, Port: uint16(l.Port), MTU: l.MTU}
			s.mcastOK = true
			break
		}
	}
	return s
}

// members appends the next hops that o stands for to ms: its own, or a
// group's members that objs holds (a group of groups is not one the
// kernel makes), with their weights.
func (o nhObject) members(objs map[uint32]nhObject, ms []member) []member {
	if o.group == nil {
		return append(ms, member{hop: o.hop, weight: 1})
	}
	for _, g := range o.group {
		if m, ok := objs[g.id]; ok && m.group == nil {
			ms = append(ms, member{hop: m.hop, weight: g.weight})
		}
	}
	return ms
}

// addSet adds the set of next hops ms under key k: the members whose
// links are up, with the bounds of their shares of the hash space; when
// none is, the first member alone (through which the set then resolves as
// AdjNoRoute or AdjKernel). A set without members is left out (a route
// through it resolves as AdjKernel, as one through an object the snapshot
// lacks).
func (s *Snapshot) addSet(k lpmKey, ms []member) {
	if len(ms) == 0 {
		return
	}
	var total uint64
	for _, m := range ms {
		if s.up(m.hop) {
			total += uint64(max(m.weight, 1))
		}
	}
	off := len(s.members)
	if total == 0 {
		s.members, s.bounds = append(s.members, ms[0].hop), append(s.bounds, math.MaxUint32)
	} else {
		var cum uint64
		for _, m := range ms {
			if s.up(m.hop) {
				cum += uint64(max(m.weight, 1))
				s.members, s.bounds = append(s.members, m.hop), append(s.bounds, uint32(cum<<31/total-1))
			}
		}
	}
	s.sets.put(k, int32(len(s.spans)))
	s.spans = append(s.spans, span{off: int32(off), n: int32(len(s.members) - off)})
}

// up reports whether next hop h may carry traffic: a blackhole, or a next
// hop through a link of the snapshot's that is up (the kernel marks the
// others of a multipath route dead, and sends nothing).
func (s *Snapshot) up(h nextHop) bool {
	if h.reject {
		return true
	}
	i := s.link.get(linkKey(h.ifindex))
	return i >= 0 && s.out[i].up
}

// viaObject is the next hop of route r towards dst: its own, or that of
// its set of next hops (a nexthop object, a multipath route) which dst's
// hash picks. A route through a set the snapshot lacks resolves as
// AdjKernel (the kernel knows it).
func (s *Snapshot) viaObject(r nextHop, dst netip.Addr) nextHop {
	if r.set == 0 {
		return r
	}
	return s.viaSet(r, dst)
}

// viaSet is viaObject of a route through a set of next hops.
func (s *Snapshot) viaSet(r nextHop, dst netip.Addr) nextHop {
	i := s.sets.get(r.setKey())
	if i < 0 {
		return nextHop{}
	}
	sp := s.spans[i]
	h, bs := spreadHash(dst), s.bounds[sp.off:sp.off+sp.n-1] // the last member takes what the others leave
	for j, b := range bs {
		if h <= b {
			return s.members[int(sp.off)+j]
		}
	}
	return s.members[sp.off+sp.n-1]
}

// spreadHash is the 31-bit hash of a destination that picks its member of
// a set of next hops. The fast path's source address is the same for
// every packet of a family, so this spreads by destination as the
// kernel's default policy (net.ipv4.fib_multipath_hash_policy 0: source
// and destination addresses) does for one source; the kernel's own hash
// is not reproduced: a flow the kernel offload takes over may change path.
func spreadHash(dst netip.Addr) uint32 {
	b := dst.As16()
	h := (binary.BigEndian.Uint64(b[:8])*0x9e3779b97f4a7c15 ^ binary.BigEndian.Uint64(b[8:])) * 0xbf58476d1ce4e5b9
	return uint32(h >> 33)
}

// linkKey is the exactTable key of an interface index (the only keys of
// their table).
func linkKey(idx int32) lpmKey { return lpmKey{lo: uint64(uint32(idx))} }

// egress is a route's adjacency through a link, up to the next hop.
type egress struct {
	adj Adjacency
	st  AdjStatus
	up  bool // the link is up
}

// egressOf is the egress through l: AdjIncomplete (all but the next hop)
// when the fast path owns l and l is up.
func egressOf(l Link) egress {
	switch {
	case l.Port < 0 || l.Port > 0xffff:
		return egress{Adjacency{IfIndex: l.Index}, AdjKernel, l.Up}
	case !l.Up:
		return egress{Adjacency{}, AdjNoRoute, false}
	}
	return egress{Adjacency{SrcMAC: l.MAC, IfIndex: l.Index, Port: uint16(l.Port), MTU: l.MTU}, AdjIncomplete, true}
}

// egress is the adjacency of route r up to the next hop's MAC: its status
// is AdjIncomplete when r leaves through a link of the fast path's that is
// up, and otherwise final.
func (s *Snapshot) egress(r nextHop) (Adjacency, AdjStatus) {
	if r.reject {
		return Adjacency{}, AdjNoRoute
	}
	i := s.link.get(linkKey(r.ifindex))
	if i < 0 {
		return Adjacency{IfIndex: r.ifindex}, AdjKernel
	}
	return s.out[i].adj, s.out[i].st
}

// Resolve finds how to reach dst: the longest matching route, its gateway's
// (or, on a connected route, dst's own) neighbour entry. It neither locks
// nor allocates.
func (s *Snapshot) Resolve(dst netip.Addr) (Adjacency, AdjStatus) {
	dst = dst.Unmap()
	if !dst.Is4() && !dst.Is6() {
		return Adjacency{}, AdjNoRoute
	}
	if dst.IsMulticast() {
		return s.resolveMulticast(dst)
	}
	id, ok := s.routes.Lookup(dst)
	if !ok {
		return Adjacency{}, AdjNoRoute
	}
	r := s.viaObject(s.hops.hop(id), dst)
	adj, st := s.egress(r)
	if st != AdjIncomplete {
		return adj, st
	}
	adj.NextHop = dst
	if r.gw.IsValid() {
		adj.NextHop = r.gw
	}
	if n := s.neigh.get(neighKey(adj.NextHop, adj.IfIndex)); n >= 0 && s.neighs[n].Valid {
		adj.DstMAC = s.neighs[n].MAC
		return adj, AdjResolved
	}
	return adj, AdjIncomplete
}

// resolveMulticast resolves an underlay multicast group (a G-RLOC): no
// neighbour is involved, the Ethernet destination is the group's mapped
// MAC address (RFC 1112 §6.4, RFC 2464 §7). The egress is the link of a
// route covering the group more specifically than the default route; else
// the Multicast link; else the default route's link.
func (s *Snapshot) resolveMulticast(dst netip.Addr) (Adjacency, AdjStatus) {
	p, id, ok := s.routes.LookupPrefixLPM(netip.PrefixFrom(dst, dst.BitLen()))
	if !ok || (p.Bits() == 0 && s.mcastOK) {
		if !s.mcastOK {
			return Adjacency{}, AdjNoRoute
		}
		adj := s.mcast
		adj.NextHop, adj.DstMAC = dst, MulticastMAC(dst)
		return adj, AdjResolved
	}
	adj, st := s.egress(s.viaObject(s.hops.hop(id), dst))
	if st != AdjIncomplete {
		return adj, st
	}
	adj.NextHop, adj.DstMAC = dst, MulticastMAC(dst)
	return adj, AdjResolved
}

// MulticastMAC is the Ethernet address a multicast IP group maps to:
// 01:00:5e and the low 23 bits of an IPv4 group (RFC 1112 §6.4), 33:33 and
// the low 32 bits of an IPv6 group (RFC 2464 §7). Other addresses give the
// zero MAC.
func MulticastMAC(g netip.Addr) [6]byte {
	g = g.Unmap()
	switch {
	case g.Is4():
		b := g.As4()
		return [6]byte{0x01, 0x00, 0x5e, b[1] & 0x7f, b[2], b[3]}
	case g.Is6():
		b := g.As16()
		return [6]byte{0x33, 0x33, b[12], b[13], b[14], b[15]}
	}
	return [6]byte{}
}

// Routes returns the number of routes in the snapshot.
func (s *Snapshot) Routes() int { return s.routes.Size() }

// Neighbours returns the number of neighbour entries in the snapshot.
func (s *Snapshot) Neighbours() int { return len(s.neighs) }

// KeepsResolved reports whether s resolves every address that the snapshot
// stored before it resolved (AdjResolved) to the same adjacency. The
// Watcher says so of a snapshot it stored for neighbour entries alone that
// were absent or unusable before (a host's first ARP or ND entry, a
// resolution that completed) or that it dropped while unusable: resolution
// reads no other neighbour entry. Holders of copies of resolved adjacencies
// (the fast path's kernel offload) may then keep them. It is false for a
// snapshot of NewSnapshot, which does not know what came before.
func (s *Snapshot) KeepsResolved() bool { return s != nil && s.precise && len(s.lost) == 0 }

// Lost returns, with true, the link-layer destinations that the snapshot
// stored before s resolved addresses to and s may not, when s resolves
// every other address that one resolved to the same adjacency: the
// Watcher says so of a snapshot it stored for neighbour entries alone (a
// host that went, a MAC that changed). A holder of copies of resolved
// adjacencies then drops only those to a Lost destination (the same
// interface index and destination MAC). It returns false when s may change
// any resolved adjacency (a route, a link, or a snapshot of NewSnapshot).
// KeepsResolved is Lost with true and none lost.
func (s *Snapshot) Lost() ([]LinkDest, bool) {
	if s == nil || !s.precise {
		return nil, false
	}
	return s.lost, true
}

// MarkLost says, of a snapshot not stored yet, that it resolves every
// address the snapshot to be stored before it resolved to the same
// adjacency, but those to the destinations lost (Lost reports them, and
// with none KeepsResolved is true). The Watcher marks its snapshots so;
// another source of snapshots may, when it knows what changed. It returns
// s.
func (s *Snapshot) MarkLost(lost []LinkDest) *Snapshot {
	s.precise = true
	s.lost = slices.Clone(lost)
	slices.SortFunc(s.lost, func(a, b LinkDest) int {
		return cmp.Or(cmp.Compare(a.IfIndex, b.IfIndex), bytes.Compare(a.MAC[:], b.MAC[:]))
	})
	s.lost = slices.Compact(s.lost)
	return s
}

// MovedMax is the most prefixes MarkMoved takes: a change of more routes
// is one that may change any adjacency (checking an address against more
// would cost a holder more than resolving it again).
const MovedMax = 16

// MarkMoved says, of a snapshot not stored yet, that it resolves every
// address the snapshot to be stored before it resolved, and that no prefix
// of moved covers, to the same adjacency, but those to the destinations
// lost: what a change of the routes of those prefixes alone does, with
// the neighbour entries of lost gone or changed (Moved reports them). It
// does nothing with more than MovedMax prefixes. Unlike MarkLost it does
// not make Lost precise: a holder that checks Lost alone gives every
// adjacency a second look. It returns s.
func (s *Snapshot) MarkMoved(moved []netip.Prefix, lost []LinkDest) *Snapshot {
	if len(moved) > MovedMax {
		return s
	}
	s.MarkLost(lost)
	s.precise, s.movedOK = len(moved) == 0, true
	s.moved, s.moved4 = make([]netip.Prefix, len(moved)), nil
	for i, p := range moved {
		s.moved[i] = p.Masked()
		if p.Addr().Is4() {
			a := p.Masked().Addr().As4()
			s.moved4 = append(s.moved4, prefix4{net: binary.BigEndian.Uint32(a[:]), mask: ^uint32(0) << (32 - p.Bits())})
		}
	}
	return s
}

// LostVia reports whether s says it lost link-layer destination via: its
// neighbour entry went or changed since the snapshot stored before s
// (Moved, Lost). False when s does not say what it lost.
func (s *Snapshot) LostVia(via LinkDest) bool {
	return s != nil && (s.precise || s.movedOK) && slices.Contains(s.lost, via)
}

// prefix4 is an IPv4 prefix as the address's bits and the mask's.
type prefix4 struct{ net, mask uint32 }

// MayMove reports whether a route of s may take dst elsewhere than the
// snapshot stored before it did: always, unless s says what moved (Moved)
// and no prefix moved covers dst. Whether the neighbour entry dst resolved
// to is lost is LostVia's to say. It neither locks nor allocates: a holder
// of resolved adjacencies asks both of each before keeping it, and looks
// up again those it may move.
func (s *Snapshot) MayMove(dst netip.Addr) bool {
	if s == nil || !s.precise && !s.movedOK {
		return true
	}
	if len(s.moved) == 0 {
		return false
	}
	dst = dst.Unmap()
	if dst.Is4() {
		a := dst.As4()
		k := binary.BigEndian.Uint32(a[:])
		for _, p := range s.moved4 {
			if k&p.mask == p.net {
				return true
			}
		}
		return false
	}
	for _, p := range s.moved {
		if p.Contains(dst) {
			return true
		}
	}
	return false
}

// Moved returns, with true, the prefixes whose routes changed since the
// snapshot stored before s and the link-layer destinations lost since
// (the neighbour entries that went or changed), when s resolves every
// other address as that one did: an address that no prefix of moved
// covers, and that resolved to a destination not among lost, resolves to
// the same adjacency. The Watcher says so of a snapshot it stored for at
// most MovedMax routes and any neighbour entries; a snapshot for which
// Lost reports true has moved nothing. It returns false when s may change
// any resolved adjacency (a link, a nexthop object, more routes, or a
// snapshot of NewSnapshot).
func (s *Snapshot) Moved() (moved []netip.Prefix, lost []LinkDest, ok bool) {
	if s == nil || !s.precise && !s.movedOK {
		return nil, nil, false
	}
	return s.moved, s.lost, true
}

// Seq is the order in which Table.Store published s: 1 for a table's
// first, higher for each later one; 0 for a snapshot not stored. A holder
// of a copy of an adjacency made from s can tell by it whether the copy
// predates a snapshot that lost its destination.
func (s *Snapshot) Seq() uint64 {
	if s == nil {
		return 0
	}
	return s.seq
}

// Prev is the snapshot the Table published just before s, while s is the
// Table's latest (nil otherwise, and for a Table's first): for OnStore's
// function, which may tell by comparing the two which resolved adjacencies
// a snapshot that may change any of them (Lost reports false) changed.
// Call it from the goroutine that stores snapshots.
func (s *Snapshot) Prev() *Snapshot {
	if s == nil {
		return nil
	}
	return s.prev
}

// SameAdjacency reports whether s resolves dst as p (not nil) does: the
// same status and the same adjacency, the gateway's address included.
func (s *Snapshot) SameAdjacency(p *Snapshot, dst netip.Addr) bool {
	a, st := s.Resolve(dst)
	b, pst := p.Resolve(dst)
	return st == pst && a == b
}

// Table publishes Snapshots: the slow path Stores a new
// snapshot whenever the kernel's tables change, workers Resolve against the
// current one without locking (read-copy-update through an atomic pointer).
type Table struct {
	p       atomic.Pointer[Snapshot]
	seq     atomic.Uint64
	onStore atomic.Pointer[func(*Snapshot)]
}

// Store gives s its Seq and publishes it; readers see it from their next
// Resolve. s remembers the snapshot it replaces (Prev) until the next
// Store. The function set by OnStore runs after it, in the caller's
// goroutine. Store each snapshot once, from one goroutine at a time.
func (t *Table) Store(s *Snapshot) {
	if s != nil {
		s.seq = t.seq.Add(1)
	}
	old := t.p.Swap(s)
	if old != nil {
		old.prev = nil // only the latest holds one: no chain of past snapshots
	}
	if s != nil && s != old {
		s.prev = old
	}
	if fn := t.onStore.Load(); fn != nil && !s.KeepsResolved() {
		(*fn)(s)
	}
}

// OnStore sets a function that every later Store calls with the new
// snapshot once it is published, unless that snapshot KeepsResolved (nil:
// none): for holders of copies of resolved adjacencies, such as the fast
// path's kernel offload (fastpath.Offload.NextHopsChanged), which must drop
// those the snapshot may have changed (Snapshot.Lost).
func (t *Table) OnStore(fn func(*Snapshot)) {
	if fn == nil {
		t.onStore.Store(nil)
		return
	}
	t.onStore.Store(&fn)
}

// Load returns the current snapshot, or nil before the first Store.
func (t *Table) Load() *Snapshot { return t.p.Load() }

// Resolve resolves dst in the current snapshot (AdjNoRoute before the first
// Store).
func (t *Table) Resolve(dst netip.Addr) (Adjacency, AdjStatus) {
	s := t.p.Load()
	if s == nil {
		return Adjacency{}, AdjNoRoute
	}
	return s.Resolve(dst)
}

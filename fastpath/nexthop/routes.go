package nexthop

import (
	"encoding/binary"
	"iter"
	"net/netip"
	"slices"
)

// The Watcher's copy of the kernel's main table is the biggest thing it
// holds when the kernel holds an Internet table: a map of a million
// prefixes. Kept as map[netip.Prefix][]routeAlt it took 173 MiB at 1M
// IPv4 routes (a 32-byte key holding a pointer, a slice header, and a
// 48-byte allocation per prefix), and the GC walked every one of them.
// routeTable keeps it in 24 bytes a slot without a pointer: an IPv4
// prefix in 8 (key4), the route's priority and TOS, and its next hop as an
// index in a hopTable, since a million routes go through a handful of next
// hops.

// prefixKey is a prefix as a map key that holds no pointer: the address
// in two words (IPv4's in lo) and its length, plus 256 for IPv6.
type prefixKey struct {
	hi, lo uint64
	bits   uint16
}

func keyOf(p netip.Prefix) prefixKey {
	a := addrKey(p.Addr())
	k := prefixKey{hi: a.hi, lo: a.lo, bits: uint16(p.Bits())}
	if a.bits == 128 {
		k.bits += 256
	}
	return k
}

// prefix is the prefix k is the key of.
func (k prefixKey) prefix() netip.Prefix {
	if k.bits < 256 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(k.lo))
		return netip.PrefixFrom(netip.AddrFrom4(b), int(k.bits))
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return netip.PrefixFrom(netip.AddrFrom16(b), int(k.bits-256))
}

// routeRec is one of a prefix's routes in the main table: the kernel keeps
// one per (priority, TOS), and the one with the lowest priority, then TOS,
// is the prefix's route in the snapshots. hop is its next hop's index in
// the Watcher's hopTable.
type routeRec struct {
	priority uint32
	hop      uint32
	tos      uint8
}

// same reports whether r and o are the routes of one (priority, TOS).
func (r routeRec) same(o routeRec) bool { return r.priority == o.priority && r.tos == o.tos }

// better reports whether r wins over o.
func (r routeRec) better(o routeRec) bool {
	return r.priority < o.priority || (r.priority == o.priority && r.tos < o.tos)
}

// routeMap holds a prefix's first route in first, and its others, for
// the few prefixes that have several (a route of another metric or TOS),
// in more. K is the prefix as a key: routeTable keeps IPv4 prefixes in 8
// bytes.
type routeMap[K comparable] struct {
	first map[K]routeRec
	more  map[K][]routeRec
}

func newRouteMap[K comparable]() routeMap[K] {
	return routeMap[K]{first: map[K]routeRec{}, more: map[K][]routeRec{}}
}

func (t *routeMap[K]) get(k K, r routeRec) (routeRec, bool) {
	if f, ok := t.first[k]; !ok || f.same(r) {
		return f, ok
	}
	if i := slices.IndexFunc(t.more[k], r.same); i >= 0 {
		return t.more[k][i], true
	}
	return routeRec{}, false
}

func (t *routeMap[K]) put(k K, r routeRec) (old routeRec, had bool) {
	f, ok := t.first[k]
	switch {
	case !ok:
		t.first[k] = r
		return routeRec{}, false
	case f.same(r):
		t.first[k] = r
		return f, true
	}
	rs := t.more[k]
	if i := slices.IndexFunc(rs, r.same); i >= 0 {
		old, rs[i] = rs[i], r
		return old, true
	}
	t.more[k] = append(rs, r)
	return routeRec{}, false
}

func (t *routeMap[K]) drop(k K, r routeRec) (old routeRec, had bool) {
	f, ok := t.first[k]
	if !ok {
		return routeRec{}, false
	}
	rs := t.more[k]
	if f.same(r) {
		if len(rs) == 0 {
			delete(t.first, k)
			return f, true
		}
		t.first[k], rs = rs[len(rs)-1], rs[:len(rs)-1]
		old, had = f, true
	} else if i := slices.IndexFunc(rs, r.same); i >= 0 {
		old, had = rs[i], true
		rs = slices.Delete(rs, i, i+1)
	} else {
		return routeRec{}, false
	}
	if len(rs) == 0 {
		delete(t.more, k)
	} else {
		t.more[k] = rs
	}
	return old, had
}

func (t *routeMap[K]) best(k K) (routeRec, bool) {
	b, ok := t.first[k]
	if ok {
		for _, r := range t.more[k] {
			if r.better(b) {
				b = r
			}
		}
	}
	return b, ok
}

// list appends k's routes to rs, its first route first.
func (t *routeMap[K]) list(k K, rs []routeRec) []routeRec {
	if f, ok := t.first[k]; ok {
		rs = append(append(rs, f), t.more[k]...)
	}
	return rs
}

func (t *routeMap[K]) bests(key func(K) prefixKey, yield func(prefixKey, routeRec) bool) bool {
	for k, r := range t.first {
		if len(t.more) > 0 {
			r, _ = t.best(k)
		}
		if !yield(key(k), r) {
			return false
		}
	}
	return true
}

func (t *routeMap[K]) all(key func(K) prefixKey, yield func(prefixKey, routeRec) bool) bool {
	for k, r := range t.first {
		if !yield(key(k), r) {
			return false
		}
	}
	for k, rs := range t.more {
		for _, r := range rs {
			if !yield(key(k), r) {
				return false
			}
		}
	}
	return true
}

// routeTable is the main table's routes, by prefix: IPv4 prefixes in 8
// bytes (key4), IPv6 ones in a prefixKey.
type routeTable struct {
	v4 routeMap[uint64]
	v6 routeMap[prefixKey]
}

func newRouteTable() routeTable {
	return routeTable{v4: newRouteMap[uint64](), v6: newRouteMap[prefixKey]()}
}

// key4 is IPv4 prefix k in 8 bytes: its address, then its length.
func key4(k prefixKey) uint64 { return k.lo<<8 | uint64(k.bits) }

// unkey4 is the prefixKey of key4's k.
func unkey4(k uint64) prefixKey { return prefixKey{lo: k >> 8, bits: uint16(k & 0xff)} }

func (k prefixKey) is4() bool { return k.bits < 256 }

// prefixes is how many prefixes have routes.
func (t *routeTable) prefixes() int { return len(t.v4.first) + len(t.v6.first) }

// get is k's route of r's priority and TOS.
func (t *routeTable) get(k prefixKey, r routeRec) (routeRec, bool) {
	if k.is4() {
		return t.v4.get(key4(k), r)
	}
	return t.v6.get(k, r)
}

// put adds r to k's routes, or replaces the one of its priority and TOS
// (old, when had).
func (t *routeTable) put(k prefixKey, r routeRec) (old routeRec, had bool) {
	if k.is4() {
		return t.v4.put(key4(k), r)
	}
	return t.v6.put(k, r)
}

// drop deletes k's route of r's priority and TOS (old, when had).
func (t *routeTable) drop(k prefixKey, r routeRec) (old routeRec, had bool) {
	if k.is4() {
		return t.v4.drop(key4(k), r)
	}
	return t.v6.drop(k, r)
}

// best is k's best route (ok: k has routes).
func (t *routeTable) best(k prefixKey) (routeRec, bool) {
	if k.is4() {
		return t.v4.best(key4(k))
	}
	return t.v6.best(k)
}

// list appends k's routes to rs, its first route first.
func (t *routeTable) list(k prefixKey, rs []routeRec) []routeRec {
	if k.is4() {
		return t.v4.list(key4(k), rs)
	}
	return t.v6.list(k, rs)
}

// all is every route, by prefix, in no order. The table must not change
// while it runs.
func (t *routeTable) all() iter.Seq2[prefixKey, routeRec] {
	return func(yield func(prefixKey, routeRec) bool) {
		_ = t.v4.all(unkey4, yield) && t.v6.all(func(k prefixKey) prefixKey { return k }, yield)
	}
}

// bests is every prefix's best route, in no order. The table must not
// change while it runs.
func (t *routeTable) bests() iter.Seq2[prefixKey, routeRec] {
	return func(yield func(prefixKey, routeRec) bool) {
		_ = t.v4.bests(unkey4, yield) && t.v6.bests(func(k prefixKey) prefixKey { return k }, yield)
	}
}

// hopTable interns the next hops of routes: one index per distinct next
// hop, counted by the routes through it, and reused once none is. The
// snapshots' tries map prefixes to these indexes; view gives a snapshot
// the next hops they stand for.
type hopTable struct {
	hops    []nextHop
	refs    []int32
	ids     map[nextHop]uint32
	free    []uint32
	pub     hopView         // the last view
	changed map[uint32]bool // the chunks of hops whose indexes took another next hop since
}

func newHopTable() hopTable { return hopTable{ids: map[nextHop]uint32{}, changed: map[uint32]bool{}} }

// hold is h's index, counted once more.
func (t *hopTable) hold(h nextHop) uint32 {
	id, ok := t.ids[h]
	if !ok {
		if n := len(t.free); n > 0 {
			id, t.free = t.free[n-1], t.free[:n-1]
			t.hops[id] = h
		} else {
			id = uint32(len(t.hops))
			t.hops, t.refs = append(t.hops, h), append(t.refs, 0)
		}
		t.ids[h] = id
		t.changed[id/hopChunk] = true
	}
	t.refs[id]++
	return id
}

// release counts a route less through index id, freeing it at none. The
// index keeps its next hop until another takes it (views of snapshots
// whose tries may still hold it share the chunk).
func (t *hopTable) release(id uint32) {
	if t.refs[id]--; t.refs[id] == 0 {
		delete(t.ids, t.hops[id])
		t.free = append(t.free, id)
	}
}

// hop is index id's next hop.
func (t *hopTable) hop(id uint32) nextHop { return t.hops[id] }

// view is the next hops by index as they are now, for a snapshot: the
// last view's chunks where no index took another next hop since, copies
// of the others (the last view itself when none did).
func (t *hopTable) view() hopView {
	if len(t.changed) == 0 && len(t.pub)*hopChunk >= len(t.hops) {
		return t.pub
	}
	v := make(hopView, (len(t.hops)+hopChunk-1)/hopChunk)
	copy(v, t.pub)
	for c := range t.changed {
		ch := new([hopChunk]nextHop)
		copy(ch[:], t.hops[c*hopChunk:])
		v[c] = ch
	}
	clear(t.changed)
	t.pub = v
	return v
}

package fastpath

import (
	"net/netip"

	"github.com/rloc-router/rloc/cache"
)

// liveIndex is an encap table's index of the entries the workers put, less
// those swept or deleted since: what Offload.MapChanged looks through. The
// entries are bucketed by instance-ID and the /24 (IPv4) or /48 (IPv6)
// that holds their destination, so that a change of a prefix at least that
// long looks at one bucket; a shorter one looks at the buckets it overlaps.
type liveIndex struct {
	n       int
	buckets map[liveNet]map[offloadKey]struct{}
}

// livePending is one worker's record of the entries it put since the
// slow path last moved them into the live indexes (Offload.drainLive). The
// worker writes it while it holds Offload.puts' read lock and the slow
// path reads it while it holds the write lock, so the worker neither locks
// nor allocates for it. A worker that puts more between two drains sets
// over, and the next map-cache batch starts an epoch.
type livePending struct {
	keys [livePendingMax]pendingKey
	n    int
	over bool
}

// livePendingMax is the puts a livePending holds.
const livePendingMax = 2048

// pendingKey is a put a livePending holds: the table, its instance-ID and
// the entry's key.
type pendingKey struct {
	t   *offloadTable
	iid uint32
	k   offloadKey
}

// liveNet is a bucket of a liveIndex.
type liveNet struct {
	iid uint32
	net netip.Prefix
}

// The length of a liveIndex bucket's prefix, per address family.
const liveBits4, liveBits6 = 24, 48

// netOf is the bucket prefix that holds a.
func netOf(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return netip.PrefixFrom(a, liveBits4).Masked()
	}
	return netip.PrefixFrom(a, liveBits6).Masked()
}

// add records entry k of instance-ID iid.
func (x *liveIndex) add(iid uint32, k offloadKey) {
	if x.buckets == nil {
		x.buckets = make(map[liveNet]map[offloadKey]struct{})
	}
	n := liveNet{iid, netOf(k.dst)}
	b := x.buckets[n]
	if b == nil {
		b = make(map[offloadKey]struct{})
		x.buckets[n] = b
	}
	if _, ok := b[k]; !ok {
		b[k] = struct{}{}
		x.n++
	}
}

// remove forgets entry k of instance-ID iid.
func (x *liveIndex) remove(iid uint32, k offloadKey) {
	n := liveNet{iid, netOf(k.dst)}
	b := x.buckets[n]
	if _, ok := b[k]; !ok {
		return
	}
	delete(b, k)
	x.n--
	if len(b) == 0 {
		delete(x.buckets, n)
	}
}

// covered calls fn with each entry whose destination IP key p covers (its
// instance-ID, its prefix). It adds the key and the buckets and entries it
// looks at to *work and stops, reporting false, once *work exceeds limit.
func (x *liveIndex) covered(p cache.Key, work *int, limit int, fn func(k offloadKey)) bool {
	if *work++; *work > limit {
		return false
	}
	visit := func(b map[offloadKey]struct{}) bool {
		for k := range b {
			if *work++; *work > limit {
				return false
			}
			if p.Prefix.Contains(k.dst) {
				fn(k)
			}
		}
		return true
	}
	bits := liveBits4
	if p.Prefix.Addr().Is6() {
		bits = liveBits6
	}
	if p.Prefix.Bits() >= bits {
		return visit(x.buckets[liveNet{p.IID, netOf(p.Prefix.Addr())}])
	}
	for n, b := range x.buckets {
		if *work++; *work > limit {
			return false
		}
		if n.iid == p.IID && p.Prefix.Overlaps(n.net) && !visit(b) {
			return false
		}
	}
	return true
}

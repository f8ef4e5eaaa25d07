package fastpath

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"github.com/rloc-router/rloc/cache"
)

// memo4Slot is one remembered IPv4 lookup: key packs the memo generation
// (top 8 bits), the instance-ID (24 bits) and the address (low 32 bits).
type memo4Slot struct {
	key uint64 // 0 never valid (generation 0 is never current)
	e   *cache.Entry
}

// memo4Set is four IPv4 slots, one 64-byte cache line, most recent first.
type memo4Set [4]memo4Slot

// flowSlot is one remembered forwarding decision of the flow memo: IPv4
// packets to the destination of memo4 key key (memo generation,
// instance-ID, address) whose flow hash falls in selection bucket bkt
// (cache.SelectBucket) were encapsulated through the worker's next-hop memo
// entry hops[hop] while that entry held fill serial ser (nextHop.ser).
type flowSlot struct {
	key uint64 // 0 never valid
	ser uint32
	hop uint16 // an index of hopMemo
	bkt uint8
	off uint8 // the worker's offload tag (Worker.oet) when the flow was offered to the kernel (Offload); 0 not offered
}

// flowSet is four flow slots, one 64-byte cache line, most recent first.
type flowSet [4]flowSlot

// flow6Slot is flowSlot for an IPv6 destination: the address whole (hi,
// lo: its two halves) and tag, the memo generation (top 8 bits) and the
// instance-ID (24 bits).
type flow6Slot struct {
	hi, lo uint64
	tag    uint32 // 0 never valid (generation 0 is never current)
	ser    uint32
	hop    uint16
	bkt    uint8
	off    uint8
	_      [4]byte
}

// flow6Set is two IPv6 flow slots, one 64-byte cache line (the size of a
// flowSet, in whose table it lives: flow6At), most recent first.
type flow6Set [2]flow6Slot

var (
	_ [unsafe.Sizeof(flow6Set{}) - unsafe.Sizeof(flowSet{})]byte
	_ [unsafe.Sizeof(flowSet{}) - unsafe.Sizeof(flow6Set{})]byte
)

// memo6Slot is one remembered IPv6 lookup.
type memo6Slot struct {
	hi, lo uint64 // the address
	iid    uint32
	gen    uint32 // memo generation the slot was filled in; 0 never valid
	e      *cache.Entry
}

// memo6Set is two IPv6 slots, one 64-byte cache line, most recent first.
type memo6Set [2]memo6Slot

// lookupMemo is a worker's memo in front of cache.Lookup: set-associative
// tables (IPv4: four ways, IPv6: two, one cache line per set) from the exact
// destination (instance-ID, address) to the entry the longest-prefix match
// returned for it, so a hit costs one cache line instead of a trie walk.
// It only holds results of the cache generation it was filled in
// (cache.Generation): sync, called once per batch, starts a new memo
// generation when the cache published a change, which invalidates every slot
// at once without clearing the tables (they are cleared when the 8-bit
// generation wraps, once per 255 changes). Misses (no entry) are not
// remembered, so they reach the cache and the hold queue as before.
//
// Activity: the lookup that fills a slot marks the entry (through the
// worker's cache.Reader, whose marks go to the worker's own bitmap; Step
// flushes them once per batch), and a hit on a slot of the current memo
// generation marks nothing, not even reading the entry: the memo generation
// also moves when the cache's writer folds the marks (cache.Folds), so a
// slot of the current generation was marked in the current fold interval.
// A generation begun by a fold alone keeps the previous one's slots (prev):
// a hit on such a slot marks the entry and moves the slot to the current
// generation, so a busy entry is marked once per fold interval per worker,
// not once per packet. Marks of hits after a fold that happens during a step
// wait for the next step's sync. Instance-IDs are 24 bits (RFC 9300 §5.3);
// larger ones bypass the memo. Belongs to the worker's goroutine.
//
// The flow memo (flows) goes one step further for unicast destinations:
// from the memo key (for IPv6, the address and a tag) and the flow's
// selection bucket to the
// next-hop memo entry the packet was last encapsulated through, so that a
// hit skips the entry, the RLOC choice and the next-hop memo's lookup, each
// a cache line of its own. Its slots carry the memo generation in their keys
// (a change of the cache, or a fold, invalidates them with the memo4 slots;
// a slot of the previous generation is not used, so it needs no activity
// mark) and the serial of the next-hop entry, which changes whenever that
// entry is filled again (another RLOC, or a new next-hop snapshot).
// Its table's first half holds IPv4 sets (flowSet), the second IPv6 ones
// (flow6Set, two ways of 32 bytes, named by pktInfo.fset6: flowRun and
// lookupStage take those hits; a set spills into its buddy, flow6Buddy), so that one flowRef type and one clear serve both.
type lookupMemo struct {
	_          [cacheLine]byte // hits and miss change per packet: keep other workers' memos off their line
	c          *cache.Cache
	rd         *cache.Reader // the worker's lookups: activity marks in the worker's own bitmap
	v4         []memo4Set    // nil: disabled, every lookup goes to the cache
	v6         []memo6Set
	flows      []flowSet // nil with v4; from index maskF+1 on, flow6Sets
	mask4      uint32
	mask6      uint32
	maskF      uint32
	gen        uint32 // current memo generation, 1..255
	prev       uint32 // previous generation when gen began by a fold alone (its slots still valid, unmarked), else 0
	cgen       uint64 // cache generation gen stands for
	cfold      uint32 // cache folds gen stands for
	hits, miss uint64
	flowHits   uint64 // packets the flow memo sent (not counted in hits)
	used6      bool   // an IPv6 slot (v6, or an IPv6 set of flows) was filled since the tables were last cleared
	_          [cacheLine]byte
}

// defaultMemoSize is the default number of IPv4 slots (16384 sets of four,
// 1 MiB); the IPv6 table gets as many sets (16384 sets of two, 1 MiB), the
// flow memo as many sets as the IPv4 table for IPv4 flows (16384 sets of
// four, 1 MiB) and as many for IPv6 ones (16384 sets of two, 1 MiB).
// A two-way set serves three destinations in turn with a miss each: with
// 8192 IPv6 sets, 4096 destinations, one in each of 4096 /48s
// (BenchmarkWorker/encap-84B-v6), left 28 % of them in sets of three or
// more: the benchmark's packets hit the memo 72 % of the time (and 4096
// consecutive interface IDs missed 25 %: TestMemo6Spread).
// A set holds four destinations: with the default, 16k destinations leave
// one set in about fifty overfull (16384 sets each holding on average one of
// them), where 4096 sets left more than half of them in sets that thrash.
// Only the sets in use take memory in practice (the pages of an untouched
// table are never faulted in).
const defaultMemoSize = 65536

// newLookupMemo returns a memo of at least size IPv4 slots (rounded up to a
// power of two, and half as many IPv6 slots: as many sets); size < 0
// disables it.
func newLookupMemo(c *cache.Cache, size int) *lookupMemo {
	m := &lookupMemo{c: c, rd: c.NewReader(), gen: 1, cgen: c.Generation(), cfold: c.Folds()}
	if size < 0 {
		return m
	}
	if size == 0 {
		size = defaultMemoSize
	}
	sets := 1
	for sets*4 < size {
		sets <<= 1
	}
	m.v4 = make([]memo4Set, sets)
	m.mask4 = uint32(sets - 1)
	m.v6 = make([]memo6Set, sets)
	m.mask6 = uint32(sets - 1)
	m.flows = make([]flowSet, 2*sets) // IPv4, then IPv6 (flow6Set) sets
	m.maskF = uint32(sets - 1)
	return m
}

// sync starts a new memo generation if the cache published a change or
// folded the activity marks since the last call. Call it before the
// batch's first lookup: every change published before it is then seen by
// the batch. After a fold alone the previous generation's slots stay valid
// (prev) until a hit marks them.
func (m *lookupMemo) sync() {
	g, f := m.c.Generation(), m.c.Folds()
	if g == m.cgen && f == m.cfold {
		return
	}
	m.prev = 0
	if g == m.cgen {
		m.prev = m.gen
	}
	m.cgen, m.cfold = g, f
	if m.gen++; m.gen > 255 { // wrapped: slots of 255 changes ago would match
		clear(m.v4)
		clear(m.flows[:m.maskF+1])
		if m.used6 { // the IPv6 tables (2 MiB by default) only when filled since
			clear(m.v6)
			clear(m.flows[m.maskF+1:])
			m.used6 = false
		}
		m.gen, m.prev = 1, 0
	}
}

// key4 is the slot key of IPv4 destination a in instance-ID iid.
func (m *lookupMemo) key4(iid uint32, a [4]byte) uint64 {
	return uint64(m.gen)<<56 | uint64(iid)<<32 | uint64(binary.BigEndian.Uint32(a[:]))
}

// set6 is the set that holds IPv6 destination hi:lo (the address's two
// halves) in instance-ID iid.
func (m *lookupMemo) set6(iid uint32, hi, lo uint64) *memo6Set {
	h := (lo ^ hi*0x9E3779B97F4A7C15 ^ uint64(iid)<<40) * 0x9E3779B97F4A7C15
	return &m.v6[uint32(h>>40)&m.mask6]
}

// set4 is the set that holds key.
func (m *lookupMemo) set4(key uint64) *memo4Set {
	return &m.v4[uint32((key*0x9E3779B97F4A7C15)>>40)&m.mask4]
}

// flowSet4 is the flow memo's set for the packets to the destination of
// memo4 key key with flow hash hash.
func (m *lookupMemo) flowSet4(key uint64, hash uint32) flowRef {
	k := key ^ uint64(cache.SelectBucket(hash))<<24
	return flowRef(uint32((k*0xD6E8FEB86659FD93)>>40)&m.maskF + 1)
}

// flowRef names a set of the flow memo by its index plus one; 0 names
// none. A pktInfo holds one rather than a pointer: every pointer stored in
// the parse loop cost a write-barrier check, and the barrier's call made
// the loop spill its registers. flowSet4 gives at most 1<<24 (24 bits of
// the hash select the set), so a ref fits in 32 bits.
type flowRef uint32

// flowAt is the set that ref names (not 0).
func (m *lookupMemo) flowAt(ref flowRef) *flowSet { return &m.flows[ref-1] }

// flowSet6 is the flow memo's set for the packets to IPv6 destination
// hi:lo in instance-ID iid with flow hash hash: one of the table's second
// half. The index is the memo6 table's (set6), the bucket mixed in.
func (m *lookupMemo) flowSet6(iid uint32, hi, lo uint64, hash uint32) flowRef {
	k := (lo ^ hi*0x9E3779B97F4A7C15 ^ uint64(iid)<<40 ^ uint64(cache.SelectBucket(hash))<<24) * 0xD6E8FEB86659FD93
	return flowRef(uint32(k>>40)&m.maskF + m.maskF + 2)
}

// flow6At is the IPv6 set that ref names (from flowSet6).
func (m *lookupMemo) flow6At(ref flowRef) *flow6Set {
	return (*flow6Set)(unsafe.Pointer(&m.flows[ref-1]))
}

// tag6 is the flow6Slot tag of instance-ID iid (at most cacheMaxIID) in
// the current memo generation.
func (m *lookupMemo) tag6(iid uint32) uint32 { return m.gen<<24 | iid }

// flow6Buddy is the IPv6 set that shares a 128-byte pair of lines with
// the set ref names: where that set's flows go when it pushes them out
// (fillFlow6), and where flow6Hit looks for them after the set's two
// ways. A two-way set alone serves three flows in turn with a miss each:
// 4096 flows, one to each of 4096 /48s, missed 3 % of the time in 16384
// sets (BenchmarkWorker/encap-84B-v6), every miss sending the rest of its
// batch the slower way (lookupStage). A memo of one set per half has no
// buddy: the set is its own.
func (m *lookupMemo) flow6Buddy(ref flowRef) *flow6Set {
	// With two sets or more a half starts at an even index.
	return (*flow6Set)(unsafe.Pointer(&m.flows[(ref-1)^flowRef(m.maskF&1)]))
}

// is reports whether x is the slot of pk's flow, whose tag and selection
// bucket are tag and b.
func (x *flow6Slot) is(pk *pktInfo, tag uint32, b uint8) bool {
	return x.hi == pk.mkey && x.lo == pk.mlo && x.tag == tag && x.bkt == b
}

// flow6Hit returns the slot of pk's flow in its IPv6 flow set (stageProbe6)
// or in its buddy (flow6Buddy), moved to the front of its set, or nil. A
// slot found in the buddy trades places with the set's second.
func (m *lookupMemo) flow6Hit(pk *pktInfo) *flow6Slot {
	s, tag, b := m.flow6At(pk.fset6), m.tag6(pk.iid), cache.SelectBucket(pk.hash)
	if s[0].is(pk, tag, b) {
		return &s[0]
	}
	if s[1].is(pk, tag, b) {
		s[0], s[1] = s[1], s[0]
		return &s[0]
	}
	t := m.flow6Buddy(pk.fset6)
	for i := range t {
		if t[i].is(pk, tag, b) {
			s[0], s[1], t[i] = t[i], s[0], s[1]
			return &s[0]
		}
	}
	return nil
}

// fillFlow6 is fillFlow for pk's IPv6 flow (stageProbe6); it returns the
// slot filled. A slot of the same flow in front (one left for its offer
// tag, lookupStage) is filled again in place, not pushed back; otherwise
// the set's second slot, if of the current generation, goes to the
// buddy's second (flow6Buddy).
func (m *lookupMemo) fillFlow6(pk *pktInfo, hop uint16, ser uint32) *flow6Slot {
	s := m.flow6At(pk.fset6)
	m.used6 = true
	x := flow6Slot{hi: pk.mkey, lo: pk.mlo, tag: m.tag6(pk.iid), ser: ser, hop: hop, bkt: cache.SelectBucket(pk.hash)}
	if !s[0].is(pk, x.tag, x.bkt) {
		if s[1].tag>>24 == m.gen {
			m.flow6Buddy(pk.fset6)[1] = s[1]
		}
		s[1] = s[0]
	}
	s[0] = x
	return &s[0]
}

// A flow set is one cache line: prefetchSets fetches the line at the set's
// index times 64.
var (
	_ [unsafe.Sizeof(flowSet{}) - 64]byte
	_ [64 - unsafe.Sizeof(flowSet{})]byte
)

// flowKey4 sets pk.mkey and pk.fset, the memo key and the flow memo set
// of pk's flow, for the IPv4 destination whose bytes are a in pk.iid,
// unless it is a multicast group (224.0.0.0/4: replicate looks those up).
// The caller checked that the memo holds IPv4 keys of pk.iid.
func (m *lookupMemo) flowKey4(pk *pktInfo, a [4]byte) {
	if a[0]&0xf0 != 0xe0 {
		pk.mkey = m.key4(pk.iid, a)
		pk.fset = m.flowSet4(pk.mkey, pk.hash)
	}
}

// flowKey6 is flowKey4 for the IPv6 destination whose halves are hi and
// lo: pk.mkey, pk.mlo and pk.fset6, unless it is multicast (ff00::/8) or
// an IPv4-mapped address (those, multicast through netip.Addr.IsMulticast
// too, are left to probe). The caller set pk.fset6 to 0 and checked that
// the memo holds keys of pk.iid. parseSiteRest's IPv6 loop writes it out:
// the call, inlined, took 3 instructions more a packet there.
func (m *lookupMemo) flowKey6(pk *pktInfo, hi, lo uint64) {
	if hi>>56 != 0xff && (hi != 0 || lo>>32 != 0xffff) {
		pk.mkey, pk.mlo = hi, lo
		pk.fset6 = m.flowSet6(pk.iid, hi, lo, pk.hash)
	}
}

// flowLater returns the slot of set s after the first (the caller
// compared that one) for memo4 key key and the selection bucket of flow
// hash hash, moved to the front, or nil. The slots move one by one, as in
// hitLater. (A function that also compared the first way would not inline,
// for the call it holds, so the batch loops compare it themselves.)
func flowLater(s *flowSet, key uint64, hash uint32) *flowSlot {
	b := cache.SelectBucket(hash)
	for i := 1; i < len(s); i++ {
		if s[i].key == key && s[i].bkt == b {
			y := s[i]
			for k := i; k > 0; k-- {
				s[k] = s[k-1]
			}
			s[0] = y
			return &s[0]
		}
	}
	return nil
}

// fillFlow remembers in set s that packets to memo4 key key with flow hash
// hash go through next-hop memo entry hop, of serial ser: in the front
// slot, the others moved back (the last one forgotten).
func fillFlow(s *flowSet, key uint64, hash uint32, hop uint16, ser uint32) {
	for k := len(s) - 1; k > 0; k-- {
		s[k] = s[k-1]
	}
	s[0] = flowSlot{key: key, ser: ser, hop: hop, bkt: cache.SelectBucket(hash)}
}

// hitLater looks key up in the ways of set s after the first (the caller
// compared that one): on a hit it counts it and moves the slot to the
// front. The slots move one by one, not by copy: a copy of slots holding
// pointers is a call (runtime.typedslicecopy).
func (m *lookupMemo) hitLater(s *memo4Set, key uint64) (*cache.Entry, bool) {
	for i := 1; i < len(s); i++ {
		if s[i].key == key {
			e := s[i].e
			for k := i; k > 0; k-- {
				s[k] = s[k-1]
			}
			s[0] = memo4Slot{key, e}
			m.hits++
			return e, true
		}
	}
	return nil, false
}

// probe returns the entry the longest-prefix match gives for dst in iid,
// from the memo when it holds it, else from the cache (remembered then).
// Only a lookup in the cache or a hit on a slot of the previous generation
// marks the entry active (see lookupMemo).
func (m *lookupMemo) probe(iid uint32, dst netip.Addr) (*cache.Entry, bool) {
	if m.v4 == nil || iid > 1<<24-1 {
		return m.rd.Lookup(iid, dst)
	}
	if dst.Is4() {
		key := m.key4(iid, dst.As4())
		s := m.set4(key)
		if s[0].key == key {
			m.hits++
			return s[0].e, true
		}
		if e, ok := m.hitLater(s, key); ok {
			return e, true
		}
		if m.prev != 0 {
			old := key&^(0xff<<56) | uint64(m.prev)<<56
			for i := range s {
				if s[i].key == old {
					m.hits++
					e := s[i].e
					m.rd.MarkActive(e)
					copy(s[1:i+1], s[:i])
					s[0] = memo4Slot{key, e}
					return e, true
				}
			}
		}
		m.miss++
		e, ok := m.rd.Lookup(iid, dst)
		if ok {
			copy(s[1:], s[:len(s)-1])
			s[0] = memo4Slot{key, e}
		}
		return e, ok
	}
	a := dst.As16()
	hi, lo := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	s := m.set6(iid, hi, lo)
	for i := range s {
		if x := &s[i]; x.lo == lo && x.hi == hi && x.iid == iid && (x.gen == m.gen || x.gen == m.prev && m.prev != 0) {
			m.hits++
			e := x.e
			if x.gen != m.gen {
				m.rd.MarkActive(e)
				x.gen = m.gen
			}
			if i > 0 {
				s[0], s[1] = s[1], s[0]
			}
			return e, true
		}
	}
	m.miss++
	e, ok := m.rd.Lookup(iid, dst)
	if ok {
		m.used6 = true
		s[1] = s[0]
		s[0] = memo6Slot{hi: hi, lo: lo, iid: iid, gen: m.gen, e: e}
	}
	return e, ok
}

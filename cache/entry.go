package cache

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// Kind says which table a Key addresses.
type Kind uint8

// Key kinds.
const (
	KindIP        Kind = iota // unicast IPv4 or IPv6 EID prefix, longest-prefix match
	KindMAC                   // 48-bit MAC EID of an L2 overlay, exact match
	KindMulticast             // (S-prefix, G-prefix) or (*, G-prefix), RFC 8378
)

// Family is the EID family a header template is built for.
type Family uint8

// EID families.
const (
	FamilyIPv4 Family = iota
	FamilyIPv6
	FamilyMAC
)

// Key identifies one map-cache entry.
type Key struct {
	IID  uint32 // instance-ID (RFC 8060 §4.1); only the low 24 bits travel in the data header
	Kind Kind
	// Prefix is the EID prefix for KindIP, and the source (S-EID) prefix for
	// KindMulticast, where an invalid or zero-length prefix means any source (*,G).
	Prefix netip.Prefix
	Group  netip.Prefix // G-EID prefix, KindMulticast only
	MAC    [6]byte      // KindMAC only
}

// IPKey returns the key of a unicast EID prefix.
func IPKey(iid uint32, p netip.Prefix) Key { return Key{IID: iid, Kind: KindIP, Prefix: p.Masked()} }

// MACKey returns the key of a MAC EID.
func MACKey(iid uint32, mac [6]byte) Key { return Key{IID: iid, Kind: KindMAC, MAC: mac} }

// MulticastKey returns the key of an (S,G) entry; pass an invalid source
// (netip.Prefix{}) for (*,G).
func MulticastKey(iid uint32, src, group netip.Prefix) Key {
	if src.IsValid() && src.Bits() == 0 {
		src = netip.Prefix{}
	}
	return Key{IID: iid, Kind: KindMulticast, Prefix: src.Masked(), Group: group.Masked()}
}

// Family returns the EID family of the key (the group's family for multicast).
func (k Key) Family() Family {
	switch k.Kind {
	case KindMAC:
		return FamilyMAC
	case KindMulticast:
		if k.Group.Addr().Is4() {
			return FamilyIPv4
		}
		return FamilyIPv6
	}
	if k.Prefix.Addr().Is4() {
		return FamilyIPv4
	}
	return FamilyIPv6
}

// String formats the key as "[iid]eid".
func (k Key) String() string {
	s := "[" + itoa(uint64(k.IID)) + "]"
	switch k.Kind {
	case KindMAC:
		return s + macString(k.MAC)
	case KindMulticast:
		src := "*"
		if k.Prefix.IsValid() {
			src = k.Prefix.String()
		}
		return s + "(" + src + ", " + k.Group.String() + ")"
	}
	return s + k.Prefix.String()
}

// ReachSource says where an RLOC's reachability state came from.
type ReachSource uint8

// Reachability sources.
const (
	ReachConfig    ReachSource = iota // set by configuration or assumed on install
	ReachMapReply                     // R bit of the locator record (RFC 9301 §5.4)
	ReachProbe                        // RLOC-probing (RFC 9301 §7.1)
	ReachEchoNonce                    // echo-nonce algorithm (RFC 9300 §10.1)
	ReachLSB                          // locator-status-bits (RFC 9300 §10)
	ReachRouting                      // underlay routing (no route to the RLOC)
	ReachSolicit                      // R bit of a peer ITR's copy (Map-Solicit-Response, docs/solicit.md)
)

// RLOC is one locator of a mapping (RFC 9301 §5.4 Locator record).
// Treat it as read-only once it is in the cache.
type RLOC struct {
	Addr      netip.Addr
	Priority  uint8 // unicast priority, lower is preferred, 255 = do not use
	Weight    uint8 // unicast weight among RLOCs of equal priority
	MPriority uint8 // multicast priority (RFC 9301 §5.4)
	MWeight   uint8 // multicast weight
	// Reachable must be true for Select to choose the RLOC (the zero value
	// means down: set it from the R bit, probing, or configuration).
	Reachable bool
	Source    ReachSource // where the Reachable state came from
	// Template is the prebuilt outer header for this RLOC, returned by
	// Config.BuildTemplate when the set was installed. The fast path copies it;
	// nobody writes to it.
	Template []byte
	tslot    uint32 // TemplateSlot
}

// TemplateSlot is a number the cache gives Template while the set that
// holds it is installed: templates in use at once have distinct numbers,
// counted from 1 up and reused once their set is gone, so that a fast path
// can key a memo of RLOCs by it without collisions while fewer templates
// than its size are in use. Two templates may still share a number (a set
// released while a reader still holds it), so it only says where to look,
// not what was found there. 0 for a template the cache did not build.
func (r *RLOC) TemplateSlot() uint32 { return r.tslot }

// RLEHop is one entry of a Replication List Entry (RFC 8060 §4.11): the
// address of an RTR or ETR and its replication level.
type RLEHop struct {
	Addr     netip.Addr
	Level    uint8
	Template []byte // prebuilt outer header, as for RLOC.Template
}

// Locators is an immutable, interned RLOC set with its replication list and
// the precomputed selection table. Entries with the same instance-ID, EID
// family (and group prefix, for multicast) and locator contents share one
// Locators.
type Locators struct {
	RLOCs []RLOC      // the locator set, in the order given
	RLE   []RLEHop    // the replication list, for multicast entries
	sel   *[256]uint8 // slot -> RLOC index, nil when at most one RLOC is usable
	one   int16       // the only usable RLOC, or -1
	fam   Family
	iid   uint32
	group netip.Prefix // multicast entries' G-prefix

	// writer-only
	refs int32
	key  string
}

// entry flag bits, stored above the 12-bit map-version.
const (
	flagAuthoritative = 1 << 14
	flagStatic        = 1 << 15
	versionMask       = 0x0fff
)

// Entry is one published map-cache entry. It never changes after it is
// published (an update publishes a new *Entry), except for its activity mark,
// which only the writer sets (readers mark ids in bitmaps, see activity.go).
// It is kept to 48 bytes: instance-ID, family and multicast group live in the
// shared Locators.
type Entry struct {
	used    atomic.Uint32 // activity epoch, set by the writer's fold
	expires uint32        // unix seconds; 0 = never (static)
	loc     *Locators     // never nil
	addr    [16]byte      // EID address (IPv4 in the first 4 bytes), MAC, or multicast source
	hidx    int32         // writer-only: index in its expiry heap, -1 if none
	id      uint32        // activity id, also stored beside the entry in its table
	ttl     uint16        // minutes (capped by Config.MaxTTL)
	vf      uint16        // map-version and flags
	bits    uint8         // prefix length; 0xff = (*,G) source
	kind    Kind
	action  wire.Action
}

// Key returns the key of the entry.
func (e *Entry) Key() Key {
	k := Key{IID: e.loc.iid, Kind: e.kind}
	switch e.kind {
	case KindMAC:
		copy(k.MAC[:], e.addr[:6])
		return k
	case KindMulticast:
		k.Group = e.loc.group
	}
	if e.bits == 0xff {
		return k
	}
	if e.loc.fam == FamilyIPv4 {
		k.Prefix = netip.PrefixFrom(netip.AddrFrom4([4]byte(e.addr[:4])), int(e.bits))
	} else {
		k.Prefix = netip.PrefixFrom(netip.AddrFrom16(e.addr), int(e.bits))
	}
	return k
}

// Locators returns the entry's (shared, read-only) RLOC set and RLE.
func (e *Entry) Locators() *Locators { return e.loc }

// RLOCs returns the entry's RLOC set (read-only).
func (e *Entry) RLOCs() []RLOC { return e.loc.RLOCs }

// RLE returns the entry's replication list (read-only), for multicast entries.
func (e *Entry) RLE() []RLEHop { return e.loc.RLE }

// TTL returns the record TTL in minutes (RFC 9301 §5.4).
func (e *Entry) TTL() uint32 { return uint32(e.ttl) }

// Expiry returns when the entry expires; the zero time for static entries.
func (e *Entry) Expiry() time.Time {
	if e.expires == 0 {
		return time.Time{}
	}
	return time.Unix(int64(e.expires), 0)
}

// MapVersion returns the 12-bit map-version number (RFC 9300 §13.2).
func (e *Entry) MapVersion() uint16 { return e.vf & versionMask }

// Authoritative reports the A bit of the mapping record (RFC 9301 §5.4).
func (e *Entry) Authoritative() bool { return e.vf&flagAuthoritative != 0 }

// Static reports whether the entry was installed by configuration; static
// entries never expire and are never evicted.
func (e *Entry) Static() bool { return e.vf&flagStatic != 0 }

// Action returns the ACT field for a negative entry (RFC 9301 §5.4).
func (e *Entry) Action() wire.Action { return e.action }

// Negative reports whether the entry has neither RLOCs nor an RLE, i.e. it is
// a negative mapping whose Action tells what to do.
func (e *Entry) Negative() bool { return len(e.loc.RLOCs) == 0 && len(e.loc.RLE) == 0 }

// Select returns the RLOC to use for a flow: among the reachable RLOCs of the
// lowest priority below 255 it picks by weight using flowHash, so a flow keeps
// its RLOC while the set is unchanged. It returns nil when no RLOC is usable.
// The choice was precomputed when the set was installed: one table index.
// It depends on flowHash only through SelectBucket(flowHash).
func (e *Entry) Select(flowHash uint32) *RLOC {
	l := e.loc
	if l.sel != nil {
		return &l.RLOCs[l.sel[SelectBucket(flowHash)]]
	}
	if l.one >= 0 {
		return &l.RLOCs[l.one]
	}
	return nil
}

// SelectBucket is the one of 256 buckets of a flow hash that Entry.Select's
// choice depends on: while an entry's locators are unchanged, flows whose
// hashes share a bucket are sent to the same RLOC (a data-plane flow memo
// may remember the choice per bucket).
func SelectBucket(flowHash uint32) uint8 { return uint8((flowHash * 0x9E3779B1) >> 24) }

// buildSelection precomputes the RLOC choice of l (see Entry.Select).
func (l *Locators) buildSelection() {
	l.sel, l.one = nil, -1
	best := -1
	for i := range l.RLOCs {
		r := &l.RLOCs[i]
		if r.Reachable && r.Priority != 255 && (best < 0 || int(r.Priority) < best) {
			best = int(r.Priority)
		}
	}
	if best < 0 {
		return
	}
	var idx []int
	var ws []uint64
	var sum uint64
	for i := range l.RLOCs {
		r := &l.RLOCs[i]
		if r.Reachable && int(r.Priority) == best {
			idx = append(idx, i)
			ws = append(ws, uint64(r.Weight))
			sum += uint64(r.Weight)
		}
	}
	if len(idx) == 1 {
		l.one = int16(idx[0])
		return
	}
	if sum == 0 { // all weights zero: split equally (RFC 9301 §5.4)
		for i := range ws {
			ws[i] = 1
		}
		sum = uint64(len(ws))
	}
	// Largest-remainder apportionment of 256 slots by weight.
	slots := make([]int, len(ws))
	rem := make([]uint64, len(ws))
	given := 0
	for i, w := range ws {
		slots[i] = int(w * 256 / sum)
		rem[i] = w * 256 % sum
		given += slots[i]
	}
	for ; given < 256; given++ {
		m := 0
		for i := range rem {
			if rem[i] > rem[m] {
				m = i
			}
		}
		slots[m]++
		rem[m] = 0
	}
	var sel [256]uint8
	n := 0
	for i, s := range slots {
		for range s {
			sel[n] = uint8(idx[i])
			n++
		}
	}
	if slots[0] == 256 {
		l.one = int16(idx[0])
		return
	}
	l.sel = &sel
}

func itoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}

func macString(m [6]byte) string {
	const hx = "0123456789abcdef"
	b := make([]byte, 0, 17)
	for i, x := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hx[x>>4], hx[x&15])
	}
	return string(b)
}

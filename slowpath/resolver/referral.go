package resolver

import (
	"container/list"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/gaissmai/bart"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// Referral is one entry of a DDT Map-Resolver's referral cache (RFC 8111
// §7.3.1): what the mapping system said about an XEID-prefix. Node and MS
// referrals name where to ask next (Targets, best first); DELEGATION-HOLE
// and MS-NOT-REGISTERED entries are negative: the EIDs under Prefix need no
// question until Expires.
type Referral struct {
	// IID and Prefix are the XEID-prefix (Prefix masked).
	IID    uint32
	Prefix netip.Prefix
	// Type is ReferralNode, ReferralMS, ReferralDelegationHole or
	// ReferralMSNotRegistered; a root entry is ReferralNode.
	Type wire.ReferralType
	// Targets are the DDT nodes or Map-Servers to ask, by priority (lowest
	// first); empty for negative entries.
	Targets []netip.AddrPort
	// Priorities and Weights are the targets' (RFC 8111 §6.4 referral
	// set: lower priority first, weights share load among equal
	// priorities); nil for the roots (asked in the configured order).
	Priorities, Weights []uint8
	// Authoritative is the record's A bit.
	Authoritative bool
	// Incomplete is the record's I bit.
	Incomplete bool
	// Expires is when the entry stops being used; zero for a root.
	Expires time.Time
	// Root marks the configured root entry.
	Root bool
}

// Negative reports whether the entry answers the EIDs it covers
// negatively (DELEGATION-HOLE, MS-NOT-REGISTERED).
func (r *Referral) Negative() bool {
	return r.Type == wire.ReferralDelegationHole || r.Type == wire.ReferralMSNotRegistered
}

type refKey struct {
	iid uint32
	p   netip.Prefix
}

// ReferralCache is the referral cache of a DDT Map-Resolver: longest-prefix
// lookup per instance-ID, at most max learned entries (the oldest learned
// goes first when full), each used until its TTL runs out, with the
// configured roots as the entry of last resort for every EID. Not safe for
// concurrent use: the event loop owns it.
type ReferralCache struct {
	max    int
	root   Referral
	tables map[uint32]*bart.Table[*list.Element]
	order  *list.List // of *Referral, oldest learned first
	// Evicted counts entries dropped to make room; Expired those dropped
	// for their TTL.
	Evicted, Expired uint64
}

// NewReferralCache returns a cache seeded with roots (the DDT root nodes)
// holding at most max learned entries (max < 1: DefaultReferralCacheSize).
func NewReferralCache(roots []netip.AddrPort, max int) *ReferralCache {
	if max < 1 {
		max = slowpath.DefaultReferralCacheSize
	}
	return &ReferralCache{max: max, root: Referral{Type: wire.ReferralNode, Targets: slices.Clone(roots), Root: true},
		tables: map[uint32]*bart.Table[*list.Element]{}, order: list.New()}
}

// Len returns the number of learned entries (roots excluded).
func (rc *ReferralCache) Len() int { return rc.order.Len() }

// Lookup returns the most specific unexpired entry covering addr in iid,
// or the root entry (nil when no roots are configured). Expired entries
// met on the way are removed.
func (rc *ReferralCache) Lookup(iid uint32, addr netip.Addr, now time.Time) *Referral {
	if t := rc.tables[iid]; t != nil {
		for {
			pfx, e, ok := t.LookupPrefixLPM(netip.PrefixFrom(addr, addr.BitLen()))
			if !ok {
				break
			}
			r := e.Value.(*Referral)
			if now.Before(r.Expires) {
				return r
			}
			rc.remove(refKey{iid, pfx}, e)
			rc.Expired++
		}
	}
	if len(rc.root.Targets) == 0 {
		return nil
	}
	return &rc.root
}

// Insert learns r (its Prefix is masked), replacing the entry for the same
// XEID-prefix. A TTL of zero (Expires not after now) removes that entry
// instead. When the cache is full the oldest learned entry goes.
func (rc *ReferralCache) Insert(r Referral, now time.Time) {
	r.Prefix = r.Prefix.Masked()
	r.Root = false
	r.Targets = slices.Clone(r.Targets)
	r.Priorities, r.Weights = slices.Clone(r.Priorities), slices.Clone(r.Weights)
	k := refKey{r.IID, r.Prefix}
	t := rc.tables[r.IID]
	if t == nil {
		t = new(bart.Table[*list.Element])
		rc.tables[r.IID] = t
	}
	if e, ok := t.Get(r.Prefix); ok {
		rc.remove(k, e)
	}
	if !r.Expires.After(now) {
		return
	}
	for rc.order.Len() >= rc.max {
		old := rc.order.Front()
		o := old.Value.(*Referral)
		rc.remove(refKey{o.IID, o.Prefix}, old)
		rc.Evicted++
	}
	t.Insert(r.Prefix, rc.order.PushBack(&r))
}

// Remove forgets the entry for exactly iid and p, if any.
func (rc *ReferralCache) Remove(iid uint32, p netip.Prefix) {
	p = p.Masked()
	if t := rc.tables[iid]; t != nil {
		if e, ok := t.Get(p); ok {
			rc.remove(refKey{iid, p}, e)
		}
	}
}

// Sweep removes every entry expired at now.
func (rc *ReferralCache) Sweep(now time.Time) {
	for e := rc.order.Front(); e != nil; {
		next := e.Next()
		if r := e.Value.(*Referral); !now.Before(r.Expires) {
			rc.remove(refKey{r.IID, r.Prefix}, e)
			rc.Expired++
		}
		e = next
	}
}

// All appends the learned entries, oldest first.
func (rc *ReferralCache) All(out []Referral) []Referral {
	for e := rc.order.Front(); e != nil; e = e.Next() {
		out = append(out, *e.Value.(*Referral))
	}
	return out
}

func (rc *ReferralCache) remove(k refKey, e *list.Element) {
	rc.order.Remove(e)
	if t := rc.tables[k.iid]; t != nil {
		t.Delete(k.p)
		if t.Size() == 0 {
			delete(rc.tables, k.iid)
		}
	}
}

// ReferralFromRecord turns a Map-Referral record into a cache entry
// received at now: its XEID-prefix, type, A and I bits, TTL and its
// locators sorted by priority (unreachable ones, priority 255, left out).
// ok is false when the record's EID is not an IP prefix.
func ReferralFromRecord(rec *wire.Record, port uint16, now time.Time) (r Referral, ok bool) {
	iid, p, ok := rec.Prefix()
	if !ok {
		return Referral{}, false
	}
	type tgt struct {
		a            netip.AddrPort
		prio, weight uint8
	}
	var ts []tgt
	for i := range rec.Locators {
		l := &rec.Locators[i]
		if l.Priority == 255 {
			continue
		}
		a := l.Address.IP
		if (l.Address.AFI != wire.AFIIPv4 && l.Address.AFI != wire.AFIIPv6) || !a.IsValid() {
			continue
		}
		ts = append(ts, tgt{netip.AddrPortFrom(a, port), l.Priority, l.Weight})
	}
	slices.SortStableFunc(ts, func(a, b tgt) int { return int(a.prio) - int(b.prio) })
	r = Referral{IID: iid, Prefix: p, Type: wire.ReferralType(rec.Action), Incomplete: rec.Incomplete,
		Authoritative: rec.Authoritative, Expires: now.Add(time.Duration(rec.TTL) * time.Minute)}
	for _, t := range ts {
		r.Targets = append(r.Targets, t.a)
		r.Priorities = append(r.Priorities, t.prio)
		r.Weights = append(r.Weights, t.weight)
	}
	return r, true
}

// Order appends r's targets to out[:0] in the order to ask them: by
// priority, and among targets of equal priority in a random order drawn
// by weight (RFC 8111 §6.4: the weights share the load; a target of
// weight w goes first with probability w over the group's total; when all
// weights of a group are 0 every order is equally likely). Targets
// without priorities (the roots) keep their order.
func (r *Referral) Order(rng *rand.Rand, out []netip.AddrPort) []netip.AddrPort {
	out = append(out[:0], r.Targets...)
	if len(r.Weights) != len(out) || len(r.Priorities) != len(out) {
		return out
	}
	var wbuf [16]uint8
	w := append(wbuf[:0], r.Weights...)
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && r.Priorities[j] == r.Priorities[i] {
			j++
		}
		for k := i; k < j-1; k++ {
			total := 0
			for m := k; m < j; m++ {
				total += int(w[m])
			}
			pick := k + rng.IntN(j-k)
			if total > 0 {
				x := rng.IntN(total)
				for m := k; m < j; m++ {
					if x -= int(w[m]); x < 0 {
						pick = m
						break
					}
				}
			}
			out[k], out[pick] = out[pick], out[k]
			w[k], w[pick] = w[pick], w[k]
		}
		i = j
	}
	return out
}

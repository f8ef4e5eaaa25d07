package msx

import (
	"cmp"
	"encoding/binary"
	"hash/fnv"
	"net/netip"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// scopeEntry is one covering EID space: a prefix inside an instance-ID, or
// (whole) every EID of the instance-ID, both families.
type scopeEntry struct {
	iid    uint32
	prefix netip.Prefix
	whole  bool
}

// scope is a set of covering EID spaces; a nil scope with all set covers
// everything.
type scope struct {
	all     bool
	entries []scopeEntry
}

func (e scopeEntry) covers(k slowpath.EIDPrefix) bool {
	if e.iid != k.IID {
		return false
	}
	if e.whole {
		return true
	}
	return e.prefix.Addr().Is4() == k.Prefix.Addr().Is4() && e.prefix.Bits() <= k.Prefix.Bits() && e.prefix.Contains(k.Prefix.Addr())
}

// has reports whether k lies in the scope.
func (s *scope) has(k slowpath.EIDPrefix) bool {
	if s.all {
		return true
	}
	for i := range s.entries {
		if s.entries[i].covers(k) {
			return true
		}
	}
	return false
}

// empty reports whether the scope covers nothing.
func (s *scope) empty() bool { return !s.all && len(s.entries) == 0 }

// agreementScope is what an agreement shares: its filters and whole
// instance-IDs, everything when it names neither.
func agreementScope(a *slowpath.MSXAgreement) scope {
	if len(a.Filters) == 0 && len(a.InstanceIDs) == 0 {
		return scope{all: true}
	}
	var s scope
	for _, f := range a.Filters {
		s.entries = append(s.entries, scopeEntry{iid: f.IID, prefix: f.Prefix.Masked()})
	}
	for _, iid := range a.InstanceIDs {
		s.entries = append(s.entries, scopeEntry{iid: iid, whole: true})
	}
	return s
}

// requestedScope reads the scope of a Map-Bulk-Request or the filters of
// a Map-Subscribe: EID prefixes, inside an instance-ID LCAF or not; mask
// length 0 in an instance-ID LCAF is the whole instance-ID. Entries that
// are no EID prefix (names, AS numbers) are skipped and counted in bad.
func requestedScope(all bool, recs []wire.EIDRecord) (s scope, bad int) {
	if all {
		return scope{all: true}, 0
	}
	for i := range recs {
		r := &recs[i]
		var iid uint32
		a := &r.EID
		if a.AFI == wire.AFILCAF && a.LCAF.Type == wire.LCAFInstanceID {
			iid = a.LCAF.IID
			if r.MaskLen == 0 {
				s.entries = append(s.entries, scopeEntry{iid: iid, whole: true})
				continue
			}
		}
		iid2, p, ok := r.Prefix()
		if !ok {
			bad++
			continue
		}
		s.entries = append(s.entries, scopeEntry{iid: iid2, prefix: p.Masked()})
	}
	return s, bad
}

// clip returns the part of the requested scope that the agreement's scope
// allows, and whether anything was cut off.
func clip(req, allowed *scope) (scope, bool) {
	if allowed.all {
		return *req, false
	}
	if req.all {
		return *allowed, true
	}
	var out scope
	clipped := false
	for _, r := range req.entries {
		inside := false
		for _, a := range allowed.entries {
			switch {
			case a.iid != r.iid:
			case a.whole || (!r.whole && a.covers(slowpath.EIDPrefix{IID: r.iid, Prefix: r.prefix})):
				inside = true
			case r.whole || (r.prefix.Addr().Is4() == a.prefix.Addr().Is4() && r.prefix.Bits() <= a.prefix.Bits() && r.prefix.Contains(a.prefix.Addr())):
				out.entries = append(out.entries, a) // the part allowed
				clipped = true
			}
			if inside {
				break
			}
		}
		if inside {
			out.entries = append(out.entries, r)
		} else {
			clipped = true
		}
	}
	return out, clipped
}

// hash identifies a requested scope in a cookie, so that a cookie is not
// used to page another scope.
func (s *scope) hash() uint64 {
	h := fnv.New64a()
	if s.all {
		h.Write([]byte{1})
	}
	var b [4]byte
	for _, e := range s.entries {
		binary.BigEndian.PutUint32(b[:], e.iid)
		h.Write(b[:])
		if e.whole {
			h.Write([]byte{0xff})
			continue
		}
		h.Write(e.prefix.Addr().AsSlice())
		h.Write([]byte{byte(e.prefix.Bits())})
	}
	return h.Sum64()
}

// keyCompare orders EID prefixes: instance-ID, IPv4 before IPv6, address,
// mask length. Bulk pages walk the table in this order.
func keyCompare(a, b slowpath.EIDPrefix) int {
	return cmp.Or(cmp.Compare(a.IID, b.IID), a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
}

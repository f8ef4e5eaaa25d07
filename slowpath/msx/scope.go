package msx

import (
	"cmp"
	"encoding/binary"
	"hash/fnv"
	"net/netip"
	"strings"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// key is one mapping of a table: an EID prefix, or with name set the
// distinguished-name EID (AFI 17) name in IID (Prefix invalid).
type key struct {
	slowpath.EIDPrefix
	name string
}

// prefixKey is the key of an EID prefix.
func prefixKey(k slowpath.EIDPrefix) key { return key{EIDPrefix: k} }

// nameKey is the key of a distinguished name.
func nameKey(k slowpath.EIDName) key {
	return key{EIDPrefix: slowpath.EIDPrefix{IID: k.IID}, name: k.Name}
}

// eidName returns k as a name.
func (k key) eidName() slowpath.EIDName { return slowpath.EIDName{IID: k.IID, Name: k.name} }

// recordKey returns the key of a mapping record: its EID prefix or its
// distinguished name.
func recordKey(rec *wire.Record) (key, bool) {
	if iid, p, ok := rec.Prefix(); ok {
		return prefixKey(slowpath.EIDPrefix{IID: iid, Prefix: p.Masked()}), true
	}
	if iid, n, ok := slowpath.NameEID(&rec.EID); ok {
		return nameKey(slowpath.EIDName{IID: iid, Name: n}), true
	}
	return key{}, false
}

// eid returns the EID record of k (a withdrawal, a scope entry).
func (k key) eid() (uint8, wire.Address) {
	if k.name != "" {
		return 0, slowpath.NameAddress(k.IID, k.name)
	}
	return uint8(k.Prefix.Bits()), slowpath.EIDAddress(k.IID, k.Prefix.Addr())
}

// scopeEntry is one covering EID space: a prefix inside an instance-ID,
// names (an exact name, or "*." and a suffix), or (whole) every EID of the
// instance-ID, both families and names.
type scopeEntry struct {
	iid    uint32
	prefix netip.Prefix
	name   string
	whole  bool
}

// scope is a set of covering EID spaces; a nil scope with all set covers
// everything.
type scope struct {
	all     bool
	entries []scopeEntry
}

func (e scopeEntry) covers(k key) bool {
	return e.contains(scopeEntry{iid: k.IID, prefix: k.Prefix, name: k.name})
}

// contains reports whether every EID of r lies in e.
func (e scopeEntry) contains(r scopeEntry) bool {
	switch {
	case e.iid != r.iid:
		return false
	case e.whole:
		return true
	case r.whole || (e.name == "") != (r.name == ""):
		return false
	case e.name != "":
		return namesContain(e.name, r.name)
	}
	return e.prefix.Addr().Is4() == r.prefix.Addr().Is4() && e.prefix.Bits() <= r.prefix.Bits() && e.prefix.Contains(r.prefix.Addr())
}

// namesContain reports whether the pattern outer covers every name the
// pattern inner does (a pattern is a name or "*." and a suffix).
func namesContain(outer, inner string) bool {
	if in, ok := strings.CutPrefix(inner, "*"); ok {
		out, ok := strings.CutPrefix(outer, "*")
		return ok && strings.HasSuffix(in, out)
	}
	return slowpath.NameCovers(outer, inner)
}

// has reports whether k lies in the scope.
func (s *scope) has(k key) bool {
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

// agreementScope is what an agreement shares: its filters, names and
// whole instance-IDs, everything when it names none.
func agreementScope(a *slowpath.MSXAgreement) scope {
	if len(a.Filters) == 0 && len(a.InstanceIDs) == 0 && len(a.Names) == 0 {
		return scope{all: true}
	}
	var s scope
	for _, f := range a.Filters {
		s.entries = append(s.entries, scopeEntry{iid: f.IID, prefix: f.Prefix.Masked()})
	}
	for _, n := range a.Names {
		s.entries = append(s.entries, scopeEntry{iid: n.IID, name: n.Name})
	}
	for _, iid := range a.InstanceIDs {
		s.entries = append(s.entries, scopeEntry{iid: iid, whole: true})
	}
	return s
}

// requestedScope reads the scope of a Map-Bulk-Request or the filters of
// a Map-Subscribe: EID prefixes and distinguished names (AFI 17: a name,
// or "*." and a suffix), inside an instance-ID LCAF or not; mask length 0
// in an instance-ID LCAF around an IP address is the whole instance-ID.
// Other entries (AS numbers, bad names) are skipped and counted in bad.
func requestedScope(all bool, recs []wire.EIDRecord) (s scope, bad int) {
	if all {
		return scope{all: true}, 0
	}
	for i := range recs {
		r := &recs[i]
		if iid, in, ok := r.EID.Unwrap(); ok && in.AFI == wire.AFIDistName {
			if (&slowpath.SiteName{IID: iid, Name: in.Name}).Validate("") != nil {
				bad++
				continue
			}
			s.entries = append(s.entries, scopeEntry{iid: iid, name: in.Name})
			continue
		}
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
// allows, and whether anything was cut off: a requested entry inside an
// allowed one is kept; otherwise the allowed entries inside it are kept
// in its place (the part allowed).
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
			if a.contains(r) {
				inside = true
				break
			}
		}
		if inside {
			out.entries = append(out.entries, r)
			continue
		}
		clipped = true
		for _, a := range allowed.entries {
			if r.contains(a) {
				out.entries = append(out.entries, a)
			}
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
		switch {
		case e.whole:
			h.Write([]byte{0xff})
		case e.name != "":
			h.Write([]byte{0xfe, byte(len(e.name))})
			h.Write([]byte(e.name))
		default:
			h.Write(e.prefix.Addr().AsSlice())
			h.Write([]byte{byte(e.prefix.Bits())})
		}
	}
	return h.Sum64()
}

// keyCompare orders keys: EID prefixes (instance-ID, IPv4 before IPv6,
// address, mask length), then names (instance-ID, name). Bulk pages walk
// the table in this order.
func keyCompare(a, b key) int {
	if (a.name == "") != (b.name == "") {
		if a.name == "" {
			return -1
		}
		return 1
	}
	if a.name != "" {
		return cmp.Or(cmp.Compare(a.IID, b.IID), strings.Compare(a.name, b.name))
	}
	return cmp.Or(cmp.Compare(a.IID, b.IID), a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
}

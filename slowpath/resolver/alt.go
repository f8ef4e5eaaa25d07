package resolver

import (
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// ALT is what the Map-Resolver asks of the ALT router role (RFC 6836,
// docs/alt.md): send a Map-Request it cannot answer into the ALT,
// and which EID space the ALT table covers (for the prefixes of negative
// Map-Replies).
type ALT interface {
	// Route sends m's Map-Request for addr into the ALT and reports
	// whether it did (false: no ALT route).
	Route(m *slowpath.Msg, iid uint32, addr netip.Addr) bool
	// Known appends the ALT table as a prefix set for iid.
	Known(iid uint32, out []slowpath.PrefixSet) []slowpath.PrefixSet
}

// ALTRoute is the ALT route a Map-Request was sent by, as the ALT table
// held it then.
type ALTRoute struct {
	// Prefix is the route's EID prefix; NextHop the next ALT router (its
	// inner tunnel address).
	Prefix  netip.Prefix
	NextHop netip.Addr
	// ASPath is the best path's AS path: the ALT routers' ASes toward
	// the one that originates the prefix.
	ASPath []uint32
	// Aggregate marks an aggregate route (ATOMIC_AGGREGATE).
	Aggregate bool
}

// ALTLookup is what an ALT may offer besides ALT: the route Route would
// use for addr, so the resolver can record the path (ALTSent).
type ALTLookup interface {
	Lookup(iid uint32, addr netip.Addr) (ALTRoute, bool)
}

// ALTSent is one Map-Request this Map-Resolver sent into the ALT, as
// ALTSent lists it (lig --alt-path shows the one carrying its nonce).
type ALTSent struct {
	// Nonce is the Map-Request's nonce; IID and EID what it asked.
	Nonce wire.Nonce
	IID   uint32
	EID   netip.Addr
	// Time is when it was sent (the core's clock).
	Time time.Time
	// Route is the ALT route it was sent by (zero when the ALT does not
	// tell).
	Route ALTRoute
	// DDT is what DDT answered before the ALT was tried: invalid Prefix
	// when DDT was not asked; else its outcome (DELEGATION-HOLE, also
	// from the referral cache, or NOT-AUTHORITATIVE) for DDTPrefix.
	DDT       wire.ReferralType
	DDTPrefix netip.Prefix
}

// maxALTSent bounds the Map-Requests sent into the ALT kept for ALTSent.
const maxALTSent = 64

// SetALT makes the resolver send what it cannot answer, and no remote
// Map-Server nor DDT resolves, into the ALT (the assembly calls it before
// the core starts).
func (mr *Resolver) SetALT(a ALT) { mr.alt = a }

// ALTSent appends the last Map-Requests sent into the ALT (at most 64,
// oldest first) to out (event loop only).
func (mr *Resolver) ALTSent(out []ALTSent) []ALTSent {
	n := len(mr.altSent)
	for i := range n {
		s := mr.altSent[(mr.altNext+i)%n]
		s.Route.ASPath = slices.Clone(s.Route.ASPath)
		out = append(out, s)
	}
	return out
}

// altRoute sends m's request for addr into the ALT when there is a route.
// A request that came over the ALT (an ECM marked for a Map-Server) is not
// sent in again. ddt is DDT's negative answer before it (nil when DDT was
// not asked), recorded with the route.
func (mr *Resolver) altRoute(m *slowpath.Msg, iid uint32, addr netip.Addr, ddt *Referral) bool {
	if mr.alt == nil || (m.ECM != nil && m.ECM.ToMapServer) {
		return false
	}
	if !mr.alt.Route(m, iid, addr) {
		return false
	}
	mr.stats.Forwarded++
	s := ALTSent{Nonce: m.Request.Nonce, IID: iid, EID: addr, Time: mr.c.Now()}
	if l, ok := mr.alt.(ALTLookup); ok {
		s.Route, _ = l.Lookup(iid, addr)
	}
	if ddt != nil {
		s.DDT, s.DDTPrefix = ddt.Type, ddt.Prefix
	}
	if len(mr.altSent) < maxALTSent {
		mr.altSent = append(mr.altSent, s)
	} else {
		mr.altSent[mr.altNext] = s
		mr.altNext = (mr.altNext + 1) % maxALTSent
	}
	return true
}

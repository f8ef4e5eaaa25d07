package resolver

import (
	"net/netip"

	"github.com/rloc-router/rloc/slowpath"
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

// SetALT makes the resolver send what it cannot answer, and no remote
// Map-Server covers, into the ALT (the assembly calls it before the core
// starts).
func (mr *Resolver) SetALT(a ALT) { mr.alt = a }

// altRoute sends m's request for addr into the ALT when there is a route.
// A request that came over the ALT (an ECM marked for a Map-Server) is not
// sent in again.
func (mr *Resolver) altRoute(m *slowpath.Msg, iid uint32, addr netip.Addr) bool {
	if mr.alt == nil || (m.ECM != nil && m.ECM.ToMapServer) {
		return false
	}
	if mr.alt.Route(m, iid, addr) {
		mr.stats.Forwarded++
		return true
	}
	return false
}

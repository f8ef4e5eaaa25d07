package control

import (
	"net/netip"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/alt"
	"github.com/rloc-router/rloc/slowpath/mapserver"
	"github.com/rloc-router/rloc/slowpath/resolver"
)

// ALTEntry is one route of the ALT forwarding table (Engine.ALTTable).
type ALTEntry = alt.Entry

// ALTNeighbor is an ALT neighbour's tunnel and session state
// (Engine.ALTNeighbors).
type ALTNeighbor = alt.Neighbor

// ALTStats are the ALT role's counters.
type ALTStats = alt.Stats

// ALTSent is a Map-Request the Map-Resolver sent into the ALT, with the
// route it took (Engine.ALTSent).
type ALTSent = resolver.ALTSent

// altResolver is the ALT role as the Map-Resolver uses it, with the route
// lookup that records the path of each Map-Request sent in (lig
// --alt-path).
type altResolver struct{ *alt.ALT }

// Lookup implements resolver.ALTLookup.
func (a altResolver) Lookup(iid uint32, addr netip.Addr) (resolver.ALTRoute, bool) {
	e, ok := a.ALT.Lookup(iid, addr)
	if !ok {
		return resolver.ALTRoute{}, false
	}
	return resolver.ALTRoute{Prefix: e.Prefix, NextHop: e.Peer, ASPath: e.ASPath, Aggregate: e.Aggregate}, true
}

// ALTSent returns the last Map-Requests (at most 64, oldest first) this
// router's Map-Resolver sent into the ALT, each with the ALT route it took
// and what DDT answered before; nil without a Map-Resolver.
func (e *Engine) ALTSent() []ALTSent {
	var out []ALTSent
	if e.mr != nil {
		_ = e.c.Do(func() { out = e.mr.ALTSent(nil) })
	}
	return out
}

// msSites is the Map-Server as the ALT's alt.Sites: the EID prefixes of
// every instance-ID with a live registration.
type msSites struct{ ms *mapserver.MapServer }

// Registered implements alt.Sites (event loop).
func (s msSites) Registered(out []slowpath.EIDPrefix) []slowpath.EIDPrefix {
	for _, r := range s.ms.Registrations() {
		if r.Name == "" && (len(out) == 0 || out[len(out)-1] != r.EID) {
			out = append(out, r.EID)
		}
	}
	return out
}

// buildALT makes the ALT role (after the Map-Server, whose registered
// prefixes it announces, before the Map-Resolver, which sends into it).
func (e *Engine) buildALT() error {
	if e.cfg.ALT == nil {
		return nil
	}
	var sites alt.Sites
	if e.ms != nil {
		sites = msSites{e.ms}
	}
	var err error
	e.alt, err = alt.New(e.c, e.cfg.ALT, sites)
	return err
}

// ALT reports whether the engine runs the ALT router role.
func (e *Engine) ALT() bool { return e.alt != nil }

// ALTTable returns the ALT forwarding table (nil without the role).
func (e *Engine) ALTTable() []ALTEntry {
	if e.alt == nil {
		return nil
	}
	return e.alt.Table()
}

// ALTNeighbors returns the ALT neighbours' states (nil without the role).
func (e *Engine) ALTNeighbors() ([]ALTNeighbor, error) {
	if e.alt == nil {
		return nil, nil
	}
	return e.alt.Neighbors()
}

// ALTStats returns the ALT role's counters and the GRE drops by reason.
func (e *Engine) ALTStats() (ALTStats, map[string]uint64) {
	if e.alt == nil {
		return ALTStats{}, nil
	}
	return e.alt.Stats(), e.alt.GREDropped()
}

// ALTAnnounced returns the prefixes this router originates into the ALT,
// with their instance-IDs.
func (e *Engine) ALTAnnounced() []slowpath.EIDPrefix {
	if e.alt == nil {
		return nil
	}
	return e.alt.Announced()
}

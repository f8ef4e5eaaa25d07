package xtr

import (
	"net/netip"
	"slices"
)

// SetDiscovered sets the Map-Resolvers discovery learned
// (draft-boucadair-lisp-function-discovery, docs/discovery.md): the ITR asks
// the configured ones first, then these, in order. A Map-Resolver that
// leaves the list is not asked by any later resolution; the Map-Requests
// already in flight keep their targets until they end. Event loop only.
func (t *ITR) SetDiscovered(mrs []netip.AddrPort) {
	if t.configured == nil {
		t.configured = slices.Clip(slices.Clone(t.cfg.MapResolvers))
		if t.configured == nil {
			t.configured = []netip.AddrPort{}
		}
	}
	list := slices.Clone(t.configured)
	for _, a := range mrs {
		if !slices.Contains(list, a) {
			list = append(list, a)
			t.c.TrustAlways(a.Addr())
		}
	}
	t.cfg.MapResolvers = list
}

// MapResolvers returns the Map-Resolvers the ITR asks now, configured and
// discovered (event loop only).
func (t *ITR) MapResolvers() []netip.AddrPort { return slices.Clone(t.cfg.MapResolvers) }

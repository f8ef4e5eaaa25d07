package control

import (
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/discovery"
)

// BGPDiscoveryEntry is one EID prefix and its mapping system's contact,
// advertised or learned through BGP discovery.
type BGPDiscoveryEntry = discovery.BGPEntry

// BGPDiscoveryStats are BGP discovery's counters.
type BGPDiscoveryStats = discovery.BGPStats

// startBGPDiscovery starts BGP discovery when configured
// (draft-boucadair-lisp-idr-ms-discovery, docs/discovery.md).
func (e *Engine) startBGPDiscovery(cfg *slowpath.DiscoveryBGP) error {
	if cfg == nil {
		return nil
	}
	b, err := discovery.StartBGP(*cfg, e.c.Log())
	if err != nil {
		return err
	}
	e.bgpDisc = b
	return nil
}

// BGPDiscovered returns BGP discovery's table and counters; false without
// BGP discovery.
func (e *Engine) BGPDiscovered() ([]BGPDiscoveryEntry, BGPDiscoveryStats, bool) {
	if e.bgpDisc == nil {
		return nil, BGPDiscoveryStats{}, false
	}
	return e.bgpDisc.Entries(), e.bgpDisc.Stats(), true
}

package control

import "github.com/rloc-router/rloc/slowpath/xtr"

// SolicitStats are the ITR's map-cache solicitation counters
// (docs/solicit.md).
type SolicitStats = xtr.SolicitStats

// SolicitPeer is the solicitation state of one peer ITR.
type SolicitPeer = xtr.SolicitPeerState

// Solicit returns the ITR's solicitation counters and peers; ok is false
// without the ITR role or without solicitation configured.
func (e *Engine) Solicit() (st SolicitStats, peers []SolicitPeer, ok bool) {
	if e.itr == nil || e.cfg.ITR == nil || !e.cfg.ITR.Solicit.Enabled() {
		return st, nil, false
	}
	_ = e.c.Do(func() { st, peers = e.itr.SolicitStats(), e.itr.SolicitPeers() })
	return st, peers, true
}

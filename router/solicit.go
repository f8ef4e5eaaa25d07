package router

import (
	"errors"
	"net/http"
	"time"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/slowpath"
)

// ITR-to-ITR map-cache solicitation (docs/solicit.md): the YAML section is
// itr.solicit (slowpath.SolicitConfig), the installer lists the map-cache
// for the peers, and GET /v1/solicit shows the counters and the peers.

// solicitConfig is the ITR's solicitation configuration, nil when no peer
// is configured.
func (c *Config) solicitConfig() *slowpath.SolicitConfig {
	if len(c.ITR.Solicit.Peers) == 0 {
		return nil
	}
	s := c.ITR.Solicit
	return &s
}

// validateSolicit checks itr.solicit.
func (c *Config) validateSolicit() error {
	s := &c.ITR.Solicit
	if len(s.Peers) == 0 {
		if s.OnStart || len(s.Scope) > 0 {
			return errors.New("itr.solicit.peers: on_start and scope need peers")
		}
		return nil
	}
	if !c.Roles.resolves() {
		return errors.New("itr.solicit: only the itr, pitr and rtr roles keep a map-cache to share")
	}
	return s.Validate("itr.solicit")
}

// CachedMappings implements xtr.CacheLister: the positive, non-static IP
// mappings of the map-cache, each with the time left before it expires.
func (in installer) CachedMappings(out []slowpath.Resolved) []slowpath.Resolved {
	now := time.Now()
	in.r.cache.Walk(func(e *cache.Entry) bool {
		k := e.Key()
		exp := e.Expiry()
		if k.Kind != cache.KindIP || e.Static() || e.Negative() || exp.IsZero() || !exp.After(now) {
			return true
		}
		m := slowpath.Resolved{EIDPrefix: slowpath.EIDPrefix{IID: k.IID, Prefix: k.Prefix}, TTL: exp.Sub(now),
			Authoritative: e.Authoritative(), MapVersion: e.MapVersion()}
		for _, l := range e.RLOCs() {
			m.RLOCs = append(m.RLOCs, slowpath.ResolvedRLOC{Addr: l.Addr, Priority: l.Priority, Weight: l.Weight,
				MPriority: l.MPriority, MWeight: l.MWeight, Reachable: l.Reachable})
		}
		out = append(out, m)
		return true
	})
	return out
}

// SolicitPeerInfo is one peer ITR in GET /v1/solicit.
type SolicitPeerInfo struct {
	// Addr is the peer's control address.
	Addr string `json:"addr"`
	// Pull is this router's copy of the peer's map-cache: "", "pulling",
	// "done" or "failed", with the pages and mappings it got.
	Pull      string `json:"pull,omitempty"`
	Pages     int    `json:"pages"`
	Installed int    `json:"installed"`
	// Session is true while the peer pages through this router's
	// map-cache; SessionPages and SessionEntries are its progress.
	Session        bool `json:"session"`
	SessionPages   int  `json:"session_pages"`
	SessionEntries int  `json:"session_entries"`
}

// SolicitInfo is GET /v1/solicit: the solicitation counters and peers.
type SolicitInfo struct {
	// Enabled is false when itr.solicit has no peers.
	Enabled bool `json:"enabled"`
	// Holding is true while misses wait for the copies at start.
	Holding bool `json:"holding"`
	// Copies is the number of mappings held from peers and not yet
	// refreshed from the mapping system.
	Copies int `json:"copies"`
	// Counters are the counters of xtr.SolicitStats, snake_case.
	Counters map[string]uint64 `json:"counters"`
	Peers    []SolicitPeerInfo `json:"peers"`
}

// Solicit returns the solicitation state.
func (r *Router) Solicit() SolicitInfo {
	out := SolicitInfo{Counters: map[string]uint64{}, Peers: []SolicitPeerInfo{}}
	if r.engine == nil {
		return out
	}
	s, peers, ok := r.engine.Solicit()
	if !ok {
		return out
	}
	out.Enabled, out.Holding, out.Copies = true, s.Holding, s.Copies
	out.Counters = map[string]uint64{"sessions": s.Sessions, "pages_sent": s.PagesSent, "pages_resent": s.PagesResent,
		"records_sent": s.RecordsSent, "unknown_peer": s.UnknownPeer, "bad_auth": s.BadAuth, "bad_parse": s.BadParse,
		"bad_cookie": s.BadCookie, "nonce_replay": s.NonceReplay, "rate_limited": s.RateLimited, "truncated": s.Truncated,
		"solicitations": s.Solicitations, "completed": s.Completed, "failed": s.Failed, "pages_received": s.PagesReceived,
		"installed": s.Installed, "kept": s.Kept, "refused": s.Refused, "unmatched": s.Unmatched,
		"requests_sent": s.RequestsSent, "retransmits": s.Retransmits,
		"misses_held": s.MissesHeld, "misses_answered": s.MissesAnswered, "misses_resolved": s.MissesResolved}
	for _, p := range peers {
		out.Peers = append(out.Peers, SolicitPeerInfo{Addr: p.Addr.String(), Pull: p.Pull, Pages: p.Pages, Installed: p.Installed,
			Session: p.Session, SessionPages: p.SessionPages, SessionEntries: p.SessionEntries})
	}
	return out
}

func (r *Router) apiSolicit(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, r.Solicit())
}

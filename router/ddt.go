package router

import (
	"strings"
	"time"

	"errors"
	"net/http"

	"github.com/rloc-router/rloc/wire"

	"github.com/rloc-router/rloc/slowpath/control"
)

// DDTInfo is a DDT node's authority, delegations and counters, as GET
// /v1/ddt/delegations returns them (docs/ddt.md).
type DDTInfo = control.DDTListing

// DDTDelegations returns the DDT node's authoritative XEID-prefixes,
// delegations and counters; ok is false when the router is no DDT node.
func (r *Router) DDTDelegations() (DDTInfo, bool) {
	if r.engine == nil {
		return DDTInfo{}, false
	}
	return r.engine.DDTDelegations()
}

func (r *Router) apiDDTDelegations(w http.ResponseWriter, _ *http.Request) {
	l, ok := r.DDTDelegations()
	if !ok {
		apiError(w, http.StatusNotFound, errors.New("not a DDT node (roles: no ddt-node)"))
		return
	}
	writeJSON(w, l)
}

// DDTReferralInfo is one entry of a DDT Map-Resolver's referral cache.
type DDTReferralInfo struct {
	IID        uint32    `json:"iid"`
	EID        string    `json:"eid"`
	Type       string    `json:"type"`
	Targets    []string  `json:"targets,omitempty"`
	Incomplete bool      `json:"incomplete,omitempty"`
	Expires    time.Time `json:"expires"`
}

// DDTResolverInfo is a DDT Map-Resolver's state, as GET /v1/ddt/referrals
// returns it (docs/ddt.md): its roots, counters, and the referral cache
// (at most ddtListMax entries of Cached, oldest first).
type DDTResolverInfo struct {
	Roots     []string          `json:"roots"`
	Counters  map[string]uint64 `json:"counters"`
	Cached    int               `json:"cached"`
	Referrals []DDTReferralInfo `json:"referrals"`
}

// ddtListMax bounds the referral-cache entries one listing carries.
const ddtListMax = 1000

// DDTReferrals returns the DDT Map-Resolver's state; ok is false when no
// map_resolver.ddt_roots are configured.
func (r *Router) DDTReferrals() (DDTResolverInfo, bool) {
	if r.engine == nil {
		return DDTResolverInfo{}, false
	}
	st, roots, refs, total, ok := r.engine.DDTReferrals(ddtListMax)
	if !ok {
		return DDTResolverInfo{}, false
	}
	info := DDTResolverInfo{Cached: total, Referrals: []DDTReferralInfo{}, Counters: map[string]uint64{
		"resolutions": st.Resolutions, "acked": st.Acked, "no_progress": st.NoProgress, "too_long": st.TooLong,
		"timed_out": st.TimedOut, "refused": st.Refused, "overreach": st.Overreach, "cache_hits": st.CacheHits,
		"negative_hits": st.NegativeHits, "bad_referrals": st.BadReferrals, "unmatched": st.Unmatched,
	}}
	for t, n := range st.Referrals {
		info.Counters["referrals_"+strings.ToLower(metricName(wire.ReferralType(t).String()))] = n
	}
	for _, a := range roots {
		info.Roots = append(info.Roots, a.String())
	}
	for _, e := range refs {
		ri := DDTReferralInfo{IID: e.IID, EID: e.Prefix.String(), Type: e.Type.String(), Incomplete: e.Incomplete, Expires: e.Expires}
		for _, a := range e.Targets {
			ri.Targets = append(ri.Targets, a.String())
		}
		info.Referrals = append(info.Referrals, ri)
	}
	return info, true
}

func (r *Router) apiDDTReferrals(w http.ResponseWriter, _ *http.Request) {
	l, ok := r.DDTReferrals()
	if !ok {
		apiError(w, http.StatusNotFound, errors.New("no DDT resolution (map_resolver.ddt_roots not configured)"))
		return
	}
	writeJSON(w, l)
}

// FlushDDTReferrals empties the DDT Map-Resolver's referral cache (the
// roots stay) and returns how many entries it dropped; ok is false when no
// map_resolver.ddt_roots are configured. For cold-cache measurements.
func (r *Router) FlushDDTReferrals() (int, bool) {
	if r.engine == nil {
		return 0, false
	}
	return r.engine.FlushDDTReferrals()
}

func (r *Router) apiDDTReferralsFlush(w http.ResponseWriter, _ *http.Request) {
	n, ok := r.FlushDDTReferrals()
	if !ok {
		apiError(w, http.StatusNotFound, errors.New("no DDT resolution (map_resolver.ddt_roots not configured)"))
		return
	}
	writeJSON(w, map[string]int{"flushed": n})
}

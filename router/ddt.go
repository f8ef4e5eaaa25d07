package router

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/rloc-router/rloc/slowpath/control"
	"github.com/rloc-router/rloc/slowpath/resolver"
	"github.com/rloc-router/rloc/wire"
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
	IID        uint32   `json:"iid"`
	EID        string   `json:"eid"`
	Type       string   `json:"type"`
	Targets    []string `json:"targets,omitempty"`
	Incomplete bool     `json:"incomplete,omitempty"`
	// Authoritative is the referral's A bit.
	Authoritative bool      `json:"authoritative,omitempty"`
	Expires       time.Time `json:"expires"`
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
	info := DDTResolverInfo{Cached: total, Referrals: []DDTReferralInfo{}, Counters: ddtResolverCounters(&st)}
	info.Roots = addrPortStrings(roots)
	for _, e := range refs {
		info.Referrals = append(info.Referrals, DDTReferralInfo{IID: e.IID, EID: e.Prefix.String(), Type: e.Type.String(),
			Incomplete: e.Incomplete, Authoritative: e.Authoritative, Expires: e.Expires, Targets: addrPortStrings(e.Targets)})
	}
	return info, true
}

// addrPortStrings formats addresses and ports (nil for none).
func addrPortStrings(as []netip.AddrPort) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// ddtResolverAPI serves what get returns, 404 without DDT resolution.
func ddtResolverAPI[T any](get func() (T, bool)) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		l, ok := get()
		if !ok {
			apiError(w, http.StatusNotFound, errors.New("no DDT resolution (map_resolver.ddt_roots not configured)"))
			return
		}
		writeJSON(w, l)
	}
}

// ddtResolverCounters names the DDT Map-Resolver's counters (snake_case,
// as in /metrics).
func ddtResolverCounters(st *resolver.DDTStats) map[string]uint64 {
	m := map[string]uint64{
		"resolutions": st.Resolutions, "acked": st.Acked, "no_progress": st.NoProgress, "too_long": st.TooLong,
		"timed_out": st.TimedOut, "refused": st.Refused, "overreach": st.Overreach, "cache_hits": st.CacheHits,
		"negative_hits": st.NegativeHits, "bad_referrals": st.BadReferrals, "unmatched": st.Unmatched,
		"referrals_outside": st.Outside, "referrals_verified": st.Verified, "referrals_bad_signature": st.BadSignature,
		"referrals_unsigned": st.Unsigned, "referrals_not_cached": st.NotCached, "referrals_stale": st.Stale,
		"not_registered_next": st.NotRegisteredNext, "alt_fallbacks": st.ALT, "negatives_narrowed": st.Narrowed,
	}
	for t, n := range st.Referrals {
		m["referrals_"+strings.ToLower(metricName(wire.ReferralType(t).String()))] = n
	}
	return m
}

// DDTPendingInfo is one resolution in progress at a DDT Map-Resolver.
type DDTPendingInfo struct {
	Nonce      string    `json:"nonce"`
	ITR        string    `json:"itr"`
	IID        uint32    `json:"iid"`
	EID        string    `json:"eid"`
	Delegation string    `json:"delegation"` // the referral followed; "root" while the roots are asked
	Hops       int       `json:"hops"`
	Target     string    `json:"target,omitempty"`
	Tries      int       `json:"tries"`
	Targets    []string  `json:"targets"`
	Started    time.Time `json:"started"`
}

// DDTPendingList is GET /v1/ddt/pending: the resolutions in progress (at
// most ddtListMax, oldest first) and their number.
type DDTPendingList struct {
	Pending []DDTPendingInfo `json:"pending"`
	Total   int              `json:"total"`
}

// DDTPending returns the DDT Map-Resolver's resolutions in progress; ok
// is false when no map_resolver.ddt_roots are configured.
func (r *Router) DDTPending() (DDTPendingList, bool) {
	if r.engine == nil {
		return DDTPendingList{}, false
	}
	l, total, ok := r.engine.DDTPending(ddtListMax)
	if !ok {
		return DDTPendingList{}, false
	}
	out := DDTPendingList{Total: total, Pending: []DDTPendingInfo{}}
	for _, p := range l {
		d := "root"
		if p.Delegation.IsValid() {
			d = p.Delegation.String()
		}
		e := DDTPendingInfo{Nonce: fmt.Sprintf("%x", p.Nonce[:]), ITR: p.ITR.String(), IID: p.IID, EID: p.EID.String(),
			Delegation: d, Hops: p.Hops, Tries: p.Tries, Started: p.Started, Targets: addrPortStrings(p.Targets)}
		if p.Target.IsValid() {
			e.Target = p.Target.String()
		}
		out.Pending = append(out.Pending, e)
	}
	return out, true
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

package router

import (
	"errors"
	"net/http"

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

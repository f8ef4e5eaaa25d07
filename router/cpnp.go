package router

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/control"
)

// CPNPInfo is the negotiation's state, as GET /v1/cpnp returns it
// (docs/cpnp.md): this mapping system's identity and public key, the
// agreements on both sides with the interconnect each provisioned, the
// contacts the customer orders from, and the counters.
type CPNPInfo = control.CPNPListing

// CPNPWithdrawal is the body of POST /v1/cpnp/withdraw.
type CPNPWithdrawal struct {
	// Peer is the agreement's peer address (address:port, as listed).
	Peer string `json:"peer"`
	// CustomerID is the agreement's customer identifier.
	CustomerID string `json:"customer_id"`
}

// validateCPNP checks the cpnp section.
func (c *Config) validateCPNP() error {
	if reflect.ValueOf(c.CPNP).IsZero() {
		return nil
	}
	return c.CPNP.Validate("cpnp")
}

// applyCPNP puts the cpnp section into the control plane's configuration.
func (c *Config) applyCPNP(ec *slowpath.Config) {
	if reflect.ValueOf(c.CPNP).IsZero() || (ec.MapServer == nil && ec.MapResolver == nil) {
		return
	}
	x := c.CPNP
	ec.CPNP = &x
}

// CPNP returns the negotiation's state; ok is false without a cpnp
// section.
func (r *Router) CPNP() (CPNPInfo, bool) {
	if r.engine == nil {
		return CPNPInfo{}, false
	}
	return r.engine.CPNP()
}

func (r *Router) apiCPNP(w http.ResponseWriter, _ *http.Request) {
	l, ok := r.CPNP()
	if !ok {
		apiError(w, http.StatusNotFound, errors.New("cpnp: not configured (no cpnp section)"))
		return
	}
	writeJSON(w, l)
}

func (r *Router) apiCPNPWithdraw(w http.ResponseWriter, req *http.Request) {
	var b CPNPWithdrawal
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<16)).Decode(&b); err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	if r.engine == nil {
		apiError(w, http.StatusNotFound, errors.New("cpnp: not configured (no cpnp section)"))
		return
	}
	if err := r.engine.CPNPWithdraw(b.Peer, b.CustomerID); err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, b)
}

// cpnpMetrics reports the negotiation's counters as control events
// (rloc_control_events_total{event="cpnp_..."}); nothing without cpnp.
func cpnpMetrics(e *control.Engine, counter func(name string, v uint64)) {
	l, ok := e.CPNP()
	if !ok {
		return
	}
	for _, s := range []any{l.Stats, l.Negotiator} {
		v := reflect.ValueOf(s)
		for i := range v.NumField() {
			if f := v.Field(i); f.Kind() == reflect.Uint64 {
				counter("cpnp_"+snake(v.Type().Field(i).Name), f.Uint())
			}
		}
	}
}

package router

import (
	"errors"
	"net/http"
	"net/netip"

	"github.com/rloc-router/rloc/slowpath/control"
)

// validateALT checks alt.
func (c *Config) validateALT() error {
	if !c.Roles.ALT {
		return nil
	}
	return c.ALT.Validate("alt")
}

// ALTView is GET /v1/alt: the ALT router's neighbours with their tunnel
// and session states, the ALT forwarding table, what this router
// announces, and the counters (docs/alt.md).
type ALTView struct {
	// Neighbors are the ALT neighbours in configuration order.
	Neighbors []ALTNeighborView `json:"neighbors"`
	// Table is the ALT forwarding table, sorted by prefix.
	Table []ALTRouteView `json:"table"`
	// Announced are the prefixes this router originates.
	Announced []netip.Prefix `json:"announced"`
	// Stats are the role's counters.
	Stats control.ALTStats `json:"stats"`
	// GREDropped counts the GRE packets dropped, by reason.
	GREDropped map[string]uint64 `json:"gre_dropped"`
}

// ALTNeighborView is one neighbour in ALTView.
type ALTNeighborView struct {
	Remote     netip.Addr `json:"remote"`
	Peer       netip.Addr `json:"peer"`
	ASN        uint32     `json:"asn"`
	State      string     `json:"state"`
	Received   uint64     `json:"received"`
	Accepted   uint64     `json:"accepted"`
	Advertised uint64     `json:"advertised"`
	UptimeSec  int64      `json:"uptime_seconds"`
	RxPackets  uint64     `json:"gre_rx_packets"`
	TxPackets  uint64     `json:"gre_tx_packets"`
}

// ALTRouteView is one route in ALTView.
type ALTRouteView struct {
	Prefix    netip.Prefix `json:"prefix"`
	Peer      string       `json:"next_hop"`
	ASPath    []uint32     `json:"as_path"`
	Aggregate bool         `json:"aggregate,omitempty"`
	Local     bool         `json:"local,omitempty"`
}

// ALT returns the ALT view; an error when the router runs no ALT role.
func (r *Router) ALT() (ALTView, error) {
	if r.engine == nil || !r.engine.ALT() {
		return ALTView{}, errors.New("not an ALT router (roles: no alt)")
	}
	var v ALTView
	nbs, err := r.engine.ALTNeighbors()
	if err != nil {
		return v, err
	}
	for _, n := range nbs {
		v.Neighbors = append(v.Neighbors, ALTNeighborView{Remote: n.Remote, Peer: n.Peer, ASN: n.ASN, State: string(n.State),
			Received: n.Received, Accepted: n.Accepted, Advertised: n.Advertised, UptimeSec: int64(n.Uptime.Seconds()),
			RxPackets: n.Tunnel.RxPackets, TxPackets: n.Tunnel.TxPackets})
	}
	for _, e := range r.engine.ALTTable() {
		nh := "local"
		if e.Peer.IsValid() {
			nh = e.Peer.String()
		}
		v.Table = append(v.Table, ALTRouteView{Prefix: e.Prefix, Peer: nh, ASPath: e.ASPath, Aggregate: e.Aggregate, Local: e.Local})
	}
	v.Announced = r.engine.ALTAnnounced()
	v.Stats, v.GREDropped = r.engine.ALTStats()
	return v, nil
}

// handleALT serves GET /v1/alt.
func (r *Router) handleALT(w http.ResponseWriter, _ *http.Request) {
	v, err := r.ALT()
	if err != nil {
		apiError(w, http.StatusNotFound, err)
		return
	}
	writeJSON(w, v)
}

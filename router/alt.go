package router

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

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
	// Announced are the prefixes this router originates in instance-ID
	// 0; AnnouncedIIDs those of the other instance-IDs (the L3VPN
	// families only).
	Announced     []netip.Prefix     `json:"announced"`
	AnnouncedIIDs []ALTAnnouncedView `json:"announced_iids,omitempty"`
	// Stats are the role's counters.
	Stats control.ALTStats `json:"stats"`
	// GREDropped counts the GRE packets dropped, by reason.
	GREDropped map[string]uint64 `json:"gre_dropped"`
	// Sent are the last Map-Requests (at most 64, oldest first) this
	// router's Map-Resolver sent into the ALT, each with the ALT route it
	// took (lig --alt-path looks its nonce up here).
	Sent []ALTSentView `json:"sent,omitempty"`
}

// ALTSentView is one Map-Request a Map-Resolver sent into the ALT.
type ALTSentView struct {
	// Nonce is the Map-Request's nonce in hex; IID and EID what it asked.
	Nonce string     `json:"nonce"`
	IID   uint32     `json:"iid"`
	EID   netip.Addr `json:"eid"`
	Time  time.Time  `json:"time"`
	// Route, NextHop, ASPath and Aggregate are the ALT route it was sent
	// by: the next ALT router and the ASes toward the origin.
	Route     netip.Prefix `json:"route"`
	NextHop   netip.Addr   `json:"next_hop"`
	ASPath    []uint32     `json:"as_path"`
	Aggregate bool         `json:"aggregate,omitempty"`
	// DDT is what DDT answered before, when it was asked: DELEGATION-HOLE
	// or NOT-AUTHORITATIVE, and DDTPrefix the prefix of that answer.
	DDT       string       `json:"ddt,omitempty"`
	DDTPrefix netip.Prefix `json:"ddt_prefix,omitzero"`
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

// ALTAnnouncedView is a prefix of a non-zero instance-ID this router
// originates.
type ALTAnnouncedView struct {
	IID    uint32       `json:"iid"`
	Prefix netip.Prefix `json:"prefix"`
}

// Name is the prefix, after its instance-ID in brackets unless it is 0.
func (a ALTAnnouncedView) Name() string { return iidPrefix(a.IID, a.Prefix) }

// iidPrefix writes an ALT prefix: with its instance-ID in brackets unless
// it is 0.
func iidPrefix(iid uint32, p netip.Prefix) string {
	if iid == 0 {
		return p.String()
	}
	return fmt.Sprintf("[%d]%v", iid, p)
}

// ALTRouteView is one route in ALTView.
type ALTRouteView struct {
	// IID is the route's instance-ID (its route distinguisher 0:<IID>).
	IID       uint32       `json:"iid"`
	Prefix    netip.Prefix `json:"prefix"`
	Peer      string       `json:"next_hop"`
	ASPath    []uint32     `json:"as_path"`
	Aggregate bool         `json:"aggregate,omitempty"`
	Local     bool         `json:"local,omitempty"`
}

// Name is the route's prefix, after its instance-ID in brackets unless it
// is 0.
func (r ALTRouteView) Name() string { return iidPrefix(r.IID, r.Prefix) }

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
		v.Table = append(v.Table, ALTRouteView{IID: e.IID, Prefix: e.Prefix, Peer: nh, ASPath: e.ASPath, Aggregate: e.Aggregate, Local: e.Local})
	}
	for _, s := range r.engine.ALTSent() {
		sv := ALTSentView{Nonce: fmt.Sprintf("%x", s.Nonce[:]), IID: s.IID, EID: s.EID, Time: s.Time, Route: s.Route.Prefix,
			NextHop: s.Route.NextHop, ASPath: s.Route.ASPath, Aggregate: s.Route.Aggregate}
		if s.DDTPrefix.IsValid() {
			sv.DDT, sv.DDTPrefix = s.DDT.String(), s.DDTPrefix
		}
		v.Sent = append(v.Sent, sv)
	}
	for _, a := range r.engine.ALTAnnounced() {
		if a.IID == 0 {
			v.Announced = append(v.Announced, a.Prefix)
		} else {
			v.AnnouncedIIDs = append(v.AnnouncedIIDs, ALTAnnouncedView{IID: a.IID, Prefix: a.Prefix})
		}
	}
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

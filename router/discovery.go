package router

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/control"
)

// DiscoveryInfo is OSPF discovery's state, as GET /v1/discovery returns it
// (docs/discovery.md): the functions learned from MSFD TLVs, the
// Map-Resolvers the ITR asks now (configured, then discovered), and the
// counters; the Map-Servers the ETR registers with likewise.
type DiscoveryInfo struct {
	Functions    []control.DiscoveryEntry `json:"functions"`
	MapResolvers []netip.AddrPort         `json:"map_resolvers"`
	MapServers   []netip.AddrPort         `json:"map_servers"`
	Stats        control.DiscoveryStats   `json:"stats"`
	// BGP is BGP discovery's table and counters (discovery.bgp); absent
	// without it.
	BGP *BGPDiscoveryInfo `json:"bgp,omitempty"`
}

// BGPDiscoveryInfo is BGP discovery's state in GET /v1/discovery: the EID
// prefixes advertised (self) and learned, each with its mapping system's
// contact (draft-boucadair-lisp-idr-ms-discovery), and the counters.
type BGPDiscoveryInfo struct {
	Prefixes []control.BGPDiscoveryEntry `json:"prefixes"`
	Stats    control.BGPDiscoveryStats   `json:"stats"`
}

// DiscoveryStatus is the body of POST /v1/discovery/status.
type DiscoveryStatus struct {
	// Status is enabled or disabled.
	Status string `json:"status"`
}

// validateDiscovery checks the discovery section.
func (c *Config) validateDiscovery() error {
	if !c.Discovery.Enabled() {
		return nil
	}
	if c.Discovery.MapResolvers && !c.Roles.resolves() {
		return errors.New("discovery.map_resolvers: only the itr, pitr or rtr role uses Map-Resolvers")
	}
	if c.Discovery.MapServerKey != nil && !c.Roles.ETR {
		return errors.New("discovery.map_server_key: only the etr role registers with Map-Servers")
	}
	return c.Discovery.Validate("discovery")
}

// applyDiscovery puts the discovery section into the control plane's
// configuration: the advertised locators default to the RLOCs, and an
// ITR that learns Map-Resolvers may have none configured.
func (c *Config) applyDiscovery(ec *slowpath.Config) {
	if !c.Discovery.Enabled() {
		return
	}
	d := c.Discovery
	if len(d.Advertise.Locators) == 0 {
		d.Advertise.Locators = c.RLOCs
	}
	ec.Discovery = &d
	if ec.ITR != nil && d.MapResolvers {
		ec.ITR.Discover = true
	}
}

// Discovery returns OSPF discovery's state; ok is false when the router
// has no discovery section.
func (r *Router) Discovery() (DiscoveryInfo, bool) {
	if r.engine == nil {
		return DiscoveryInfo{}, false
	}
	st, ok := r.engine.DiscoveryStats()
	var bi *BGPDiscoveryInfo
	if es, bs, bok := r.engine.BGPDiscovered(); bok {
		if es == nil {
			es = []control.BGPDiscoveryEntry{}
		}
		bi = &BGPDiscoveryInfo{Prefixes: es, Stats: bs}
	}
	if !ok && bi == nil {
		return DiscoveryInfo{}, false
	}
	return DiscoveryInfo{Functions: r.engine.Discovered(), MapResolvers: r.engine.ITRMapResolvers(),
		MapServers: r.engine.ETRMapServers(), Stats: st, BGP: bi}, true
}

// SetDiscoveryStatus changes the status of the MSFD TLV this router floods
// (a Map-Resolver or Map-Server taken out of, or back into, service).
func (r *Router) SetDiscoveryStatus(status string) error {
	if r.engine == nil {
		return errors.New("discovery: not configured")
	}
	return r.engine.SetDiscoveryStatus(status)
}

func (r *Router) apiDiscovery(w http.ResponseWriter, _ *http.Request) {
	info, ok := r.Discovery()
	if !ok {
		apiError(w, http.StatusNotFound, errors.New("discovery: not configured (no discovery section)"))
		return
	}
	if info.Functions == nil {
		info.Functions = []control.DiscoveryEntry{}
	}
	writeJSON(w, info)
}

func (r *Router) apiDiscoveryStatus(w http.ResponseWriter, req *http.Request) {
	var s DiscoveryStatus
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<16)).Decode(&s); err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	if err := r.SetDiscoveryStatus(s.Status); err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, s)
}

// discoveryMetrics reports OSPF and BGP discovery's counters as control events
// (rloc_control_events_total{event="discovery_..."}); nothing without
// discovery.
func discoveryMetrics(e *control.Engine, counter func(name string, v uint64)) {
	if _, b, ok := e.BGPDiscovered(); ok {
		for k, v := range map[string]uint64{"discovery_bgp_updates": b.Updates, "discovery_bgp_withdrawals": b.Withdrawals,
			"discovery_bgp_untagged": b.Untagged, "discovery_bgp_malformed": b.Malformed, "discovery_bgp_dropped": b.Dropped} {
			counter(k, v)
		}
	}
	s, ok := e.DiscoveryStats()
	if !ok {
		return
	}
	for k, v := range map[string]uint64{"discovery_connects": s.Connects, "discovery_connect_errors": s.ConnectErrors,
		"discovery_lsa_updates": s.Updates, "discovery_lsa_deletes": s.Deletes, "discovery_malformed": s.Malformed,
		"discovery_dropped": s.Dropped, "discovery_originated": s.Originated, "discovery_originate_errors": s.OriginateErrors,
		"discovery_changes": s.Changes} {
		counter(k, v)
	}
}

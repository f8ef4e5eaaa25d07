package router

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/rloc-router/rloc/slowpath"
)

// TestDiscoveryBGPMetrics: a router with only discovery.bgp (its neighbour
// absent) exports BGP discovery's counters and no OSPF ones (the OSPF part
// does not run), and GET /v1/discovery's view has its table.
func TestDiscoveryBGPMetrics(t *testing.T) {
	cfg := Config{
		Name:    "ms-bgp",
		Roles:   Roles{MapResolver: true},
		Control: ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Mgmt:    MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		Metrics: MetricsOptions{Listen: "127.0.0.1:0"},
		Discovery: slowpath.DiscoveryConfig{BGP: &slowpath.DiscoveryBGP{ASN: 65001, RouterID: netip.MustParseAddr("10.0.0.1"),
			Neighbors: []slowpath.DiscoveryBGPNeighbor{{Address: netip.MustParseAddr("127.0.0.2"), ASN: 65002, Port: 1}},
			Advertise: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, Contact: netip.MustParseAddrPort("192.0.2.1:0")}},
	}
	r, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	m := metrics(t, r)
	if v, ok := m[`rloc_control_events_total{event="discovery_bgp_malformed"}`]; !ok || v != 0 {
		t.Fatalf("discovery_bgp_malformed: %v %v", v, ok)
	}
	if _, ok := m[`rloc_control_events_total{event="discovery_connect_errors"}`]; ok {
		t.Fatal("OSPF discovery runs with only discovery.bgp set")
	}
	d, ok := r.Discovery()
	if !ok || d.BGP == nil || len(d.BGP.Prefixes) != 1 || d.BGP.Prefixes[0].Contact != netip.MustParseAddrPort("192.0.2.1:4342") {
		t.Fatalf("discovery view: %+v %v", d, ok)
	}
}

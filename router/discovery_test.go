package router

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/internal/testkit"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// TestDiscoveryConfig: an xTR that learns its Map-Resolvers may have none
// configured, and its ITR is told so; a Map-Resolver's advertised locators
// default to its RLOCs; without learning, an xTR still needs one.
func TestDiscoveryConfig(t *testing.T) {
	a := netip.MustParseAddr
	c := Config{Name: "x", Roles: Roles{ITR: true, ETR: true}, RLOCs: []netip.Addr{a("192.0.2.1")},
		Interfaces: []Interface{{Name: "s0", Side: SideSite}, {Name: "c0", Side: SideCore}},
		Database: []slowpath.Mapping{{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.1.0.0/24")},
			RLOCs: []slowpath.RLOCConfig{{Addr: a("192.0.2.1"), Priority: 1, Weight: 100}}}},
		MapServers: []slowpath.MapServerPeer{{Addr: netip.MustParseAddrPort("192.0.2.100:4342"),
			Key: slowpath.AuthKey{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: "k"}}},
		Discovery: slowpath.DiscoveryConfig{MapResolvers: true}}
	if err := c.Validate(); err != nil {
		t.Fatalf("xTR learning its Map-Resolvers: %v", err)
	}
	ec, err := c.engineConfig()
	if err != nil || ec.Discovery == nil || !ec.ITR.Discover || len(ec.ITR.MapResolvers) != 0 {
		t.Fatalf("engine config: %v %+v %+v", err, ec.Discovery, ec.ITR)
	}
	c.Discovery.MapResolvers = false
	if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "map_resolvers") {
		t.Fatalf("xTR without Map-Resolver nor discovery: %v", err)
	}
	ms := Config{Name: "ms", Roles: Roles{MapServer: true, MapResolver: true}, Sites: []slowpath.SiteConfig{testSite()},
		RLOCs: []netip.Addr{a("192.0.2.100")}, Discovery: slowpath.DiscoveryConfig{Area: a("0.0.0.1")}}
	if err := ms.Validate(); err != nil {
		t.Fatal(err)
	}
	ec, _ = ms.engineConfig()
	if ec.Discovery == nil || len(ec.Discovery.Advertise.Locators) != 1 || ec.Discovery.Advertise.Locators[0] != a("192.0.2.100") {
		t.Fatalf("advertised locators: %+v", ec.Discovery)
	}
}

// TestDiscoveryMetrics: a router with discovery exports its counters as
// control events; its ospfd is absent (a closed port), so connections fail
// and are counted.
func TestDiscoveryMetrics(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	cfg := Config{
		Name:      "ms-disc",
		Roles:     Roles{MapServer: true, MapResolver: true},
		Control:   ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Sites:     []slowpath.SiteConfig{testSite()},
		Mgmt:      MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		Metrics:   MetricsOptions{Listen: "127.0.0.1:0"},
		Discovery: slowpath.DiscoveryConfig{OSPFAPI: api},
	}
	r, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	testkit.WaitFor(t, "a failed connection to the absent ospfd", func() error {
		if v := metrics(t, r)[`rloc_control_events_total{event="discovery_connect_errors"}`]; v < 1 {
			return fmt.Errorf("discovery_connect_errors %v", v)
		}
		return nil
	})
	if _, ok := metrics(t, r)[`rloc_control_events_total{event="discovery_malformed"}`]; !ok {
		t.Fatal("no discovery_malformed series")
	}
}

package router

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// TestValidateNamesFileKeys: a Config built in Go (as an embedder does) is
// checked with the same messages as a file, each naming the key of the
// field; the control plane's own field names (etr.mappings, itr.itr_rlocs,
// multicast.rtrs...) never show.
func TestValidateNamesFileKeys(t *testing.T) {
	a := netip.MustParseAddr
	xtr := func() Config {
		return Config{Name: "x", Roles: Roles{ITR: true, ETR: true}, RLOCs: []netip.Addr{a("192.0.2.1")},
			Interfaces: []Interface{{Name: "s0", Side: SideSite}, {Name: "c0", Side: SideCore}},
			Database: []slowpath.Mapping{{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.1.0.0/24")},
				RLOCs: []slowpath.RLOCConfig{{Addr: a("192.0.2.1"), Priority: 1, Weight: 100}}}},
			MapServers: []slowpath.MapServerPeer{{Addr: netip.MustParseAddrPort("192.0.2.100:4342"),
				Key: slowpath.AuthKey{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: "k"}}},
			MapResolvers: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.100:4342")}}
	}
	ms := func() Config {
		return Config{Name: "ms", Roles: Roles{MapServer: true, MapResolver: true}, Sites: []slowpath.SiteConfig{testSite()}}
	}
	if c := xtr(); c.Validate() != nil {
		t.Fatalf("base xtr: %v", c.Validate())
	}
	if c := ms(); c.Validate() != nil {
		t.Fatalf("base ms: %v", c.Validate())
	}
	cases := []struct {
		path string
		base func() Config
		mod  func(*Config)
	}{
		{"database[0].eid", xtr, func(c *Config) { c.Database[0].Prefix = netip.MustParsePrefix("10.1.0.1/24") }},
		{"database[0].rlocs[0].addr", xtr, func(c *Config) { c.Database[0].RLOCs[0].Addr = netip.Addr{} }},
		{"database[0].ttl", xtr, func(c *Config) { c.Database[0].TTL = -1 }},
		{"map_servers[0].key.secret", xtr, func(c *Config) { c.MapServers[0].Key.Secret = "" }},
		{"map_servers[0].addr", xtr, func(c *Config) { c.MapServers[0].Addr = netip.AddrPort{} }},
		{"map_resolvers[0]", xtr, func(c *Config) { c.MapResolvers[0] = netip.AddrPort{} }},
		{"control.listen[1]", xtr, func(c *Config) {
			c.Control.Listen = []netip.AddrPort{netip.MustParseAddrPort("[::]:4342"), netip.MustParseAddrPort("[::1]:4342")}
		}},
		{"control.rate_limit.map_request.burst", xtr, func(c *Config) { c.Control.RateLimit.MapRequest.Burst = -1 }},
		{"map_servers", xtr, func(c *Config) {
			c.MapServers = nil
			c.Multicast = MulticastOptions{Enabled: true, Receivers: true}
		}},
		{"multicast.key.alg", xtr, func(c *Config) { c.Multicast = MulticastOptions{Enabled: true, Key: slowpath.AuthKey{Secret: "k"}} }},
		{"multicast.underlay.range", xtr, func(c *Config) {
			c.Multicast = MulticastOptions{Enabled: true, Receivers: true, Underlay: &UnderlayOptions{Method: "hash"}}
		}},
		{"multicast.underlay.method", xtr, func(c *Config) {
			c.Roles.ITR = false
			c.Multicast = MulticastOptions{Enabled: true, Receivers: true, Underlay: &UnderlayOptions{Method: "lookup"}}
		}},
		{"multicast.trees[0].source", xtr, func(c *Config) {
			c.Roles.RTR = true
			c.Multicast = MulticastOptions{Enabled: true, Trees: []slowpath.RTRGroup{
				{Source: netip.MustParsePrefix("10.1.0.1/24"), Group: netip.MustParsePrefix("232.1.1.1/32")}}}
		}},
		{"sites[0].prefixes[0].eid", ms, func(c *Config) { c.Sites[0].Prefixes[0].Prefix = netip.Prefix{} }},
		{"sites[0].keys[0].alg", ms, func(c *Config) { c.Sites[0].Keys[0].Alg = 0 }},
		{"sites[1].name", ms, func(c *Config) { c.Sites = append(c.Sites, testSite()) }},
		{"map_server.registration_timeout", ms, func(c *Config) { c.MapServer.RegistrationTimeout = -1 }},
		{"map_resolver.aggregates[0].eid", ms, func(c *Config) {
			c.MapResolver.Aggregates = []slowpath.EIDPrefix{{Prefix: netip.MustParsePrefix("::ffff:10.0.0.0/104")}}
		}},
		{"map_resolver.map_servers[0].addr", ms, func(c *Config) {
			c.MapResolver.MapServers = []slowpath.RemoteMapServer{{Prefixes: []slowpath.EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}}}
		}},
		{"map_resolver.ddt_roots[0]", ms, func(c *Config) { c.MapResolver.DDTRoots = []netip.AddrPort{{}} }},
		{"map_resolver.negative_ttl", ms, func(c *Config) { c.MapResolver.NegativeTTL = -1 }},
	}
	for _, tc := range cases {
		c := tc.base()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.path+": ") {
			t.Errorf("%s: err = %v", tc.path, err)
		}
	}
}

// TestDDTRootsConfig: map_resolver.ddt_roots reaches the Map-Resolver's
// engine configuration.
func TestDDTRootsConfig(t *testing.T) {
	root := netip.MustParseAddrPort("192.0.2.10:4342")
	c := Config{Name: "mr", Roles: Roles{MapResolver: true}, MapResolver: MapResolverOptions{DDTRoots: []netip.AddrPort{root}}}
	if err := c.validateMapResolver(); err != nil {
		t.Fatal(err)
	}
	ec, err := c.engineConfig()
	if err != nil {
		t.Fatal(err)
	}
	if ec.MapResolver == nil || len(ec.MapResolver.DDTRoots) != 1 || ec.MapResolver.DDTRoots[0] != root {
		t.Fatalf("engine config %+v", ec.MapResolver)
	}
}

// TestNativeSite: xdp.offload checks that the core interfaces take XDP
// redirects only when a site program runs in native mode (generic-mode
// redirects go through the stack).
func TestNativeSite(t *testing.T) {
	for _, c := range []struct {
		ifs  []Interface
		want bool
	}{
		{[]Interface{{Name: "s", Side: SideSite}, {Name: "c", Side: SideCore}}, true},
		{[]Interface{{Name: "s", Side: SideSite, XDPMode: XDPDriver}, {Name: "c", Side: SideCore, XDPMode: XDPGeneric}}, true},
		{[]Interface{{Name: "s", Side: SideSite, XDPMode: XDPGeneric}, {Name: "c", Side: SideCore}}, false},
		{[]Interface{{Name: "c", Side: SideCore}}, false},
	} {
		cfg := Config{Interfaces: c.ifs}
		if got := cfg.nativeSite(); got != c.want {
			t.Errorf("%+v: nativeSite %v, want %v", c.ifs, got, c.want)
		}
	}
}

// TestNextHopOptions: the next_hops keys become the watcher's settings
// (MiB to bytes; 0 stays 0, the watcher's default).
func TestNextHopOptions(t *testing.T) {
	if c := (NextHopOptions{ReceiveBufferMiB: 64, PublishGap: 20 * time.Millisecond}).watcherConfig(); c.ReceiveBuffer != 64<<20 || c.PublishGap != 20*time.Millisecond {
		t.Fatalf("watcher config %+v", c)
	}
	if c := (NextHopOptions{}).watcherConfig(); c.ReceiveBuffer != 0 || c.PublishGap != 0 {
		t.Fatalf("defaults: watcher config %+v", c)
	}
}

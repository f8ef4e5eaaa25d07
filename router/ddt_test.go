package router

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

func ddtRouterConfig(t *testing.T) Config {
	return Config{
		Name:    "ddt-test",
		Roles:   Roles{DDTNode: true},
		Control: ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Mgmt:    MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		DDT: slowpath.DDTNodeConfig{
			Authoritative: []slowpath.EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}},
			Delegations: []slowpath.DDTDelegation{{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.1.0.0/16")},
				Type: slowpath.DDTMapServer, Targets: []slowpath.DDTTarget{{Addr: netip.MustParseAddr("192.0.2.7"), Priority: 1, Weight: 100}}}},
		},
	}
}

// TestDDTNodeRouter: a router with roles [ddt-node] answers a DDT
// Map-Request with a Map-Referral, and GET /v1/ddt/delegations lists its
// authority, delegations and the referral sent; a router without the role
// answers 404 there.
func TestDDTNodeRouter(t *testing.T) {
	r, err := Start(ddtRouterConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	c := udpLocal(t)
	req := wire.MapRequest{Nonce: wire.Nonce{9}, ITRRLOCs: []wire.Address{wire.IPAddress(netip.MustParseAddr("127.0.0.1"))},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(netip.MustParseAddr("10.1.2.3"))}}}
	inner, _ := req.Append(nil)
	ecm := wire.ECM{DDT: true, Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("10.1.2.3"),
		SrcPort: c.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port(), DstPort: 4342, TTL: 64, Message: inner}
	b, _ := ecm.Append(nil)
	if _, err := c.WriteToUDPAddrPort(b, r.Engine().Addr()); err != nil {
		t.Fatal(err)
	}
	var m wire.MapReferral
	if err := m.Parse(readType(t, c, wire.TypeMapReferral)); err != nil || m.Nonce != req.Nonce ||
		wire.ReferralType(m.Records[0].Action) != wire.ReferralMS {
		t.Fatalf("Map-Referral %+v: %v", m, err)
	}
	var l DDTInfo
	if code := call(t, r, "GET", "/v1/ddt/delegations", nil, &l); code != 200 {
		t.Fatalf("GET /v1/ddt/delegations: %d", code)
	}
	if len(l.Authoritative) != 1 || len(l.Delegations) != 1 || l.Delegations[0].Referral != "MS-REFERRAL" ||
		l.Delegations[0].Targets[0].Addr != netip.MustParseAddr("192.0.2.7") || l.Stats.MSReferrals != 1 {
		t.Fatalf("listing %+v", l)
	}
	if code := call(t, startMS(t), "GET", "/v1/ddt/delegations", nil, nil); code != 404 {
		t.Fatalf("on a Map-Server: %d, want 404", code)
	}
}

// TestDDTConfigErrors: the ddt section's mistakes are named by their key.
func TestDDTConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"section without the role", func(c *Config) { c.Roles = Roles{MapResolver: true} }, "ddt: set, but only the ddt-node role uses it"},
		{"no authority", func(c *Config) { c.DDT.Authoritative = nil }, "ddt.authoritative: no authoritative XEID-prefix"},
		{"bad type", func(c *Config) { c.DDT.Delegations[0].Type = "ms" }, `ddt.delegations[0].type: "ms"`},
		{"no targets", func(c *Config) { c.DDT.Delegations[0].Targets = nil }, "ddt.delegations[0].targets: no child"},
		{"outside authority", func(c *Config) {
			c.DDT.Delegations[0].Prefix = netip.MustParsePrefix("11.0.0.0/16")
		}, "ddt.delegations[0].eid: 0/11.0.0.0/16 lies in no authoritative XEID-prefix"},
		{"host bits", func(c *Config) {
			c.DDT.Delegations[0].Prefix = netip.MustParsePrefix("10.1.0.1/16")
		}, "ddt.delegations[0].eid: 10.1.0.1/16 has host bits set"},
		{"missing key file", func(c *Config) { c.DDT.Signing.KeyFile = "/nonexistent/key.pem" }, "ddt.signing.key_file: open /nonexistent/key.pem"},
		{"negative ttl", func(c *Config) { c.DDT.HoleTTL = -1 }, "ddt.hole_ttl: negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ddtRouterConfig(t)
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	c := ddtRouterConfig(t)
	if err := c.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	if got := (Roles{DDTNode: true}).String(); got != "[ddt-node]" {
		t.Fatalf("roles %s", got)
	}
}

// TestDDTReferralsAPI: a Map-Resolver with map_resolver.ddt_roots resolves
// through a real DDT node router: GET /v1/ddt/referrals lists its root, the
// MS-REFERRAL it cached and its counters (snake_case keys); a router
// without DDT roots answers 404.
func TestDDTReferralsAPI(t *testing.T) {
	nc := ddtRouterConfig(t)
	nc.DDT.Delegations[0].Targets[0].Addr = netip.MustParseAddr("127.0.0.9") // loopback: nothing listens
	nc.Metrics.Listen = "127.0.0.1:0"
	node, err := Start(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	mr, err := Start(Config{Name: "ddt-mr", Roles: Roles{MapResolver: true},
		Control: ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Mgmt:    MgmtOptions{Socket: filepath.Join(t.TempDir(), "mr.sock")},
		Metrics: MetricsOptions{Listen: "127.0.0.1:0"},
		MapResolver: MapResolverOptions{DDTRoots: []netip.AddrPort{node.Engine().Addr()},
			DDT: slowpath.DDTResolverConfig{RetransmitInterval: time.Minute}}}) // pending for the test's life
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mr.Stop)
	c := udpLocal(t)
	req := wire.MapRequest{Nonce: wire.Nonce{7}, ITRRLOCs: []wire.Address{wire.IPAddress(netip.MustParseAddr("127.0.0.1"))},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(netip.MustParseAddr("10.1.2.3"))}}}
	inner, _ := req.Append(nil)
	ecm := wire.ECM{Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("10.1.2.3"),
		SrcPort: c.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port(), DstPort: 4342, TTL: 64, Message: inner}
	b, _ := ecm.Append(nil)
	if _, err := c.WriteToUDPAddrPort(b, mr.Engine().Addr()); err != nil {
		t.Fatal(err)
	}
	var l DDTResolverInfo
	testkit.WaitFor(t, "the MS-REFERRAL cached", func() error {
		if code := call(t, mr, "GET", "/v1/ddt/referrals", nil, &l); code != 200 {
			return fmt.Errorf("GET /v1/ddt/referrals: %d", code)
		}
		if len(l.Referrals) != 1 {
			return fmt.Errorf("%d referrals cached", len(l.Referrals))
		}
		return nil
	})
	got := l.Referrals[0]
	if len(l.Roots) != 1 || l.Roots[0] != node.Engine().Addr().String() || got.EID != "10.1.0.0/16" ||
		got.Type != "MS-REFERRAL" || len(got.Targets) != 1 || got.Targets[0] != "127.0.0.9:4342" || l.Cached != 1 ||
		l.Counters["resolutions"] != 1 || l.Counters["referrals_ms_referral"] != 1 || time.Until(got.Expires) <= 0 {
		t.Fatalf("listing %+v", l)
	}
	var raw any
	call(t, mr, "GET", "/v1/ddt/referrals", nil, &raw)
	for _, k := range jsonKeys(raw, nil) {
		if !snakeCase.MatchString(k) {
			t.Errorf("key %q is not snake_case", k)
		}
	}
	if code := call(t, node, "GET", "/v1/ddt/referrals", nil, nil); code != 404 {
		t.Fatalf("without ddt_roots: %d, want 404", code)
	}

	// The Map-Server named (127.0.0.9) is silent: the resolution waits
	// for it, in the pending list.
	var pl DDTPendingList
	if code := call(t, mr, "GET", "/v1/ddt/pending", nil, &pl); code != 200 {
		t.Fatalf("GET /v1/ddt/pending: %d", code)
	}
	if pl.Total != 1 || len(pl.Pending) != 1 || pl.Pending[0].EID != "10.1.2.3" || pl.Pending[0].Delegation != "10.1.0.0/16" ||
		pl.Pending[0].Hops != 1 || pl.Pending[0].Target != "127.0.0.9:4342" || pl.Pending[0].Nonce != "0700000000000000" {
		t.Fatalf("pending %+v", pl)
	}
	if code := call(t, node, "GET", "/v1/ddt/pending", nil, nil); code != 404 {
		t.Fatalf("pending without ddt_roots: %d, want 404", code)
	}

	// /metrics: the resolver's events, cache and pending sizes; the
	// node's referrals by type.
	m := metrics(t, mr)
	for k, want := range map[string]float64{`rloc_ddt_resolver_total{event="resolutions"}`: 1,
		`rloc_ddt_resolver_total{event="referrals_ms_referral"}`: 1, `rloc_ddt_resolver_total{event="referrals_bad_signature"}`: 0,
		"rloc_ddt_referral_cache_entries": 1, "rloc_ddt_pending_resolutions": 1} {
		if v, ok := m[k]; !ok || v != want {
			t.Errorf("%s = %v (present %t), want %v", k, v, ok, want)
		}
	}
	if v := metrics(t, node)[`rloc_ddt_node_referrals_total{type="ms_referral"}`]; v != 1 {
		t.Errorf("node MS-REFERRALs in /metrics: %v, want 1", v)
	}
	// DELETE empties the cache (cold measurements); the roots stay.
	var fl map[string]int
	if code := call(t, mr, "DELETE", "/v1/ddt/referrals", nil, &fl); code != 200 || fl["flushed"] != 1 {
		t.Fatalf("DELETE /v1/ddt/referrals: %d %v", code, fl)
	}
	if call(t, mr, "GET", "/v1/ddt/referrals", nil, &l); l.Cached != 0 || len(l.Referrals) != 0 || len(l.Roots) != 1 {
		t.Fatalf("after the flush: %+v", l)
	}
	if code := call(t, node, "DELETE", "/v1/ddt/referrals", nil, nil); code != 404 {
		t.Fatalf("DELETE without ddt_roots: %d, want 404", code)
	}
}

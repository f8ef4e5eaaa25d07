package router

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// TestSolicitConfigChecks: itr.solicit is checked with its key paths, and
// handed to the ITR only with peers.
func TestSolicitConfigChecks(t *testing.T) {
	key := slowpath.AuthKey{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: "k"}
	peer := slowpath.SolicitPeer{Addr: netip.MustParseAddrPort("192.0.2.3:4342"), Key: key}
	for _, tc := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.ITR.Solicit.OnStart = true }, "itr.solicit.peers: on_start and scope need peers"},
		{func(c *Config) {
			c.ITR.Solicit.Peers = []slowpath.SolicitPeer{{Addr: peer.Addr, Key: slowpath.AuthKey{KeyID: 1, Alg: wire.AuthHMACSHA256128}}}
		}, "itr.solicit.peers[0].key.secret: empty"},
		{func(c *Config) { c.ITR.Solicit.Peers = []slowpath.SolicitPeer{peer, peer} }, "itr.solicit.peers[1].addr: 192.0.2.3 listed twice"},
		{func(c *Config) { c.ITR.Solicit.Peers = []slowpath.SolicitPeer{{Key: key}} }, "itr.solicit.peers[0].addr: invalid"},
		{func(c *Config) {
			c.ITR.Solicit.Peers = []slowpath.SolicitPeer{{Addr: peer.Addr, Key: slowpath.AuthKey{Alg: wire.AuthHMACSHA256128HKDF, Secret: "k"}}}
		}, "itr.solicit.peers[0].key.alg: hmac-sha256-128-hkdf"},
		{func(c *Config) { c.ITR.Solicit.Peers, c.ITR.Solicit.PageRecords = []slowpath.SolicitPeer{peer}, 256 }, "itr.solicit.page_records"},
		{func(c *Config) { c.ITR.Solicit.Peers, c.ITR.Solicit.PageBytes = []slowpath.SolicitPeer{peer}, 100 }, "itr.solicit.page_bytes"},
	} {
		cfg := Config{Name: "x", Roles: Roles{ITR: true}}
		tc.set(&cfg)
		if err := cfg.validateSolicit(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v", tc.want, err)
		}
	}
	ms := Config{Name: "ms", Roles: Roles{MapServer: true}}
	ms.ITR.Solicit.Peers = []slowpath.SolicitPeer{peer}
	if err := ms.validateSolicit(); err == nil || !strings.Contains(err.Error(), "itr.solicit: only the itr") {
		t.Errorf("map-server with itr.solicit: %v", err)
	}
	cfg := Config{Name: "x", Roles: Roles{PITR: true}}
	if cfg.solicitConfig() != nil {
		t.Fatal("solicitation without peers")
	}
	cfg.ITR.Solicit = slowpath.SolicitConfig{Peers: []slowpath.SolicitPeer{peer}, OnStart: true}
	if err := cfg.validateSolicit(); err != nil {
		t.Fatal(err)
	}
	if sc := cfg.solicitConfig(); !sc.Enabled() || !sc.OnStart || sc.Peer(netip.MustParseAddr("192.0.2.3")) == nil {
		t.Fatalf("%+v", sc)
	}
}

// TestCachedMappings: the installer lists the positive, non-static IP
// mappings with the time they have left, and a copy installed from a peer
// shows RLOC source "solicit" in the map-cache view.
func TestCachedMappings(t *testing.T) {
	r := &Router{cache: cache.New(cache.Config{}), log: slog.New(slog.DiscardHandler), events: newHub()}
	in := installer{r}
	rl := []slowpath.ResolvedRLOC{{Addr: netip.MustParseAddr("192.0.2.2"), Priority: 1, Weight: 100, MPriority: 255, Reachable: true}}
	pos := slowpath.EIDPrefix{IID: 4, Prefix: netip.MustParsePrefix("10.2.0.0/24")}
	in.Install(&slowpath.Resolved{EIDPrefix: pos, TTL: 30 * time.Minute, MapVersion: 7, Authoritative: true, RLOCs: rl, Solicited: true})
	in.InstallNegative(slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.3.0.0/16")}, time.Hour, wire.ActionDrop)
	r.cache.Apply([]cache.Update{{Key: cache.IPKey(0, netip.MustParsePrefix("10.4.0.0/16")), Static: true,
		RLOCs: []cache.RLOC{{Addr: netip.MustParseAddr("192.0.2.4"), Reachable: true}}}})
	got := in.CachedMappings(nil)
	if len(got) != 1 {
		t.Fatalf("listed %+v, want only %v", got, pos)
	}
	g := got[0]
	if g.EIDPrefix != pos || g.MapVersion != 7 || !g.Authoritative || len(g.RLOCs) != 1 || g.RLOCs[0] != rl[0] ||
		g.TTL > 30*time.Minute || g.TTL < 29*time.Minute {
		t.Fatalf("listed %+v", g)
	}
	e := r.exact(pos.IID, pos.Prefix)
	if info := r.entryInfo(e); len(info.RLOCs) != 1 || info.RLOCs[0].Source != "solicit" {
		t.Fatalf("map-cache view %+v", info)
	}
}
